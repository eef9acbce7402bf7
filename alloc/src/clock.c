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

/* The kernel's coarse clock: the time of its last tick, read without the
 * TSC (5 ns against 24 on the bench machine, and every page leaving use
 * reads it).  It lags by up to a tick (4 ms at HZ=250): an expiry reckoned
 * from it is a tick later (_lode_clock_slack), so no purge comes early. */
#ifdef CLOCK_MONOTONIC_COARSE
#define LODE_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define LODE_CLOCK CLOCK_MONOTONIC
#endif

int64_t _lode_clock_now(void) {
#ifdef LODE_TESTING
  lode_clock_fn* fn = atomic_load_explicit(&clock_fn, memory_order_acquire);
  if (lode_unlikely(fn != NULL)) return fn(atomic_load_explicit(&clock_arg, memory_order_relaxed));
#endif
  struct timespec ts;
  clock_gettime(LODE_CLOCK, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Atomic(int32_t) slack_ms = -1; /* the clock's resolution, ms rounded up; -1 not asked yet */

int64_t _lode_clock_slack(void) {
#ifdef LODE_TESTING
  if (atomic_load_explicit(&clock_fn, memory_order_acquire) != NULL) return 0; /* exact */
#endif
  int32_t s = atomic_load_explicit(&slack_ms, memory_order_relaxed);
  if (lode_unlikely(s < 0)) {
    struct timespec r;
    if (clock_getres(LODE_CLOCK, &r) != 0 || r.tv_sec > 0) s = 1000;
    else s = (int32_t)((r.tv_nsec + 999999) / 1000000) + 1; /* + the ms cut off the time */
    atomic_store_explicit(&slack_ms, s, memory_order_relaxed);
  }
  return s;
}

int64_t lode_clock_now(void) { return _lode_clock_now(); }
