/* Process and thread life cycle: lazy initialisation on the first
 * allocation (which may come before main, from the dynamic loader), a
 * pthread key whose destructor abandons the thread's segments, fork
 * handlers, statistics at exit, the calling thread's default heap, and (in
 * LODE_SIM builds) the switch between simulated threads. */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

static pthread_key_t thread_key;
static _Atomic(int) process_state; /* 0 none, 1 initialising, 2 ready */

/* Freed thread data is kept for the next thread: thread churn then costs
 * no mmap/munmap. */
static pthread_mutex_t tld_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static lode_tld_t* tld_cache;
static size_t tld_cache_count;
#define TLD_CACHE_MAX 32

/* The thread data whose exit has not run, under tld_cache_lock.  A thread
 * whose first allocation comes in the last pthread destructor round (from
 * another library's destructor) never gets lode's exit: glibc ignores a key
 * set in that round.  Its segments kept its id, the address of its thread
 * control block, and the next thread made there took them for its own: it
 * freed into them, and nothing came back (review, 2026-12-07: a segment and
 * a thread count per such thread).  A new thread with that id proves the
 * old one gone, and runs its exit. */
static lode_tld_t* tld_live;

static void live_unlink_locked(lode_tld_t* tld) {
  if (tld->live_prev != NULL) tld->live_prev->live_next = tld->live_next;
  else tld_live = tld->live_next;
  if (tld->live_next != NULL) tld->live_next->live_prev = tld->live_prev;
  tld->live_next = tld->live_prev = NULL;
}

/* Lists tld; returns the thread data of a gone thread with its id, unlisted. */
static lode_tld_t* live_insert(lode_tld_t* tld) {
  pthread_mutex_lock(&tld_cache_lock);
  lode_tld_t* gone = tld_live;
  while (gone != NULL && gone->thread_id != tld->thread_id) gone = gone->live_next;
  if (gone != NULL) live_unlink_locked(gone);
  tld->live_prev = NULL;
  tld->live_next = tld_live;
  if (tld_live != NULL) tld_live->live_prev = tld;
  tld_live = tld;
  pthread_mutex_unlock(&tld_cache_lock);
  return gone;
}

static void live_remove(lode_tld_t* tld) {
  pthread_mutex_lock(&tld_cache_lock);
  live_unlink_locked(tld);
  pthread_mutex_unlock(&tld_cache_lock);
}

size_t _lode_thread_data_live(const lode_tld_t** out, size_t cap) {
  pthread_mutex_lock(&tld_cache_lock);
  size_t n = 0;
  for (const lode_tld_t* t = tld_live; t != NULL; t = t->live_next, n++)
    if (n < cap) out[n] = t;
  pthread_mutex_unlock(&tld_cache_lock);
  return n;
}

static void thread_done(void* arg);
static void thread_exit_of(lode_tld_t* tld, bool own);

/* --- fork ---------------------------------------------------------------------- */
static void fork_prepare(void) {
  pthread_mutex_lock(&tld_cache_lock);
  _lode_abandoned_fork_prepare();
  _lode_segments_lock();
  _lode_segment_cache_fork_prepare();
  _lode_os_fork_prepare();
}
static void fork_parent(void) {
  _lode_os_fork_parent();
  _lode_segment_cache_fork_parent();
  _lode_segments_unlock();
  _lode_abandoned_fork_parent();
  pthread_mutex_unlock(&tld_cache_lock);
}

/* The child has one thread, the one that forked.  Every other thread's
 * segments are first marked theirs (LODE_THREAD_ID_FORKED): a thread the
 * child creates may get a dead thread's thread pointer, hence its id, and
 * must not take them for its own.  Their heaps may have been in the middle
 * of an operation: once lode's locks are released, those segments whose
 * state checks out become abandoned ones, which the child reclaims and frees
 * into (_lode_abandoned_fork_take); the others stay FORKED, their memory
 * lost to the child.  A remote free that was in flight in a thread that does
 * not exist here will never finish: its page stops waiting for it (the
 * block is lost). */
static void fork_child(void) {
  uintptr_t me = _lode_thread_id();
  for (lode_segment_t* seg = _lode_abandoned_first(); seg != NULL; seg = seg->next) seg->abandoned_pages |= 1u << 31;
  for (lode_segment_t* seg = _lode_segments_all(); seg != NULL; seg = seg->all_next) {
    _lode_pages_forget_freeing(seg);
    uintptr_t owner = atomic_load_explicit(&seg->thread_id, memory_order_relaxed);
    bool listed = seg->is_abandoned && owner == 0 && (seg->abandoned_pages >> 31) != 0;
    /* abandoned but off the list: a thread was abandoning or reclaiming it */
    if (owner != me && !listed) atomic_store_explicit(&seg->thread_id, LODE_THREAD_ID_FORKED, memory_order_relaxed);
  }
  for (lode_segment_t* seg = _lode_abandoned_first(); seg != NULL; seg = seg->next) seg->abandoned_pages &= ~(1u << 31);
  /* only the forking thread lives on */
  /* The count is of the thread data kept listed below (each exit counts one
   * out): the entry with this thread's id, its own or a gone thread's that
   * its first allocation exits.  Counting its own data alone left 0 for a
   * live thread after that exit, and its own exit wrapped the count. */
  bool kept = false;
  for (const lode_tld_t* t = tld_live; t != NULL && !kept; t = t->live_next) kept = t->thread_id == me;
  atomic_store_explicit(&_lode_stats.threads_current, kept ? 1 : 0, memory_order_relaxed);
  _lode_os_fork_child();
  _lode_segment_cache_fork_child();
  _lode_segments_fork_child();
  _lode_abandoned_fork_child();
  /* The other threads' data stays as it was (V0 in abandoned.c): a thread
   * of the child with a dead one's id must not run its exit.  Kept: the
   * entry with the forking thread's id, its own or, when it has none yet,
   * a gone thread's that its first allocation is to exit, as in the parent
   * (review, 2026-12-07: its segments stayed this thread's for good). */
  lode_tld_t* keep = tld_live;
  while (keep != NULL && keep->thread_id != me) keep = keep->live_next;
  tld_live = keep;
  if (keep != NULL) keep->live_next = keep->live_prev = NULL;
  pthread_mutex_unlock(&tld_cache_lock);
  /* after the unlocks: a push takes the list's lock, a release the registry's and the cache's */
  _lode_abandoned_fork_take();
}

/* --- process ------------------------------------------------------------------- */
/* Programs such as coreutils close stderr in their own exit handlers, which
 * run before ours: with LODE_SHOW_STATS a private duplicate is kept, and
 * used only if it still is the file stderr was. */
static int stats_fd = -1;
static struct stat stats_st;

static void process_done(void) {
  if (!_lode_option(LODE_OPTION_SHOW_STATS)) return;
  struct stat now;
  if (stats_fd >= 0 && fstat(stats_fd, &now) == 0 && now.st_dev == stats_st.st_dev && now.st_ino == stats_st.st_ino)
    lode_stats_print_fd(stats_fd);
  else
    lode_stats_print();
}

bool _lode_process_is_initialized(void) {
  return atomic_load_explicit(&process_state, memory_order_acquire) == 2;
}

/* Whether the running thread is a real one (not a simulated context): only
 * a real one registers with the pthread key. */
static bool thread_is_real(void) {
#ifdef LODE_SIM
  return _lode_ctx_current == NULL;
#else
  return true;
#endif
}

void _lode_process_init(void) {
  if (lode_likely(atomic_load_explicit(&process_state, memory_order_acquire) == 2)) return;
  if (LODE_TLS(in_process_init)) return; /* libc calls below may allocate */
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&process_state, &expected, 1, memory_order_acq_rel,
                                               memory_order_acquire)) {
    lode_wait_t w = {0, 0};
    while (atomic_load_explicit(&process_state, memory_order_acquire) != 2)
      _lode_wait_step(&w, "another thread initialising lode", &process_state);
    return;
  }
  LODE_TLS(in_process_init) = true;
  _lode_options_init();
  _lode_segment_map_init();
  pthread_key_create(&thread_key, thread_done);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  if (_lode_option(LODE_OPTION_SHOW_STATS)) {
    stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 200);
    if (stats_fd >= 0 && fstat(stats_fd, &stats_st) != 0) stats_fd = -1;
  }
  atexit(process_done);
  LODE_TLS(in_process_init) = false;
  atomic_store_explicit(&process_state, 2, memory_order_release);
  /* This thread may have allocated while libc was being set up above. */
  lode_tld_t* tld = LODE_TLS(heap_default)->tld;
  if (tld != NULL && thread_is_real()) pthread_setspecific(thread_key, tld);
}

/* --- threads -------------------------------------------------------------------- */
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

#ifdef LODE_SIM
static int sim_current; /* the simulated thread running (below) */
#endif

lode_heap_t* _lode_thread_init(void) {
  _lode_process_init();
  if (LODE_TLS(heap_default) != &_lode_heap_empty) return LODE_TLS(heap_default);
  lode_tld_t* tld = tld_alloc();
  if (tld == NULL) return NULL;
  tld->thread_id = _lode_thread_id();
#if defined(LODE_SECURE) && defined(LODE_SIM)
  /* a simulated thread's quarantine draws as in any process (the thread
   * data's address depends on the inputs run before) */
  tld->quarantine.seed = (uint64_t)(sim_current + 2);
#elif defined(LODE_SECURE)
  tld->quarantine.seed = (uint64_t)(uintptr_t)tld;
#endif
  _lode_heap_init(&tld->heap_backing, tld, true);
  tld->heaps = &tld->heap_backing;
  lode_tld_t* gone = live_insert(tld);
  LODE_TLS(heap_default) = &tld->heap_backing;
  _lode_stat_add(&_lode_stats.threads_current, NULL, 1);
  /* once this thread's data is in place: an allocation on the way would
   * otherwise make more, and take this one for a gone thread's */
  if (gone != NULL) thread_exit_of(gone, false);
  /* Last: pthread_setspecific may itself allocate, which now succeeds.  A
   * thread whose exit already ran is not registered again: lode_malloc
   * gives its thread data back after each allocation (alloc.c). */
  if (_lode_process_is_initialized() && thread_is_real() && !LODE_TLS(thread_exited))
    pthread_setspecific(thread_key, tld);
  return &tld->heap_backing;
}

/* A thread's exit: its segments are abandoned, its thread data cached for
 * the next thread (kept for good when a remote free in flight into one of
 * its pages never finished).  own: the exiting thread's own data (from the
 * pthread key, or an exit run again); else a gone thread's, run by a new
 * thread that got its id (its destructor never ran). */
/* (a thread's own data leaves the list once its segments are abandoned:
 * the checker asks of every owned segment that its data be listed) */
static void thread_exit_of(lode_tld_t* tld, bool own) {
  bool settled = _lode_heap_abandon_all(tld);
  if (own) {
    LODE_TLS(heap_default) = &_lode_heap_empty;
    LODE_TLS(thread_exited) = true;
    live_remove(tld);
  }
  _lode_stat_sub(&_lode_stats.threads_current, 1);
  if (settled) tld_free(tld);
}

static void thread_done(void* arg) {
  lode_tld_t* tld = arg;
  if (tld == NULL || LODE_TLS(heap_default) != &tld->heap_backing) return;
  thread_exit_of(tld, true);
}

void _lode_thread_exit_again(void) {
  lode_tld_t* tld = LODE_TLS(heap_default)->tld;
  if (tld == NULL) return;
  /* the destructor must not see it again (its memory may be another thread's by then) */
  if (_lode_process_is_initialized() && thread_is_real()) pthread_setspecific(thread_key, NULL);
  thread_done(tld);
}

/* --- the calling thread's heap ----------------------------------------------------- */
/* After the thread's exit ran (a later destructor asks), its empty heap:
 * thread data made now would never be given back.  An allocation from the
 * empty heap makes its own and gives it back when done (alloc.c). */
lode_heap_t* lode_heap_get_default(void) {
  lode_heap_t* heap = _lode_heap_get_default();
  if (heap->tld == NULL && !LODE_TLS(thread_exited)) heap = _lode_thread_init();
  return heap;
}

lode_heap_t* lode_heap_new(void) {
  if (LODE_TLS(thread_exited)) { /* its heap would outlive the thread's exit */
    errno = ENOMEM;
    return NULL;
  }
  lode_heap_t* backing = lode_heap_get_default();
  if (backing == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  return _lode_heap_new_in(backing);
}

void lode_collect(bool force) {
  /* A thread that never allocated still releases abandoned segments. */
  lode_heap_t* heap = _lode_heap_get_default();
  if (heap->tld == NULL && (heap = _lode_thread_init()) == NULL) return;
  _lode_heap_collect_ex(heap, force);
  if (LODE_TLS(thread_exited)) _lode_thread_exit_again();
}

/* --- simulated threads (LODE_SIM) ---------------------------------------------------- */
#ifdef LODE_SIM
/* One OS thread runs the simulation, so one current context is enough. */
static lode_thread_ctx_t sim_ctx[LODE_SIM_THREADS];
static int sim_current = -1;

static void sim_ctx_fresh(lode_thread_ctx_t* c) {
  memset(c, 0, sizeof(*c));
  c->heap_default = &_lode_heap_empty;
}

void lode_sim_thread_switch(int id) {
  if (id < 0 || id >= LODE_SIM_THREADS) {
    _lode_ctx_current = NULL;
    sim_current = -1;
    return;
  }
  if (sim_ctx[id].heap_default == NULL) sim_ctx_fresh(&sim_ctx[id]);
  _lode_ctx_current = &sim_ctx[id];
  sim_current = id;
}

int lode_sim_thread_current(void) { return sim_current; }

void lode_sim_thread_exit(int id) {
  if (id < 0 || id >= LODE_SIM_THREADS) return;
  int prev = sim_current;
  lode_sim_thread_switch(id);
  _lode_thread_exit_again();
  sim_ctx_fresh(&sim_ctx[id]); /* a new thread next time */
  lode_sim_thread_switch(prev);
}

void lode_sim_thread_end(int id) {
  if (id < 0 || id >= LODE_SIM_THREADS) return;
  sim_ctx_fresh(&sim_ctx[id]);
  if (sim_current == id) _lode_ctx_current = &sim_ctx[id];
}
#endif
