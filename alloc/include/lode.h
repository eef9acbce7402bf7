/* lode: a general-purpose memory allocator with thread-local heaps, delayed
 * purging and reclaim of abandoned segments.  Public interface. */
#ifndef LODE_H
#define LODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define LODE_VERSION_MAJOR 0
#define LODE_VERSION_MINOR 1

#ifndef LODE_MALLOC_ATTR
#if defined(__GNUC__)
#define LODE_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define LODE_MALLOC_ATTR
#endif
#endif

/* ---------------------------------------------------------------------------
 * Allocation.  Every function that returns NULL sets errno (ENOMEM, or EINVAL
 * for a bad alignment).  lode_malloc(0) returns a unique, freeable pointer.
 * ------------------------------------------------------------------------- */
LODE_MALLOC_ATTR void* lode_malloc(size_t size);
LODE_MALLOC_ATTR void* lode_calloc(size_t count, size_t size); /* overflow -> NULL, ENOMEM */
void* lode_realloc(void* p, size_t newsize);   /* newsize 0 frees p and returns malloc(0)
                                                  (liblode.so's realloc returns NULL there, as glibc) */
void* lode_reallocarray(void* p, size_t count, size_t size);
void lode_free(void* p);
size_t lode_usable_size(const void* p);        /* 0 for NULL */
/* alignment: a power of two; aligned_alloc also accepts sizes that are not a
 * multiple of it.  Bad alignment -> NULL, EINVAL.  posix_memalign returns
 * the error code and leaves *out untouched on failure. */
LODE_MALLOC_ATTR void* lode_aligned_alloc(size_t alignment, size_t size);
int lode_posix_memalign(void** out, size_t alignment, size_t size);

/* ---------------------------------------------------------------------------
 * Heaps.  A heap belongs to the thread that created it; only that thread may
 * allocate from it (any thread may free its blocks): another thread's
 * lode_heap_malloc/calloc/realloc/aligned_alloc on it is reported and fails
 * (EINVAL), and its lode_heap_collect/delete/destroy on it are ignored.
 * ------------------------------------------------------------------------- */
typedef struct lode_heap_s lode_heap_t;

lode_heap_t* lode_heap_new(void);             /* NULL, ENOMEM on failure */
/* Deletes the heap; its live blocks move to the thread's default heap and stay
 * valid.  Deleting the default heap is ignored. */
void lode_heap_delete(lode_heap_t* heap);
/* Frees every block of the heap at once, then deletes it.  Blocks that other
 * heaps own (including pages reclaimed from dead threads, which always go to
 * the default heap) are never touched.  Destroying the default heap is ignored. */
void lode_heap_destroy(lode_heap_t* heap);
/* The calling thread's heap.  Once lode's part of the thread's exit ran (a
 * later pthread key destructor asks), an empty heap: each allocation from it
 * gives back at once the thread data it needed. */
lode_heap_t* lode_heap_get_default(void);
LODE_MALLOC_ATTR void* lode_heap_malloc(lode_heap_t* heap, size_t size);
LODE_MALLOC_ATTR void* lode_heap_calloc(lode_heap_t* heap, size_t count, size_t size);
/* A block that fits in place stays where it is, in the heap that owns it
 * (not `heap`): realloc does not move blocks between heaps. */
void* lode_heap_realloc(lode_heap_t* heap, void* p, size_t newsize);
LODE_MALLOC_ATTR void* lode_heap_aligned_alloc(lode_heap_t* heap, size_t alignment, size_t size);
/* true when p is a live-looking block inside a page that heap owns. */
bool lode_heap_owns(const lode_heap_t* heap, const void* p);

/* ---------------------------------------------------------------------------
 * Collect.
 *
 * lode_heap_collect(heap, false) -- non-forced: merges deferred frees (local
 *   and cross-thread), retires pages that became empty, and purges only the
 *   purge-queue entries of the calling thread whose expiry has passed.  Pages
 *   queued less than LODE_PURGE_DELAY ms ago STAY QUEUED: a non-empty queue
 *   after a non-forced collect is correct (mimalloc 1.9.2 asserted otherwise).
 * lode_heap_collect(heap, true) -- forced: the same, then purges every queued
 *   page of the calling thread (its queue is empty afterwards), releases its
 *   segments that hold no live block, releases abandoned segments whose
 *   blocks have all been freed and purges the free pages of the others.
 * lode_collect(force) collects the calling thread's default heap and, through
 *   it, every heap of the thread.
 * ------------------------------------------------------------------------- */
void lode_heap_collect(lode_heap_t* heap, bool force);
void lode_collect(bool force);

/* ---------------------------------------------------------------------------
 * Options.  Read once from the environment (LODE_PURGE_DELAY, ...) at start,
 * except in a set-user-ID or set-group-ID program (AT_SECURE: the defaults);
 * lode_option_set overrides at run time.
 * ------------------------------------------------------------------------- */
typedef enum lode_option_e {
  LODE_OPTION_PURGE_DELAY = 0, /* ms; 0 = purge at once; < 0 = never (default 10) */
  LODE_OPTION_PURGE_MODE,      /* LODE_PURGE_MODE: 0 dontneed (default), 1 free, 2 decommit */
  LODE_OPTION_SHOW_STATS,      /* LODE_SHOW_STATS: print statistics at exit */
  LODE_OPTION_VERBOSE,         /* LODE_VERBOSE: log OS failures and errors */
  LODE_OPTION_ON_ERROR,        /* LODE_ON_ERROR: 0 abort (default), 1 warn, 2 ignore */
  LODE_OPTION_PURGE_BACKOFF,   /* LODE_PURGE_BACKOFF: doublings of the delay allowed, 0..16 (default 6) */
  LODE_OPTION_HUGE_OS_PAGES,   /* LODE_HUGE_OS_PAGES: 1 huge blocks ask for transparent huge pages
                                  (2 MiB: far fewer page faults), 0 lode gives no advice, 2 (default,
                                  "auto") as 1 unless the kernel reports free memory to a hypervisor */
  LODE_OPTION_QUARANTINE,      /* LODE_QUARANTINE (LODE_SECURE builds): 1 (default) a thread's frees
                                  wait in a quarantine of 16 blocks before reuse, 0 they do not */
  LODE_OPTION_COUNT
} lode_option_t;

enum { LODE_PURGE_DONTNEED = 0, LODE_PURGE_FREE = 1, LODE_PURGE_DECOMMIT = 2 };
enum { LODE_ON_ERROR_ABORT = 0, LODE_ON_ERROR_WARN = 1, LODE_ON_ERROR_IGNORE = 2 };
enum { LODE_HUGE_PAGES_NO = 0, LODE_HUGE_PAGES_YES = 1, LODE_HUGE_PAGES_AUTO = 2 };

long lode_option_get(lode_option_t option);
void lode_option_set(lode_option_t option, long value); /* an out-of-range value is ignored */
/* The value as the environment gives it: a decimal number ([+-]digits, no
 * spaces, within a long) or a name (dontneed free decommit, abort warn
 * ignore, true false).  0, or -1 with errno EINVAL (unknown option, text
 * not a value, value out of the option's range): the option is unchanged. */
int lode_option_set_text(lode_option_t option, const char* text);

/* ---------------------------------------------------------------------------
 * Statistics (process-wide; "current" values are exact when threads are
 * quiescent).
 * ------------------------------------------------------------------------- */
typedef struct lode_stats_s {
  size_t segments_current, segments_peak;  /* all segments, huge included */
  size_t segments_abandoned;               /* currently on the abandoned list */
  size_t segments_abandoned_total;         /* ever abandoned */
  size_t segments_reclaimed;               /* ever reclaimed by another thread */
  size_t pages_current, pages_peak;        /* pages holding blocks (abandoned segments' too) */
  size_t pages_queued;                     /* pages on some purge queue now */
  size_t purges;                           /* page purges (OS calls) */
  size_t commits, decommits;
  size_t mmaps, munmaps;                   /* mappings made, and released: the unmaps that trim a
                                              reservation's alignment slack are not counted, so
                                              they need not pair up */
  size_t committed_current, committed_peak; /* bytes */
  size_t reserved_current;                 /* bytes mapped */
  size_t os_failures;                      /* OS calls that failed (real or injected) */
  size_t threads_current;
  size_t protects;                         /* mprotect calls: each takes the address-space
                                              lock for writing, so the common paths make none */
  size_t remaps;                           /* huge blocks moved by mremap (realloc past their room) */
} lode_stats_t;

void lode_stats_get(lode_stats_t* out);
void lode_stats_print(void); /* to stderr */
void lode_stats_print_fd(int fd); /* the same text to fd, written without allocating */

/* ---------------------------------------------------------------------------
 * Invariant checker: the oracle of the stress and fuzz suites.  Each check
 * returns the number of violations and reports each one to the reporter:
 * invariant id ("P1".."P6", "A1".."A5", "F1".."F3", "H1"), address of the
 * object, and a short description.  The default reporter prints one line on
 * stderr.  Nothing aborts.
 *
 * lode_check_thread  -- the calling thread's heaps, pages, free lists and
 *                       purge queue.  Safe while other threads run.
 * lode_check_process -- process-wide state (abandoned list, segment counts).
 *                       Call only while every other thread is quiescent.
 * lode_check_clean   -- A5: call after every block has been freed and a forced
 *                       collect has run in every live thread: no abandoned
 *                       segment, committed memory back to baseline.
 * ------------------------------------------------------------------------- */
typedef void(lode_check_reporter_fn)(const char* invariant, const void* object,
                                     const char* message, void* arg);
void lode_check_set_reporter(lode_check_reporter_fn* fn, void* arg); /* NULL: default */
size_t lode_check_thread(void);
size_t lode_check_process(void);
size_t lode_check_clean(size_t committed_baseline);

/* lode's clock (milliseconds, monotonic): the time purge expiries are in.
 * Test builds can replace it (testing.h). */
int64_t lode_clock_now(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* LODE_H */
