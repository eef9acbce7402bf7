/* Process and thread life cycle: lazy initialisation on the first
 * allocation (which may come before main, from the dynamic loader), a
 * pthread key whose destructor abandons the thread's segments, fork
 * handlers, and statistics at exit. */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

__thread lode_heap_t* _lode_heap_default = &_lode_heap_empty;
__thread char _lode_thread_marker;
static __thread bool thread_in_process_init;

static pthread_key_t thread_key;
static _Atomic(int) process_state; /* 0 none, 1 initialising, 2 ready */

/* Freed thread data is kept for the next thread: thread churn then costs
 * no mmap/munmap. */
static pthread_mutex_t tld_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static lode_tld_t* tld_cache;
static size_t tld_cache_count;
#define TLD_CACHE_MAX 32

static void thread_done(void* arg);

static void fork_prepare(void) {
  pthread_mutex_lock(&tld_cache_lock);
  _lode_abandoned_fork_prepare();
  _lode_segments_lock();
}
static void fork_parent(void) {
  _lode_segments_unlock();
  _lode_abandoned_fork_parent();
  pthread_mutex_unlock(&tld_cache_lock);
}
static void fork_child(void) {
  _lode_segments_fork_child();
  _lode_abandoned_fork_child();
  pthread_mutex_unlock(&tld_cache_lock);
}

/* Programs such as coreutils close stderr in their own exit handlers, which
 * run before ours: with LODE_SHOW_STATS a private duplicate is kept, and
 * used only if it still is the file stderr was. */
static int stats_fd = -1;
static struct stat stats_st;

static void process_done(void) {
  if (!_lode_option(LODE_OPTION_SHOW_STATS)) return;
  struct stat now;
  if (stats_fd >= 0 && fstat(stats_fd, &now) == 0 && now.st_dev == stats_st.st_dev && now.st_ino == stats_st.st_ino)
    _lode_stats_print_fd(stats_fd);
  else
    lode_stats_print();
}

bool _lode_process_is_initialized(void) {
  return atomic_load_explicit(&process_state, memory_order_acquire) == 2;
}

void _lode_process_init(void) {
  if (lode_likely(atomic_load_explicit(&process_state, memory_order_acquire) == 2)) return;
  if (thread_in_process_init) return; /* libc calls below may allocate */
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&process_state, &expected, 1, memory_order_acq_rel,
                                               memory_order_acquire)) {
    while (atomic_load_explicit(&process_state, memory_order_acquire) != 2) {
    }
    return;
  }
  thread_in_process_init = true;
  _lode_options_init();
  _lode_segment_map_init();
  _lode_abandoned_init();
  pthread_key_create(&thread_key, thread_done);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (_lode_option(LODE_OPTION_SHOW_STATS)) {
    stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 200);
    if (stats_fd >= 0 && fstat(stats_fd, &stats_st) != 0) stats_fd = -1;
  }
  atexit(process_done);
  thread_in_process_init = false;
  atomic_store_explicit(&process_state, 2, memory_order_release);
  /* This thread may have allocated while libc was being set up above. */
  if (_lode_heap_default->tld != NULL) pthread_setspecific(thread_key, _lode_heap_default->tld);
}

static lode_tld_t* tld_alloc(void) {
  pthread_mutex_lock(&tld_cache_lock);
  lode_tld_t* tld = tld_cache;
  if (tld != NULL) {
    tld_cache = tld->next_free;
    tld_cache_count--;
  }
  pthread_mutex_unlock(&tld_cache_lock);
  if (tld != NULL) {
    memset(tld, 0, sizeof(*tld));
    return tld;
  }
  return _lode_os_alloc_meta(sizeof(lode_tld_t));
}

static void tld_free(lode_tld_t* tld) {
  pthread_mutex_lock(&tld_cache_lock);
  if (tld_cache_count < TLD_CACHE_MAX) {
    tld->next_free = tld_cache;
    tld_cache = tld;
    tld_cache_count++;
    tld = NULL;
  }
  pthread_mutex_unlock(&tld_cache_lock);
  if (tld != NULL) _lode_os_free_meta(tld, sizeof(lode_tld_t));
}

lode_heap_t* _lode_thread_init(void) {
  _lode_process_init();
  if (_lode_heap_default != &_lode_heap_empty) return _lode_heap_default;
  lode_tld_t* tld = tld_alloc();
  if (tld == NULL) return NULL;
  tld->thread_id = _lode_thread_id();
  _lode_heap_init(&tld->heap_backing, tld, true);
  tld->heaps = &tld->heap_backing;
  _lode_heap_default = &tld->heap_backing;
  _lode_stat_add(&_lode_stats.threads_current, NULL, 1);
  /* Last: pthread_setspecific may itself allocate, which now succeeds. */
  if (_lode_process_is_initialized()) pthread_setspecific(thread_key, tld);
  return &tld->heap_backing;
}

static void thread_done(void* arg) {
  lode_tld_t* tld = arg;
  if (tld == NULL || _lode_heap_default != &tld->heap_backing) return;
  _lode_heap_abandon_all(tld);
  _lode_heap_default = &_lode_heap_empty;
  _lode_stat_sub(&_lode_stats.threads_current, 1);
  tld_free(tld);
}
