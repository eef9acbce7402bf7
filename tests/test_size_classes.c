/* Size classes, usable sizes and alignment. */
#include "internal.h"
#include "test.h"

static void bins_roundtrip(void) {
  size_t prev = 0;
  for (size_t b = 1; b < LODE_BIN_HUGE; b++) {
    size_t sz = lode_bin_size(b);
    CHECK(sz > prev);
    CHECK_EQ(lode_bin_of(sz), b);
    CHECK_EQ(lode_bin_of(sz - (sz > 8 ? 1 : 0)), b);
    if (b > 1) CHECK_EQ(lode_bin_of(prev + 1), b);
    if (b > 1) CHECK_EQ(sz % 16, 0);
    prev = sz;
  }
  CHECK_EQ(lode_bin_size(LODE_BIN_HUGE - 1), LODE_LARGE_OBJ_MAX);
  CHECK_EQ(lode_bin_of(LODE_LARGE_OBJ_MAX + 1), LODE_BIN_HUGE);
  CHECK_EQ(lode_bin_of(0), 1);
  /* waste is bounded: at most 25% above 128 bytes */
  for (size_t s = 129; s <= LODE_LARGE_OBJ_MAX; s += 97) CHECK(lode_bin_size(lode_bin_of(s)) * 4 <= s * 5 + 64);
}

static void usable_and_alignment(void) {
  for (size_t s = 0; s < 70000; s += (s < 2048 ? 1 : 61)) {
    unsigned char* p = lode_malloc(s);
    CHECK(p != NULL);
    CHECK(lode_usable_size(p) >= s);
    if (s >= 16) CHECK_EQ((uintptr_t)p % 16, 0);
    else CHECK_EQ((uintptr_t)p % 8, 0);
    if (s) { p[0] = 1; p[s - 1] = 2; }
    lode_free(p);
  }
  size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 70000, 3u << 20, 9u << 20};
  for (size_t a = 8; a <= ((size_t)8 << 20); a <<= 1) {
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      unsigned char* p = lode_aligned_alloc(a, sizes[i]);
      CHECK(p != NULL);
      CHECK_EQ((uintptr_t)p % a, 0);
      CHECK(lode_usable_size(p) >= sizes[i]);
      memset(p, 0xab, sizes[i]);
      void* q = NULL;
      CHECK_EQ(lode_posix_memalign(&q, a, sizes[i]), 0);
      CHECK_EQ((uintptr_t)q % a, 0);
      lode_free(p);
      lode_free(q);
    }
  }
  CHECK_EQ(lode_check_thread(), 0);
}

static void blocks_do_not_overlap(void) {
  enum { N = 3000 };
  static unsigned char* ptrs[N];
  static size_t lens[N];
  for (int i = 0; i < N; i++) {
    lens[i] = (size_t)((i * 7919) % 4000) + 1;
    ptrs[i] = lode_malloc(lens[i]);
    memset(ptrs[i], i & 0xff, lens[i]);
  }
  for (int i = 0; i < N; i++) {
    size_t bad = 0;
    for (size_t j = 0; j < lens[i]; j++) bad += ptrs[i][j] != (unsigned char)(i & 0xff);
    CHECK_EQ(bad, 0);
    lode_free(ptrs[i]);
  }
}

int main(void) {
  RUN(bins_roundtrip);
  RUN(usable_and_alignment);
  RUN(blocks_do_not_overlap);
  return test_done();
}
