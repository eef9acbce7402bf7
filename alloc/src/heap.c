/* Heaps: creation, delete (blocks move to the backing heap), destroy (all
 * blocks freed at once), collect, and a thread's final abandon. */
#include "internal.h"

#define EMPTY1 &_lode_page_empty
#define EMPTY8 EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1
#define EMPTY64 EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8

lode_page_t _lode_page_empty;
/* The heap of a thread that has not allocated yet: its direct table points at
 * a page with no free block, so the first malloc takes the generic path. */
lode_heap_t _lode_heap_empty = {.tld = NULL, .pages_direct = {EMPTY64, EMPTY64, EMPTY1}};

_Static_assert(LODE_DIRECT_COUNT == 129, "pages_direct initialiser size");

void _lode_heap_init(lode_heap_t* heap, lode_tld_t* tld, bool backing) {
  memset(heap, 0, sizeof(*heap));
  heap->tld = tld;
  heap->is_backing = backing;
  for (size_t i = 0; i < LODE_DIRECT_COUNT; i++) heap->pages_direct[i] = &_lode_page_empty;
  for (size_t b = 0; b < LODE_BIN_COUNT; b++) heap->pages[b].block_size = b < LODE_BIN_HUGE ? lode_bin_size(b) : 0;
  heap->retired_min = LODE_BIN_FULL;
  heap->retired_max = 0;
}

static bool heap_is_mine(const lode_heap_t* heap) {
  return heap != NULL && heap->tld != NULL && heap->tld->thread_id == _lode_thread_id();
}

/* Blocks that remote threads freed into this heap's full pages. */
void _lode_heap_delayed_free_all(lode_heap_t* heap) {
  if (atomic_load_explicit(&heap->thread_delayed, memory_order_relaxed) == NULL) return;
  lode_block_t* b = atomic_exchange_explicit(&heap->thread_delayed, NULL, memory_order_acquire);
  while (b != NULL) {
    lode_block_t* next = b->next;
    lode_segment_t* seg = _lode_segment_map_lookup(b);
    _lode_page_free_block_owned(_lode_segment_page_of(seg, b), b);
    b = next;
  }
}

/* Retained empty pages (see _lode_page_retire) leave after a few ticks, or
 * at once when forced. */
void _lode_heap_collect_retired(lode_heap_t* heap, bool force) {
  if (heap->retired_min > heap->retired_max) return;
  size_t min = LODE_BIN_FULL, max = 0;
  for (size_t bin = heap->retired_min; bin <= heap->retired_max; bin++) {
    lode_page_t* page = heap->pages[bin].first;
    if (page == NULL || page->retire_expire == 0) continue;
    if (page->used != 0) {
      page->retire_expire = 0;
      continue;
    }
    if (force || --page->retire_expire == 0) {
      _lode_page_free_to_segment(page, heap);
    } else {
      if (bin < min) min = bin;
      if (bin > max) max = bin;
    }
  }
  heap->retired_min = min;
  heap->retired_max = max;
}

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
  (void)heap; (void)arg;
  _lode_page_set_delayed(page, LODE_DELAYED_NEVER, false);
}

/* After this no remote thread can push to heap->thread_delayed any more. */
static void heap_stop_delayed(lode_heap_t* heap) {
  heap_visit_pages(heap, visit_set_never, NULL);
  _lode_heap_delayed_free_all(heap);
}

static void visit_collect(lode_heap_t* heap, lode_page_t* page, void* arg) {
  bool force = *(bool*)arg;
  _lode_page_collect(page, force);
  if (page->used == 0) {
    if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL)
      _lode_queue_from_full(heap, page);
    _lode_page_free_to_segment(page, heap);
  } else if ((atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL) &&
             page->free != NULL && page->bin != LODE_BIN_HUGE) {
    _lode_queue_from_full(heap, page);
  }
}

/* The sweep: as a non-forced collect of the heap's pages, but the page each
 * bin allocates from stays (its own mallocs collect it; retiring decides). */
static void visit_sweep(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  bool in_full = atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL;
  if (!in_full && page->bin < LODE_BIN_HUGE && heap->pages[page->bin].first == page) return;
  bool force = false;
  visit_collect(heap, page, &force);
}

/* Blocks other threads free are merged into a page only when its bin looks at
 * it, and a bin looks at its first pages only: a page further down (adopted
 * from an exited thread, absorbed from a deleted heap) whose blocks all went
 * that way stays in use, written memory with nothing live.  The generic malloc
 * path sweeps every so often (heap.sweep_ticks). */
void _lode_heap_sweep(lode_heap_t* heap) {
  heap->sweep_ticks = 0;
  heap_visit_pages(heap, visit_sweep, NULL);
}

static void heap_collect_pages(lode_heap_t* heap, bool force) {
  _lode_heap_delayed_free_all(heap);
  heap_visit_pages(heap, visit_collect, &force);
  heap->retired_min = LODE_BIN_FULL;
  heap->retired_max = 0;
}

/* Forced collect purges every free committed page of the thread's segments,
 * queued or not (a negative delay only stops the timer). */
static void tld_purge_all_free(lode_tld_t* tld) {
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

void _lode_heap_collect_ex(lode_heap_t* heap, bool force) {
  lode_tld_t* tld = heap->tld;
  if (tld == NULL) return;
  if (heap->is_backing) {
    for (lode_heap_t* h = tld->heaps; h != NULL; h = h->next) heap_collect_pages(h, force);
  } else {
    heap_collect_pages(heap, force);
  }
  int64_t now = _lode_clock_now();
  /* Forced: empty segments go first, whole (one munmap, or one cache entry
   * that the cache collect below unmaps), instead of an madvise for each of
   * their queued pages and then the munmap anyway.  Purging frees no block,
   * so no segment empties after this. */
  if (force) _lode_segments_release_empty(tld);
  _lode_purge_queue_run(tld, force, now);
  if (force) {
    tld_purge_all_free(tld);
    _lode_abandoned_release_empty(tld);
  }
  _lode_segment_cache_collect(force);
  tld->mark.kind = force ? 2 : 1;
  tld->mark.time = now;
  tld->mark.queue_pushes = tld->queue_pushes;
  tld->mark.page_frees = tld->page_frees;
  tld->mark.adoptions = tld->adoptions;
  tld->mark.warm_takes = tld->warm_takes;
}

void lode_heap_collect(lode_heap_t* heap, bool force) {
  if (!heap_is_mine(heap)) return;
  _lode_heap_collect_ex(heap, force);
}

void lode_collect(bool force) {
  /* A thread that never allocated still releases abandoned segments. */
  lode_heap_t* heap = lode_heap_get_default();
  if (heap == NULL) return;
  _lode_heap_collect_ex(heap, force);
}

/* --- new / delete / destroy ------------------------------------------------ */
lode_heap_t* lode_heap_get_default(void) {
  lode_heap_t* heap = _lode_heap_get_default();
  if (heap->tld == NULL) heap = _lode_thread_init();
  return heap;
}

lode_heap_t* lode_heap_new(void) {
  lode_heap_t* backing = lode_heap_get_default();
  if (backing == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  lode_heap_t* heap = lode_heap_malloc(backing, sizeof(lode_heap_t));
  if (heap == NULL) return NULL;
  _lode_heap_init(heap, backing->tld, false);
  heap->next = backing->next;
  backing->next = heap;
  return heap;
}

static void heap_unlink(lode_heap_t* heap) {
  for (lode_heap_t* h = heap->tld->heaps; h != NULL; h = h->next) {
    if (h->next == heap) {
      h->next = heap->next;
      return;
    }
  }
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
}

/* Move every page of `from` to `to` (same thread). */
static void heap_absorb(lode_heap_t* to, lode_heap_t* from) {
  heap_stop_delayed(from);
  heap_visit_pages(from, visit_adopt, to);
}

void lode_heap_delete(lode_heap_t* heap) {
  if (!heap_is_mine(heap) || heap->is_backing) return;
  lode_heap_t* backing = &heap->tld->heap_backing;
  heap_absorb(backing, heap);
  heap_unlink(heap);
  lode_free(heap);
}

static void visit_destroy(lode_heap_t* heap, lode_page_t* page, void* arg) {
  (void)arg;
  page->used = 0; /* every block of the page dies with the heap */
  _lode_page_free_to_segment(page, heap);
}

void lode_heap_destroy(lode_heap_t* heap) {
  if (!heap_is_mine(heap) || heap->is_backing) return;
  heap_stop_delayed(heap);
  heap_visit_pages(heap, visit_destroy, NULL);
  heap_unlink(heap);
  lode_free(heap);
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
    _lode_page_free_to_segment(page, heap);
    return;
  }
  _lode_queue_remove(heap, _lode_page_queue_of(heap, page), page);
  atomic_fetch_and_explicit(&page->flags, (uint8_t)~LODE_PAGE_IN_FULL, memory_order_relaxed);
  page->retire_expire = 0;
  heap->page_count--;
  atomic_store_explicit(&page->heap, NULL, memory_order_release);
}

/* The thread is exiting: heaps fold into the backing heap, empty pages go
 * back, and every segment still holding a live block is abandoned. */
void _lode_heap_abandon_all(lode_tld_t* tld) {
  lode_heap_t* backing = &tld->heap_backing;
  while (backing->next != NULL) {
    lode_heap_t* h = backing->next;
    heap_absorb(backing, h);
    backing->next = h->next;
    lode_free(h);
  }
  heap_stop_delayed(backing);
  heap_visit_pages(backing, visit_orphan, NULL);
  /* What is due goes now: no owner will run this queue again. */
  int64_t now = _lode_clock_now();
  if (_lode_purge_queue_due(tld, now)) _lode_purge_queue_run(tld, false, now);
  for (int k = 0; k < LODE_PAGE_KINDS; k++) {
    lode_segment_t* seg;
    while ((seg = tld->segments[k].first) != NULL) _lode_segment_abandon(seg, tld);
  }
  lode_assert(tld->purge.first == NULL && tld->purge.count == 0);
}
