/* The deterministic scheduler: up to FZ_THREADS real pthreads, of which
 * exactly one runs at any time.  Control is a baton: the running thread
 * stores 1 into the next one's futex word, wakes it and sleeps on its own
 * word.  Main hands a job to a worker; a worker whose job ends at another
 * live worker's op passes the job straight to that worker (one switch
 * instead of two); a worker whose job says "exit" returns from its thread
 * function (so lode's thread destructor runs and abandons its segments) and
 * main joins it before going on.  The same input therefore always gives the
 * same interleaving, the same thread exits and the same re-creations.
 *
 * Why futexes and not a mutex and condition variables: a handoff is the
 * harness's unit cost (a random input changes thread on three ops in four).
 * With the condition variables it took 4.5 futex calls and 2.3 context
 * switches; a baton takes one wake and one wait.  The release store and the
 * acquire load of the word order everything the two threads share. */
#include "harness.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  _Atomic uint32_t go; /* 1: this thread holds the baton */
} baton_t;

typedef struct {
  pthread_t tid;
  baton_t baton;
  bool alive;
  bool exiting;
  fz_job_fn job;
  void* arg;
  unsigned index;
} worker_t;

static baton_t main_baton;
static unsigned main_from; /* the worker that handed back to main */
static fz_next_fn next_fn;
static worker_t workers[FZ_THREADS];
static _Thread_local unsigned current = FZ_THREADS;

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

unsigned fz_sched_current(void) { return current; }

void fz_sched_set_next(fz_next_fn next) { next_fn = next; }

bool fz_sched_alive(unsigned thread) { return thread < FZ_THREADS && workers[thread].alive; }

static void* worker_main(void* arg) {
  worker_t* w = arg;
  current = w->index;
  for (;;) {
    baton_take(&w->baton);
    fz_job_fn job = w->job;
    void* job_arg = w->arg;
    bool exit_now = job(w->index, job_arg);
    /* Every other thread is parked: the next op can be looked at freely. */
    unsigned nx = exit_now || next_fn == NULL ? FZ_THREADS : next_fn();
    if (nx < FZ_THREADS && nx != w->index && workers[nx].alive) {
      workers[nx].job = job;
      workers[nx].arg = job_arg;
      baton_give(&workers[nx].baton);
      continue;
    }
    w->exiting = exit_now;
    main_from = w->index;
    baton_give(&main_baton);
    /* Returning runs lode's thread destructor; main joins before it goes on,
     * so no other thread runs meanwhile. */
    if (exit_now) return NULL;
  }
}

void fz_sched_run(unsigned thread, fz_job_fn job, void* arg) {
  worker_t* w = &workers[thread];
  if (!w->alive) {
    w->index = thread;
    w->exiting = false;
    atomic_store_explicit(&w->baton.go, 0, memory_order_relaxed);
    int rc = pthread_create(&w->tid, NULL, worker_main, w);
    if (rc != 0) fz_fail("pthread_create for t%u failed: %s", thread, strerror(rc));
    w->alive = true;
  }
  w->job = job;
  w->arg = arg;
  baton_give(&w->baton);
  baton_take(&main_baton);
  worker_t* last = &workers[main_from];
  if (last->exiting) {
    pthread_join(last->tid, NULL);
    last->alive = false;
  }
}
