/* A heap's page queues: one per size class plus the full queue, and the
 * direct table that maps small sizes straight to the first page of a bin.
 * Invariant (H1): pages_direct[i] is the first page of bin_of(8*i)'s queue,
 * or the static empty page when that queue is empty. */
#include "internal.h"

lode_page_queue_t* _lode_page_queue_of(lode_heap_t* heap, const lode_page_t* page) {
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL)
    return &heap->pages[LODE_BIN_FULL];
  return &heap->pages[page->bin];
}

void _lode_heap_direct_update(lode_heap_t* heap, size_t bin) {
  if (bin == 0 || bin >= LODE_BIN_HUGE) return;
  size_t bsize = lode_bin_size(bin);
  if (bsize > LODE_DIRECT_MAX) return;
  lode_page_t* page = heap->pages[bin].first ? heap->pages[bin].first : &_lode_page_empty;
  size_t start = bin == 1 ? 0 : lode_bin_size(bin - 1) / 8 + 1;
  size_t end = bsize / 8;
  if (heap->pages_direct[end] == page) return;
  for (size_t i = start; i <= end; i++) heap->pages_direct[i] = page;
}

/* A queue's first page changed: it may have filled or emptied. */
static void queue_changed(lode_heap_t* heap, lode_page_queue_t* q) {
  size_t bin = (size_t)(q - heap->pages);
#ifdef LODE_TESTING
  uint64_t bit = (uint64_t)1 << (bin % 64);
  if (q->first != NULL) heap->check_bins[bin / 64] |= bit;
  else heap->check_bins[bin / 64] &= ~bit;
#endif
  if (bin < LODE_BIN_HUGE) _lode_heap_direct_update(heap, bin);
}

void _lode_queue_push_front(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page) {
  page->prev = NULL;
  page->next = q->first;
  if (q->first) q->first->prev = page; else q->last = page;
  q->first = page;
  queue_changed(heap, q);
}

void _lode_queue_push_back(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page) {
  page->next = NULL;
  page->prev = q->last;
  if (q->last) q->last->next = page; else q->first = page;
  q->last = page;
  if (q->first == page) queue_changed(heap, q);
}

void _lode_queue_remove(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page) {
  bool was_first = q->first == page;
  if (page->prev) page->prev->next = page->next; else q->first = page->next;
  if (page->next) page->next->prev = page->prev; else q->last = page->prev;
  page->next = page->prev = NULL;
  if (was_first) queue_changed(heap, q);
}

/* A page with no free block moves to the full queue; from then on the next
 * remote free also tells the heap (delayed free), so the page comes back. */
void _lode_queue_to_full(lode_heap_t* heap, lode_page_t* page) {
  lode_assert(!(atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL));
  _lode_queue_remove(heap, &heap->pages[page->bin], page);
  atomic_fetch_or_explicit(&page->flags, LODE_PAGE_IN_FULL, memory_order_relaxed);
  _lode_queue_push_back(heap, &heap->pages[LODE_BIN_FULL], page);
}

void _lode_queue_from_full(lode_heap_t* heap, lode_page_t* page) {
  lode_assert(atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL);
  _lode_queue_remove(heap, &heap->pages[LODE_BIN_FULL], page);
  atomic_fetch_and_explicit(&page->flags, (uint8_t)~LODE_PAGE_IN_FULL, memory_order_relaxed);
  _lode_queue_push_back(heap, &heap->pages[page->bin], page);
  _lode_page_set_delayed(page, LODE_DELAYED_NO, false);
}
