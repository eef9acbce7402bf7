/* The deterministic scheduler: up to FZ_THREADS real pthreads, of which
 * exactly one runs at any time.  The main thread hands a job to a worker
 * (mutex + condition variable), then sleeps until control comes back; a
 * worker whose job ends at another live worker's op hands the job straight
 * to that worker (one switch instead of two); a worker whose job says "exit" returns from its thread function (so
 * lode's thread destructor runs and abandons its segments) and main joins it
 * before going on.  The same input therefore always gives the same
 * interleaving, the same thread exits and the same re-creations. */
#include "harness.h"

#include <pthread.h>
#include <string.h>

typedef struct {
  pthread_t tid;
  pthread_cond_t wake; /* main -> worker: a job is ready */
  bool alive;
  bool has_job;
  bool exiting;
  fz_job_fn job;
  void* arg;
  unsigned index;
} worker_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t main_wake = PTHREAD_COND_INITIALIZER; /* worker -> main: your turn */
static bool main_turn;       /* guarded by lock */
static unsigned main_from;   /* the worker that handed back to main */
static fz_next_fn next_fn;
static worker_t workers[FZ_THREADS];
static bool initialised;
static _Thread_local unsigned current = FZ_THREADS;

static void sched_init(void) {
  if (initialised) return;
  for (unsigned i = 0; i < FZ_THREADS; i++) {
    pthread_cond_init(&workers[i].wake, NULL);
    workers[i].index = i;
  }
  initialised = true;
}

unsigned fz_sched_current(void) { return current; }

void fz_sched_set_next(fz_next_fn next) { next_fn = next; }

bool fz_sched_alive(unsigned thread) { return thread < FZ_THREADS && workers[thread].alive; }

static void* worker_main(void* arg) {
  worker_t* w = arg;
  current = w->index;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (!w->has_job) pthread_cond_wait(&w->wake, &lock);
    w->has_job = false;
    fz_job_fn job = w->job;
    void* job_arg = w->arg;
    pthread_mutex_unlock(&lock);

    bool exit_now = job(w->index, job_arg);

    pthread_mutex_lock(&lock);
    unsigned nx = exit_now || next_fn == NULL ? FZ_THREADS : next_fn();
    if (nx < FZ_THREADS && nx != w->index && workers[nx].alive) {
      worker_t* n = &workers[nx];
      n->job = job;
      n->arg = job_arg;
      n->has_job = true;
      pthread_cond_signal(&n->wake);
      pthread_mutex_unlock(&lock);
      continue;
    }
    w->exiting = exit_now;
    main_from = w->index;
    main_turn = true;
    pthread_cond_signal(&main_wake);
    pthread_mutex_unlock(&lock);
    /* Returning runs lode's thread destructor; main joins before it goes on,
     * so no other thread runs meanwhile. */
    if (exit_now) return NULL;
  }
}

void fz_sched_run(unsigned thread, fz_job_fn job, void* arg) {
  sched_init();
  worker_t* w = &workers[thread];
  if (!w->alive) {
    w->has_job = false;
    w->exiting = false;
    int rc = pthread_create(&w->tid, NULL, worker_main, w);
    if (rc != 0) fz_fail("pthread_create for t%u failed: %s", thread, strerror(rc));
    w->alive = true;
  }
  pthread_mutex_lock(&lock);
  w->job = job;
  w->arg = arg;
  w->has_job = true;
  main_turn = false;
  pthread_cond_signal(&w->wake);
  while (!main_turn) pthread_cond_wait(&main_wake, &lock);
  worker_t* last = &workers[main_from];
  bool exiting = last->exiting;
  pthread_mutex_unlock(&lock);
  if (exiting) {
    pthread_join(last->tid, NULL);
    last->alive = false;
  }
}
