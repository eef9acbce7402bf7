/* OS calls that fail: every one lode makes can be refused (injected with
 * lode_test_fail_os_ops), and a refusal is never taken for success -- the
 * segment map is tried again, a purge the OS refused leaves its pages
 * committed and counted, a discard that did not happen leaves no page taken
 * for zero, an unmap the OS refused keeps its range counted until a retry
 * unmaps it.  Every test cancels what it armed. */
#include "internal.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { HUGE_SIZE = 8 << 20 };

static lode_stats_t stats(void) {
  lode_stats_t s;
  lode_stats_get(&s);
  return s;
}

static long disarm(void) { return lode_test_fail_os_ops(LODE_OS_CLASSIC, 0, 0); }

/* Bug 1: must run first, before anything of lode exists in the process. */
static void segment_map_is_tried_again(void) {
  lode_test_fail_os_ops(LODE_OS_MAP, 0, 1000); /* malloc's own retries fail too */
  errno = 0;
  void* p = lode_malloc(100);
  CHECK(p == NULL && errno == ENOMEM);
  CHECK(disarm() < 1000); /* failures were delivered */
  void* q = lode_malloc(100); /* the OS recovered */
  CHECK(q != NULL);
  lode_free(q);
}

/* Bug 2: a page whose purge the OS refuses stays committed and counted, and
 * a forced collect purges it once the OS takes it. */
static void refused_purge_stays_committed_in(long mode) {
  long old_mode = lode_option_get(LODE_OPTION_PURGE_MODE);
  lode_option_set(LODE_OPTION_PURGE_MODE, mode);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0); /* purged as soon as free */
  lode_collect(true);
  enum { N = 3000 };
  static void* b[N];
  for (int i = 0; i < N; i++) {
    b[i] = lode_malloc(1000);
    CHECK(b[i] != NULL);
    if (b[i] != NULL) memset(b[i], 1, 1000);
  }
  if (b[0] == NULL) return;
  lode_segment_t* seg = _lode_ptr_segment(b[0]);
  size_t base_committed = stats().committed_current, failures = stats().os_failures;
  lode_test_fail_os_ops(LODE_OS_PURGE, 0, 1000000);
  for (int i = 1; i < N; i++) lode_free(b[i]); /* b[0] keeps the segment */
  lode_collect(false);
  long left = disarm();
  CHECK(left > 0 && left < 1000000); /* purges were tried, and refused */
  CHECK(stats().os_failures > failures);
  /* nothing went back: the committed bytes are as they were */
  CHECK_EQ(stats().committed_current, base_committed);
  uint32_t committed = 0, free_committed = 0;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    committed += seg->pages[i].is_committed;
    free_committed += !seg->pages[i].in_use && seg->pages[i].is_committed;
  }
  CHECK_EQ(committed, seg->committed);
  CHECK(free_committed > 0);
  /* a forced collect whose purges the OS refuses too cannot keep its
   * promise (no free page committed after it, P4): it promises no more
   * than a non-forced one, and the checker sees nothing wrong */
  lode_test_fail_os_ops(LODE_OS_PURGE, 0, 1000000);
  lode_collect(true);
  CHECK(disarm() < 1000000);
  CHECK_EQ(lode_check_thread(), 0);
  /* the OS takes them now: a forced collect purges what is left */
  lode_collect(true);
  CHECK(stats().committed_current < base_committed);
  free_committed = 0;
  for (uint32_t i = 0; i < seg->page_count; i++) free_committed += !seg->pages[i].in_use && seg->pages[i].is_committed;
  CHECK_EQ(free_committed, 0);
  CHECK_EQ(lode_check_thread(), 0);
  lode_free(b[0]);
  lode_collect(true);
  lode_option_set(LODE_OPTION_PURGE_MODE, old_mode);
}

static void refused_purge_stays_committed(void) { refused_purge_stays_committed_in(LODE_PURGE_DONTNEED); }
static void refused_decommit_stays_committed(void) { refused_purge_stays_committed_in(LODE_PURGE_DECOMMIT); }

/* Bug 2: a huge block whose shrink the OS refuses keeps its size, its
 * memory counted and usable. */
static void refused_huge_shrink_keeps_the_block(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
  lode_collect(true);
  unsigned char* p = lode_malloc(HUGE_SIZE);
  CHECK(p != NULL);
  if (p == NULL) return;
  memset(p, 7, HUGE_SIZE);
  size_t committed = stats().committed_current, block = _lode_ptr_segment(p)->pages[0].block_size;
  lode_test_fail_os_ops(LODE_OS_PURGE, 0, 1);
  unsigned char* q = lode_realloc(p, 3 << 20); /* still huge, under half */
  CHECK_EQ(disarm(), 0);
  CHECK(q == p);
  CHECK_EQ(_lode_ptr_segment(q)->pages[0].block_size, block); /* still all of it */
  CHECK_EQ(stats().committed_current, committed);
#ifdef LODE_SECURE
  /* still accessible; past the new end it is cleared, and a write there is
   * an overflow the free reports */
  CHECK(((volatile unsigned char*)q)[HUGE_SIZE - 1] == 0);
#else
  q[HUGE_SIZE - 1] = 8; /* still accessible */
#endif
  CHECK_EQ(lode_check_thread(), 0);
  lode_free(q);
  lode_collect(true);
}

/* Bug 3: a thread frees small blocks full of bytes and exits: its empty
 * segments go to the cache with their pages warm.  A medium segment takes
 * such a mapping and discards it; the OS refuses the discard: calloc must
 * still hand out zeros. */
static void* fill_and_exit(void* arg) {
  (void)arg;
  enum { N = 9000 };
  static void* b[N];
  for (int i = 0; i < N; i++) {
    b[i] = lode_malloc(1000);
    if (b[i] != NULL) memset(b[i], 0xab, 1000);
  }
  for (int i = 0; i < N; i++) lode_free(b[i]);
  return NULL;
}

static void* calloc_medium(void* arg) {
  size_t* bad = arg;
  for (int k = 0; k < 60; k++) {
    unsigned char* p = lode_calloc(1, 20000);
    if (p == NULL) continue;
    *bad += test_nonzero_bytes(p, 20000);
  }
  return NULL;
}

static void refused_discard_is_not_zero(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 100000); /* the cache keeps mappings */
  lode_collect(true);
  pthread_t t;
  pthread_create(&t, NULL, fill_and_exit, NULL);
  pthread_join(t, NULL);
  size_t failures = stats().os_failures, bad = 0;
  lode_test_fail_os_ops(LODE_OS_DISCARD, 0, 1000000);
  pthread_create(&t, NULL, calloc_medium, &bad);
  pthread_join(t, NULL);
  long left = disarm();
  CHECK(left < 1000000); /* a discard was refused */
  CHECK(stats().os_failures > failures);
  CHECK_EQ(bad, 0);
  lode_collect(true);
}

/* Bug 3: a warm huge mapping from the cache whose block commit fails, and
 * whose old bytes the OS keeps too: they must not come back as zero. */
static void refused_discard_after_huge_commit(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 100000);
  lode_collect(true);
  int warm = test_warm_huge_mapping(HUGE_SIZE, 0xcd);
  CHECK(warm);
  if (!warm) return;
  /* the header's commit passes, the block's fails, then its discard */
  lode_test_fail_os_ops(LODE_OS_COMMIT | LODE_OS_DISCARD, 1, 2);
  errno = 0;
  void* q = lode_aligned_alloc(32, HUGE_SIZE); /* no retry after a collect, as malloc has */
  CHECK(q == NULL && errno == ENOMEM);
  CHECK_EQ(disarm(), 0);
  unsigned char* c = lode_calloc(1, HUGE_SIZE);
  CHECK(c != NULL);
  if (c == NULL) return;
  CHECK_EQ(test_nonzero_bytes(c, HUGE_SIZE), 0);
  CHECK_EQ(lode_check_thread(), 0);
  lode_free(c);
  lode_collect(true);
}

/* Bug 5: an unmap the OS refuses: the range stays counted as reserved (and
 * mapped), its memory goes, and a forced collect unmaps it. */
static bool mapped(const void* p) {
  unsigned char v;
  return mincore((void*)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0;
}

static void refused_unmap_is_kept_and_retried(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0); /* no cache: a freed huge block is unmapped */
  lode_collect(true);
  unsigned char* p = lode_malloc(HUGE_SIZE);
  CHECK(p != NULL);
  if (p == NULL) return;
  memset(p, 3, HUGE_SIZE);
  lode_stats_t before = stats();
  lode_test_fail_os_ops(LODE_OS_RELEASE, 0, 1);
  lode_free(p);
  CHECK_EQ(disarm(), 0);
  lode_stats_t after = stats();
  CHECK(mapped(p));
  CHECK_EQ(after.reserved_current, before.reserved_current); /* still mapped: still counted */
  CHECK(after.committed_current + HUGE_SIZE <= before.committed_current); /* its memory went */
  CHECK(after.os_failures > before.os_failures);
  CHECK(_lode_os_resident(p, HUGE_SIZE) == 0);
  lode_collect(true); /* the OS takes it now */
  CHECK(!mapped(p));
  CHECK(stats().reserved_current + HUGE_SIZE <= before.reserved_current);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
}

/* Bug 5, the cache's unmap: refused at a forced collect, retried by the next. */
static void refused_cache_unmap_is_retried(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 100000);
  lode_collect(true);
  unsigned char* p = lode_malloc(HUGE_SIZE);
  CHECK(p != NULL);
  if (p == NULL) return;
  memset(p, 3, HUGE_SIZE);
  lode_free(p); /* cached */
  lode_stats_t before = stats();
  CHECK(mapped(p));
  lode_test_fail_os_ops(LODE_OS_RELEASE, 0, 1000000);
  lode_collect(true);
  CHECK(disarm() < 1000000);
  CHECK(mapped(p));
  CHECK_EQ(stats().reserved_current, before.reserved_current);
  CHECK(stats().committed_current + HUGE_SIZE <= before.committed_current);
  lode_collect(true);
  CHECK(!mapped(p));
  CHECK(stats().reserved_current + HUGE_SIZE <= before.reserved_current);
}

/* Every operation refused in turn while a mixed load runs: lode reports
 * failures and stays consistent (the checker finds nothing once the OS
 * takes everything again and a forced collect ran). */
static void every_operation_refused(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0);
  static const unsigned ops[] = {LODE_OS_PURGE, LODE_OS_DISCARD, LODE_OS_RESET, LODE_OS_PROTECT, LODE_OS_RELEASE,
                                 LODE_OS_ALL};
  for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
    for (long skip = 0; skip < 6; skip++) {
      lode_test_fail_os_ops(ops[o], skip, 3);
      void* b[64];
      for (int i = 0; i < 64; i++) {
        size_t sz = (size_t)(i % 4 == 3 ? 3 << 20 : i % 4 == 2 ? 100000 : i % 4 == 1 ? 20000 : 100);
        b[i] = lode_calloc(1, sz);
        if (b[i] != NULL) {
          size_t bad = 0;
          for (size_t k = 0; k < sz; k += 509) bad += ((unsigned char*)b[i])[k] != 0;
          CHECK_EQ(bad, 0);
          memset(b[i], 0x77, sz);
        }
      }
      for (int i = 0; i < 64; i += 2) lode_free(b[i]);
      lode_collect(false);
      for (int i = 1; i < 64; i += 2) lode_free(b[i]);
      disarm();
      lode_collect(true);
      CHECK_EQ(lode_check_thread(), 0);
      CHECK_EQ(lode_check_process(), 0);
    }
  }
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
}

/* free() leaves errno alone (POSIX.1-2024; glibc since 2.33) when an OS
 * call it makes is refused: decommit's mprotect at the process's mapping
 * limit (vm.max_map_count) left ENOMEM in the program's errno, as did a
 * refused purge, unmap or discard of a huge block.  Each refused here. */
static void* huge_of_a_thread(void* arg) {
  (void)arg;
  return lode_malloc(HUGE_SIZE);
}

static void free_keeps_errno_when_refused(void) {
  long old_mode = lode_option_get(LODE_OPTION_PURGE_MODE);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0); /* every empty page purged at its free */
  static const struct { long mode; unsigned ops; } cases[] = {
      {LODE_PURGE_DECOMMIT, LODE_OS_PROTECT}, /* the memory went, the mprotect did not */
      {LODE_PURGE_DECOMMIT, LODE_OS_PURGE},
      {LODE_PURGE_DONTNEED, LODE_OS_PURGE},
      {LODE_PURGE_DONTNEED, LODE_OS_RELEASE | LODE_OS_DISCARD},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    lode_option_set(LODE_OPTION_PURGE_MODE, cases[c].mode);
    lode_collect(true);
    enum { N = 300 };
    static void* b[N];
    for (int i = 0; i < N; i++) {
      b[i] = lode_malloc(i % 3 == 0 ? 3000 : i % 3 == 1 ? 40000 : 300000);
      CHECK(b[i] != NULL);
    }
    void* huge = lode_malloc(HUGE_SIZE);
    CHECK(huge != NULL);
    lode_test_fail_os_ops(cases[c].ops, 0, 1000000);
    int changed = 0;
    for (int i = 1; i < N; i++) { /* b[0] keeps a segment */
      errno = EDOM;
      lode_free(b[i]);
      changed += errno != EDOM;
    }
    errno = EDOM;
    lode_free(huge);
    changed += errno != EDOM;
    long left = disarm();
    CHECK(left < 1000000); /* refusals were delivered */
    /* another thread's (exited) huge block: free_slow's path, whose free
     * releases the segment or resets the block's pages */
    pthread_t t;
    void* theirs = NULL;
    CHECK_EQ(pthread_create(&t, NULL, huge_of_a_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, &theirs), 0);
    CHECK(theirs != NULL);
    lode_test_fail_os_ops(cases[c].ops, 0, 1000000);
    errno = EDOM;
    lode_free(theirs);
    changed += errno != EDOM;
    (void)disarm();
    CHECK_EQ(changed, 0);
    lode_free(b[0]);
    lode_collect(true);
    CHECK_EQ(lode_check_thread(), 0);
  }
  lode_option_set(LODE_OPTION_PURGE_MODE, old_mode);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
}

int main(void) {
  RUN(segment_map_is_tried_again); /* first: lode has nothing yet */
  lode_test_set_clock(test_clock, NULL);
  RUN(refused_purge_stays_committed);
  RUN(refused_decommit_stays_committed);
  RUN(refused_huge_shrink_keeps_the_block);
  RUN(refused_discard_is_not_zero);
  RUN(refused_discard_after_huge_commit);
  RUN(refused_unmap_is_kept_and_retried);
  RUN(refused_cache_unmap_is_retried);
  RUN(every_operation_refused);
  RUN(free_keeps_errno_when_refused);
  return test_done();
}
