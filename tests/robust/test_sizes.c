/* Size and alignment arithmetic: overflow and absurd requests give NULL with
 * ENOMEM or EINVAL (posix_memalign: the code, *out untouched, errno kept),
 * never a short block, never a crash; a failed realloc leaves the old block
 * intact.  Every success is checked: usable size >= request, alignment, and
 * the whole usable size is written. */
#include "robust.h"

#include <malloc.h>
#include <stdint.h>

static int libc; /* malloc is lode's: test the libc names too */
void* __libc_memalign(size_t alignment, size_t size); /* glibc exports it too, undeclared */

/* A successful allocation: big enough, aligned, writable end to end. */
static void check_block(void* p, size_t size, size_t align, size_t (*usable)(void*)) {
  CHECK(p != NULL);
  if (p == NULL) return;
  size_t u = usable(p);
  CHECK(u >= size);
  if (align) CHECK(((uintptr_t)p & (align - 1)) == 0);
  if (u <= ((size_t)64 << 20)) memset(p, 0xab, u);
  else {
    memset(p, 0xab, 4096);
    memset((char*)p + u - 4096, 0xab, 4096);
  }
}

static size_t usable_lode(void* p) { return lode_usable_size(p); }
static size_t usable_libc(void* p) { return malloc_usable_size(p); }

#define EXPECT_NULL_ERRNO(expr, err)                  \
  do {                                                \
    errno = 0;                                        \
    void* _p = (expr);                                \
    CHECK(_p == NULL);                                \
    CHECK_EQ(errno, (err));                           \
    if (_p != NULL) lode_free(_p);                    \
  } while (0)

static const size_t huge_sizes[] = {
    SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 1,
    ((size_t)1 << 46) + 1, ((size_t)1 << 63),
};
#define NHUGE (sizeof(huge_sizes) / sizeof(huge_sizes[0]))

static void test_malloc_huge(void) {
  for (size_t i = 0; i < NHUGE; i++) {
    size_t n = launder_size(huge_sizes[i]);
    EXPECT_NULL_ERRNO(lode_malloc(n), ENOMEM);
    EXPECT_NULL_ERRNO(lode_calloc(1, n), ENOMEM);
    EXPECT_NULL_ERRNO(lode_heap_malloc(NULL, n), ENOMEM);
    if (libc) {
      EXPECT_NULL_ERRNO(malloc(n), ENOMEM);
      EXPECT_NULL_ERRNO(calloc(n, 1), ENOMEM);
    }
  }
}

static void test_calloc_overflow(void) {
  static const size_t pairs[][2] = {
      {SIZE_MAX, 2}, {2, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX / 2 + 1, 2},
      {((size_t)1 << 33) + 1, ((size_t)1 << 31)}, {SIZE_MAX, SIZE_MAX},
  };
  for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
    size_t a = launder_size(pairs[i][0]), b = launder_size(pairs[i][1]);
    EXPECT_NULL_ERRNO(lode_calloc(a, b), ENOMEM);
    if (libc) EXPECT_NULL_ERRNO(calloc(a, b), ENOMEM);
  }
  /* the edges that do not overflow are ordinary requests */
  void* p = lode_calloc(launder_size(0), launder_size(SIZE_MAX));
  CHECK(p != NULL);
  lode_free(p);
  p = lode_calloc(launder_size(SIZE_MAX), launder_size(0));
  CHECK(p != NULL);
  lode_free(p);
  unsigned char* z = lode_calloc(launder_size(1000), launder_size(3));
  check_block(z, 3000, 16, usable_lode);
  lode_free(z);
  z = lode_calloc(launder_size(3), launder_size(1 << 20)); /* huge, zeroed */
  int zero = 1;
  for (size_t i = 0; z != NULL && i < (3u << 20); i += 4093) zero &= z[i] == 0;
  CHECK(z != NULL && zero);
  lode_free(z);
}

/* realloc and reallocarray to impossible sizes: NULL, ENOMEM, old intact. */
static void test_realloc_huge(void) {
  static const size_t olds[] = {24, 3000, 100000, (size_t)3 << 20};
  for (size_t k = 0; k < sizeof(olds) / sizeof(olds[0]); k++) {
    size_t old = olds[k];
    for (int via = 0; via <= libc; via++) {
      unsigned char* p = via ? malloc(old) : lode_malloc(old);
      CHECK(p != NULL);
      if (p == NULL) continue;
      memset(p, 0x3c, old);
      for (size_t i = 0; i < NHUGE; i++) {
        size_t n = launder_size(huge_sizes[i]);
        errno = 0;
        void* q = via ? realloc(p, n) : lode_realloc(p, n);
        CHECK(q == NULL);
        CHECK_EQ(errno, ENOMEM);
        errno = 0;
        q = via ? reallocarray(p, launder_size(n / 2 + 1), 2) : lode_reallocarray(p, launder_size(n / 2 + 1), 2);
        CHECK(q == NULL);
        CHECK_EQ(errno, ENOMEM);
      }
      errno = 0;
      void* q = via ? reallocarray(p, launder_size(SIZE_MAX), 16) : lode_reallocarray(p, launder_size(SIZE_MAX), 16);
      CHECK(q == NULL);
      CHECK_EQ(errno, ENOMEM);
      int intact = 1;
      for (size_t i = 0; i < old; i++) intact &= p[i] == 0x3c;
      CHECK(intact);
      CHECK(lode_usable_size(p) >= old);
      /* and it still grows for real */
      unsigned char* r = via ? realloc(p, old * 2) : lode_realloc(p, old * 2);
      CHECK(r != NULL);
      if (r != NULL) {
        for (size_t i = 0; i < old; i++) intact &= r[i] == 0x3c;
        CHECK(intact);
        check_block(r, old * 2, 16, usable_lode);
        p = r;
      }
      if (via) free(p);
      else lode_free(p);
    }
  }
  /* realloc(p, 0) frees p and returns a fresh minimal block (lode.h) */
  void* p = lode_malloc(100);
  void* q = lode_realloc(p, launder_size(0));
  CHECK(q != NULL);
  lode_free(q);
  /* the drop-in does as glibc: realloc(p, 0) and reallocarray(p, 0, n) or (p, n, 0) free
   * p and return NULL, errno untouched; a million of them hold nothing
   * (they held a minimal block each: 7.9 MiB, review 2026-12-06) */
  if (libc) {
    lode_collect(true);
    lode_stats_t before, after;
    lode_stats_get(&before);
    int nulls = 0, errs = 0;
    for (int i = 0; i < 1000000; i++) {
      errno = 0;
      void* r = realloc(malloc(64), launder_size(0));
      nulls += r == NULL;
      errs += errno != 0;
      free(r);
      errno = 0;
      r = reallocarray(malloc(64), launder_size(0), 16);
      nulls += r == NULL;
      errs += errno != 0;
      free(r);
      errno = 0;
      r = reallocarray(malloc(64), 16, launder_size(0));
      nulls += r == NULL;
      errs += errno != 0;
      free(r);
    }
    lode_stats_get(&after);
    CHECK_EQ(nulls, 3000000);
    CHECK_EQ(errs, 0);
    CHECK(after.pages_current <= before.pages_current + 2);
    void* r = realloc(NULL, launder_size(0)); /* malloc(0): a block */
    CHECK(r != NULL);
    free(r);
  }
}

static void test_aligned_alloc(void) {
  /* bad alignment: NULL, EINVAL */
  static const size_t bad[] = {0, 3, 24, 48, 100, 4095, SIZE_MAX, ((size_t)1 << 40) + 8};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t a = launder_size(bad[i]);
    EXPECT_NULL_ERRNO(lode_aligned_alloc(a, 64), EINVAL);
    EXPECT_NULL_ERRNO(lode_heap_aligned_alloc(NULL, a, 64), EINVAL);
  }
  /* the drop-in's memalign and aligned_alloc do as glibc 2.36's: 0 or less
   * than a pointer is malloc's alignment, another is rounded up to a power
   * of two, past SIZE_MAX / 2 + 1 it is EINVAL (programs that work on glibc
   * failed: review, 2026-12-06) */
  static const size_t rounded[][2] = {{0, 16}, {3, 16}, {8, 16}, {24, 32}, {48, 64}, {100, 128}, {4095, 4096},
                                      {40000, 65536}, {((size_t)4 << 20) + 1, (size_t)8 << 20}};
  for (size_t i = 0; i < sizeof(rounded) / sizeof(rounded[0]) && libc; i++) {
    size_t a = launder_size(rounded[i][0]);
    void* p = aligned_alloc(a, 64);
    check_block(p, 64, rounded[i][1], usable_libc);
    free(p);
    p = memalign(a, 100);
    check_block(p, 100, rounded[i][1], usable_libc);
    free(p);
    p = __libc_memalign(a, 1000);
    check_block(p, 1000, rounded[i][1], usable_libc);
    free(p);
  }
  if (libc) {
    EXPECT_NULL_ERRNO(aligned_alloc(launder_size(SIZE_MAX), 64), EINVAL);
    EXPECT_NULL_ERRNO(memalign(launder_size(SIZE_MAX / 2 + 2), 64), EINVAL);
  }
  /* alignment beyond anything mappable: NULL, ENOMEM */
  static const size_t too_big[] = {(size_t)1 << 47, (size_t)1 << 50, (size_t)1 << 63};
  for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
    size_t a = launder_size(too_big[i]);
    EXPECT_NULL_ERRNO(lode_aligned_alloc(a, 16), ENOMEM);
    if (libc) EXPECT_NULL_ERRNO(aligned_alloc(a, 16), ENOMEM);
  }
  /* size impossible, alignment fine */
  for (size_t i = 0; i < NHUGE; i++) {
    size_t n = launder_size(huge_sizes[i]);
    EXPECT_NULL_ERRNO(lode_aligned_alloc(64, n), ENOMEM);
    EXPECT_NULL_ERRNO(lode_aligned_alloc(1 << 20, n), ENOMEM);
  }
  /* good alignments, sizes that are and are not multiples of them (C17
   * allows the latter; lode accepts it) */
  static const size_t sizes[] = {0, 1, 7, 8, 100, 4095, 4096, 70000, (size_t)3 << 20};
  for (size_t a = 1; a <= ((size_t)8 << 20); a <<= 1) {
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      void* p = lode_aligned_alloc(a, sizes[i]);
      check_block(p, sizes[i], a, usable_lode);
      lode_free(p);
      if (libc) {
        p = aligned_alloc(a, sizes[i]);
        check_block(p, sizes[i], a, usable_libc);
        free(p);
        p = memalign(a, sizes[i]);
        check_block(p, sizes[i], a, usable_libc);
        free(p);
      }
    }
  }
  /* 2^40 alignment: either a real aligned block or NULL with ENOMEM
   * (it needs a 1 TiB reservation). */
  errno = 0;
  void* p = lode_aligned_alloc(launder_size((size_t)1 << 40), 100);
  if (p == NULL) {
    CHECK_EQ(errno, ENOMEM);
    printf("  aligned_alloc(2^40, 100): NULL, ENOMEM\n");
  } else {
    check_block(p, 100, (size_t)1 << 40, usable_lode);
    printf("  aligned_alloc(2^40, 100): an aligned block\n");
    lode_free(p);
  }
}

static void test_posix_memalign(void) {
  static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 100, SIZE_MAX};
  void* const marker = (void*)(uintptr_t)0x5eed;
  for (int via = 0; via <= libc; via++) {
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      void* out = marker;
      errno = 1234;
      size_t a = launder_size(bad[i]);
      int rc = via ? posix_memalign(&out, a, 64) : lode_posix_memalign(&out, a, 64);
      CHECK_EQ(rc, EINVAL);
      CHECK(out == marker);
      CHECK_EQ(errno, 1234);
    }
    static const size_t nomem[][2] = {
        {(size_t)1 << 47, 16}, {(size_t)1 << 63, 16}, {64, SIZE_MAX}, {4096, (size_t)PTRDIFF_MAX + 1},
        {16, SIZE_MAX / 2},
    };
    for (size_t i = 0; i < sizeof(nomem) / sizeof(nomem[0]); i++) {
      void* out = marker;
      errno = 1234;
      size_t a = launder_size(nomem[i][0]), n = launder_size(nomem[i][1]);
      int rc = via ? posix_memalign(&out, a, n) : lode_posix_memalign(&out, a, n);
      CHECK_EQ(rc, ENOMEM);
      CHECK(out == marker);
      CHECK_EQ(errno, 1234);
    }
    for (size_t a = sizeof(void*); a <= ((size_t)4 << 20); a <<= 3) {
      void* out = marker;
      int rc = via ? posix_memalign(&out, a, 1000) : lode_posix_memalign(&out, a, 1000);
      CHECK_EQ(rc, 0);
      check_block(out, 1000, a, via ? usable_libc : usable_lode);
      if (via) free(out);
      else lode_free(out);
    }
  }
  CHECK_EQ(lode_posix_memalign(NULL, 16, 16), EINVAL);
}

/* valloc/pvalloc: page aligned; pvalloc rounds the size up to pages. */
static void test_valloc(void) {
  if (!libc) return;
  static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 100000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    void* p = valloc(sizes[i]);
    check_block(p, sizes[i], 4096, usable_libc);
    free(p);
    size_t rounded = sizes[i] == 0 ? 4096 : (sizes[i] + 4095) & ~(size_t)4095;
    p = pvalloc(sizes[i]);
    check_block(p, rounded, 4096, usable_libc);
    free(p);
  }
  EXPECT_NULL_ERRNO(valloc(launder_size(SIZE_MAX)), ENOMEM);
  EXPECT_NULL_ERRNO(pvalloc(launder_size(SIZE_MAX)), ENOMEM);
  EXPECT_NULL_ERRNO(pvalloc(launder_size(SIZE_MAX - 4000)), ENOMEM);
}

/* malloc_trim is lode's too: it gives the calling thread's free memory back
 * (a forced collect) and says whether anything went. */
static void test_malloc_trim(void) {
  if (!libc) return;
  long delay = lode_option_get(LODE_OPTION_PURGE_DELAY);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000000); /* freed pages stay committed */
  enum { N = 2000 };
  void* p[N];
  for (int i = 0; i < N; i++) CHECK((p[i] = malloc(1024)) != NULL);
  for (int i = 0; i < N; i++) free(p[i]);
  void* big = malloc((size_t)8 << 20);
  free(big); /* a huge segment waits in the cache */
  lode_stats_t a, b;
  lode_stats_get(&a);
  CHECK_EQ(malloc_trim(0), 1);
  lode_stats_get(&b);
  CHECK(b.committed_current + ((size_t)8 << 20) <= a.committed_current);
  CHECK_EQ(malloc_trim(0), 0); /* nothing left to give back */
  CHECK_EQ(lode_check_thread(), 0);
  lode_option_set(LODE_OPTION_PURGE_DELAY, delay);
}

/* malloc(0) gives unique, freeable pointers; every size up to a few pages
 * gets at least what it asked. */
static void test_small_sizes(void) {
  void* a = lode_malloc(0);
  void* b = lode_malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  lode_free(a);
  lode_free(b);
  /* blocks of 8 bytes or less are 8-aligned (enough for any object that
   * fits; C17's reading), the rest 16-aligned */
  for (size_t n = 0; n <= 20000; n += (n < 1100 ? 1 : 61)) {
    void* p = lode_malloc(n);
    check_block(p, n, n <= 8 ? 8 : 16, usable_lode);
    lode_free(p);
  }
  static const size_t edges[] = {65535, 65536, 65537, ((size_t)2 << 20) - 1, (size_t)2 << 20, ((size_t)2 << 20) + 1,
                                 ((size_t)4 << 20) - 1, (size_t)4 << 20, ((size_t)4 << 20) + 1};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
    void* p = lode_malloc(edges[i]);
    check_block(p, edges[i], 16, usable_lode);
    lode_free(p);
  }
}

/* The sizes just below 2 MiB (the largest large blocks), at malloc's and at
 * larger alignments, written whole and freed.  LODE_SECURE adds a 16-byte
 * guard word before a large block: at malloc's alignment such a size goes
 * huge with it; an over-aligned one went huge too and its pointer moved a
 * whole alignment past the room, over its trailer: every free aborted with
 * "heap overflow" on a correct program (review, 2026-12-07: 16 sizes per
 * alignment). */
static void test_largest_large_sizes(void) {
  static const size_t aligns[] = {0, 32, 64, 4096, 65536, (size_t)1 << 20};
  for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
    size_t top = ((size_t)2 << 20) - aligns[a] - 7;
    for (size_t size = top - 17; size <= top + 1; size++) {
      unsigned char* p = aligns[a] ? lode_aligned_alloc(aligns[a], size) : lode_malloc(size);
      CHECK(p != NULL);
      if (p == NULL) continue;
      CHECK(aligns[a] == 0 || (uintptr_t)p % aligns[a] == 0);
      CHECK(lode_usable_size(p) >= size);
      memset(p, 0x5a, size);
      lode_free(p);
    }
  }
  CHECK_EQ(lode_check_thread(), 0);
}

int main(void) {
  libc = malloc_is_lode();
  if (!libc) printf("note: malloc is not lode's here (sanitizer runtime): lode_* entry points only\n");
  keep_fill();
  RUN(test_malloc_huge);
  RUN(test_calloc_overflow);
  RUN(test_realloc_huge);
  RUN(test_aligned_alloc);
  RUN(test_posix_memalign);
  RUN(test_valloc);
  RUN(test_small_sizes);
  RUN(test_largest_large_sizes);
  RUN(test_malloc_trim);
  parent_heap_ok();
  CHECK_EQ(lode_check_thread(), 0);
  keep_release();
  return test_done();
}
