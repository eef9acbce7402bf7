/* Clock for purge expiry; tests inject a virtual one so expiry is exact. */
#include "internal.h"

#include <time.h>

static _Atomic(lode_clock_fn*) clock_fn;
static _Atomic(void*) clock_arg;

/* Also restarts what remembers times of the old clock (the purge backoff), so
 * a harness that resets its clock between inputs carries nothing over. */
void lode_test_set_clock(lode_clock_fn* fn, void* arg) {
  _lode_purge_backoff_reset();
  atomic_store_explicit(&clock_arg, arg, memory_order_relaxed);
  atomic_store_explicit(&clock_fn, fn, memory_order_release);
}

int64_t _lode_clock_now(void) {
  lode_clock_fn* fn = atomic_load_explicit(&clock_fn, memory_order_acquire);
  if (lode_unlikely(fn != NULL)) return fn(atomic_load_explicit(&clock_arg, memory_order_relaxed));
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lode_clock_now(void) { return _lode_clock_now(); }
