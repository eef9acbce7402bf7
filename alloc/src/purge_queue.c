/* The per-thread purge queue: free pages wait here LODE_PURGE_DELAY ms
 * before their memory goes back to the OS, so a thread that frees and
 * re-allocates does not pay a page fault per page.  Whether a free page is
 * purged now, queued or left alone is the purge policy's decision
 * (purge_policy.c); _lode_purge_schedule applies it to a page, and every
 * place that frees a page calls it.
 *
 * Invariants (checked as P1, P2, P5):
 *   every queued page is free (not in use, in no heap), committed, in a
 *   segment owned by this thread, and has purge_expire != 0;
 *   the list is doubly linked, first/last consistent, expiries non-decreasing;
 *   page->on_purge_queue <=> the page is on exactly one queue, its owner's.
 * A non-forced collect purges only expired entries: the queue may stay
 * non-empty.  Only a forced collect promises an empty queue. */
#include "internal.h"

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

void _lode_purge_queue_take(lode_tld_t* tld, lode_page_t* page, uint32_t slices) {
  for (uint32_t j = 0; j < slices; j++)
    if (page[j].on_purge_queue) _lode_purge_queue_remove(tld, &page[j]);
}

void _lode_purge_queue_forget_segment(lode_tld_t* tld, lode_segment_t* seg) {
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    int64_t expire = page->purge_expire;
    if (page->on_purge_queue) _lode_purge_queue_remove(tld, page);
    page->purge_expire = expire;
  }
}

/* May `page` go with a purge run?  Forced (upto INT64_MAX): any free
 * committed page.  Timer: only queued pages whose expiry has passed. */
static bool purge_due(const lode_page_t* page, int64_t upto) {
  if (page->in_use || !page->is_committed) return false;
  return upto == INT64_MAX || (page->on_purge_queue && page->purge_expire <= upto);
}

/* Purge `page` (free, committed) together with the due pages next to it, in
 * one OS call.  purged_at: the time, or -1 when forced. */
size_t _lode_page_purge_run(lode_page_t* page, lode_tld_t* tld, int64_t upto, int64_t purged_at, bool* released) {
  lode_segment_t* seg = _lode_page_segment(page);
  lode_assert(!page->in_use && page->is_committed);
  uint32_t lo = page->index, hi = page->index;
  if (seg->kind != LODE_PAGE_HUGE) {
    while (lo > 0 && purge_due(&seg->pages[lo - 1], upto) && _lode_segment_pages_touch(seg, lo - 1)) lo--;
    while (hi + 1 < seg->page_count && purge_due(&seg->pages[hi + 1], upto) && _lode_segment_pages_touch(seg, hi))
      hi++;
  }
  int64_t expired[LODE_SEGMENT_SIZE >> LODE_SMALL_PAGE_SHIFT]; /* INT64_MIN: was not queued */
  lode_assert(hi - lo < sizeof(expired) / sizeof(expired[0]));
  for (uint32_t i = lo; i <= hi; i++) {
    lode_page_t* p = &seg->pages[i];
    expired[i - lo] = p->on_purge_queue ? p->purge_expire : INT64_MIN;
    if (p->on_purge_queue) _lode_purge_queue_remove(tld, p);
  }
  /* A refusal leaves them committed and off the queue: a forced collect
   * tries again (a retry by the timer would repeat a refusal that lasts,
   * such as mlock's, every delay).  Only a purge done records the expiry it
   * went against (P6): a refused one that did, with purged_at kept, read
   * as purged early (found by the fuzzer's fail-os purge, 2026-12-06). */
  if (_lode_segment_purge_pages(seg, lo, hi, purged_at)) {
    for (uint32_t i = lo; i <= hi; i++)
      if (expired[i - lo] != INT64_MIN) seg->pages[i].last_expire = expired[i - lo];
  } else {
    tld->purge_refusals++;
  }
  *released = _lode_segment_try_release(seg, tld);
  return hi - lo + 1;
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

bool _lode_purge_schedule(lode_tld_t* tld, lode_page_t* page, uint32_t slices, int64_t inherited) {
  lode_assert(!page->in_use && !page->on_purge_queue);
  if (!page->is_committed) return false;
  int64_t now = _lode_clock_now(), expire = 0;
  switch (_lode_purge_decide(now, &expire)) {
    case LODE_PURGE_NOW: {
      bool released;
      /* A span's slices go with it (INT64_MAX: every free committed neighbour;
       * INT64_MIN: the page alone). */
      _lode_page_purge_run(page, tld, slices > 1 ? INT64_MAX : INT64_MIN, -1, &released);
      return released;
    }
    case LODE_PURGE_LATER:
      for (uint32_t j = 0; j < slices; j++)
        if (page[j].is_committed && !page[j].on_purge_queue)
          _lode_purge_queue_push_expiring(tld, &page[j], inherited != 0 ? inherited : expire);
      return false;
    case LODE_PURGE_NEVER: return false; /* stays committed: a forced collect purges it */
  }
  return false;
}

bool _lode_purge_schedule_segment(lode_tld_t* tld, lode_segment_t* seg) {
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (page->in_use || !page->is_committed || page->on_purge_queue) continue;
    if (_lode_purge_schedule(tld, page, 1, 0)) return true;
  }
  return false;
}

/* Forced collect purges every free committed page of the thread's segments,
 * queued or not (a negative delay only stops the timer). */
void _lode_purge_all_free(lode_tld_t* tld) {
  for (int k = 0; k < LODE_PAGE_KINDS; k++) {
    lode_segment_t* seg = tld->segments[k].first;
    while (seg != NULL) {
      lode_segment_t* next = seg->next;
      if (seg->committed > 0 && seg->used < seg->page_count) {
        for (uint32_t i = 0; i < seg->page_count; i++) {
          lode_page_t* page = &seg->pages[i];
          if (!page->in_use && page->is_committed) {
            bool released;
            i += (uint32_t)_lode_page_purge_run(page, tld, INT64_MAX, -1, &released) - 1;
            if (released) break;
          }
        }
      }
      seg = next;
    }
  }
}

/* Forced collect: segments whose pages are all free go back to the OS whole
 * (one munmap, or one cache entry), even when their pages were never purged
 * (delay < 0), instead of an madvise for each of their pages first. */
void _lode_purge_release_empty_segments(lode_tld_t* tld) {
  for (int k = 0; k < LODE_PAGE_KINDS; k++) {
    lode_segment_t* seg = tld->segments[k].first;
    while (seg != NULL) {
      lode_segment_t* next = seg->next;
      if (seg->used == 0) {
        _lode_purge_queue_forget_segment(tld, seg);
        _lode_segment_release(seg, tld);
      }
      seg = next;
    }
  }
}
