/* The simulated OS answers as the kernel would, for the calls lode makes.
 * `sim_os_kernel sim` runs the checks against os_sim.c, `sim_os_kernel real`
 * against the kernel: both must pass, so a check that passes only one way
 * is a divergence of the simulation (which would hide, or invent, an
 * allocator bug only the other mode can show). */
#include "internal.h"
#include "testing.h"

#include <stdio.h>
#include <string.h>

static int failed;
#define EXPECT(c)                                                        \
  do {                                                                   \
    if (!(c)) {                                                          \
      fprintf(stderr, "sim_os_kernel: %s:%d: %s\n", __FILE__, __LINE__, #c); \
      failed = 1;                                                        \
    }                                                                    \
  } while (0)

/* `size` bytes reserved and committed fresh (NULL when the reserve failed). */
static uint8_t* fresh_range(size_t size, size_t* got) {
  uint8_t* p = _lode_os_reserve_flex(size, size, LODE_OS_PAGE_SIZE, got);
  EXPECT(p != NULL);
  if (p != NULL) _lode_os_commit_fresh(p, size);
  return p;
}

/* MADV_FREE refused: os.c asks again with MADV_DONTNEED, which the kernel
 * may grant: one injected refusal then leaves a purge done, its memory
 * reading as zero.  Only a second refusal fails the purge. */
static void free_purge_refused_falls_back_to_dontneed(void) {
  lode_option_set(LODE_OPTION_PURGE_MODE, LODE_PURGE_FREE);
  size_t got = 0, size = (size_t)64 << 10;
  uint8_t* p = fresh_range(size, &got);
  if (p == NULL) return;
  _lode_os_touch(p, size);
  memset(p, 0x5a, size);
  bool zero = false;
  lode_test_fail_os_ops(LODE_OS_PURGE, 0, 1);
  bool ok = _lode_os_purge(p, size, size, &zero);
  long left = lode_test_fail_os_ops(LODE_OS_PURGE, 0, 0);
  EXPECT(left == 0);
  EXPECT(ok);
  EXPECT(zero); /* what DONTNEED did reads as zero */
  if (ok && zero) {
    EXPECT(_lode_os_commit(p, size));
    _lode_os_touch(p, size);
    EXPECT(p[0] == 0 && p[size - 1] == 0);
  }
  _lode_os_release(p, got, 0, 0);
}

/* A range _lode_os_decommit protected is committed with an mprotect, which
 * the kernel may refuse (ENOMEM: a split past vm.max_map_count): fail-os
 * protect refuses it (a huge block's grow in place then fails, and realloc
 * moves the block), and the decommit's own mprotect can be refused too. */
static void protected_commit_can_be_refused(void) {
  size_t got = 0, size = (size_t)64 << 10;
  uint8_t* p = fresh_range(size, &got);
  if (p == NULL) return;
  _lode_os_touch(p, size);
  memset(p, 0x5a, size);
  lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 1);
  EXPECT(_lode_os_decommit(p, size)); /* the memory went: decommitted */
  EXPECT(lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 0) == 0); /* its mprotect took the refusal */
  lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 1);
  EXPECT(!_lode_os_commit_protected(p, size));
  EXPECT(lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 0) == 0);
  EXPECT(_lode_os_commit_protected(p, size));
  _lode_os_touch(p, size);
  EXPECT(p[0] == 0 && p[size - 1] == 0);
  _lode_os_release(p, got, size, 0);
}

/* Once purge mode decommit protected pages, every commit unprotects (an
 * mprotect the kernel may refuse): fail-os protect fails a plain commit. */
static void commit_after_decommit_mode_can_be_refused(void) {
  lode_option_set(LODE_OPTION_PURGE_MODE, LODE_PURGE_DECOMMIT);
  size_t got = 0, size = (size_t)64 << 10;
  uint8_t* p = fresh_range(size, &got);
  if (p == NULL) return;
  bool zero = false;
  EXPECT(_lode_os_purge(p, size, size, &zero) && zero);
  lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 1);
  EXPECT(!_lode_os_commit(p, size));
  EXPECT(lode_test_fail_os_ops(LODE_OS_PROTECT, 0, 0) == 0);
  EXPECT(_lode_os_commit(p, size));
  _lode_os_release(p, got, size, 0);
}

int main(int argc, char** argv) {
  bool sim = argc > 1 && strcmp(argv[1], "sim") == 0;
  if (sim && !lode_sim_os_enable(true)) {
    fprintf(stderr, "sim_os_kernel: no simulated OS\n");
    return 1;
  }
  free_purge_refused_falls_back_to_dontneed();
  protected_commit_can_be_refused();
  commit_after_decommit_mode_can_be_refused();
  printf("sim_os_kernel (%s): %s\n", sim ? "sim" : "real", failed ? "FAILED" : "ok");
  return failed;
}
