/* fork: threads allocate, free across threads and collect while one of them
 * forks at a random moment.  The child has one thread and the parent's heap:
 * blocks of threads that do not exist there, pages some remote free may have
 * been inside of at the fork.  It frees and allocates, starts threads (they
 * may get the stacks, and thread pointers, of dead parent threads) that free
 * inherited blocks and allocate their own, uses a heap, collects, runs the
 * checker and exits.  The parent waits a bounded time: a child that does not
 * finish (a wait for a thread that is not there) is a hang, reported with
 * the replay line. */
#include "stress.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ThreadSanitizer cannot start threads in the child of a multi-threaded
 * fork (it dies saying so): under it the child frees everything itself. */
#if defined(__SANITIZE_THREAD__)
#define FORK_CHILD_SPAWNS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORK_CHILD_SPAWNS 0
#endif
#endif
#ifndef FORK_CHILD_SPAWNS
#define FORK_CHILD_SPAWNS 1
#endif

enum { FORK_CAP = 256, FORK_CHILD_THREADS = 2, FORK_PER_ROUND_PERCENT = 30 };
/* Generous: a child on a loaded 2-core machine takes milliseconds. */
static const double FORK_WAIT_S = 30.0;

static size_t fork_size(rng_t* r) {
  return rng_chance(r, 90) ? rng_logsize(r, 8, 1024) : rng_logsize(r, 1025, workload_max(W_FORK));
}

typedef struct {
  worker_t* w;
  void** give; /* inherited blocks this child thread frees */
  size_t n;
  int k;
} child_arg_t;

static void* child_thread(void* arg) {
  child_arg_t* a = arg;
  worker_t me = {.workload = W_FORK, .index = a->w->index, .child = 1 + a->k, .round = a->w->round,
                 .pseed = a->w->pseed};
  me.rng = rng_derive(opt.seed, W_FORK, a->w->round, a->w->index, 1000 + a->k);
  oracle_set_thread(&me);
  void* own[64] = {0};
  for (size_t i = 0; i < a->n; i++) blk_free(&me, a->give[i]);
  for (int i = 0; i < 2000; i++) {
    size_t k = (size_t)rng_below(&me.rng, 64);
    blk_free(&me, own[k]);
    own[k] = rng_chance(&me.rng, 80) ? blk_alloc(&me, fork_size(&me.rng)) : NULL;
  }
  for (size_t k = 0; k < 64; k++) blk_free(&me, own[k]);
  T->collect(false);
  return NULL;
}

/* Runs in the child; never returns. */
static _Noreturn void child_main(worker_t* w, ltable_t* t) {
  w->child = 0;
  oracle_set_thread(w);
  oracle_check_process("in a fork child, right after the fork");
  /* half of the inherited blocks go to the child's threads, some are freed here */
  child_arg_t args[FORK_CHILD_THREADS];
  void* give[FORK_CHILD_THREADS][FORK_CAP];
  memset(args, 0, sizeof(args));
  for (size_t i = 0; i < t->cap; i++) {
    void* p = t->b[i].p;
    if (p == NULL) continue;
    unsigned r = (unsigned)rng_below(&w->rng, 4);
    if (FORK_CHILD_SPAWNS && r < FORK_CHILD_THREADS) {
      give[r][args[r].n++] = p;
      t->b[i].p = NULL;
    } else if (r == 2) {
      blk_free(w, p);
      t->b[i].p = blk_alloc(w, fork_size(&w->rng));
    }
  }
  pthread_t th[FORK_CHILD_THREADS];
  for (int k = 0; k < FORK_CHILD_THREADS; k++) {
    args[k].w = w;
    args[k].give = give[k];
    args[k].k = k;
  }
  for (int k = 0; FORK_CHILD_SPAWNS && k < FORK_CHILD_THREADS; k++) {
    int e = pthread_create(&th[k], NULL, child_thread, &args[k]);
    if (e != 0) oracle_fail("FORK", NULL, "pthread_create in the fork child: %s", strerror(e));
  }
  if (T->real_heaps) {
    void* h = T->heap_new();
    if (h == NULL) oracle_fail("ALLOC", NULL, "heap_new returned NULL in a fork child");
    for (int i = 0; i < 100; i++) (void)blk_heap_alloc(w, h, fork_size(&w->rng));
    T->heap_destroy(h);
  }
  for (int k = 0; FORK_CHILD_SPAWNS && k < FORK_CHILD_THREADS; k++) pthread_join(th[k], NULL);
  lt_release(w, t, false);
  T->collect(true);
  oracle_check_process("in a fork child, after its threads exited and a forced collect");
  _exit(0);
}

static void fork_and_wait(worker_t* w, ltable_t* t) {
  pid_t pid = fork();
  if (pid < 0) oracle_fail("FORK", NULL, "fork: %s", strerror(errno));
  if (pid == 0) child_main(w, t);
  double deadline = stress_now_s() + FORK_WAIT_S;
  int st = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) oracle_fail("FORK", NULL, "waitpid: %s", strerror(errno));
    if (stress_now_s() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      oracle_fail("FORK-HANG", NULL, "a fork child did not finish in %.0f s (a wait for a thread that is not there?)",
                  FORK_WAIT_S);
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  if (WIFSIGNALED(st))
    oracle_fail("FORK", NULL, "a fork child died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  if (WEXITSTATUS(st) != 0) oracle_fail("FORK", NULL, "a fork child exited with status %d (its report is above)", WEXITSTATUS(st));
}

static void fork_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, FORK_CAP);
  }
  ltable_t* t = w->user;
  long n = opt.round_ops;
  /* one thread per round may fork, at a random op */
  bool forker = w->index == (int)(w->round % opt.threads) && rng_chance(&w->rng, FORK_PER_ROUND_PERCENT);
  long fork_at = forker ? (long)rng_below(&w->rng, (uint64_t)n) : -1;
  for (long i = 0; i < n; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, FORK_CAP)];
    unsigned r = (unsigned)rng_below(&w->rng, 100);
    if (r < 55) {
      blk_free(w, b->p);
      b->p = blk_alloc(w, fork_size(&w->rng));
    } else if (r < 70) {
      blk_free(w, b->p);
      b->p = NULL;
    } else if (r < 95) {
      /* cross-thread frees: the remote-free windows a fork may cut */
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      b->p = NULL;
      if (q != NULL) blk_free(w, q);
    } else {
      T->collect(rng_chance(&w->rng, 20));
    }
    if (i == fork_at) fork_and_wait(w, t);
    op_done(w);
  }
}

const workload_t wl_fork = {.round = fork_round, .leave = lt_leave, .default_max = 64 << 10,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
