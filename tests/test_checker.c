/* Every invariant check can fail: a test hook breaks one invariant in a
 * child process and the checker must report that invariant's id. */
#include "internal.h"
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

/* A hook named "X-what" breaks invariant X another way. */
static const char* ids[] = {"P1", "P2", "P3", "P4", "P5", "P6", "A1", "A2", "A2-links",
                            "A3", "A4", "A5", "F1", "F2", "F3", "H1"};

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

int main(void) {
  RUN(clean_state_reports_nothing);
  RUN(each_invariant_fires);
  return test_done();
}
