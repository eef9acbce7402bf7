/* Clock for purge expiry; tests inject a virtual one so expiry is exact. */
#include "internal.h"

#include <time.h>

static _Atomic(uint32_t) clock_epoch;

#ifdef LODE_TESTING
static _Atomic(lode_clock_fn*) clock_fn;
static _Atomic(void*) clock_arg;

void lode_test_set_clock(lode_clock_fn* fn, void* arg) {
  atomic_store_explicit(&clock_arg, arg, memory_order_relaxed);
  atomic_store_explicit(&clock_fn, fn, memory_order_release);
  atomic_fetch_add_explicit(&clock_epoch, 1, memory_order_acq_rel);
}
#endif

uint32_t _lode_clock_epoch(void) { return atomic_load_explicit(&clock_epoch, memory_order_acquire); }

int64_t _lode_clock_now(void) {
#ifdef LODE_TESTING
  lode_clock_fn* fn = atomic_load_explicit(&clock_fn, memory_order_acquire);
  if (lode_unlikely(fn != NULL)) return fn(atomic_load_explicit(&clock_arg, memory_order_relaxed));
#endif
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lode_clock_now(void) { return _lode_clock_now(); }
