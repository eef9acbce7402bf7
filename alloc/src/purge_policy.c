/* The purge policy: what LODE_PURGE_DELAY means for memory that becomes
 * free, decided in one function (_lode_purge_decide) that every site asks:
 * a page leaving use, an adopted page, a span that could not be committed, a
 * cached segment.  > 0: later, at now + delay; 0: now; < 0: never (only a
 * forced collect).  All time arithmetic saturates: a delay of LONG_MAX means
 * "practically never", not an expiry that wrapped into the past.
 *
 * The delay adapts.  A page the timer purged that is taken back into use
 * less than one delay later was purged too early: its thread pays a page
 * fault per 4 KiB to get back memory it had.  Each such comeback doubles the
 * delay (at most LODE_PURGE_BACKOFF times); four delays without one halve it
 * again.  A program that churns through pages (heaps created and destroyed,
 * threads coming and going) keeps its free pages; one that settles gives them
 * back after LODE_PURGE_DELAY again.  The state is process-wide because the
 * threads that pay for a too-early purge are often new ones (they reclaim the
 * segments of exited threads).  Only the timer adapts: expiries stay ordered
 * (P2), never come before the base delay (P6 a fortiori), and a forced
 * collect still purges everything (P4).  A new clock (a test's) restarts it. */
#include "internal.h"

#include <limits.h>

/* Relaxed: a lost update only makes one delay a step off. */
static _Atomic(uint32_t) backoff;
static _Atomic(int64_t) backoff_at; /* when backoff last changed */
static _Atomic(uint32_t) backoff_epoch; /* the clock's epoch these times are of */

static void backoff_follow_clock(void) {
  uint32_t e = _lode_clock_epoch();
  if (lode_likely(atomic_load_explicit(&backoff_epoch, memory_order_relaxed) == e)) return;
  atomic_store_explicit(&backoff, 0, memory_order_relaxed);
  atomic_store_explicit(&backoff_at, 0, memory_order_relaxed);
  atomic_store_explicit(&backoff_epoch, e, memory_order_relaxed);
}

long _lode_purge_delay(int64_t now) {
  long base = _lode_option(LODE_OPTION_PURGE_DELAY);
  if (base <= 0) return 1; /* _lode_purge_decide handles 0 and negative delays */
  backoff_follow_clock();
  uint32_t b = atomic_load_explicit(&backoff, memory_order_relaxed);
  uint32_t max = (uint32_t)_lode_option(LODE_OPTION_PURGE_BACKOFF);
  if (b > max) b = max; /* lowered at run time */
  int64_t at = atomic_load_explicit(&backoff_at, memory_order_relaxed);
  int64_t delay = lode_sat_shl(base, b);
  if (b > 0 && now < at) { /* the clock went back: start over */
    b = 0;
    atomic_store_explicit(&backoff, b, memory_order_relaxed);
    atomic_store_explicit(&backoff_at, now, memory_order_relaxed);
    delay = base;
  } else if (b > 0 && lode_sat_add(now, -at) >= lode_sat_shl(delay, 2)) {
    /* every four quiet delays since the last change halve it, not only the
     * first: nothing may have asked for hours (a program that settled) */
    while (b > 0 && lode_sat_add(now, -at) >= lode_sat_shl(delay, 2)) {
      at = lode_sat_add(at, lode_sat_shl(delay, 2));
      delay = lode_sat_shl(base, --b);
    }
    atomic_store_explicit(&backoff, b, memory_order_relaxed);
    atomic_store_explicit(&backoff_at, at, memory_order_relaxed);
  }
  return delay > (int64_t)LONG_MAX ? LONG_MAX : (long)delay;
}

lode_purge_when_t _lode_purge_decide(int64_t now, int64_t* expire) {
  long base = _lode_option(LODE_OPTION_PURGE_DELAY);
  if (base < 0) return LODE_PURGE_NEVER;
  if (base == 0) return LODE_PURGE_NOW;
  *expire = lode_sat_add(lode_sat_add(now, _lode_purge_delay(now)), _lode_clock_slack());
  return LODE_PURGE_LATER;
}

void _lode_purge_note_comeback(int64_t gone_at) {
  if (_lode_option(LODE_OPTION_PURGE_DELAY) <= 0) return;
  int64_t now = _lode_clock_now();
  if (now < gone_at || lode_sat_add(now, -gone_at) >= _lode_purge_delay(now)) return;
  uint32_t b = atomic_load_explicit(&backoff, memory_order_relaxed);
  if (b < (uint32_t)_lode_option(LODE_OPTION_PURGE_BACKOFF)) atomic_store_explicit(&backoff, b + 1, memory_order_relaxed);
  atomic_store_explicit(&backoff_at, now, memory_order_relaxed);
}
