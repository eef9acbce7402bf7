/* Minimal test harness: CHECK records a failure with its location and goes
 * on; a test binary exits 1 if any check failed, and prints a summary line. */
#ifndef LODE_TEST_H
#define LODE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                              \
  do {                                                                           \
    test_checks++;                                                               \
    if (!(cond)) {                                                               \
      test_failures++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

#define CHECK_EQ(a, b)                                                                          \
  do {                                                                                          \
    long long _a = (long long)(a), _b = (long long)(b);                                         \
    test_checks++;                                                                              \
    if (_a != _b) {                                                                             \
      test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a, \
              _a, #b, _b);                                                                      \
    }                                                                                           \
  } while (0)

#define RUN(fn)                                  \
  do {                                           \
    int _before = test_failures;                 \
    fn();                                        \
    printf("%s %s\n", test_failures == _before ? "ok  " : "FAIL", #fn); \
    fflush(stdout);                              \
  } while (0)

static inline int test_done(void) {
  printf("%d checks, %d failed\n", test_checks, test_failures);
  return test_failures ? 1 : 0;
}

/* Virtual clock for purge-expiry tests. */
#include <stdint.h>
static int64_t test_clock_ms = 1000;
static inline int64_t test_clock(void* arg) {
  (void)arg;
  return __atomic_load_n(&test_clock_ms, __ATOMIC_RELAXED);
}
static inline void test_clock_set(int64_t t) { __atomic_store_n(&test_clock_ms, t, __ATOMIC_RELAXED); }

/* Reporter that collects violated invariant ids. */
static char test_seen[64][8];
static int test_seen_count;
static inline void test_reporter(const char* inv, const void* obj, const char* msg, void* arg) {
  (void)arg;
  if (test_seen_count < 64) {
    strncpy(test_seen[test_seen_count], inv, 7);
    test_seen[test_seen_count][7] = 0;
    test_seen_count++;
  }
  fprintf(stderr, "  [reported] %s at %p: %s\n", inv, obj, msg);
}
static inline int test_was_reported(const char* inv) {
  for (int i = 0; i < test_seen_count; i++)
    if (strcmp(test_seen[i], inv) == 0) return 1;
  return 0;
}
/* Tests of cached huge mappings: a mapping of `size` written whole and freed
 * to the segment cache (warm, its bytes stale), and the count of a block's
 * bytes that are not zero (what a calloc over it must not hand out). */
#include "lode.h"
static inline int test_warm_huge_mapping(size_t size, int fill) {
  unsigned char* p = lode_malloc(size);
  if (p == NULL) return 0;
  memset(p, fill, size);
  lode_free(p);
  return 1;
}
static inline size_t test_nonzero_bytes(const unsigned char* p, size_t size) {
  size_t bad = 0;
  for (size_t i = 0; i < size; i++) bad += p[i] != 0;
  return bad;
}
#endif
