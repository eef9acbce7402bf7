/* Every per-thread variable of lode (LODE_THREAD_LOCALS in internal.h),
 * defined here, below every file that reads them.  In a LODE_SIM build they
 * are the fields of a context the simulator switches (thread.c), and an OS
 * thread that does not simulate runs in its own. */
#include "internal.h"

/* A page with no free block, and the heap of a thread that has not
 * allocated yet: its direct table points at that page, so the first malloc
 * takes the generic path. */
lode_page_t _lode_page_empty;

#define EMPTY1 &_lode_page_empty
#define EMPTY8 EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1
#define EMPTY64 EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8

lode_heap_t _lode_heap_empty = {.tld = NULL, .pages_direct = {EMPTY64, EMPTY64, EMPTY1}};

_Static_assert(LODE_DIRECT_COUNT == 129, "pages_direct initialiser size");

#ifdef LODE_SIM
__thread lode_thread_ctx_t* _lode_ctx_current;
__thread lode_thread_ctx_t _lode_ctx_own = {.heap_default = &_lode_heap_empty};
#else
#define LODE_TLS_DEFINE(type, name, init) __thread type _lode_tls_##name = init;
LODE_THREAD_LOCALS(LODE_TLS_DEFINE)
#endif
