/* LODE_SECURE: malloc(0).
 *
 * A zero-byte block has nothing a program may read or write, so lode hands
 * out distinct addresses in a range that is never accessible: any access
 * through them faults, before and after the free.  The range (16 MiB, one
 * address per 16 bytes) is reserved at the first malloc(0); a bitmap in
 * ordinary memory says which addresses are out, and another which ever were
 * (a free of one that is not out is a double free, or of one never handed
 * out, an invalid pointer). */
#include "internal.h"

#ifdef LODE_SECURE

#define ZERO_RANGE ((size_t)16 << 20)
#define ZERO_STEP ((size_t)16)
#define ZERO_SLOTS (ZERO_RANGE / ZERO_STEP)
#define ZERO_WORDS (ZERO_SLOTS / 64)

typedef struct zero_range_s {
  uint8_t* base;
  _Atomic(uint64_t)* used; /* ZERO_WORDS words */
  _Atomic(uint64_t)* ever; /* ZERO_WORDS words: handed out at least once */
} zero_range_t;

static _Atomic(zero_range_t*) zero_range;
static _Atomic(size_t) zero_hint; /* the word the next search starts at */
/* Slots out: at ZERO_SLOTS a malloc(0) falls back at once.  Without it
 * every malloc(0) of a program holding a million of them scanned all 16,384
 * words (review, 2026-12-06: 16 us each). */
static _Atomic(size_t) zero_out;

#ifdef LODE_TESTING
static _Atomic(size_t) zero_scanned; /* bitmap words the searches looked at */
size_t lode_test_zero_scanned(void) { return atomic_load_explicit(&zero_scanned, memory_order_relaxed); }
#define COUNT_SCANNED() atomic_fetch_add_explicit(&zero_scanned, 1, memory_order_relaxed)
#else
#define COUNT_SCANNED() ((void)0)
#endif

static zero_range_t* range_get(void) {
  zero_range_t* r = atomic_load_explicit(&zero_range, memory_order_acquire);
  if (r != NULL) return r;
  size_t meta = sizeof(zero_range_t) + 2 * ZERO_WORDS * sizeof(uint64_t);
  r = _lode_os_alloc_meta(meta);
  if (r == NULL) return NULL;
  r->base = _lode_os_reserve_inaccessible(ZERO_RANGE);
  if (r->base == NULL) {
    _lode_os_free_meta(r, meta);
    return NULL;
  }
  r->used = (_Atomic(uint64_t)*)(void*)(r + 1);
  r->ever = r->used + ZERO_WORDS;
  zero_range_t* expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(&zero_range, &expected, r, memory_order_acq_rel,
                                               memory_order_acquire)) {
    /* another thread won: its range serves */
    _lode_os_free_meta(r->base, ZERO_RANGE);
    _lode_os_free_meta(r, meta);
    return expected;
  }
  return r;
}

void* _lode_zero_alloc(void) {
  zero_range_t* r = range_get();
  if (r == NULL) return NULL;
  if (atomic_load_explicit(&zero_out, memory_order_relaxed) >= ZERO_SLOTS) return NULL;
  size_t start = atomic_load_explicit(&zero_hint, memory_order_relaxed) % ZERO_WORDS;
  for (size_t k = 0; k < ZERO_WORDS; k++) {
    size_t w = (start + k) % ZERO_WORDS;
    COUNT_SCANNED();
    uint64_t bits = atomic_load_explicit(&r->used[w], memory_order_relaxed);
    while (bits != UINT64_MAX) {
      unsigned b = (unsigned)__builtin_ctzll(~bits);
      if (atomic_compare_exchange_weak_explicit(&r->used[w], &bits, bits | (uint64_t)1 << b, memory_order_relaxed,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&zero_hint, w, memory_order_relaxed);
        atomic_fetch_add_explicit(&zero_out, 1, memory_order_relaxed);
        atomic_fetch_or_explicit(&r->ever[w], (uint64_t)1 << b, memory_order_relaxed);
        return r->base + (w * 64 + b) * ZERO_STEP;
      }
    }
  }
  return NULL;
}

bool _lode_zero_contains(const void* p) {
  zero_range_t* r = atomic_load_explicit(&zero_range, memory_order_acquire);
  return r != NULL && (const uint8_t*)p >= r->base && (const uint8_t*)p < r->base + ZERO_RANGE;
}

/* Reports p unless it is a malloc(0) address handed out and not freed:
 * take (free) its slot too when `take`. */
static bool zero_slot(const void* p, const char* func, bool take) {
  zero_range_t* r = atomic_load_explicit(&zero_range, memory_order_acquire);
  size_t off = (size_t)((const uint8_t*)p - r->base);
  if (off % ZERO_STEP != 0) {
    _lode_error_pointer(func, "invalid pointer (not the start of a block)", p);
    return false;
  }
  size_t slot = off / ZERO_STEP;
  uint64_t bit = (uint64_t)1 << (slot % 64);
  uint64_t old = take ? atomic_fetch_and_explicit(&r->used[slot / 64], ~bit, memory_order_relaxed)
                      : atomic_load_explicit(&r->used[slot / 64], memory_order_relaxed);
  if (old & bit) {
    if (take) {
      atomic_fetch_sub_explicit(&zero_out, 1, memory_order_relaxed);
      /* a full range then serves the next malloc(0) from here, unscanned */
      atomic_store_explicit(&zero_hint, slot / 64, memory_order_relaxed);
    }
    return true;
  }
  bool was = atomic_load_explicit(&r->ever[slot / 64], memory_order_relaxed) & bit;
  if (was) _lode_error_pointer(func, take ? "double free" : "use after free (a freed malloc(0) pointer)", p);
  else _lode_error_pointer(func, "invalid pointer (not allocated)", p);
  return false;
}

bool _lode_zero_live(const void* p, const char* func) { return zero_slot(p, func, false); }

void _lode_zero_free(const void* p, const char* func) { (void)zero_slot(p, func, true); }

#else
typedef int lode_zero_alloc_unused_t; /* a translation unit may not be empty */
#endif
