/* Threads that die at awkward moments.
 *  - exit: producer threads allocate batches, hand them to consumer threads
 *    and exit at once, while the consumers are still freeing their blocks
 *    (so segments are abandoned with remote frees in flight).  Afterwards a
 *    forced collect and the checker: nothing lost, no abandoned segment,
 *    committed memory back to its level before the test.
 *  - cancel: threads in an allocating loop (deferred cancellation, reaching
 *    pthread_testcancel and a blocking read) are cancelled; their cleanup
 *    handlers free what they held; the process keeps working and the
 *    checker is clean. */
#include "robust.h"

#include <pthread.h>

/* --- handoff queue ----------------------------------------------------------- */
#define QCAP 4096
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static void* queue[QCAP];
static size_t qhead, qtail;
static int producers_left;

static void q_push(void* p) {
  pthread_mutex_lock(&qlock);
  while (qtail - qhead == QCAP) {
    pthread_mutex_unlock(&qlock);
    sched_yield();
    pthread_mutex_lock(&qlock);
  }
  queue[qtail++ % QCAP] = p;
  pthread_cond_signal(&qcond);
  pthread_mutex_unlock(&qlock);
}

static void* q_pop(void) { /* NULL: all producers are gone and it is empty */
  pthread_mutex_lock(&qlock);
  while (qhead == qtail && producers_left > 0) pthread_cond_wait(&qcond, &qlock);
  void* p = qhead == qtail ? NULL : queue[qhead++ % QCAP];
  pthread_mutex_unlock(&qlock);
  return p;
}

static void* producer(void* arg) {
  uintptr_t id = (uintptr_t)arg;
  for (int i = 0; i < 3000; i++) {
    size_t n = (size_t)(i * 7 + id * 131) % 2000 + 8;
    if (i % 500 == 0) n = (size_t)300000 + id; /* large blocks too */
    unsigned char* p = malloc(n);
    if (p == NULL) continue;
    memset(p, (int)id, 8);
    q_push(p);
    if (i % 3 == 0) free(malloc(n)); /* and some local churn */
  }
  pthread_mutex_lock(&qlock);
  producers_left--;
  pthread_cond_broadcast(&qcond);
  pthread_mutex_unlock(&qlock);
  return NULL; /* exits with its blocks still being freed elsewhere */
}

static void* consumer(void* arg) {
  (void)arg;
  void* p;
  while ((p = q_pop()) != NULL) free(p);
  lode_collect(true);
  return NULL;
}

static size_t committed_now(void) {
  lode_stats_t st;
  lode_stats_get(&st);
  return st.committed_current;
}

static void test_thread_exit(void) {
  parent_heap_ok(); /* the main thread's own bins are warm before the baseline */
  lode_collect(true);
  size_t baseline = committed_now();
  for (int round = 0; round < 10; round++) {
    enum { P = 4, C = 2 };
    pthread_t pt[P], ct[C];
    producers_left = P;
    for (int i = 0; i < C; i++) CHECK(pthread_create(&ct[i], NULL, consumer, NULL) == 0);
    for (int i = 0; i < P; i++) CHECK(pthread_create(&pt[i], NULL, producer, (void*)(uintptr_t)(round * P + i + 1)) == 0);
    for (int i = 0; i < P; i++) pthread_join(pt[i], NULL);
    for (int i = 0; i < C; i++) pthread_join(ct[i], NULL);
  }
  lode_collect(true);
  /* abandoned segments are reclaimed or released by forced collects; a
   * second pass catches segments a first one made free */
  lode_collect(true);
  CHECK_EQ(lode_check_thread(), 0);
  CHECK_EQ(lode_check_process(), 0);
  CHECK_EQ(lode_check_clean(baseline), 0);
  lode_stats_t st;
  lode_stats_get(&st);
  CHECK_EQ(st.segments_abandoned, 0);
}

/* --- cancellation ---------------------------------------------------------------- */
typedef struct held_s {
  void* blocks[512];
  int n;
} held_t;

static void release_held(void* arg) {
  held_t* h = arg;
  for (int i = 0; i < h->n; i++) free(h->blocks[i]);
  h->n = 0;
  lode_collect(true);
}

static int block_fd = -1; /* read end of a pipe nobody writes */
static _Atomic(int) running;

static void* allocating_loop(void* arg) {
  uintptr_t mode = (uintptr_t)arg;
  held_t* h = malloc(sizeof(held_t));
  h->n = 0;
  pthread_cleanup_push(free, h);
  pthread_cleanup_push(release_held, h);
  atomic_fetch_add(&running, 1);
  for (unsigned i = 0;; i++) {
    if (h->n == 512) {
      for (int k = 0; k < 256; k++) free(h->blocks[k]);
      memmove(h->blocks, h->blocks + 256, 256 * sizeof(void*));
      h->n = 256;
    }
    h->blocks[h->n++] = malloc((size_t)(i * 17) % 5000 + 1);
    if (mode == 0) {
      pthread_testcancel();
    } else if (i % 1000 == 999) {
      char c;
      if (read(block_fd, &c, 1) < 0) break; /* blocks: a cancellation point */
    }
  }
  pthread_cleanup_pop(1);
  pthread_cleanup_pop(1);
  return NULL;
}

static void cancel_round(void) {
  enum { T = 4 };
  pthread_t t[T];
  atomic_store(&running, 0);
  for (int i = 0; i < T; i++) CHECK(pthread_create(&t[i], NULL, allocating_loop, (void*)(uintptr_t)(i & 1)) == 0);
  while (atomic_load(&running) < T) sched_yield();
  usleep(5000);
  for (int i = 0; i < T; i++) CHECK(pthread_cancel(t[i]) == 0);
  for (int i = 0; i < T; i++) {
    void* res = NULL;
    pthread_join(t[i], &res);
    CHECK(res == PTHREAD_CANCELED);
  }
}

static void test_cancel(void) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  block_fd = fds[0];
  /* The first cancellation makes glibc load libgcc_s for unwinding, which
   * allocates for good: one round before the baseline. */
  cancel_round();
  parent_heap_ok();
  lode_collect(true);
  size_t baseline = committed_now();
  for (int round = 0; round < 10; round++) {
    cancel_round();
    parent_heap_ok();
  }
  close(fds[0]);
  close(fds[1]);
  lode_collect(true);
  lode_collect(true);
  CHECK_EQ(lode_check_thread(), 0);
  CHECK_EQ(lode_check_process(), 0);
  size_t violations = lode_check_clean(baseline);
  CHECK_EQ(violations, 0);
  if (violations != 0) {
    fprintf(stderr, "baseline %zu now %zu\n", baseline, committed_now());
    lode_stats_print();
  }
}

/* --- allocation after lode's thread exit ------------------------------------------
 * glibc runs the pthread key destructors in rounds (up to 4), in key order:
 * lode's key is among the first, so another library's destructor can
 * allocate after lode's ran.  That allocation needs thread data again; when
 * it came in the last round, lode's destructor never ran for it, and the
 * data and its segment stayed with a dead thread (not abandoned, never
 * released, the id free for a new thread to inherit). */
/* ThreadSanitizer finishes a thread in a destructor round of its own: code
 * it instrumented that runs in a later round (late_destructor, then lode)
 * finds the thread's trace gone and crashes inside the runtime, whatever
 * that code does. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static pthread_key_t late_key;
static _Atomic(void*) late_blocks[8];
static _Atomic(int) late_rounds;

static void late_destructor(void* v) {
  int round = (int)(intptr_t)v - 1; /* the value is round + 1: NULL runs no destructor */
  void* b = lode_malloc(200 + (size_t)round * 1000); /* small, then other sizes */
  if (b != NULL) memset(b, 0x6b, 200);
  atomic_store(&late_blocks[round], b);
  atomic_fetch_add(&late_rounds, 1);
  lode_free(lode_malloc(64)); /* and a free on the dying thread */
  if (round < 3) pthread_setspecific(late_key, (void*)(intptr_t)(round + 2)); /* one more round */
}

static void* late_thread(void* arg) {
  (void)arg;
  void* p = lode_malloc(100);
  lode_free(p);
  pthread_setspecific(late_key, (void*)(intptr_t)1);
  return NULL;
}

static void test_malloc_after_thread_exit(void) {
#ifdef UNDER_TSAN
  printf("skip (ThreadSanitizer cannot run code in late key destructor rounds) ");
  return;
#endif
  lode_collect(true);
  lode_stats_t before;
  lode_stats_get(&before);
  CHECK(pthread_key_create(&late_key, late_destructor) == 0);
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_thread, NULL) == 0);
    pthread_join(t, NULL);
    CHECK(atomic_load(&late_rounds) >= 4 * (i + 1));
    for (int r = 0; r < 4; r++) {
      unsigned char* b = atomic_exchange(&late_blocks[r], NULL);
      CHECK(b != NULL);
      if (b != NULL) CHECK(b[0] == 0x6b && b[199] == 0x6b);
      lode_free(b); /* a remote free into what the dead thread left */
    }
  }
  pthread_key_delete(late_key);
  lode_collect(true);
  lode_stats_t after;
  lode_stats_get(&after);
  CHECK_EQ(after.threads_current, before.threads_current); /* no thread data left behind */
  CHECK_EQ(lode_check_process(), 0);
  CHECK_EQ(lode_check_clean(before.committed_current), 0); /* nothing kept by a dead thread */
}

int main(void) {
  keep_fill();
  RUN(test_thread_exit);
  RUN(test_malloc_after_thread_exit);
  RUN(test_cancel);
  parent_heap_ok();
  keep_release();
  return test_done();
}
