/* The process-wide abandoned list: segments of exited threads that still
 * hold live blocks.  Any thread may free into them (remote frees); a thread
 * that needs memory reclaims them, one reclaimer per segment.
 *
 * Invariants (A1, A2, A4, P5):
 *   an abandoned segment has thread_id 0 and tld NULL, is on the list exactly
 *   once, has no page on any purge queue and no page in any heap, and
 *   abandoned_pages == used;
 *   abandoned_count == length of the list == stats.segments_abandoned (the
 *   statistic changes under the lock too: a fork child, whose other threads
 *   vanished between list and statistic, saw them differ);
 *   a reclaim adopts segments of the kind it needs, huge ones, and those
 *   that waited longer than the purge delay, and at most one more of another
 *   kind (the oldest); the list runs from newest to oldest (abandoned_at
 *   never increases along it), also across a forced collect that detached it;
 *   a reclaimed segment has exactly one owner (the CAS from 0 decides), its
 *   in-use pages sit in the reclaimer's backing heap and its committed free
 *   pages on the reclaimer's purge queue, with the expiries they had when the
 *   owner exited (pages freed since then: from the adoption). */
#include "internal.h"

#include <pthread.h>

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static lode_segment_t* abandoned_first; /* newest; guarded by abandoned_lock */
static lode_segment_t* abandoned_last;  /* oldest; guarded by abandoned_lock */
static size_t abandoned_count;          /* guarded by abandoned_lock */
#define RECLAIM_SCAN 64 /* segments a reclaim looks at for its kind */
#define STALE_MIN_MS 10 /* how long a segment waits for its kind when the purge delay is <= 0 */

void _lode_abandoned_fork_prepare(void) { pthread_mutex_lock(&abandoned_lock); }
void _lode_abandoned_fork_parent(void) { pthread_mutex_unlock(&abandoned_lock); }
void _lode_abandoned_fork_child(void) { pthread_mutex_unlock(&abandoned_lock); }

lode_segment_t* _lode_abandoned_first(void) { return abandoned_first; }
size_t _lode_abandoned_count(void) { return abandoned_count; }
lode_segment_t* _lode_abandoned_last(void) { return abandoned_last; }

/* The time is taken under the lock: a thread stopped between reading the
 * clock and pushing would otherwise put an older segment ahead of newer ones
 * (found by the fuzzer parking a thread at abandon-unlisted). */
static uint64_t abandoned_pushes; /* segments ever put on the list by an abandon (under the lock) */

uint64_t _lode_abandoned_pushes(void) {
  pthread_mutex_lock(&abandoned_lock);
  uint64_t n = abandoned_pushes;
  pthread_mutex_unlock(&abandoned_lock);
  return n;
}

static void abandoned_push(lode_segment_t* seg) {
  pthread_mutex_lock(&abandoned_lock);
  abandoned_pushes++;
  seg->abandoned_at = _lode_clock_now();
  seg->prev = NULL;
  seg->next = abandoned_first;
  if (abandoned_first) abandoned_first->prev = seg;
  else abandoned_last = seg;
  abandoned_first = seg;
  abandoned_count++;
  _lode_stat_add(&_lode_stats.segments_abandoned, NULL, 1);
  pthread_mutex_unlock(&abandoned_lock);
}

static void unlink_locked(lode_segment_t* seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else abandoned_first = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  else abandoned_last = seg->prev;
  seg->next = seg->prev = NULL;
  abandoned_count--;
}

/* The segment a reclaim for `kind` takes next: the oldest if it has waited
 * longer than the purge delay (nobody of its kind came for it, and no owner
 * purges its free pages or merges the frees into it); else the newest of
 * `kind`, or a huge one (nobody asks for huge segments, and a huge block
 * freed after its thread exited goes back only through an adopter); else,
 * when `other`, the oldest.  Taking every segment on the way would leave the
 * threads that start next to map fresh ones while this thread holds what
 * the exited ones left. */
static lode_segment_t* abandoned_pop(lode_page_kind_t kind, bool other, int64_t stale_before) {
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* seg = abandoned_last;
  if (seg != NULL && seg->abandoned_at >= stale_before) {
    seg = abandoned_first;
    for (size_t n = 0; seg != NULL && n < RECLAIM_SCAN; seg = seg->next, n++)
      if (seg->kind == kind || seg->kind == LODE_PAGE_HUGE) break;
    if (seg != NULL && seg->kind != kind && seg->kind != LODE_PAGE_HUGE) seg = NULL;
    if (seg == NULL && other) seg = abandoned_last;
  }
  if (seg != NULL) {
    unlink_locked(seg);
    _lode_stat_sub(&_lode_stats.segments_abandoned, 1);
  }
  pthread_mutex_unlock(&abandoned_lock);
  return seg;
}

/* Owner thread exits: pages leave its purge queue, keeping their expiry for
 * the adopter (threads that come and go hand a segment on and on; a page
 * queued afresh at each adoption would never be purged), the owner is
 * cleared and the segment is published (or released when nothing in it
 * lives). */
void _lode_segment_abandon(lode_segment_t* seg, lode_tld_t* tld) {
  _lode_purge_queue_forget_segment(tld, seg);
  if (seg->used == 0) {
    _lode_segment_release(seg, tld);
    return;
  }
  _lode_segment_list_remove(&tld->segments[seg->kind], seg);
  seg->tld = NULL;
  seg->is_abandoned = true;
  seg->abandoned_pages = seg->used;
  atomic_store_explicit(&seg->thread_id, 0, memory_order_release);
  _lode_stat_add(&_lode_stats.segments_abandoned_total, NULL, 1);
  LODE_POINT(LODE_POINT_ABANDON_UNLISTED, seg);
  abandoned_push(seg);
}

/* Take ownership of a popped segment.  Only one thread can win the CAS. */
static bool segment_claim(lode_segment_t* seg, lode_tld_t* tld) {
  uintptr_t expected = 0;
  return atomic_compare_exchange_strong_explicit(&seg->thread_id, &expected, tld->thread_id,
                                                 memory_order_acq_rel, memory_order_acquire);
}

/* Merge remote frees of every in-use page; pages left empty become free. */
static void segment_collect_pages(lode_segment_t* seg) {
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (!page->in_use || page->span_back) continue; /* a span's tail is no page */
    _lode_page_collect(page, false);
    if (page->used == 0) {
      uint32_t slices = seg->kind == LODE_PAGE_LARGE && page->span_count ? page->span_count : 1;
#ifdef LODE_SECURE
      /* every block came back through a free (wiped): vouch for the area, or
       * its next claim clears it all again (faulting in what was never used) */
      bool wiped = _lode_page_scrub(page);
#else
      bool wiped = false;
#endif
      if (seg->kind == LODE_PAGE_LARGE) _lode_segment_span_split(seg, page);
      for (uint32_t j = 0; j < slices; j++) page[j].area_wiped = wiped;
      lode_page_set_in_use(page, false);
      page->free = page->local_free = NULL;
      page->capacity = 0;
      atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
      atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
      seg->used--;
      _lode_stat_sub(&_lode_stats.pages_current, 1);
    }
  }
}

/* Adopt a claimed segment into tld: live pages to the backing heap (never a
 * user heap: lode_heap_destroy must not free blocks it did not allocate),
 * committed free pages onto tld's purge queue.  Returns false when the
 * segment was released because nothing in it lived any more. */
static bool segment_adopt(lode_segment_t* seg, lode_tld_t* tld) {
  seg->is_abandoned = false;
  seg->abandoned_pages = 0;
  seg->tld = tld;
  tld->adoptions++; /* its free pages postdate this thread's last collect (P4) */
  _lode_stat_add(&_lode_stats.segments_reclaimed, NULL, 1);
  segment_collect_pages(seg);
  if (seg->used == 0) {
    _lode_segment_release(seg, NULL);
    return false;
  }
  _lode_segment_list_push(&tld->segments[seg->kind], seg, seg->used < seg->page_count);
  lode_heap_t* backing = &tld->heap_backing;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (page->in_use && page->span_back == 0) {
      page->retire_expire = 0;
      page->next = page->prev = NULL;
      atomic_store_explicit(&page->heap, backing, memory_order_release);
      _lode_page_set_delayed(page, LODE_DELAYED_NO, true);
      _lode_queue_push_back(backing, &backing->pages[page->bin], page);
      backing->page_count++;
      if (page->bin == LODE_BIN_HUGE) {
        /* as a huge block's malloc leaves it: in the full queue, so its frees
         * go the slow path's exact test (offset 0), never the fast path's
         * block-start magic (exact only below 4 GiB) */
        _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
        _lode_queue_to_full(backing, page);
      }
    } else if (!page->in_use && page->is_committed) {
      /* freed since the owner exited: purge_expire 0, the policy's expiry */
      _lode_purge_schedule(tld, page, 1, page->purge_expire);
    }
  }
  /* What came due while the segment waited goes now, as the owner's timer
   * would have taken it. */
  int64_t now = _lode_clock_now();
  if (_lode_purge_queue_due(tld, now)) _lode_purge_queue_run(tld, false, now);
  return true;
}

/* A remote free gave back the one block of an abandoned huge segment: no
 * reclaim may come for it (a thread whose own pages serve it asks for none,
 * and a non-forced collect does not look), so its whole mapping stayed
 * resident, outside the segment cache's bound (review, 2026-12-06: 192 MiB
 * of 8 exited threads' blocks, freed, held for good).  The freeing thread
 * takes it off the list, if it is still there, and adopts it: with nothing
 * live, the adoption releases it to the cache.  A realloc of an exited
 * thread's huge block takes it too, to grow it as its own (the adoption
 * keeps the live block).  The walk is under the lock (a forced collect may
 * hold the list detached: membership is asked of the list, not of the
 * segment's links). */
void _lode_abandoned_take_huge(lode_segment_t* seg, lode_tld_t* tld) {
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* s = abandoned_first;
  while (s != NULL && s != seg) s = s->next;
  if (s != NULL) {
    unlink_locked(seg);
    _lode_stat_sub(&_lode_stats.segments_abandoned, 1);
  }
  pthread_mutex_unlock(&abandoned_lock);
  if (s == NULL) return; /* a reclaim or a forced collect has it */
  if (!segment_claim(seg, tld)) {
    lode_assert(!"abandoned segment already owned");
    return;
  }
  (void)segment_adopt(seg, tld);
}

bool _lode_abandoned_reclaim(lode_heap_t* heap, lode_page_kind_t kind, size_t max_segments) {
  lode_tld_t* tld = heap->tld;
  bool other = true;
  /* How long a segment waits for a reclaim of its kind: the base delay (not
   * a purge decision: no memory goes back here), or STALE_MIN_MS when the
   * policy purges at once or never. */
  int64_t now = _lode_clock_now(), expire;
  int64_t wait = _lode_purge_decide(now, &expire) == LODE_PURGE_LATER ? _lode_option(LODE_OPTION_PURGE_DELAY) : STALE_MIN_MS;
  int64_t stale_before = lode_sat_add(now, -wait);
  for (size_t n = 0; n < max_segments; n++) {
    lode_segment_t* seg = abandoned_pop(kind, other, stale_before);
    if (seg == NULL) return false;
    if (seg->kind != kind && seg->kind != LODE_PAGE_HUGE && seg->abandoned_at >= stale_before) other = false;
    LODE_POINT(LODE_POINT_RECLAIM_POPPED, seg);
    if (!segment_claim(seg, tld)) {
      lode_assert(!"abandoned segment already owned");
      continue;
    }
    LODE_POINT(LODE_POINT_RECLAIM_ADOPTING, seg);
    if (segment_adopt(seg, tld) && seg->kind == kind && seg->used < seg->page_count) return true;
  }
  return false;
}

/* Puts a run of segments (newest to oldest, linked by next) back into the
 * list by age.  Not simply at the oldest end: another forced collect may
 * have detached the list meanwhile and put back segments newer than these
 * (found by AFL++: two collects stopped at collect-detached). */
static void merge_locked(lode_segment_t* run) {
  lode_segment_t *a = abandoned_first, *first = NULL, *last = NULL;
  while (a != NULL || run != NULL) {
    lode_segment_t* seg;
    if (run == NULL || (a != NULL && a->abandoned_at >= run->abandoned_at)) {
      seg = a;
      a = a->next;
    } else {
      seg = run;
      run = run->next;
    }
    seg->prev = last;
    seg->next = NULL;
    if (last != NULL) last->next = seg;
    else first = seg;
    last = seg;
  }
  abandoned_first = first;
  abandoned_last = last;
}

/* A forced collect gives back every free page, an exited thread's too: the
 * segment it kept for a live block held its free pages committed until a
 * reclaim, which a process whose threads all have pages never makes
 * (review, 2026-12-06: 16 exited threads with a 16-byte block each kept 64
 * MiB through lode_collect(true)).  The pages are on no queue (P5). */
static void purge_free_pages(lode_segment_t* seg, lode_tld_t* tld) {
  if (seg->committed == 0 || seg->used == seg->page_count) return;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (!page->in_use && page->is_committed) {
      bool released; /* (never: a block is live) */
      i += (uint32_t)_lode_page_purge_run(page, tld, INT64_MAX, -1, &released) - 1;
    }
  }
}

/* Forced collect: abandoned segments whose blocks have all been freed go
 * back to the OS, the others' free pages are purged, and they return to the
 * list in age order (O(list) under the lock: forced collects are rare). */
size_t _lode_abandoned_release_empty(lode_tld_t* tld) {
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* list = abandoned_last; /* oldest first */
  size_t n = abandoned_count;
  abandoned_first = abandoned_last = NULL;
  abandoned_count = 0;
  _lode_stat_sub(&_lode_stats.segments_abandoned, n);
  pthread_mutex_unlock(&abandoned_lock);
  LODE_POINT(LODE_POINT_COLLECT_DETACHED, NULL);
  lode_segment_t* kept_newest = NULL;
  size_t kept = 0, released = 0;
  while (list != NULL) {
    lode_segment_t* seg = list;
    list = seg->prev;
    seg->next = seg->prev = NULL;
    if (!segment_claim(seg, tld)) {
      lode_assert(!"abandoned segment already owned");
      continue;
    }
    segment_collect_pages(seg);
    if (seg->used == 0) {
      _lode_segment_release(seg, NULL);
      released++;
      continue;
    }
    purge_free_pages(seg, tld);
    seg->abandoned_pages = seg->used;
    atomic_store_explicit(&seg->thread_id, 0, memory_order_release);
    seg->next = kept_newest; /* each one kept is newer than the ones before */
    kept_newest = seg;
    kept++;
  }
  if (kept == 0) return released;
  pthread_mutex_lock(&abandoned_lock);
  merge_locked(kept_newest);
  abandoned_count += kept;
  _lode_stat_add(&_lode_stats.segments_abandoned, NULL, kept);
  pthread_mutex_unlock(&abandoned_lock);
  return released;
}
