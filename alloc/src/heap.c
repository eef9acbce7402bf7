/* Heaps: the generic allocation path (find or make a page with a free block:
 * the heap's own pages, then abandoned segments of exited threads, then a new
 * segment), owner frees and page retirement, collect and the sweep, heap
 * delete and destroy, and a thread's final abandon. */
#include "internal.h"

void _lode_heap_init(lode_heap_t* heap, lode_tld_t* tld, bool backing) {
  memset(heap, 0, sizeof(*heap));
  heap->tld = tld;
  heap->is_backing = backing;
  for (size_t i = 0; i < LODE_DIRECT_COUNT; i++) heap->pages_direct[i] = &_lode_page_empty;
  for (size_t b = 0; b < LODE_BIN_COUNT; b++) heap->pages[b].block_size = b < LODE_BIN_HUGE ? lode_bin_size(b) : 0;
  heap->retired[0] = heap->retired[1] = 0;
}

static bool heap_is_mine(const lode_heap_t* heap) {
  return heap != NULL && heap->tld != NULL && heap->tld->thread_id == _lode_thread_id();
}

/* --- owner frees and retirement ------------------------------------------- */
/* wiped: every block of the page went back through a free (LODE_SECURE
 * wiped each), not a heap destroy: its area can be vouched for as zero. */
static void page_free_to_segment(lode_page_t* page, lode_heap_t* heap, bool wiped) {
  _lode_queue_remove(heap, _lode_page_queue_of(heap, page), page);
  heap->page_count--;
#ifdef LODE_SECURE
  wiped = wiped && _lode_page_scrub(page);
#else
  wiped = false;
#endif
  uint32_t slices = _lode_segment_page_free(page, heap->tld, wiped);
  if (slices != 0) _lode_purge_schedule(heap->tld, page, slices, 0);
}

/* The rest of _lode_heap_page_retire: a page out of the full queue (then
 * perhaps its bin's only page), or one that leaves its heap. */
static lode_noinline void page_retire_slow(lode_page_t* page, lode_heap_t* heap) {
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL) {
    _lode_queue_from_full(heap, page);
    /* out of the full queue it may be its bin's only page */
    if (page->retire_ticks != 0 && heap->pages[page->bin].first == page && page->next == NULL) {
      page->retire_expire = page->retire_ticks;
      heap->retired[page->bin >> 6] |= (uint64_t)1 << (page->bin & 63);
      return;
    }
  }
  /* a free's: it leaves errno alone (POSIX.1-2024; glibc since 2.33), and
   * a purge the OS refuses here (decommit's mprotect at the mapping limit)
   * would set it */
  int e = errno;
  page_free_to_segment(page, heap, true);
  errno = e;
}

/* An empty page leaves its heap, unless it is the only page of a small bin:
 * then it stays a few generic allocations, so alloc/free of one block in a
 * loop does not map and purge a page each time.  That case makes no call
 * (such a loop retires at every free). */
void _lode_heap_page_retire(lode_page_t* page) {
  lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_relaxed);
  lode_assert(page->used == 0 && heap != NULL);
  uint32_t bin = page->bin;
  /* (a page in the full queue is not its bin's first) */
  if (lode_likely(page->retire_ticks != 0 && heap->pages[bin].first == page && page->next == NULL)) {
    page->retire_expire = page->retire_ticks;
    heap->retired[bin >> 6] |= (uint64_t)1 << (bin & 63);
    return;
  }
  page_retire_slow(page, heap);
}

void _lode_heap_free_block(lode_page_t* page, lode_block_t* block) {
  if (page->local_free == NULL) page->local_free_tail = block;
  lode_block_set_next(page, block, page->local_free);
  page->local_free = block;
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL) {
    lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_relaxed);
    _lode_queue_from_full(heap, page);
  }
  if (--page->used == 0) _lode_heap_page_retire(page);
}

/* Blocks that remote threads freed into this heap's full pages.
 * LODE_SECURE, `quarantine` (a malloc's): fresh ones go to the quarantine. */
static void heap_delayed_free_all_ex(lode_heap_t* heap, bool quarantine) {
  if (atomic_load_explicit(&heap->thread_delayed, memory_order_relaxed) == NULL) return;
  lode_block_t* b = atomic_exchange_explicit(&heap->thread_delayed, NULL, memory_order_acquire);
  while (b != NULL) {
    lode_block_t* next = b->next;
    lode_segment_t* seg = _lode_segment_map_lookup(b);
    lode_page_t* page = _lode_segment_page_of(seg, b);
#ifdef LODE_SECURE
    void* out[2];
    size_t n = 0;
    if (quarantine && _lode_page_quarantine_remote(page, b, &heap->tld->quarantine, out, &n)) {
      for (size_t i = 0; i < n; i++) _lode_heap_quarantine_release(out[i]);
      b = next;
      continue;
    }
#else
    (void)quarantine;
#endif
    _lode_heap_free_block(page, b);
    b = next;
  }
}

/* Retained empty pages (see _lode_heap_page_retire) leave after a few ticks,
 * or at once when forced. */
static void heap_collect_retired(lode_heap_t* heap, bool force) {
  if ((heap->retired[0] | heap->retired[1]) == 0) return;
  for (size_t w = 0; w < 2; w++) {
    uint64_t bits = heap->retired[w];
    heap->retired[w] = 0;
    while (bits != 0) {
      size_t bin = w * 64 + (size_t)__builtin_ctzll(bits);
      bits &= bits - 1;
      lode_page_t* page = heap->pages[bin].first;
      if (page == NULL || page->retire_expire == 0) continue;
      if (page->used != 0) {
        page->retire_expire = 0;
        continue;
      }
      if (force || --page->retire_expire == 0) page_free_to_segment(page, heap, true);
      else heap->retired[w] |= (uint64_t)1 << (bin & 63);
    }
  }
}

/* --- visiting pages ---------------------------------------------------------- */
typedef void (*page_visitor)(lode_heap_t* heap, lode_page_t* page, void* arg);

static void heap_visit_pages(lode_heap_t* heap, page_visitor fn, void* arg) {
  for (size_t b = 0; b < LODE_BIN_COUNT; b++) {
    lode_page_t* page = heap->pages[b].first;
    while (page != NULL) {
      lode_page_t* next = page->next; /* fn may unlink the page */
      fn(heap, page, arg);
      page = next;
    }
  }
}

static void visit_set_never(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)heap;
  if (!_lode_page_set_delayed(page, LODE_DELAYED_NEVER, false)) *(bool*)arg = false;
}

/* After this no remote thread can push to heap->thread_delayed any more.
 * False when a remote free in flight never finished (_lode_page_set_delayed):
 * the heap's memory must then stay, for the push may still come.
 * LODE_SECURE, `quarantine`: fresh ones go to the quarantine. */
static bool heap_stop_delayed(lode_heap_t* heap, bool quarantine) {
  bool settled = true;
  heap_visit_pages(heap, visit_set_never, &settled);
  heap_delayed_free_all_ex(heap, quarantine);
  return settled;
}

/* An empty page retires as a free would retire it: a non-forced collect
 * keeps its bin's only page (xthread collects every 256 of a producer's
 * mallocs, and freeing each bin's page there made the next malloc of every
 * size it had used claim, carve and later purge a fresh one: 19,000 page
 * lives a run, a tenth of its time).  Each collect ages a retired page by a
 * quarter of its ticks, so four collects of a thread that allocates no
 * more give it back (review: an idle thread's collects kept them for good). */
static void visit_collect(lode_heap_t* heap, lode_page_t* page, void* arg) {
  bool force = *(bool*)arg;
  _lode_page_collect(page, force);
  if (page->used == 0) {
    if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL)
      _lode_queue_from_full(heap, page);
    uint32_t age = page->retire_ticks / 4u + 1u;
    if (force || page->retire_ticks == 0 || heap->pages[page->bin].first != page || page->next != NULL ||
        (page->retire_expire != 0 && page->retire_expire <= age)) {
      page_free_to_segment(page, heap, true);
      return;
    }
    page->retire_expire = page->retire_expire == 0 ? page->retire_ticks : (uint8_t)(page->retire_expire - age);
    heap->retired[page->bin >> 6] |= (uint64_t)1 << (page->bin & 63);
    return;
  }
  page->retire_expire = 0; /* in use: not retired (a fast malloc took it back) */
  if ((atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL) && page->free != NULL &&
      page->bin != LODE_BIN_HUGE)
    _lode_queue_from_full(heap, page);
}

/* The sweep: as a non-forced collect of the heap's pages, but the page each
 * bin allocates from stays (its own mallocs collect it; retiring decides). */
static void visit_sweep(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  bool in_full = atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL;
  if (!in_full && page->bin < LODE_BIN_HUGE && heap->pages[page->bin].first == page) return;
#ifdef LODE_SECURE
  _lode_page_collect_owned(page, &heap->tld->quarantine); /* as heap_quarantine_remote */
#endif
  bool force = false;
  visit_collect(heap, page, &force);
}

/* Blocks other threads free are merged into a page only when its bin looks at
 * it, and a bin looks at its first pages only: a page further down (adopted
 * from an exited thread, absorbed from a deleted heap) whose blocks all went
 * that way stays in use, written memory with nothing live.  The generic malloc
 * path sweeps every so often (heap.sweep_ticks). */
static void heap_sweep(lode_heap_t* heap) {
  heap->sweep_ticks = 0;
  heap_visit_pages(heap, visit_sweep, NULL);
}

/* LODE_SECURE: the fresh remote frees of every page to the quarantine
 * (review, 2026-12-08: a non-forced collect, the sweep and a thread's exit
 * put them on the free lists, the next blocks handed out).  Before the
 * visit that retires emptied pages: it merges what the pushes sent home. */
#ifdef LODE_SECURE
static void visit_quarantine_remote(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  _lode_page_collect_owned(page, &heap->tld->quarantine);
}
#endif

static void heap_quarantine_remote(lode_heap_t* heap) {
#ifdef LODE_SECURE
  heap_visit_pages(heap, visit_quarantine_remote, NULL);
#else
  (void)heap;
#endif
}

/* --- collect ------------------------------------------------------------------- */
static void heap_collect_pages(lode_heap_t* heap, bool force) {
  heap_delayed_free_all_ex(heap, !force);
  if (!force) heap_quarantine_remote(heap);
  heap_visit_pages(heap, visit_collect, &force);
  if (force) heap->retired[0] = heap->retired[1] = 0; /* (none left) */
}

/* --- LODE_SECURE quarantine: blocks leaving it ---------------------------- */
/* Only the owner's own blocks enter it (alloc.c), and its segments stay its
 * own while it lives: the block goes back as an owner free.  A block whose
 * wipe does not hold any more was written after its free: reported, and kept
 * out of the free lists. */
void _lode_heap_quarantine_release(void* block) {
#ifdef LODE_SECURE
  lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(block), block);
  if (!_lode_block_is_wiped(page, block)) {
    _lode_error_block("free", "write after free", block, page->block_size);
    _lode_block_retire(page, block);
    return;
  }
  _lode_block_verified(page, block);
  _lode_heap_free_block(page, block);
#else
  (void)block;
#endif
}

void _lode_heap_quarantine_flush(lode_tld_t* tld) {
#ifdef LODE_SECURE
  void* b;
  while ((b = _lode_quarantine_pop(&tld->quarantine)) != NULL) _lode_heap_quarantine_release(b);
#else
  (void)tld;
#endif
}

void _lode_heap_collect_ex(lode_heap_t* heap, bool force) {
  lode_tld_t* tld = heap->tld;
  if (tld == NULL) return;
  uint64_t refusals = tld->purge_refusals;
  /* forced: everything freed goes back, quarantined blocks too */
  if (force) {
    _lode_heap_quarantine_flush(tld);
#ifdef LODE_SECURE
    _lode_quarantine_restart(&tld->quarantine);
#endif
  }
  if (heap->is_backing) {
    for (lode_heap_t* h = tld->heaps; h != NULL; h = h->next) heap_collect_pages(h, force);
  } else {
    heap_collect_pages(heap, force);
  }
  int64_t now = _lode_clock_now();
  /* Forced: empty segments go first, whole.  Purging frees no block, so no
   * segment empties after this. */
  if (force) _lode_purge_release_empty_segments(tld);
  _lode_purge_queue_run(tld, force, now);
  /* (forced only: a global lock every collect would be a hand-off point) */
  uint64_t abandons = force ? _lode_abandoned_pushes() : 0; /* before the list is taken: a later one voids the mark */
  if (force) {
    _lode_purge_all_free(tld);
    _lode_abandoned_release_empty(tld);
  }
  _lode_segment_cache_collect(force);
  /* a purge the OS refused leaves a free page committed: the collect
   * promises only what a non-forced one does (P4) */
  tld->mark.kind = force && tld->purge_refusals == refusals ? 2 : 1;
  tld->mark.time = now;
  tld->mark.queue_pushes = tld->queue_pushes;
  tld->mark.page_frees = tld->page_frees;
  tld->mark.adoptions = tld->adoptions;
  tld->mark.warm_takes = tld->warm_takes;
  tld->mark.abandons = abandons;
}

void lode_heap_collect(lode_heap_t* heap, bool force) {
  if (!heap_is_mine(heap)) return;
  _lode_heap_collect_ex(heap, force);
}

/* --- new / delete / destroy ------------------------------------------------ */
lode_heap_t* _lode_heap_new_in(lode_heap_t* backing) {
  lode_heap_t* heap = _lode_heap_malloc_generic(backing, sizeof(lode_heap_t) + LODE_TRAILER_SIZE);
  if (heap == NULL) return NULL;
#ifdef LODE_SECURE
  /* a block like the program's: its neighbours' checks read its trailer */
  lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(heap), heap);
  if (!_lode_block_handout(page, (uint8_t*)heap, sizeof(lode_heap_t), LODE_KIND_MALLOC, page->free_is_zero)) {
    _lode_error_block("lode_heap_new", "write after free (a freed block changed)", heap, page->block_size);
    errno = ENOMEM;
    return NULL; /* the block stays out: it is not what lode left */
  }
#endif
  _lode_heap_init(heap, backing->tld, false);
  heap->next = backing->next;
  heap->prev = backing;
  if (backing->next != NULL) backing->next->prev = heap;
  backing->next = heap;
  return heap;
}

/* The heap's own memory, a block of its thread's backing heap.  Kept for
 * good when a remote free in flight never finished: its push may still land
 * in it (a leak of one heap, where freeing it would corrupt a block). */
static void heap_free_struct(lode_heap_t* heap, bool settled) {
  if (!settled) return;
  lode_segment_t* seg = _lode_ptr_segment(heap);
  lode_page_t* page = _lode_segment_page_of(seg, heap);
#ifdef LODE_SECURE
  _lode_block_wipe(page, (uint8_t*)heap, sizeof(lode_heap_t));
#endif
  _lode_heap_free_block(page, (lode_block_t*)heap);
}

static void heap_unlink(lode_heap_t* heap) {
  heap->prev->next = heap->next;
  if (heap->next != NULL) heap->next->prev = heap->prev;
  heap->next = heap->prev = NULL;
}

static void visit_adopt(lode_heap_t* from, lode_page_t* page, void* arg) {
  lode_heap_t* to = arg;
  _lode_queue_remove(from, _lode_page_queue_of(from, page), page);
  atomic_store_explicit(&page->heap, to, memory_order_release);
  page->retire_expire = 0;
  _lode_queue_push_back(to, _lode_page_queue_of(to, page), page);
  bool full = atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL;
  _lode_page_set_delayed(page, full ? LODE_DELAYED_USE : LODE_DELAYED_NO, true);
  from->page_count--;
  to->page_count++;
  /* An empty page (`from` kept it as its bin's only one) retires in `to` as
   * a free would: moved with no count and no retired bit, it stayed in use
   * for good as the first page of a bin `to` does not allocate from (the
   * sweep passes a bin's first page). */
  if (page->used == 0) _lode_heap_page_retire(page);
}

/* Move every page of `from` to `to` (same thread). */
static bool heap_absorb(lode_heap_t* to, lode_heap_t* from) {
  bool settled = heap_stop_delayed(from, false);
  heap_visit_pages(from, visit_adopt, to);
  return settled;
}

void lode_heap_delete(lode_heap_t* heap) {
  if (!heap_is_mine(heap) || heap->is_backing) return;
  _lode_heap_quarantine_flush(heap->tld);
  lode_heap_t* backing = &heap->tld->heap_backing;
  bool settled = heap_absorb(backing, heap);
  heap_unlink(heap);
  heap_free_struct(heap, settled);
}

static void visit_destroy(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  page->used = 0; /* every block of the page dies with the heap */
#ifdef LODE_SECURE
  /* unfreed, they get the wipe a free gives: what they held must not
   * outlive them (a dangling pointer's read, a checked memcpy's) */
  _lode_wipe_range(page->area, (size_t)page->capacity * page->block_size);
  page_free_to_segment(page, heap, true);
#else
  page_free_to_segment(page, heap, false);
#endif
}

void lode_heap_destroy(lode_heap_t* heap) {
  if (!heap_is_mine(heap) || heap->is_backing) return;
  /* its blocks in the quarantine die with it; the others' wait no more */
  _lode_heap_quarantine_flush(heap->tld);
  bool settled = heap_stop_delayed(heap, false);
  heap_visit_pages(heap, visit_destroy, NULL);
  heap_unlink(heap);
  heap_free_struct(heap, settled);
}

bool lode_heap_owns(const lode_heap_t* heap, const void* p) {
  if (heap == NULL || p == NULL) return false;
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  if (seg == NULL) return false;
  lode_page_t* page = _lode_segment_page_of(seg, p);
  return page->in_use && atomic_load_explicit(&page->heap, memory_order_relaxed) == heap &&
         (const uint8_t*)p >= page->area && (const uint8_t*)p < page->area + page->area_size;
}

/* --- thread exit ------------------------------------------------------------ */
static void visit_orphan(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  _lode_page_collect(page, false);
  if (page->used == 0) {
    if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL)
      _lode_queue_from_full(heap, page);
    page_free_to_segment(page, heap, true);
    return;
  }
  _lode_queue_remove(heap, _lode_page_queue_of(heap, page), page);
  atomic_fetch_and_explicit(&page->flags, (uint8_t)~LODE_PAGE_IN_FULL, memory_order_relaxed);
  page->retire_expire = 0;
  heap->page_count--;
  atomic_store_explicit(&page->heap, NULL, memory_order_release);
}

/* LODE_SECURE, the thread exiting: its quarantine's blocks go back as
 * remote frees, unchecked, to wait in the quarantine of the thread that
 * adopts their pages (segment_collect_pages).  Flushed to the free lists
 * instead, they and the remote frees the exit merged were the next blocks
 * handed out there: a large block's page, emptied, at once (review,
 * 2026-12-08).  Their pages count them live, so they are abandoned. */
static void quarantine_hand_over(lode_tld_t* tld) {
#ifdef LODE_SECURE
  void* b;
  while ((b = _lode_quarantine_pop(&tld->quarantine)) != NULL)
    _lode_page_free_remote(_lode_segment_page_of(_lode_ptr_segment(b), b), b);
#else
  (void)tld;
#endif
}

/* The thread is exiting: heaps fold into the backing heap, empty pages go
 * back, and every segment still holding a live block is abandoned.  False
 * when a remote free in flight never finished: tld must then stay. */
bool _lode_heap_abandon_all(lode_tld_t* tld) {
  lode_heap_t* backing = &tld->heap_backing;
  bool settled = true;
  while (backing->next != NULL) {
    lode_heap_t* h = backing->next;
    bool s = heap_absorb(backing, h);
    backing->next = h->next;
    if (h->next != NULL) h->next->prev = backing;
    heap_free_struct(h, s);
    settled = settled && s;
  }
  settled = heap_stop_delayed(backing, true) && settled;
  heap_quarantine_remote(backing);
  heap_visit_pages(backing, visit_orphan, NULL);
  quarantine_hand_over(tld);
  /* What is due goes now: no owner will run this queue again. */
  int64_t now = _lode_clock_now();
  if (_lode_purge_queue_due(tld, now)) _lode_purge_queue_run(tld, false, now);
  for (int k = 0; k < LODE_PAGE_KINDS; k++) {
    lode_segment_t* seg;
    while ((seg = tld->segments[k].first) != NULL) _lode_segment_abandon(seg, tld);
  }
  lode_assert(tld->purge.first == NULL && tld->purge.count == 0);
  return settled;
}

/* --- generic allocation ---------------------------------------------------- */
static lode_page_kind_t kind_of_size(size_t bsize) {
  if (bsize <= LODE_SMALL_OBJ_MAX) return LODE_PAGE_SMALL;
  if (bsize <= LODE_MEDIUM_OBJ_MAX) return LODE_PAGE_MEDIUM;
  return LODE_PAGE_LARGE;
}

#define RECLAIM_TURNS 8 /* abandoned segments one reclaim takes at most */

#ifdef LODE_SIM
/* A6, the simulation's oracle of page_take: no segment is mapped while one
 * the thread owns, or one abandoned before its reclaim began (among those a
 * reclaim looks at, the reclaim not out of turns), could hold the block.
 * Such a map wastes a segment's memory that no state check sees (mutant
 * 128: a reclaim that stopped at a segment too holed for the block).  Real
 * threads cannot ask: another may abandon a fitting segment meanwhile; in
 * the simulation a push during a parked reclaim voids the question.  The
 * turns are the thread's adoptions, not the list's length: a forced
 * collect's merge, during a park, puts segments back (review). */
static size_t fresh_errors;
static const void* fresh_first;

static void fresh_check(lode_tld_t* tld, lode_page_kind_t kind, size_t bsize, uint64_t pushes, uint64_t adoptions) {
  const lode_segment_t* fit = NULL;
  /* the search's bounds (_lode_segment_page_find): 16 segments with free
   * slices enough, 256 in all */
  uint32_t need = (uint32_t)(bsize >> LODE_SMALL_PAGE_SHIFT);
  size_t tried = 0, walked = 0;
  for (lode_segment_t* seg = tld->segments[kind].first; seg != NULL && fit == NULL && tried < 16 && walked < 256;
       seg = seg->next, walked++) {
    if (seg->page_count - seg->used < need) continue;
    if (_lode_segment_fits(seg, bsize)) fit = seg;
    tried++;
  }
  if (fit == NULL && _lode_abandoned_pushes() == pushes && tld->adoptions - adoptions < RECLAIM_TURNS)
    fit = _lode_abandoned_fitting(kind, bsize);
  if (fit != NULL && fresh_errors++ == 0) fresh_first = fit;
}

size_t _lode_heap_fresh_errors(const void** first) {
  *first = fresh_first;
  return fresh_errors;
}
#endif

/* A free page for a block of bsize, claimed: from the thread's segments,
 * else from abandoned segments of exited threads (before mapping more), else
 * from a new segment.  NULL with *adopted set when a reclaim put pages of
 * `bin` into the heap: they come first (their freed blocks are memory already
 * written), else each thread that followed an exited one carved a fresh page
 * of the bin beside the adopted ones (gthread, one thread at a time: 211
 * pages at the peak for 64 in use). */
static lode_page_t* page_take(lode_heap_t* heap, lode_page_kind_t kind, size_t bsize, size_t bin, bool* adopted) {
  lode_tld_t* tld = heap->tld;
  uint32_t slices = 1;
  lode_page_t* page = _lode_segment_page_find(tld, kind, bsize, &slices);
#ifdef LODE_SIM
  uint64_t pushes = _lode_abandoned_pushes(), adoptions = tld->adoptions;
#endif
  if (page == NULL) {
    _lode_abandoned_reclaim_for(heap, kind, bsize, RECLAIM_TURNS);
    if (bin < LODE_BIN_HUGE && heap->pages[bin].first != NULL) {
      *adopted = true;
      return NULL;
    }
    page = _lode_segment_page_find(tld, kind, bsize, &slices);
  }
  bool fresh = false;
  if (page == NULL) {
#ifdef LODE_SIM
    fresh_check(tld, kind, bsize, pushes, adoptions);
#endif
    if (_lode_segment_alloc(tld, kind) == NULL) return NULL;
    page = _lode_segment_page_find(tld, kind, bsize, &slices);
    fresh = true;
    lode_assert(page != NULL);
  }
  lode_segment_t* seg = _lode_page_segment(page);
  _lode_purge_queue_take(tld, page, slices); /* P3 */
  bool ok = _lode_segment_claim(tld, page, slices);
  /* A cached mapping's warm pages, or slices a failed claim committed:
   * committed free pages the purge policy must know of. */
  bool released = (fresh || !ok) && _lode_purge_schedule_segment(tld, seg);
  if (ok) return page;
  /* Those slices are free pages newer than the last collect: a forced one
   * promised nothing of them (with a negative delay they stay committed
   * until the next; the checker took them for its broken promise, P4). */
  tld->page_frees++;
  LODE_POINT(LODE_POINT_CLAIM_FAILED, released ? NULL : seg);
  if (!released) _lode_segment_try_release(seg, tld);
  return NULL;
}

static lode_page_t* heap_fresh_page(lode_heap_t* heap, size_t bin, bool* adopted) {
  size_t bsize = lode_bin_size(bin);
  lode_page_t* page = page_take(heap, kind_of_size(bsize), bsize, bin, adopted);
  if (page == NULL) return NULL;
  _lode_page_init(page, bsize);
  atomic_store_explicit(&page->heap, heap, memory_order_release);
  _lode_queue_push_front(heap, &heap->pages[bin], page);
  heap->page_count++;
  _lode_page_extend(page);
  return page;
}

/* How many pages that could carve more a search passes over for a page with
 * free blocks before it carves. */
#define FIND_CARVE_SKIP 8

/* The bin's page to allocate from: the first with free blocks (after merging
 * its frees), else one that can carve more, else a fresh one.  Free blocks
 * come before carving: pages adopted from exited threads, or left by blocks
 * handed to other threads, hold freed blocks in memory already touched, and
 * carving the front page instead touched new memory for each (with threads
 * that come and go, rptest peaked at 62 MiB instead of 37, gthread 26 / 22).
 * Full pages go to the full queue on the way. */
static lode_page_t* bin_find_page(lode_heap_t* heap, size_t bin) {
  lode_page_queue_t* q = &heap->pages[bin];
  lode_page_t* page = q->first;
  lode_page_t* carve = NULL;
  size_t skipped = 0;
  while (page != NULL) {
    lode_page_t* next = page->next;
    _lode_page_collect_owned(page, lode_tld_quarantine(heap->tld));
    if (page->free != NULL) break;
    if (page->capacity < page->reserved) {
      if (carve == NULL) carve = page;
      if (++skipped >= FIND_CARVE_SKIP) break;
      page = next;
      continue;
    }
    /* Full: ask for notice of the next remote free, then look once more in
     * case one slipped in before the notice was on. */
    _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
    _lode_page_collect_owned(page, lode_tld_quarantine(heap->tld));
    if (page->free != NULL) {
      _lode_page_set_delayed(page, LODE_DELAYED_NO, false);
      break; /* it is q's candidate after all */
    }
    _lode_queue_to_full(heap, page);
    page = next;
  }
  if (page == NULL || page->free == NULL) page = carve;
  if (page == NULL) return NULL;
  if (page->free == NULL && !_lode_page_extend(page)) lode_assert(!"a page that could carve did not");
  page->retire_expire = 0;
  if (q->first != page) {
    _lode_queue_remove(heap, q, page);
    _lode_queue_push_front(heap, q, page);
  }
  return page;
}

/* Each round adopts at least one abandoned segment, so the loop ends. */
static lode_page_t* heap_find_page(lode_heap_t* heap, size_t bin) {
  for (;;) {
    lode_page_t* page = bin_find_page(heap, bin);
    if (page != NULL) return page;
    bool adopted = false;
    page = heap_fresh_page(heap, bin, &adopted);
    if (!adopted) return page;
  }
}

/* realloc of a huge block past its room, on its owner thread, within its
 * heap: the mapping moves (mremap) instead of a malloc, a copy and a free.
 * The block's new address, or NULL when it cannot (it stays where it was). */
void* _lode_heap_huge_remap(lode_heap_t* heap, lode_page_t* page, size_t newsize) {
  lode_assert(atomic_load_explicit(&page->heap, memory_order_relaxed) == heap && heap->tld != NULL);
  lode_page_queue_t* q = _lode_page_queue_of(heap, page);
  _lode_queue_remove(heap, q, page);
  lode_page_t* moved = _lode_segment_huge_remap(heap->tld, page, newsize);
  bool full = q == &heap->pages[LODE_BIN_FULL];
  _lode_queue_push_back(heap, &heap->pages[full ? LODE_BIN_FULL : LODE_BIN_HUGE], moved != NULL ? moved : page);
  return moved != NULL ? moved->area : NULL;
}

/* realloc of a large block on its owner thread, within its heap: when the
 * slices after its span are free, the span takes them and the block grows
 * where it is, with no copy and no second block (the realloc workload
 * found room in 58 % of its large grows).  *zero: the memory it grew into
 * reads as zero.  False when they are not free, or a commit failed; the
 * block is then as it was. */
bool _lode_heap_large_grow(lode_heap_t* heap, lode_page_t* page, size_t newsize, bool* zero) {
  lode_assert(atomic_load_explicit(&page->heap, memory_order_relaxed) == heap && heap->tld != NULL);
  if (page->capacity != 1 || page->used != 1) return false;
  size_t bsize = lode_bin_size(lode_bin_of(newsize));
  if (bsize <= page->block_size) return false;
  if (bsize <= page->area_size) {
    /* the span holds the new class already (its last slice had room): a
     * move would have copied the block into a second span */
    *zero = false; /* an earlier, larger block of the span may have written there */
  } else {
    uint32_t extra = _lode_segment_span_room(page, bsize);
    if (extra == 0) return false;
    lode_tld_t* tld = heap->tld;
    uint32_t n = page->span_count ? page->span_count : 1;
    _lode_purge_queue_take(tld, page + n, extra); /* P3 */
    if (!_lode_segment_span_extend(tld, page, extra, zero)) {
      /* slices it committed are free pages newer than the last collect, as
       * a failed claim's (page_take): that collect promised nothing of them
       * (P4; kept committed with a negative delay) */
      tld->page_frees++;
      _lode_purge_schedule_segment(tld, _lode_page_segment(page));
      return false;
    }
  }
  bool full = atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL;
  if (!full) _lode_queue_remove(heap, &heap->pages[page->bin], page);
  _lode_page_regrow(page, bsize);
  if (!full) _lode_queue_push_back(heap, &heap->pages[page->bin], page);
  return true;
}

lode_page_t* _lode_heap_huge_page(lode_heap_t* heap, size_t size, size_t alignment) {
  size_t bsize;
  lode_page_t* page = _lode_segment_huge_alloc(heap->tld, size, alignment, &bsize);
  if (page == NULL) return NULL;
  _lode_page_init(page, bsize); /* the size it committed */
  atomic_store_explicit(&page->heap, heap, memory_order_release);
  _lode_queue_push_front(heap, &heap->pages[LODE_BIN_HUGE], page);
  heap->page_count++;
  _lode_page_extend(page);
  return page;
}

void* _lode_heap_malloc_generic(lode_heap_t* heap, size_t size) {
  lode_assert(heap->tld != NULL);
  if (lode_unlikely(size > LODE_MAX_ALLOC_SIZE)) {
    errno = ENOMEM;
    return NULL;
  }
  lode_tld_t* tld = heap->tld;
  heap_delayed_free_all_ex(heap, true);
  heap_collect_retired(heap, false);
  /* A sweep after 64 generic mallocs plus one per page of the heap: a page
   * visit per generic malloc at most, amortized. */
  if (lode_unlikely(++heap->sweep_ticks >= 64 + heap->page_count)) heap_sweep(heap);
  /* The pages a deleted heap left in the backing heap are swept by the
   * backing heap alone, and a program of per-request heaps hardly allocates
   * from it (one generic malloc per lode_heap_new, while its page count
   * grows by the request's pages): other threads' frees into those pages
   * were never merged, and memory grew without bound (review, 2026-12-06:
   * 2.1 GB after 500 requests, nothing live).  Every heap's generic mallocs
   * tick the backing heap's sweep too. */
  if (!heap->is_backing) {
    lode_heap_t* backing = &tld->heap_backing;
    if (lode_unlikely(++backing->sweep_ticks >= 64 + backing->page_count)) heap_sweep(backing);
  }
  /* Expired purges run here too, but reading the clock costs as much as a
   * malloc: only when something is queued, and every 8th time.  Late purges
   * are fine; early ones are not (P6). */
  /* (the tick first: the cache's expiry is a global, read one time in 8) */
  /* So do stale segments of exited threads (_lode_abandoned_reclaim_stale). */
  if ((++tld->purge_ticks & 7) == 0 &&
      (tld->purge.first != NULL || _lode_segment_cache_expiring() || _lode_abandoned_waiting())) {
    int64_t now = _lode_clock_now();
    _lode_abandoned_reclaim_stale(tld, now);
    if (_lode_purge_queue_due(tld, now)) _lode_purge_queue_run(tld, false, now);
    if (_lode_segment_cache_due(now)) _lode_segment_cache_collect(false);
  }

  size_t bin = lode_bin_of(size);
  lode_page_t* page = bin == LODE_BIN_HUGE ? _lode_heap_huge_page(heap, size, 0) : heap_find_page(heap, bin);
  if (lode_unlikely(page == NULL)) {
    /* Out of memory: give back what this thread holds, then try once more. */
    _lode_heap_collect_ex(heap, true);
    page = bin == LODE_BIN_HUGE ? _lode_heap_huge_page(heap, size, 0) : heap_find_page(heap, bin);
    if (page == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  lode_block_t* block = lode_page_pop(page);
  lode_assert_expensive(_lode_page_accounting_ok(page));
  if (bin == LODE_BIN_HUGE) {
    _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
    _lode_queue_to_full(heap, page);
  }
  return block;
}
