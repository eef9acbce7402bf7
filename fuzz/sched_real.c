/* The real scheduler (lode-replay --mode real): up to FZ_THREADS real
 * pthreads and the real OS, exactly one thread running at any time.  Control
 * is a baton: the running thread stores 1 into the next one's futex word,
 * wakes it and sleeps on its own word.  The caller of a job hands the baton
 * to the worker and sleeps until it comes back, when the job ends or parks
 * at a test point; a resumed job hands it back to whoever resumed it (main,
 * or a thread that waits inside lode for the parked one).  A worker that
 * exits returns from its thread function (lode's thread destructor runs) and
 * the one it handed back to joins it before going on.  This is today's
 * threads and OS, kept as the cross-check of the simulation.
 *
 * Why futexes and not a mutex and condition variables: a handoff is this
 * scheduler's unit cost.  With condition variables it took 4.5 futex calls
 * and 2.3 context switches; a baton takes one wake and one wait.  The
 * release store and the acquire load of the word order everything the two
 * threads share. */
#include "harness.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testing.h"

typedef struct {
  _Atomic uint32_t go; /* 1: this thread holds the baton */
} baton_t;

typedef struct {
  pthread_t tid;
  baton_t baton;
  baton_t* back; /* who gets the baton when the job ends or parks */
  bool alive, parked, exiting;
  fz_job_fn job;
  const fz_op_t* op;
  unsigned index;
} worker_t;

static baton_t main_baton;
static worker_t workers[FZ_THREADS];
static _Thread_local unsigned current = FZ_MAIN;

static void baton_give(baton_t* b) {
  atomic_store_explicit(&b->go, 1, memory_order_release);
  if (syscall(SYS_futex, &b->go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0)
    fz_fail("futex wake failed: %s", strerror(errno));
}

static void baton_take(baton_t* b) {
  while (atomic_exchange_explicit(&b->go, 0, memory_order_acquire) == 0) {
    if (syscall(SYS_futex, &b->go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) < 0 && errno != EAGAIN && errno != EINTR)
      fz_fail("futex wait failed: %s", strerror(errno));
  }
}

static baton_t* my_baton(void) { return current == FZ_MAIN ? &main_baton : &workers[current].baton; }

static void* worker_main(void* arg) {
  worker_t* w = arg;
  current = w->index;
  for (;;) {
    baton_take(&w->baton);
    w->job(w->op);
    bool exiting = w->exiting;
    baton_give(w->back);
    /* Returning runs lode's thread destructor (unless the exit ran already);
     * the thread handed back to joins before it goes on, so no other
     * thread runs meanwhile. */
    if (exiting) return NULL;
  }
}

/* The baton came back from w: the job ended (an exiting worker is joined)
 * or parked. */
static void came_back(worker_t* w) {
  if (w->parked || !w->exiting) return;
  pthread_join(w->tid, NULL);
  w->alive = false;
  w->exiting = false;
}

static void r_resume(unsigned t) {
  worker_t* w = &workers[t];
  if (!w->parked) return;
  baton_t* me = my_baton();
  w->parked = false;
  w->back = me;
  baton_give(&w->baton);
  baton_take(me);
  came_back(w);
}

static void r_run(unsigned t, fz_job_fn job, const fz_op_t* op) {
  worker_t* w = &workers[t];
  while (w->parked) r_resume(t); /* its earlier op ends first (it may park again on the way) */
  if (!w->alive) {
    w->index = t;
    w->exiting = false;
    atomic_store_explicit(&w->baton.go, 0, memory_order_relaxed);
    int rc = pthread_create(&w->tid, NULL, worker_main, w);
    if (rc != 0) fz_fail("pthread_create for t%u failed: %s", t, strerror(rc));
    w->alive = true;
  }
  baton_t* me = my_baton();
  w->job = job;
  w->op = op;
  w->back = me;
  baton_give(&w->baton);
  baton_take(me);
  came_back(w);
}

static void r_park(void) {
  worker_t* w = &workers[current];
  w->parked = true;
  baton_give(w->back);
  baton_take(&w->baton); /* the resumer set w->back */
}

/* Explicitly when the exit may park inside (a test point in lode's thread
 * exit): the destructor would run while the joiner holds no baton. */
static void r_exit_current(bool explicit_exit) {
  worker_t* w = &workers[current];
  w->exiting = true;
  if (explicit_exit) lode_test_thread_exit();
}

/* The real thread ends: its key destructors run (lode's only if the thread
 * registered it again, which it must not after its exit). */
static void r_end_current(void) { workers[current].exiting = true; }

static bool r_init(void) { return true; }
static bool r_alive(unsigned t) { return workers[t].alive; }
static bool r_parked(unsigned t) { return workers[t].parked; }
static unsigned r_current(void) { return current; }
static void r_end_input(void) {}

const fz_sched_t fz_sched_real = {"real", r_init, r_run, r_alive, r_parked, r_park,
                                  r_resume, r_exit_current, r_current, r_end_input, r_end_current};
