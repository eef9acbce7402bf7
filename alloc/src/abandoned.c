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
 *   that waited longer than the purge delay, none other; the list runs from newest to oldest (abandoned_at
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
/* abandoned_last's abandoned_at (INT64_MAX: the list is empty), written
 * under the lock, read without it: a generic malloc asks whether a segment
 * has waited too long without taking the lock every time. */
static _Atomic(int64_t) oldest_at = INT64_MAX;
static void oldest_note_locked(void) {
  atomic_store_explicit(&oldest_at, abandoned_last != NULL ? abandoned_last->abandoned_at : INT64_MAX,
                        memory_order_relaxed);
}
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

/* A huge segment off the list and ownerless (an exit between clearing its
 * owner and its push, a forced collect between its collect and its merge)
 * whose one block another thread freed: that free's take
 * (_lode_abandoned_take_huge) found nothing to take, and listed the segment
 * would wait for a reclaim, its block resident (review, 2026-12-07).  Asked
 * under the list's lock, which the take took after the free's push. */
static bool huge_freed_locked(const lode_segment_t* seg) {
  return seg->kind == LODE_PAGE_HUGE &&
         lode_tf_block(atomic_load_explicit(&seg->pages[0].thread_free, memory_order_acquire)) != NULL;
}

/* False, and not listed, for a segment huge_freed_locked says was freed. */
static bool abandoned_push(lode_segment_t* seg) {
  pthread_mutex_lock(&abandoned_lock);
  if (huge_freed_locked(seg)) {
    pthread_mutex_unlock(&abandoned_lock);
    return false;
  }
  abandoned_pushes++;
  lode_segment_check_stale(seg);
  seg->abandoned_at = _lode_clock_now();
  seg->prev = NULL;
  seg->next = abandoned_first;
  if (abandoned_first) abandoned_first->prev = seg;
  else abandoned_last = seg;
  abandoned_first = seg;
  abandoned_count++;
  oldest_note_locked();
  _lode_stat_add(&_lode_stats.segments_abandoned, NULL, 1);
  pthread_mutex_unlock(&abandoned_lock);
  return true;
}

static void segment_collect_pages(lode_segment_t* seg, lode_quarantine_t* q);

/* An abandoned segment goes on the list, or, freed as huge_freed_locked
 * says, to `me`, who merges the free and releases it (true; only the list
 * hands it on, so the claim cannot fail). */
static bool list_or_release(lode_segment_t* seg, uintptr_t me) {
  while (!abandoned_push(seg)) {
    uintptr_t expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&seg->thread_id, &expected, me, memory_order_acq_rel,
                                                 memory_order_acquire)) {
      lode_assert(!"unlisted abandoned segment owned");
      return false;
    }
    segment_collect_pages(seg, NULL);
    if (seg->used == 0) {
      seg->is_abandoned = false;
      seg->abandoned_pages = 0;
      _lode_segment_release(seg, NULL);
      return true;
    }
    seg->abandoned_pages = seg->used; /* (cannot be: a huge segment has one block) */
    atomic_store_explicit(&seg->thread_id, 0, memory_order_release);
  }
  return false;
}

static void unlink_locked(lode_segment_t* seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else abandoned_first = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  else abandoned_last = seg->prev;
  seg->next = seg->prev = NULL;
  abandoned_count--;
  oldest_note_locked();
}

/* The segment a reclaim for `kind` takes next: the oldest if it has waited
 * longer than the purge delay (nobody of its kind came for it, and no owner
 * purges its free pages or merges the frees into it); else the newest of
 * `kind`, or a huge one (nobody asks for huge segments, and a huge block
 * freed after its thread exited goes back only through an adopter).  Not one
 * of another kind within the delay: a thread of a new batch that needed a
 * medium page (its 24 KiB table, under LD_PRELOAD) took a small segment the
 * last batch left, and a sibling mapped a fresh one (larson: two small
 * segments a thread, 168 pages at the peak where 97 serve). */
static lode_segment_t* abandoned_pop(lode_page_kind_t kind, int64_t stale_before) {
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* seg = abandoned_last;
  if (seg != NULL && seg->abandoned_at >= stale_before) {
    seg = abandoned_first;
    for (size_t n = 0; seg != NULL && n < RECLAIM_SCAN; seg = seg->next, n++)
      if (seg->kind == kind || seg->kind == LODE_PAGE_HUGE) break;
    if (seg != NULL && seg->kind != kind && seg->kind != LODE_PAGE_HUGE) seg = NULL;
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
  (void)list_or_release(seg, tld->thread_id);
}

/* Take ownership of a popped segment.  Only one thread can win the CAS. */
static bool segment_claim(lode_segment_t* seg, lode_tld_t* tld) {
  uintptr_t expected = 0;
  return atomic_compare_exchange_strong_explicit(&seg->thread_id, &expected, tld->thread_id,
                                                 memory_order_acq_rel, memory_order_acquire);
}

/* Merge remote frees of every in-use page; pages left empty become free.
 * LODE_SECURE, q (the adopting thread's): first fresh frees, merged now or
 * before, go to q (review, 2026-12-08: a reclaim handed them out next); the
 * merge after it takes what the pushes sent home. */
static void segment_collect_pages(lode_segment_t* seg, lode_quarantine_t* q) {
  for (uint32_t i = 0; q != NULL && i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (!page->in_use || page->span_back) continue;
    _lode_page_collect_owned(page, q);
    (void)_lode_page_quarantine_listed(page, q);
  }
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
      lode_page_set_capacity(page, 0);
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
  segment_collect_pages(seg, lode_tld_quarantine(tld));
  if (seg->used == 0) {
    /* Warm, to the cache: threads that come and go map segments again at
     * once and take its pages back committed (purged first, leak faulted
     * them all again: +23 % CPU).  The cache's warm bound and the delay
     * bound what it holds meanwhile. */
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

/* A segment abandoned before this has waited longer for a reclaim of its
 * kind than it should: the base delay (not a purge decision: no memory goes
 * back here), or STALE_MIN_MS when the policy purges at once or never. */
static int64_t stale_before_of(int64_t now) {
  int64_t expire;
  int64_t wait = _lode_purge_decide(now, &expire) == LODE_PURGE_LATER ? _lode_option(LODE_OPTION_PURGE_DELAY) : STALE_MIN_MS;
  return lode_sat_add(now, -wait);
}

/* A segment a reclaim took off the list: tld claims it (one thread only:
 * the CAS) and adopts it.  False when nothing in it lived (released). */
static bool popped_adopt(lode_segment_t* seg, lode_tld_t* tld) {
  LODE_POINT(LODE_POINT_RECLAIM_POPPED, seg);
  if (!segment_claim(seg, tld)) {
    lode_assert(!"abandoned segment already owned");
    return false;
  }
  LODE_POINT(LODE_POINT_RECLAIM_ADOPTING, seg);
  return segment_adopt(seg, tld);
}

#ifdef LODE_SIM
/* For A6 (heap.c): a segment of `kind` among the first RECLAIM_SCAN on the
 * list (where a reclaim looks while the oldest is within the delay) that
 * holds a block of bsize as it stands: one that only its pending remote
 * frees would empty does not count (the adoption frees those). */
lode_segment_t* _lode_abandoned_fitting(lode_page_kind_t kind, size_t bsize) {
  lode_segment_t* found = NULL;
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* seg = abandoned_first;
  for (size_t n = 0; seg != NULL && n < RECLAIM_SCAN && found == NULL; seg = seg->next, n++)
    if (seg->kind == kind && _lode_segment_fits(seg, bsize)) found = seg;
  pthread_mutex_unlock(&abandoned_lock);
  return found;
}
#endif

bool _lode_abandoned_reclaim(lode_heap_t* heap, lode_page_kind_t kind, size_t max_segments) {
  return _lode_abandoned_reclaim_for(heap, kind, 0, max_segments);
}

/* A large segment whose free slices are too short for the block does not end
 * the reclaim: the caller would map a fresh segment while others that hold
 * the block wait on the list (realloc, one thread that comes and goes: 12
 * of 18 large segments were mapped so, and the waiting ones' free slices
 * stayed resident). */
bool _lode_abandoned_reclaim_for(lode_heap_t* heap, lode_page_kind_t kind, size_t bsize, size_t max_segments) {
  lode_tld_t* tld = heap->tld;
  int64_t stale_before = stale_before_of(_lode_clock_now());
  for (size_t n = 0; n < max_segments; n++) {
    lode_segment_t* seg = abandoned_pop(kind, stale_before);
    if (seg == NULL) return false;
    if (!popped_adopt(seg, tld) || seg->kind != kind) continue;
    if (_lode_segment_fits(seg, bsize)) return true;
    /* A segment with no free page that brought pages of the block's bin
     * serves it too: going on took a second segment that a sibling thread,
     * starting beside this one after a batch of exits, then had to map
     * afresh. */
    size_t bin = bsize != 0 ? lode_bin_of(bsize) : LODE_BIN_HUGE;
    if (bin < LODE_BIN_HUGE && heap->pages[bin].first != NULL) return true;
  }
  return false;
}

bool _lode_abandoned_waiting(void) { return atomic_load_explicit(&oldest_at, memory_order_relaxed) != INT64_MAX; }

/* A thread whose own pages serve every allocation never reclaims, and the
 * segments of exited threads waited on the list with their blocks freed by
 * others: pages of freed blocks, whole segments with nothing live, resident
 * for good short of a forced collect (review, 2026-12-06: 101 MB after every
 * block of the exited threads was freed).  Each call takes at most the
 * oldest, once it has waited as long as a reclaim of its kind would. */
void _lode_abandoned_reclaim_stale(lode_tld_t* tld, int64_t now) {
  int64_t stale_before = stale_before_of(now);
  if (atomic_load_explicit(&oldest_at, memory_order_relaxed) >= stale_before) return;
  pthread_mutex_lock(&abandoned_lock);
  lode_segment_t* seg = abandoned_last;
  if (seg != NULL && seg->abandoned_at < stale_before) {
    unlink_locked(seg);
    _lode_stat_sub(&_lode_stats.segments_abandoned, 1);
  } else {
    seg = NULL;
  }
  pthread_mutex_unlock(&abandoned_lock);
  if (seg != NULL) (void)popped_adopt(seg, tld);
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
  oldest_note_locked();
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
  oldest_note_locked();
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
    segment_collect_pages(seg, NULL); /* forced: everything goes back */
    if (seg->used == 0) {
      _lode_segment_release(seg, NULL);
      released++;
      continue;
    }
    lode_segment_check_stale(seg); /* put back changed */
    purge_free_pages(seg, tld);
    seg->abandoned_pages = seg->used;
    atomic_store_explicit(&seg->thread_id, 0, memory_order_release);
    seg->next = kept_newest; /* each one kept is newer than the ones before */
    kept_newest = seg;
    kept++;
  }
  if (kept == 0) return released;
  lode_segment_t* freed = NULL; /* huge ones freed since their collect */
  pthread_mutex_lock(&abandoned_lock);
  for (lode_segment_t** at = &kept_newest; *at != NULL;) {
    lode_segment_t* seg = *at;
    if (!huge_freed_locked(seg)) {
      at = &seg->next;
      continue;
    }
    *at = seg->next;
    seg->next = freed;
    freed = seg;
    kept--;
  }
  if (kept_newest != NULL) merge_locked(kept_newest);
  abandoned_count += kept;
  _lode_stat_add(&_lode_stats.segments_abandoned, NULL, kept);
  pthread_mutex_unlock(&abandoned_lock);
  while (freed != NULL) {
    lode_segment_t* seg = freed;
    freed = seg->next;
    seg->next = NULL;
    released += list_or_release(seg, tld->thread_id);
  }
  return released;
}

/* --- fork child: the parent's other threads' segments -------------------------
 * The child has only the forking thread.  Every other parent thread's
 * segment was marked LODE_THREAD_ID_FORKED (thread.c): those threads may have
 * been anywhere in lode at the fork.  A segment whose state shows no
 * operation caught half-way becomes an abandoned segment here, as its
 * thread's exit would have left it (A1, P5): the child reclaims it, and its
 * frees into it come back (review, 2026-12-06: 200k blocks of a live parent
 * thread freed in the child stayed lost; a freed 512 MiB block kept its
 * mapping).  One that fails any test stays FORKED: a leak, never a corrupt
 * segment handed on.
 *
 * V0: only the segment and its pages are read or written, never the dead
 *     thread's heaps, thread data or purge queue (a snapshot of a thread that
 *     may have been mid-update); its queues keep pointing at the pages, and
 *     nobody walks them.
 * V1: the segment is an owned one (not mid abandon, reclaim or a forced
 *     collect's detach), its cookie and map entry are in place, and
 *     used / committed count its in_use / is_committed pages.
 * V2: spans are whole: a head's span_count slices follow it with span_back
 *     1, 2, ...; a tail points back at an in-use head that covers it, and
 *     is flagged as a tail (free's fast path would take it for a page).
 * V3: a free page holds nothing (as check.c's S1), and is queued for a purge
 *     only with memory and an expiry.
 * V4: an in-use page is in a heap, on no purge queue, its block size,
 *     magic and carved bytes agree, its carved blocks fit its area, and its three lists walk
 *     block starts of the carved area, no block twice (no cycle, disjoint);
 *     free and local_free end at their tails; used + |free| + |local_free|
 *     == capacity, |thread_free| <= used.  A fast-path pop or push, a merge
 *     or a carve caught between its stores breaks one of these.  Blocks the
 *     dead thread held outside the page (its delayed-free list, a merge's
 *     detached chain, LODE_SECURE's quarantine) still count as used: their
 *     page never empties (a leak, as before). */
#define FORK_MARK_MAX 8192 /* blocks a page may have for its lists to be marked (every small page) */

/* V4 for one list: true with its length, marking its blocks in seen. */
static bool fork_list_ok(const lode_page_t* page, const lode_block_t* b, const lode_block_t* tail, uint64_t* seen,
                         uint32_t* len) {
  uint64_t carved = (uint64_t)page->capacity * page->block_size;
  const lode_block_t* last = NULL;
  uint32_t n = 0;
  while (b != NULL) {
    uint64_t off = (uint64_t)((const uint8_t*)b - page->area); /* below the area: wraps, fails */
    if (off >= carved || off % page->block_size != 0) return false;
    uint64_t i = off / page->block_size;
    if (seen[i / 64] >> (i % 64) & 1) return false; /* a cycle, or a block on two lists */
    seen[i / 64] |= (uint64_t)1 << (i % 64);
    n++;
    last = b;
    b = lode_block_next(page, b);
  }
  if (tail != NULL && last != NULL && last != tail) return false;
  *len = n;
  return true;
}

static bool fork_page_ok(const lode_segment_t* seg, uint32_t i) {
  const lode_page_t* page = &seg->pages[i];
  uint8_t flags = atomic_load_explicit(&page->flags, memory_order_relaxed);
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  const lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_relaxed);
  if (page->index != i || page->area == NULL || page->area < (const uint8_t*)seg ||
      page->area + page->area_size > (const uint8_t*)seg + seg->size)
    return false;
  if (!page->in_use) { /* V3 */
    return page->used == 0 && page->capacity == 0 && page->free == NULL && page->local_free == NULL && flags == 0 &&
           tf == 0 && heap == NULL && page->span_back == 0 && page->span_count == 0 &&
           (!page->on_purge_queue || (page->is_committed && page->purge_expire > 0));
  }
  if (page->on_purge_queue) return false;
  if (page->span_back != 0) { /* V2, a tail */
    const lode_page_t* head = page - page->span_back;
    return seg->kind == LODE_PAGE_LARGE && page->span_back <= i && head->in_use && head->span_back == 0 &&
           head->span_count > page->span_back && flags == LODE_PAGE_SPAN_TAIL;
  }
  if (page->span_count > 1) { /* V2, a head */
    if (seg->kind != LODE_PAGE_LARGE || i + page->span_count > seg->page_count) return false;
    for (uint32_t k = 1; k < page->span_count; k++)
      if (!page[k].in_use || page[k].span_back != k) return false;
  }
  /* V4 */
  if (heap == NULL || page->block_size == 0 || page->block_magic != lode_div_magic(page->block_size) ||
      page->carved != (uint64_t)page->capacity * page->block_size || (flags & LODE_PAGE_SPAN_TAIL) ||
      page->capacity > page->reserved || page->capacity > FORK_MARK_MAX || page->used > page->capacity ||
      (uint64_t)page->capacity * page->block_size > page->area_size)
    return false;
  if (seg->kind == LODE_PAGE_HUGE && (page->capacity != 1 || page->used != 1)) return false; /* mid-free */
  /* a free in flight holds the dead heap (_lode_pages_forget_freeing ran first: never, but not assumed) */
  if (lode_tf_delayed(tf) == LODE_DELAYED_FREEING) return false;
  uint64_t seen[FORK_MARK_MAX / 64];
  memset(seen, 0, ((size_t)page->capacity + 63) / 64 * sizeof(uint64_t));
  uint32_t nfree, nlocal, nthread;
  if (!fork_list_ok(page, page->free, page->free_tail, seen, &nfree) ||
      !fork_list_ok(page, page->local_free, page->local_free_tail, seen, &nlocal) ||
      !fork_list_ok(page, lode_tf_block(tf), NULL, seen, &nthread))
    return false;
  return (uint64_t)page->used + nfree + nlocal == page->capacity && nthread <= page->used;
}

/* V1 with V2-V4 for every page. */
static bool fork_segment_ok(const lode_segment_t* seg) {
  if (seg->is_abandoned || seg->tld == NULL || seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg) ||
      !_lode_segment_map_is_start(seg) || (unsigned)seg->kind >= LODE_PAGE_KINDS ||
      (seg->kind == LODE_PAGE_HUGE && seg->page_count != 1))
    return false;
  uint32_t used = 0, committed = 0;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    if (!fork_page_ok(seg, i)) return false;
    used += seg->pages[i].in_use;
    committed += seg->pages[i].is_committed;
  }
  return used == seg->used && committed == seg->committed;
}

/* As _lode_heap_abandon_all and _lode_segment_abandon leave a segment, by
 * V0 without the owner's structures: pages leave the dead heap and purge
 * queue by their own links only. */
static void fork_segment_abandon(lode_segment_t* seg) {
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    /* a claim caught between its commit and marking the page in use leaves
     * a committed free page still vouched zero (S1); the vouch goes, which
     * only costs a clear (review, 2026-12-07: stress fork, once) */
    if (!page->in_use && page->is_committed) page->area_zero = 0;
    if (page->on_purge_queue) {
      /* its expiry stays, for the adopter (as _lode_purge_queue_forget_segment) */
      page->purge_next = page->purge_prev = NULL;
      page->on_purge_queue = 0;
      _lode_stat_sub(&_lode_stats.pages_queued, 1);
    }
    if (!page->in_use || page->span_back != 0) continue;
    page->next = page->prev = NULL;
    page->retire_expire = 0;
    atomic_fetch_and_explicit(&page->flags, (uint8_t)~LODE_PAGE_IN_FULL, memory_order_relaxed);
    atomic_store_explicit(&page->heap, NULL, memory_order_release);
    /* no heap to push to: remote frees go to the page (F3); its list stays */
    uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    atomic_store_explicit(&page->thread_free, lode_tf_make(lode_tf_block(tf), LODE_DELAYED_NEVER),
                          memory_order_relaxed);
  }
  if (seg->used == 0) { /* nothing lives in it: released, as an exit does */
    _lode_segment_release(seg, NULL);
    return;
  }
  seg->tld = NULL;
  seg->is_abandoned = true;
  seg->abandoned_pages = seg->used;
  atomic_store_explicit(&seg->thread_id, 0, memory_order_release);
  _lode_stat_add(&_lode_stats.segments_abandoned_total, NULL, 1);
  (void)list_or_release(seg, _lode_thread_id());
}

size_t _lode_abandoned_fork_take(void) {
  size_t taken = 0;
  lode_segment_t* next;
  for (lode_segment_t* seg = _lode_segments_all(); seg != NULL; seg = next) {
    next = seg->all_next; /* a release unlinks seg */
    if (atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != LODE_THREAD_ID_FORKED) continue;
    if (!fork_segment_ok(seg)) continue;
    fork_segment_abandon(seg);
    taken++;
  }
  return taken;
}
