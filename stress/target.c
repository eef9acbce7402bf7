/* Allocator backends.  lode: the lode_* API with real heaps, the checker and
 * statistics (white box).  libc: malloc/free/realloc/aligned_alloc, collect
 * maps to malloc_trim(0), heaps are emulated by the workload; with LD_PRELOAD
 * this runs jemalloc, tcmalloc, mimalloc or liblode.so.  mimalloc: the mi_*
 * API with real heaps (only when CMake found a mimalloc package). */
/* internal.h first: it includes lode.h with its own attributes; the stress
 * drivers read lode's view of the calling thread's purge queue through it. */
#include "internal.h"
#include "stress.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#ifdef STRESS_HAVE_MIMALLOC
#include <mimalloc.h>
#endif

const target_t* T;

/* --- lode ----------------------------------------------------------------- */
static void* l_malloc(size_t n) { return lode_malloc(n); }
static void l_free(void* p) { lode_free(p); }
static void* l_realloc(void* p, size_t n) { return lode_realloc(p, n); }
static void* l_aligned(size_t a, size_t n) { return lode_aligned_alloc(a, n); }
static size_t l_usable(const void* p) { return lode_usable_size(p); }
static void l_collect(bool force) { lode_collect(force); }
static void* l_heap_new(void) { return lode_heap_new(); }
static void l_heap_delete(void* h) { lode_heap_delete(h); }
static void l_heap_destroy(void* h) { lode_heap_destroy(h); }
static void* l_heap_malloc(void* h, size_t n) { return lode_heap_malloc(h, n); }
static bool l_heap_owns(const void* h, const void* p) { return lode_heap_owns(h, p); }

static const target_t t_lode = {"lode",      true,          true,           l_malloc,    l_free,
                                l_realloc,   l_aligned,     l_usable,       l_collect,   l_heap_new,
                                l_heap_delete, l_heap_destroy, l_heap_malloc, l_heap_owns};

/* --- libc (or whatever LD_PRELOAD put in its place) ------------------------ */
static void* c_malloc(size_t n) { return malloc(n); }
static void c_free(void* p) { free(p); }
static void* c_realloc(void* p, size_t n) { return realloc(p, n); }
static void* c_aligned(size_t a, size_t n) {
  void* p = NULL;
  return posix_memalign(&p, a, n) == 0 ? p : NULL;
}
static size_t c_usable(const void* p) { return malloc_usable_size((void*)p); }
/* --collect-via own: mimalloc, jemalloc and tcmalloc export no malloc_trim,
 * so under LD_PRELOAD malloc_trim(0) reaches glibc's idle arena and they are
 * never asked to give memory back.  These are their own calls for it (lode
 * and glibc implement malloc_trim). */
typedef int mallctl_fn(const char*, void*, size_t*, void*, size_t);
static void (*own_mi_collect)(bool);
static mallctl_fn* own_mallctl;
static void (*own_tc_release)(void);
static pthread_once_t own_once = PTHREAD_ONCE_INIT;
static void own_resolve(void) {
  if (!opt.collect_own) return;
  void* s = dlsym(RTLD_DEFAULT, "mi_collect"); /* memcpy: ISO C has no void* to function cast */
  memcpy(&own_mi_collect, &s, sizeof(s));
  s = dlsym(RTLD_DEFAULT, "mallctl");
  memcpy(&own_mallctl, &s, sizeof(s));
  s = dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
  memcpy(&own_tc_release, &s, sizeof(s));
}

const char* target_forced_collect(void) {
  pthread_once(&own_once, own_resolve);
  if (own_mi_collect) return "mi_collect(true)";
  if (own_mallctl) return "mallctl thread.tcache.flush + arena.<all>.purge";
  if (own_tc_release) return "MallocExtension_ReleaseFreeMemory()";
  return "malloc_trim(0)";
}

static void c_collect(bool force) {
  if (!force) return;
  pthread_once(&own_once, own_resolve);
  if (own_mi_collect) {
    own_mi_collect(true);
  } else if (own_mallctl) {
    own_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    own_mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: MALLCTL_ARENAS_ALL */
  } else if (own_tc_release) {
    own_tc_release();
  } else {
    malloc_trim(0);
  }
}
static long emulated_heaps;
static void* c_heap_new(void) { return (void*)(uintptr_t)(++emulated_heaps * 16); }
static void c_heap_nop(void* h) { (void)h; }
static void* c_heap_malloc(void* h, size_t n) {
  (void)h;
  return malloc(n);
}

static const target_t t_libc = {"libc",     false,      false,      c_malloc,      c_free,
                                c_realloc,  c_aligned,  c_usable,   c_collect,     c_heap_new,
                                c_heap_nop, c_heap_nop, c_heap_malloc, NULL};

/* --- mimalloc --------------------------------------------------------------- */
#ifdef STRESS_HAVE_MIMALLOC
static void* m_malloc(size_t n) { return mi_malloc(n); }
static void m_free(void* p) { mi_free(p); }
static void* m_realloc(void* p, size_t n) { return mi_realloc(p, n); }
static void* m_aligned(size_t a, size_t n) { return mi_malloc_aligned(n, a); }
static size_t m_usable(const void* p) { return mi_usable_size(p); }
static void m_collect(bool force) { mi_collect(force); }
static void* m_heap_new(void) { return mi_heap_new(); }
static void m_heap_delete(void* h) { mi_heap_delete(h); }
static void m_heap_destroy(void* h) { mi_heap_destroy(h); }
static void* m_heap_malloc(void* h, size_t n) { return mi_heap_malloc(h, n); }
/* which of the two the package has: found by compile checks (mimalloc.cmake) */
#if defined(STRESS_MI_HEAP_CONTAINS)
static bool m_heap_owns(const void* h, const void* p) { return mi_heap_contains((mi_heap_t*)h, p); }
#define M_HEAP_OWNS m_heap_owns
#elif defined(STRESS_MI_HEAP_CHECK_OWNED)
static bool m_heap_owns(const void* h, const void* p) { return mi_heap_check_owned((mi_heap_t*)h, p); }
#define M_HEAP_OWNS m_heap_owns
#else
#define M_HEAP_OWNS NULL
#endif
static const target_t t_mimalloc = {"mimalloc",    false,          true,          m_malloc,    m_free,
                                    m_realloc,     m_aligned,      m_usable,      m_collect,   m_heap_new,
                                    m_heap_delete, m_heap_destroy, m_heap_malloc, M_HEAP_OWNS};
#endif

const target_t* target_find(const char* name) {
  if (strcmp(name, "lode") == 0) return &t_lode;
  if (strcmp(name, "libc") == 0) return &t_libc;
#ifdef STRESS_HAVE_MIMALLOC
  if (strcmp(name, "mimalloc") == 0) return &t_mimalloc;
#endif
  return NULL;
}

const char* target_names(void) {
#if defined(STRESS_HAVE_MIMALLOC) || defined(STRESS_MIMALLOC_EXE)
  return "lode|libc|mimalloc";
#else
  return "lode|libc (mimalloc: not found at configure time)";
#endif
}

/* --- white box (lode only) ---------------------------------------------------- */
void target_stats(stress_stats_t* out) {
  memset(out, 0, sizeof(*out));
  if (!T->white_box) return;
  lode_stats_t st;
  lode_stats_get(&st);
  out->purges = st.purges;
  out->abandoned_total = st.segments_abandoned_total;
  out->abandoned = st.segments_abandoned;
  out->reclaimed = st.segments_reclaimed;
  out->queued = st.pages_queued;
  out->committed = st.committed_current;
  out->pages = st.pages_current;
  out->segments = st.segments_current;
  out->valid = true;
}

size_t target_check_thread(void) { return T->white_box ? lode_check_thread() : 0; }
size_t target_check_process(void) { return T->white_box ? lode_check_process() : 0; }
size_t target_check_clean(size_t baseline) { return T->white_box ? lode_check_clean(baseline) : 0; }

size_t target_thread_queued(void) {
  if (!T->white_box) return 0;
  lode_tld_t* tld = lode_heap_get_default()->tld;
  return tld ? tld->purge.count : 0;
}

/* R1: a thread that stops allocating gets its empty pages back from its
 * non-forced collects.  Every page of its heaps empty after the first of
 * five must be gone after the fifth (a retired page ages a quarter of its
 * ticks at each); pages other threads empty meanwhile are not asked about.
 * Returns how many stayed, *kept one of them. */
size_t target_idle_collects_keep(const void** kept) {
  if (!T->white_box) return 0;
  lode_tld_t* tld = lode_heap_get_default()->tld;
  if (tld == NULL) return 0;
  enum { MAX = 512 };
  const lode_page_t* empty[MAX];
  const lode_heap_t* owner[MAX];
  size_t n = 0;
  lode_collect(false);
  for (const lode_heap_t* h = tld->heaps; h != NULL; h = h->next)
    for (size_t b = 0; b < LODE_BIN_COUNT; b++)
      for (const lode_page_t* p = h->pages[b].first; p != NULL && n < MAX; p = p->next)
        if (p->used == 0) empty[n] = p, owner[n++] = h;
  for (int i = 0; i < 4; i++) lode_collect(false);
  /* (a page that left may be unmapped by now: only the queues are read) */
  size_t stayed = 0;
  for (const lode_heap_t* h = tld->heaps; h != NULL; h = h->next)
    for (size_t b = 0; b < LODE_BIN_COUNT; b++)
      for (const lode_page_t* p = h->pages[b].first; p != NULL; p = p->next)
        for (size_t i = 0; i < n && p->used == 0; i++)
          if (empty[i] == p && owner[i] == h) {
            *kept = p;
            stayed++;
            break;
          }
  return stayed;
}

int64_t target_now_ms(void) {
  if (T->white_box) return lode_clock_now();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void target_set_purge_delay(long ms) {
  if (T->white_box) lode_option_set(LODE_OPTION_PURGE_DELAY, ms);
}
long target_get_purge_delay(void) { return T->white_box ? lode_option_get(LODE_OPTION_PURGE_DELAY) : 0; }
long target_set_purge_backoff(long doublings) {
  if (!T->white_box) return 0;
  long old = lode_option_get(LODE_OPTION_PURGE_BACKOFF);
  lode_option_set(LODE_OPTION_PURGE_BACKOFF, doublings);
  return old;
}

bool target_can_corrupt(void) {
#ifdef LODE_TESTING
  return T->white_box;
#else
  return false;
#endif
}

int target_corrupt(const char* inv) {
#ifdef LODE_TESTING
  if (T->white_box) return lode_test_corrupt(inv);
#endif
  (void)inv;
  return -1;
}

static void reporter(const char* inv, const void* obj, const char* msg, void* arg) {
  (void)arg;
  oracle_report_cb(inv, obj, msg);
}

void target_install_reporter(void) {
  if (T->white_box) lode_check_set_reporter(reporter, NULL);
}
