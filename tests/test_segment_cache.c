/* Segment cache and huge-block slack: freed segments are reused within the
 * purge delay, unmapped after it or by a forced collect, never with delay 0;
 * a pointer into a cached segment is not lode's; huge blocks grow in place. */
#include "internal.h"
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

enum { HUGE_SIZE = 6 << 20 };

static lode_stats_t stats(void) {
  lode_stats_t s;
  lode_stats_get(&s);
  return s;
}

static void reuse_within_delay(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
  test_clock_set(10000);
  lode_collect(true);
  lode_stats_t base = stats();
  for (int i = 0; i < 50; i++) {
    char* p = lode_malloc(HUGE_SIZE);
    CHECK(p != NULL);
    p[0] = 1;
    p[HUGE_SIZE - 1] = 2;
    lode_free(p);
  }
  lode_stats_t after = stats();
  /* One reservation (an unaligned first try costs an extra mmap/munmap
   * pair), taken from the cache 49 times. */
  CHECK(after.mmaps - base.mmaps <= 2);
  CHECK(after.munmaps - base.munmaps <= 1);
  CHECK(after.reserved_current > base.reserved_current);
  /* Cached memory stays counted as committed until it goes. */
  CHECK(after.committed_current >= base.committed_current + HUGE_SIZE);
  CHECK_EQ(after.segments_current, base.segments_current);

  /* Expiry: the next cache operation after the delay unmaps it. */
  test_clock_set(10000 + 1001);
  lode_collect(false);
  lode_stats_t expired = stats();
  CHECK_EQ(expired.munmaps - after.munmaps, 1);
  CHECK_EQ(expired.reserved_current, base.reserved_current);
  CHECK_EQ(expired.committed_current, base.committed_current);
}

static void forced_collect_empties(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, -1); /* never expires by itself */
  lode_collect(true);
  lode_stats_t base = stats();
  void* p = lode_malloc(HUGE_SIZE);
  void* q = lode_malloc(LODE_SEGMENT_SIZE); /* another huge size */
  CHECK(p != NULL && q != NULL);
  lode_free(p);
  lode_free(q);
  test_clock_set(1000000);
  lode_collect(false);
  CHECK(stats().reserved_current > base.reserved_current); /* still cached */
  lode_collect(true);
  lode_stats_t after = stats();
  CHECK_EQ(after.reserved_current, base.reserved_current);
  CHECK_EQ(after.committed_current, base.committed_current);
  CHECK_EQ(lode_check_clean(base.committed_current), 0);
}

static void delay_zero_caches_nothing(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0);
  lode_collect(true);
  lode_stats_t base = stats();
  for (int i = 0; i < 5; i++) lode_free(lode_malloc(HUGE_SIZE));
  lode_stats_t after = stats();
  CHECK(after.mmaps - base.mmaps >= 5);
  CHECK(after.munmaps - base.munmaps >= 5);
  CHECK_EQ(after.reserved_current, base.reserved_current);
}

/* free() of a stale pointer into a cached mapping must be reported. */
static void stale_pointer_is_invalid(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
  char* p = lode_malloc(HUGE_SIZE);
  CHECK(p != NULL);
  lode_free(p);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    lode_free(p); /* the segment is cached: not lode's any more */
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  lode_collect(true);
}

static void huge_grows_in_place(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 10);
  lode_collect(true);
  char* p = lode_malloc(HUGE_SIZE);
  CHECK(p != NULL);
  memset(p, 7, HUGE_SIZE);
  char* q = lode_realloc(p, HUGE_SIZE + HUGE_SIZE / 2);
  CHECK(q == p); /* within the reserved slack */
  CHECK(lode_usable_size(q) >= (size_t)HUGE_SIZE + HUGE_SIZE / 2);
  CHECK(q[0] == 7 && q[HUGE_SIZE - 1] == 7);
  memset(q + HUGE_SIZE, 8, HUGE_SIZE / 2);
  lode_free(q);
  lode_collect(true);
}

int main(void) {
  lode_test_set_clock(test_clock, NULL);
  RUN(reuse_within_delay);
  RUN(forced_collect_empties);
  RUN(delay_zero_caches_nothing);
  RUN(stale_pointer_is_invalid);
  RUN(huge_grows_in_place);
  return test_done();
}
