/* Pages: the sharded free lists (free, local_free, thread_free), the
 * delayed-free hand-shake for full pages, retirement, and the generic
 * allocation path that finds or makes a page with a free block. */
#include "internal.h"

#include <sched.h>

void _lode_page_init(lode_page_t* page, size_t block_size) {
  lode_segment_t* seg = _lode_page_segment(page);
  page->block_size = block_size;
  page->block_magic = lode_div_magic(block_size);
  page->bin = (uint8_t)(seg->kind == LODE_PAGE_HUGE ? LODE_BIN_HUGE : lode_bin_of(block_size));
  size_t reserved = seg->kind == LODE_PAGE_HUGE ? 1 : page->area_size / block_size;
  page->reserved = (uint32_t)reserved;
  page->capacity = 0;
  page->used = 0;
  page->free = page->local_free = NULL;
  page->free_tail = page->local_free_tail = NULL;
  page->retire_expire = 0;
  page->next = page->prev = NULL;
  atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
  atomic_store_explicit(&page->thread_free, lode_tf_make(NULL, LODE_DELAYED_NO), memory_order_relaxed);
#ifdef LODE_SECURE
  page->keys[0] = ((uintptr_t)page * 0x9e3779b97f4a7c15ull) ^ (uint64_t)_lode_clock_now();
  page->keys[1] = (page->keys[0] >> 7) * 0xbf58476d1ce4e5b9ull | 1;
#endif
}

/* Carve more blocks from the area: the next block and the rest of the OS
 * page its end lies in, so each extension faults in one new OS page at most
 * (threads that use a few blocks of a page do not pay for more). */
bool _lode_page_extend(lode_page_t* page) {
  if (page->capacity >= page->reserved) return false;
  size_t bsize = page->block_size;
  uint8_t* start = page->area + (size_t)page->capacity * bsize;
  size_t n = (lode_align_up((uintptr_t)start + bsize, LODE_OS_PAGE_SIZE) - (uintptr_t)start) / bsize;
  if (n > page->reserved - page->capacity) n = page->reserved - page->capacity;
#ifdef LODE_SECURE
  /* Randomised order: an overflow cannot predict its neighbour. */
  uint64_t x = page->keys[0] ^ page->capacity;
  uint32_t idx[512];
  size_t m = n > 512 ? 512 : n;
  for (size_t i = 0; i < m; i++) idx[i] = (uint32_t)i;
  for (size_t i = m; i > 1; i--) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t j = (size_t)(x % i);
    uint32_t t = idx[i - 1]; idx[i - 1] = idx[j]; idx[j] = t;
  }
  n = m;
  lode_block_t* head = page->free;
  for (size_t i = 0; i < n; i++) {
    lode_block_t* b = (lode_block_t*)(start + (size_t)idx[i] * bsize);
    if (head == NULL) page->free_tail = b;
    lode_block_set_next(page, b, head);
    head = b;
  }
  page->free = head;
#else
  lode_block_t* last = (lode_block_t*)(start + (n - 1) * bsize);
  for (size_t i = 0; i + 1 < n; i++) {
    lode_block_t* b = (lode_block_t*)(start + i * bsize);
    lode_block_set_next(page, b, (lode_block_t*)((uint8_t*)b + bsize));
  }
  if (page->free == NULL) page->free_tail = last;
  lode_block_set_next(page, last, page->free);
  page->free = (lode_block_t*)start;
#endif
  page->capacity += (uint32_t)n;
  /* Blocks are carved in address order: the area is written up to here. */
  size_t touched = lode_align_up((size_t)page->capacity * bsize, LODE_OS_PAGE_SIZE) / LODE_OS_PAGE_SIZE;
  if (touched > page->touched) page->touched = (uint32_t)touched;
  return true;
}

#if defined(LODE_SECURE) || LODE_DEBUG >= 2
/* Thorough builds: a block freed by another thread while already on the
 * owner's lists (the freeing thread cannot look: that would race) is found
 * here, before the merge.  Marks the local lists in a bitmap, O(lists + chain).
 * Returns the first such block, or NULL. */
static lode_block_t* remote_double_free(const lode_page_t* page, lode_block_t* chain) {
  enum { MAX_BLOCKS = LODE_SMALL_PAGE_SIZE / 8 };
  uint64_t seen[MAX_BLOCKS / 64] = {0};
  if (page->capacity > MAX_BLOCKS) return NULL; /* large pages: a handful of blocks */
  const lode_block_t* lists[2] = {page->free, page->local_free};
  for (int l = 0; l < 2; l++) {
    size_t n = 0;
    for (const lode_block_t* b = lists[l]; b != NULL && n <= page->capacity; b = lode_block_next(page, b), n++) {
      size_t i = (size_t)((const uint8_t*)b - page->area) / page->block_size;
      if (i < MAX_BLOCKS) seen[i / 64] |= (uint64_t)1 << (i % 64);
    }
  }
  size_t n = 0;
  for (lode_block_t* b = chain; b != NULL && n <= page->capacity; b = lode_block_next(page, b), n++) {
    size_t i = (size_t)((uint8_t*)b - page->area) / page->block_size;
    if (i < MAX_BLOCKS && (seen[i / 64] >> (i % 64) & 1)) return b;
  }
  return NULL;
}
#endif

/* Move remote frees into local_free; returns how many. */
static size_t page_merge_thread_free(lode_page_t* page) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  lode_block_t* head;
  do {
    head = lode_tf_block(tf);
    if (head == NULL) return 0;
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf,
                                                  lode_tf_make(NULL, lode_tf_delayed(tf)),
                                                  memory_order_acq_rel, memory_order_relaxed));
  size_t count = 1;
  lode_block_t* tail = head;
  lode_block_t* next;
  while ((next = lode_block_next(page, tail)) != NULL) {
    tail = next;
    if (lode_unlikely(++count > page->capacity)) {
      _lode_error_pointer("free", "double free (cycle in remote frees) in page", page);
      return 0;
    }
  }
#if defined(LODE_SECURE) || LODE_DEBUG >= 2
  lode_block_t* dup = remote_double_free(page, head);
  if (lode_unlikely(dup != NULL)) {
    /* The remote push already overwrote the block's link on the owner's
     * list: the chain is not merged (its blocks stay counted as live). */
    _lode_error_pointer("free", "double free", dup);
    return 0;
  }
#endif
  if (page->local_free == NULL) page->local_free_tail = tail;
  lode_block_set_next(page, tail, page->local_free);
  page->local_free = head;
  lode_assert(count <= page->used);
  page->used -= (uint32_t)count;
  return count;
}

/* Level-3 check: every block is either live or on exactly one local list. */
static lode_unused bool page_accounting_ok(const lode_page_t* page) {
  size_t n = 0;
  for (const lode_block_t* b = page->free; b != NULL && n <= page->capacity; b = lode_block_next(page, b)) n++;
  for (const lode_block_t* b = page->local_free; b != NULL && n <= page->capacity; b = lode_block_next(page, b)) n++;
  return n + page->used == page->capacity;
}

void _lode_page_collect(lode_page_t* page, bool force) {
  /* After the merge: a block freed by its owner and then by another thread
   * breaks the owner's lists, and the merge is what reports it. */
  page_merge_thread_free(page);
  lode_assert_expensive(page_accounting_ok(page));
  if (page->local_free == NULL) return;
  if (page->free == NULL) {
    page->free = page->local_free;
    page->free_tail = page->local_free_tail;
    page->local_free = NULL;
  } else if (force) {
    lode_block_t* tail = page->local_free;
    lode_block_t* next;
    while ((next = lode_block_next(page, tail)) != NULL) tail = next;
    lode_block_set_next(page, tail, page->free);
    page->free = page->local_free;
    page->local_free = NULL;
  }
}

/* --- delayed free --------------------------------------------------------- */
/* Owner side: change the delayed mode, waiting out a remote thread that is in
 * the middle of pushing to the heap (it holds a heap pointer then). */
bool _lode_page_set_delayed(lode_page_t* page, lode_delayed_t d, bool override_never) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  for (;;) {
    lode_delayed_t cur = lode_tf_delayed(tf);
    if (cur == LODE_DELAYED_FREEING) {
      sched_yield();
      tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
      continue;
    }
    if (cur == d || (cur == LODE_DELAYED_NEVER && !override_never)) return true;
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, lode_tf_make(lode_tf_block(tf), d),
                                              memory_order_acq_rel, memory_order_acquire))
      return true;
  }
}

/* Remote side: a block freed by a thread that does not own the segment. */
void _lode_page_free_remote(lode_page_t* page, lode_block_t* block) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  uintptr_t nf;
  bool to_heap;
  do {
    to_heap = lode_tf_delayed(tf) == LODE_DELAYED_USE;
    if (to_heap) {
      nf = lode_tf_make(lode_tf_block(tf), LODE_DELAYED_FREEING);
    } else {
      lode_block_set_next(page, block, lode_tf_block(tf));
      nf = lode_tf_make(block, lode_tf_delayed(tf));
    }
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, nf, memory_order_acq_rel,
                                                  memory_order_relaxed));
  if (!to_heap) return;
  /* While FREEING is set the owner cannot retire the heap under us. */
  lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_acquire);
  if (heap != NULL) {
    lode_block_t* head = atomic_load_explicit(&heap->thread_delayed, memory_order_relaxed);
    do {
      block->next = head; /* raw link: the list spans pages with different keys */
    } while (!atomic_compare_exchange_weak_explicit(&heap->thread_delayed, &head, block,
                                                    memory_order_release, memory_order_relaxed));
  }
  tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  do {
    if (heap == NULL) {
      lode_block_set_next(page, block, lode_tf_block(tf));
      nf = lode_tf_make(block, LODE_DELAYED_NO);
    } else {
      nf = lode_tf_make(lode_tf_block(tf), LODE_DELAYED_NO);
    }
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, nf, memory_order_release,
                                                  memory_order_relaxed));
}

/* --- owner frees and retirement ------------------------------------------- */
void _lode_page_free_block_owned(lode_page_t* page, lode_block_t* block) {
  if (page->local_free == NULL) page->local_free_tail = block;
  lode_block_set_next(page, block, page->local_free);
  page->local_free = block;
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL) {
    lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_relaxed);
    _lode_queue_from_full(heap, page);
  }
  if (--page->used == 0) _lode_page_retire(page);
}

void _lode_page_free_to_segment(lode_page_t* page, lode_heap_t* heap) {
  _lode_queue_remove(heap, _lode_page_queue_of(heap, page), page);
  heap->page_count--;
  _lode_segment_page_free(page, heap->tld);
}

/* An empty page leaves its heap, unless it is the only page of a small bin:
 * then it stays a few generic allocations, so alloc/free of one block in a
 * loop does not map and purge a page each time. */
void _lode_page_retire(lode_page_t* page) {
  lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_relaxed);
  lode_assert(page->used == 0 && heap != NULL);
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL)
    _lode_queue_from_full(heap, page);
  lode_page_queue_t* q = &heap->pages[page->bin];
  if (page->bin < LODE_BIN_HUGE && q->first == page && page->next == NULL &&
      page->block_size <= LODE_MEDIUM_OBJ_MAX) {
    page->retire_expire = page->block_size <= LODE_SMALL_OBJ_MAX ? 16 : 4;
    if (page->bin < heap->retired_min) heap->retired_min = page->bin;
    if (page->bin > heap->retired_max) heap->retired_max = page->bin;
    return;
  }
  _lode_page_free_to_segment(page, heap);
}

/* --- generic allocation ---------------------------------------------------- */
static lode_page_kind_t kind_of_size(size_t bsize) {
  if (bsize <= LODE_SMALL_OBJ_MAX) return LODE_PAGE_SMALL;
  if (bsize <= LODE_MEDIUM_OBJ_MAX) return LODE_PAGE_MEDIUM;
  return LODE_PAGE_LARGE;
}

static lode_page_t* heap_fresh_page(lode_heap_t* heap, size_t bin) {
  size_t bsize = lode_bin_size(bin);
  lode_page_t* page = _lode_segment_page_alloc(heap, kind_of_size(bsize), bsize);
  if (page == NULL) return NULL;
  atomic_store_explicit(&page->heap, heap, memory_order_release);
  _lode_queue_push_front(heap, &heap->pages[bin], page);
  heap->page_count++;
  _lode_page_extend(page);
  return page;
}

static lode_page_t* heap_find_page(lode_heap_t* heap, size_t bin) {
  lode_page_queue_t* q = &heap->pages[bin];
  lode_page_t* page = q->first;
  while (page != NULL) {
    lode_page_t* next = page->next;
    _lode_page_collect(page, false);
    if (page->free != NULL || _lode_page_extend(page)) {
      page->retire_expire = 0;
      if (q->first != page) {
        _lode_queue_remove(heap, q, page);
        _lode_queue_push_front(heap, q, page);
      }
      return page;
    }
    /* Full: ask for notice of the next remote free, then look once more in
     * case one slipped in before the notice was on. */
    _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
    _lode_page_collect(page, false);
    if (page->free != NULL) {
      _lode_page_set_delayed(page, LODE_DELAYED_NO, false);
      continue; /* examine it again: it is still q's candidate */
    }
    _lode_queue_to_full(heap, page);
    page = next;
  }
  return heap_fresh_page(heap, bin);
}

lode_page_t* _lode_heap_huge_page(lode_heap_t* heap, size_t size, size_t alignment) {
  lode_page_t* page = _lode_segment_huge_alloc(heap, size, alignment);
  if (page == NULL) return NULL;
  atomic_store_explicit(&page->heap, heap, memory_order_release);
  _lode_queue_push_front(heap, &heap->pages[LODE_BIN_HUGE], page);
  heap->page_count++;
  _lode_page_extend(page);
  return page;
}

void* _lode_malloc_generic(lode_heap_t* heap, size_t size) {
  if (lode_unlikely(heap->tld == NULL)) { /* first allocation of this thread */
    heap = _lode_thread_init();
    if (heap == NULL) {
      errno = ENOMEM;
      return NULL;
    }
    if (size <= LODE_DIRECT_MAX) {
      lode_page_t* page = heap->pages_direct[(size + 7) >> 3];
      if (page->free != NULL) {
        lode_block_t* b = page->free;
        page->free = lode_block_next(page, b);
        page->used++;
        return b;
      }
    }
  }
  if (lode_unlikely(size > LODE_MAX_ALLOC_SIZE)) {
    errno = ENOMEM;
    return NULL;
  }
  lode_tld_t* tld = heap->tld;
  _lode_heap_delayed_free_all(heap);
  _lode_heap_collect_retired(heap, false);
  /* A sweep after 64 generic mallocs plus one per page of the heap: a page
   * visit per generic malloc at most, amortized. */
  if (lode_unlikely(++heap->sweep_ticks >= 64 + heap->page_count)) _lode_heap_sweep(heap);
  /* Expired purges run here too, but reading the clock costs as much as a
   * malloc: only when something is queued, and every 8th time.  Late purges
   * are fine; early ones are not (P6). */
  if (tld->purge.first != NULL && (++tld->purge_ticks & 7) == 0) {
    int64_t now = _lode_clock_now();
    if (_lode_purge_queue_due(tld, now)) _lode_purge_queue_run(tld, false, now);
  }

  size_t bin = lode_bin_of(size);
  lode_page_t* page;
  if (bin == LODE_BIN_HUGE) {
    page = _lode_heap_huge_page(heap, size, 0);
  } else {
    page = heap_find_page(heap, bin);
  }
  if (lode_unlikely(page == NULL)) {
    /* Out of memory: give back what this thread holds, then try once more. */
    _lode_heap_collect_ex(heap, true);
    page = bin == LODE_BIN_HUGE ? _lode_heap_huge_page(heap, size, 0) : heap_find_page(heap, bin);
    if (page == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  lode_block_t* block = page->free;
  page->free = lode_block_next(page, block);
  page->used++;
  lode_assert_internal(page->used <= page->capacity);
  lode_assert_expensive(page_accounting_ok(page));
  if (bin == LODE_BIN_HUGE) {
    _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
    _lode_queue_to_full(heap, page);
  }
  return block;
}

/* Block start of a pointer inside an aligned allocation. */
lode_block_t* _lode_page_unalign(const lode_page_t* page, const void* p) {
  size_t off = (size_t)((const uint8_t*)p - page->area);
  return (lode_block_t*)(page->area + (off / page->block_size) * page->block_size);
}
