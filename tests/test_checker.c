/* Every invariant check can fail: a test hook breaks one invariant in a
 * child process and the checker must report that invariant's id. */
#include "internal.h"
#include "test.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

/* A hook named "X-what" breaks invariant X another way. */
static const char* ids[] = {"P1", "P2", "P3", "P4", "P5", "P6", "A1", "A2", "A2-links", "A2-age", "A3",
                            "A4", "A4-unlisted", "A5", "F1", "F1-shared", "F1-cycle", "F2", "F3", "H1", "H1-unqueued", "H1-bins", "S1"};

static int child(const char* id) {
  lode_check_set_reporter(test_reporter, NULL);
  lode_collect(true);
  lode_stats_t st;
  lode_stats_get(&st);
  if (lode_check_thread() + lode_check_process() != 0) return 4; /* dirty before */
  if (lode_test_corrupt(id) != 0) return 5;
  size_t n = lode_check_thread() + lode_check_process();
  if (strcmp(id, "A5") == 0) {
    lode_collect(true);
    n += lode_check_clean(st.committed_current);
  }
  if (n == 0) return 2;
  char inv[8];
  snprintf(inv, sizeof(inv), "%.*s", (int)strcspn(id, "-"), id);
  return test_was_reported(inv) ? 0 : 3;
}

static void each_invariant_fires(void) {
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(child(ids[i]));
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    if (code != 0) fprintf(stderr, "invariant %s: child exit %d\n", ids[i], code);
    CHECK_EQ(code, 0);
  }
}

static void clean_state_reports_nothing(void) {
  lode_check_set_reporter(test_reporter, NULL);
  test_seen_count = 0;
  void* p = lode_malloc(10);
  CHECK_EQ(lode_check_thread(), 0);
  CHECK_EQ(lode_check_process(), 0);
  lode_free(p);
  lode_collect(true);
  CHECK_EQ(lode_check_clean(SIZE_MAX), 0);
  CHECK_EQ(test_seen_count, 0);
  CHECK_EQ(lode_test_corrupt("no-such-invariant"), -1);
}

/* A4 over every thread's purge queue, however many threads own segments
 * (past 256 the check was skipped, silently). */
enum { MANY = 300 };
static pthread_barrier_t held, release;
static void* first_block;
static void* hold_one(void* arg) {
  void* p = lode_malloc(100);
  if (arg != NULL) first_block = p;
  pthread_barrier_wait(&held);
  pthread_barrier_wait(&release);
  lode_free(p);
  return NULL;
}

static void queue_check_past_256_threads(void) {
  lode_check_set_reporter(test_reporter, NULL);
  pthread_barrier_init(&held, NULL, MANY + 1);
  pthread_barrier_init(&release, NULL, MANY + 1);
  static pthread_t t[MANY];
  size_t started = 0;
  for (size_t i = 0; i < MANY; i++) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    if (pthread_create(&t[i], &a, hold_one, i == MANY - 1 ? (void*)1 : NULL) == 0) started++;
    pthread_attr_destroy(&a);
  }
  CHECK_EQ(started, MANY);
  pthread_barrier_wait(&held);
  test_seen_count = 0;
  CHECK_EQ(lode_check_process(), 0);
  lode_segment_t* seg = _lode_ptr_segment(first_block); /* the last thread's: past 256 */
  lode_page_t* free_page = NULL;
  for (uint32_t i = 0; i < seg->page_count && free_page == NULL; i++)
    if (!seg->pages[i].in_use) free_page = &seg->pages[i];
  CHECK(free_page != NULL);
  if (free_page != NULL) {
    free_page->on_purge_queue = 1; /* flagged, on no queue */
    CHECK(lode_check_process() > 0);
    CHECK(test_was_reported("A4"));
    free_page->on_purge_queue = 0;
  }
  pthread_barrier_wait(&release);
  for (size_t i = 0; i < MANY; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&held);
  pthread_barrier_destroy(&release);
}

/* The quick process pass (the fuzzer's) walks an abandoned segment's pages
 * only when something marked it since its last walk; a remote free into it
 * must. */
static void* exit_holding_two(void* arg) {
  (void)arg;
  void* p = lode_malloc(100);
  void* q = lode_malloc(100);
  return p != NULL && q != NULL ? p : NULL;
}

static void quick_pass_walks_what_a_remote_free_changed(void) {
  lode_check_set_reporter(test_reporter, NULL);
  pthread_t t;
  void* p = NULL;
  CHECK_EQ(pthread_create(&t, NULL, exit_holding_two, NULL), 0);
  pthread_join(t, &p);
  CHECK(p != NULL);
  if (p == NULL) return;
  lode_segment_t* seg = _lode_ptr_segment(p);
  lode_page_t* page = _lode_segment_page_of(seg, p);
  CHECK(seg->is_abandoned);
  test_seen_count = 0;
  CHECK_EQ(lode_check_process(), 0);
  /* unmarked, a quick pass takes the segment as walked; a full one does not */
  page->used++;
  CHECK_EQ(lode_test_check_process_quick(), 0);
  CHECK(lode_check_process() > 0);
  CHECK(test_was_reported("A3"));
  page->used--;
  CHECK_EQ(lode_check_process(), 0);
  lode_free(p); /* another thread's block: on the abandoned page's thread_free */
  page->used++; /* as a remote free that broke the count would leave it */
  test_seen_count = 0;
  CHECK(lode_test_check_process_quick() > 0);
  CHECK(test_was_reported("A3"));
  page->used--;
  CHECK_EQ(lode_check_process(), 0);
}

int main(void) {
  RUN(clean_state_reports_nothing);
  RUN(quick_pass_walks_what_a_remote_free_changed);
  RUN(queue_check_past_256_threads);
  RUN(each_invariant_fires);
  return test_done();
}
