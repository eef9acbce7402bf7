/* fork from a multi-threaded process: three threads allocate and free (and
 * free each other's blocks) continuously while the main thread forks 20
 * times.  Each child allocates and frees heavily, with threads of its own,
 * checks its heap and exits 0; the parent goes on, then joins and checks.
 * The workers idle while a child runs: on two cores, three spinning workers
 * starved the children (30 s in CI, over the 60 s limit on a busy machine),
 * and only the fork moment needs them busy. */
#include "robust.h"

#include <pthread.h>

/* Under a sanitizer its runtime owns malloc: use lode's entry points, so
 * lode is what is forked (the children end with _exit: no leak scan). */
#ifdef ROBUST_SANITIZER
#define MALLOC lode_malloc
#define FREE lode_free
#else
#define MALLOC malloc
#define FREE free
#endif

#define WORKERS 3
#define SLOTS 256

static _Atomic(int) stop;
static _Atomic(int) child_running;
static _Atomic(void*) shared[SLOTS]; /* blocks handed between threads */

static void* worker(void* arg) {
  uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
  void* own[64] = {0};
  while (!atomic_load(&stop)) {
    if (atomic_load(&child_running)) {
      usleep(1000);
      continue;
    }
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t size = (x >> 8) % 4096 + 1;
    if ((x & 1023) == 0) size = (size_t)(x % (3u << 20)) + 1; /* now and then a huge one */
    int i = (int)((x >> 32) % 64);
    FREE(own[i]);
    own[i] = MALLOC(size);
    if (own[i] != NULL) memset(own[i], (int)(x & 0xff), size < 256 ? size : 256);
    /* swap with the shared slots: cross-thread frees */
    int s = (int)((x >> 40) % SLOTS);
    void* b = MALLOC(size % 512 + 1);
    void* old = atomic_exchange(&shared[s], b);
    FREE(old);
  }
  for (int i = 0; i < 64; i++) FREE(own[i]);
  return NULL;
}

static __attribute__((unused)) void* child_thread(void* arg) {
  (void)arg;
  void* v[500];
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 500; i++) v[i] = MALLOC((size_t)(i * 13 + r) % 3000 + 1);
    for (int i = 0; i < 500; i++) FREE(v[i]);
  }
  lode_collect(true);
  return (void*)(uintptr_t)lode_check_thread();
}

static void child_work(void) {
  alarm(20);
  /* the blocks the other threads held at fork time are still valid */
  for (int s = 0; s < SLOTS; s++) FREE(atomic_exchange(&shared[s], NULL));
  void* v[2000];
  for (int r = 0; r < 10; r++) {
    for (int i = 0; i < 2000; i++) {
      size_t n = (size_t)(i * 31 + r) % 8000 + 1;
      v[i] = MALLOC(n);
      if (v[i] == NULL) _exit(10);
      memset(v[i], i & 0xff, n);
    }
    for (int i = 0; i < 2000; i++) {
      size_t n = (size_t)(i * 31 + r) % 8000 + 1;
      if (((unsigned char*)v[i])[n - 1] != (unsigned char)(i & 0xff)) _exit(11);
      FREE(v[i]);
    }
  }
#ifndef ROBUST_TSAN /* TSan cannot start threads after a multi-threaded fork */
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, child_thread, NULL) != 0) _exit(12);
  for (int i = 0; i < 2; i++) {
    void* res;
    pthread_join(t[i], &res);
    if (res != NULL) _exit(13);
  }
#endif
  lode_collect(true);
  if (lode_check_thread() != 0) _exit(14);
#ifdef ROBUST_SANITIZER
  _exit(0);
#else
  exit(0);
#endif
}

static void test_fork(void) {
  pthread_t t[WORKERS];
  for (int i = 0; i < WORKERS; i++) CHECK(pthread_create(&t[i], NULL, worker, (void*)(uintptr_t)(i + 1)) == 0);
  for (int round = 0; round < 20; round++) {
    usleep(20000);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child_work();
    atomic_store(&child_running, 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    atomic_store(&child_running, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      fprintf(stderr, "  round %d: child %s %d\n", round, WIFSIGNALED(status) ? "signal" : "exit",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    parent_heap_ok();
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
  for (int s = 0; s < SLOTS; s++) FREE(atomic_exchange(&shared[s], NULL));
  lode_collect(true);
  CHECK_EQ(lode_check_thread(), 0);
  CHECK_EQ(lode_check_process(), 0);
}

int main(void) {
  keep_fill();
  RUN(test_fork);
  parent_heap_ok();
  keep_release();
  return test_done();
}
