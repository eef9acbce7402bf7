/* Block patterns: every 8-byte word of a block holds a value derived from the
 * block's key address, its size and the run's seed, so overlapping blocks,
 * stray writes, zeroed (purged) memory and a block verified with the wrong
 * size all show as mismatches.  Fast: one multiply per word. */
#include "stress.h"

#include <string.h>

static inline uint64_t base_of(uintptr_t key, size_t size, uint64_t seed) {
  return mix64((uint64_t)key ^ seed ^ ((uint64_t)size << 17)) | 1u;
}

static inline uint64_t word_at(uint64_t base, size_t i) {
  /* Odd multiplier: distinct words for distinct i; never all zero. */
  return (base + (uint64_t)i * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i << 40);
}

void pattern_fill(void* p, size_t n, uintptr_t key, size_t size, uint64_t seed) {
  uint64_t base = base_of(key, size, seed);
  unsigned char* c = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t v = word_at(base, i);
    memcpy(c + i * 8, &v, 8);
  }
  if (n % 8) {
    uint64_t v = word_at(base, words);
    memcpy(c + words * 8, &v, n % 8);
  }
}

size_t pattern_verify(const void* p, size_t n, uintptr_t key, size_t size, uint64_t seed,
                      uint64_t* want, uint64_t* got) {
  uint64_t base = base_of(key, size, seed);
  const unsigned char* c = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t v, w = word_at(base, i);
    memcpy(&v, c + i * 8, 8);
    if (v != w) {
      *want = w;
      *got = v;
      for (size_t k = 0; k < 8; k++)
        if (((v >> (8 * k)) & 0xff) != ((w >> (8 * k)) & 0xff)) return i * 8 + k;
    }
  }
  if (n % 8) {
    uint64_t v = 0, w = word_at(base, words), wm = 0;
    memcpy(&v, c + words * 8, n % 8);
    memcpy(&wm, &w, n % 8);
    if (v != wm) {
      *want = wm;
      *got = v;
      return words * 8;
    }
  }
  return SIZE_MAX;
}

size_t rng_logsize(rng_t* r, size_t lo, size_t hi) {
  if (hi <= lo) return lo;
  /* pick a bit width between those of lo and hi, then a value in it */
  unsigned blo = 63u - (unsigned)__builtin_clzll(lo | 1), bhi = 63u - (unsigned)__builtin_clzll(hi);
  unsigned b = blo + (unsigned)rng_below(r, bhi - blo + 1);
  size_t v = ((size_t)1 << b) + (size_t)rng_below(r, (size_t)1 << b);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

rng_t rng_derive(uint64_t seed, int workload, long round, int thread, long sub) {
  uint64_t h = mix64(seed ^ 0x6c6f64655f737472ull);
  h = mix64(h ^ ((uint64_t)(workload + 1) << 48));
  h = mix64(h ^ (uint64_t)round * 0x100000001b3ull);
  h = mix64(h ^ ((uint64_t)(thread + 1) << 20));
  h = mix64(h ^ (uint64_t)(sub + 7));
  rng_t r = {h};
  return r;
}
