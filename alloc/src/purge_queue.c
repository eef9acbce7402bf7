/* The per-thread purge queue: free pages wait here LODE_PURGE_DELAY ms before
 * their memory goes back to the OS, so a thread that frees and re-allocates
 * does not pay a page fault per page.
 *
 * Invariants (checked as P1, P2, P5):
 *   every queued page is free (not in use, in no heap), committed, in a
 *   segment owned by this thread, and has purge_expire != 0;
 *   the list is doubly linked, first/last consistent, expiries non-decreasing;
 *   page->on_purge_queue <=> the page is on exactly one queue, its owner's.
 * A non-forced collect purges only expired entries: the queue may stay
 * non-empty.  Only a forced collect promises an empty queue.
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
 * collect still purges everything (P4). */
#include "internal.h"

/* Relaxed: a lost update only makes one delay a step off. */
static _Atomic(uint32_t) backoff;
static _Atomic(int64_t) backoff_at; /* when backoff last changed */

long _lode_purge_delay(int64_t now) {
  long base = _lode_option(LODE_OPTION_PURGE_DELAY);
  if (base <= 0) return 1; /* callers decide about 0 and negative delays */
  uint32_t b = atomic_load_explicit(&backoff, memory_order_relaxed);
  uint32_t max = (uint32_t)_lode_option(LODE_OPTION_PURGE_BACKOFF);
  if (b > max) b = max; /* lowered at run time */
  int64_t at = atomic_load_explicit(&backoff_at, memory_order_relaxed);
  if (b > 0 && (now < at || now - at >= 4 * ((int64_t)base << b))) {
    b = now < at ? 0 : b - 1; /* the clock went back (a test clock was reset): start over */
    atomic_store_explicit(&backoff, b, memory_order_relaxed);
    atomic_store_explicit(&backoff_at, now, memory_order_relaxed);
  }
  return base << b;
}

/* A new clock: the old time stamps mean nothing to it. */
void _lode_purge_backoff_reset(void) {
  atomic_store_explicit(&backoff, 0, memory_order_relaxed);
  atomic_store_explicit(&backoff_at, 0, memory_order_relaxed);
}

/* `page` is about to be committed again: if the timer purged it less than a
 * delay ago, back off. */
void _lode_purge_note_recommit(const lode_page_t* page) {
  if (page->purged_at < 0 || _lode_option(LODE_OPTION_PURGE_DELAY) <= 0) return; /* not by the timer */
  int64_t now = _lode_clock_now();
  if (now - page->purged_at >= _lode_purge_delay(now)) return;
  uint32_t b = atomic_load_explicit(&backoff, memory_order_relaxed);
  if (b < (uint32_t)_lode_option(LODE_OPTION_PURGE_BACKOFF)) atomic_store_explicit(&backoff, b + 1, memory_order_relaxed);
  atomic_store_explicit(&backoff_at, now, memory_order_relaxed);
}

void _lode_purge_queue_push(lode_tld_t* tld, lode_page_t* page, int64_t now) {
  _lode_purge_queue_push_expiring(tld, page, now + _lode_purge_delay(now));
}

/* Queue `page` to be purged at or after `expire`: a page an adopter takes over
 * keeps the expiry it had under its exited owner. */
void _lode_purge_queue_push_expiring(lode_tld_t* tld, lode_page_t* page, int64_t expire) {
  lode_assert(!page->in_use && !page->on_purge_queue && page->is_committed);
  if (expire == 0) expire = 1; /* 0 means "not queued" */
  page->purge_expire = expire;
  /* Insert from the tail: with a fixed delay that is O(1); a lowered delay
   * walks back so expiries stay ordered.  An expiry before the first one (an
   * adopted page long due) goes to the head at once. */
  lode_page_t* after = tld->purge.last;
  if (tld->purge.first != NULL && expire < tld->purge.first->purge_expire) after = NULL;
  while (after != NULL && after->purge_expire > expire) after = after->purge_prev;
  page->purge_prev = after;
  page->purge_next = after ? after->purge_next : tld->purge.first;
  if (page->purge_next) page->purge_next->purge_prev = page; else tld->purge.last = page;
  if (after) after->purge_next = page; else tld->purge.first = page;
  page->on_purge_queue = 1;
  tld->purge.count++;
  lode_assert_expensive(page->purge_prev == NULL || page->purge_prev->purge_expire <= page->purge_expire);
  lode_assert_expensive(page->purge_next == NULL || page->purge_next->purge_expire >= page->purge_expire);
  tld->queue_pushes++;
  _lode_stat_add(&_lode_stats.pages_queued, NULL, 1);
}

void _lode_purge_queue_remove(lode_tld_t* tld, lode_page_t* page) {
  lode_assert(page->on_purge_queue);
  if (page->purge_prev) page->purge_prev->purge_next = page->purge_next;
  else tld->purge.first = page->purge_next;
  if (page->purge_next) page->purge_next->purge_prev = page->purge_prev;
  else tld->purge.last = page->purge_prev;
  page->purge_next = page->purge_prev = NULL;
  page->purge_expire = 0;
  page->on_purge_queue = 0;
  tld->purge.count--;
  _lode_stat_sub(&_lode_stats.pages_queued, 1);
}

/* Purge expired entries (all of them when forced), each with its due
 * neighbours in one OS call.  Returns pages purged. */
size_t _lode_purge_queue_run(lode_tld_t* tld, bool force, int64_t now) {
  size_t n = 0;
  lode_page_t* page;
  while ((page = tld->purge.first) != NULL && (force || page->purge_expire <= now)) {
    bool released;
    n += _lode_page_purge_run(page, tld, force ? INT64_MAX : now, force ? -1 : now, &released);
  }
  return n;
}
