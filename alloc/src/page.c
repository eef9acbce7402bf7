/* Pages: the sharded free lists (free, local_free, thread_free) and the
 * delayed-free hand-shake for full pages.  Nothing here knows heaps beyond
 * the delayed list a remote free pushes to: queues, retirement and the
 * generic allocation path are heap.c's. */
#include "internal.h"

static void page_set_bin(lode_page_t* page, size_t bin) {
  page->bin = (uint8_t)bin;
  page->retire_ticks = lode_retire_ticks(bin, page->block_size);
}

/* A claimed page gets its block size; free_is_zero was set by the claim. */
void _lode_page_init(lode_page_t* page, size_t block_size) {
  lode_segment_t* seg = _lode_page_segment(page);
  lode_page_set_block_size(page, block_size);
  page_set_bin(page, seg->kind == LODE_PAGE_HUGE ? LODE_BIN_HUGE : lode_bin_of(block_size));
  size_t reserved = seg->kind == LODE_PAGE_HUGE ? 1 : page->area_size / block_size;
  page->reserved = (uint32_t)reserved;
  lode_page_set_capacity(page, 0);
  page->used = 0;
  page->free = page->local_free = NULL;
  page->free_tail = page->local_free_tail = NULL;
  page->retire_expire = 0;
  page->next = page->prev = NULL;
  atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
  atomic_store_explicit(&page->thread_free, lode_tf_make(NULL, LODE_DELAYED_NO), memory_order_relaxed);
#ifdef LODE_SECURE
  /* the secret makes them unknowable; the page and the time, different
   * for each page and each of its lives */
  uint64_t k = _lode_mix64(_lode_secret() ^ (uintptr_t)page * 0x9e3779b97f4a7c15ull ^ (uint64_t)_lode_clock_now());
  page->keys[0] = k;
  page->keys[1] = _lode_mix64(k) | 1;
#endif
}

/* A large page's one block, in use, took a longer span (realloc in place,
 * heap.c): it takes the size of its new class.  Its carved extent grows
 * with it, as a carve of the new size would have. */
void _lode_page_regrow(lode_page_t* page, size_t block_size) {
  lode_assert(page->capacity == 1 && page->used == 1 && page->free == NULL && page->local_free == NULL);
  lode_assert(block_size > page->block_size && block_size <= page->area_size);
  lode_page_set_block_size(page, block_size);
  page_set_bin(page, lode_bin_of(block_size));
  page->reserved = (uint32_t)(page->area_size / block_size);
  size_t touched = lode_align_up(block_size, LODE_OS_PAGE_SIZE) / LODE_OS_PAGE_SIZE;
  if (touched > page->touched) page->touched = (uint32_t)touched;
}

/* Carve more blocks from the area: the next block and the rest of the OS
 * page its end lies in, so each extension faults in one new OS page at most
 * (threads that use a few blocks of a page do not pay for more). */
static size_t page_merge_thread_free(lode_page_t* page, lode_quarantine_t* q);

bool _lode_page_extend(lode_page_t* page) {
  if (page->capacity >= page->reserved) return false;
  /* remote frees first: one of a block about to be carved was never handed
   * out, and the carve's link would break its chain (the merge reports it) */
  page_merge_thread_free(page, NULL);
  size_t bsize = page->block_size;
  uint8_t* start = page->area + (size_t)page->capacity * bsize;
  size_t n = (lode_align_up((uintptr_t)start + bsize, LODE_OS_PAGE_SIZE) - (uintptr_t)start) / bsize;
  if (n > page->reserved - page->capacity) n = page->reserved - page->capacity;
  /* lode writes the links; the interior of a block larger than an OS page
   * is the program's to touch (and to be cleared for, in a simulated OS) */
  if (bsize <= LODE_OS_PAGE_SIZE) _lode_os_touch(start, n * bsize);
  else
    for (size_t i = 0; i < n; i++) _lode_os_touch(start + i * bsize, sizeof(lode_block_t));
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
  /* Every block on a free list is wiped and has a FREE trailer (canary.c):
   * a recycled area is cleared here, once, for the blocks carved.  What lies
   * beyond the carved blocks is as the claim found it (not free_is_zero,
   * which freed blocks clear). */
  bool zero = page->claimed_zero;
  for (size_t i = 0; i < n; i++) {
    uint8_t* b = start + i * bsize;
    if (bsize > LODE_OS_PAGE_SIZE) {
      if (zero) _lode_os_touch(b + bsize - LODE_TRAILER_SIZE, LODE_TRAILER_SIZE);
      else _lode_os_touch(b, bsize);
    }
    _lode_block_carve(page, b, zero);
  }
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
  lode_page_set_capacity(page, page->capacity + (uint32_t)n);
  /* Blocks are carved in address order: the area is written up to here. */
  size_t touched = lode_align_up((size_t)page->capacity * bsize, LODE_OS_PAGE_SIZE) / LODE_OS_PAGE_SIZE;
  if (touched > page->touched) page->touched = (uint32_t)touched;
  return true;
}

#if LODE_DEBUG >= 2
/* Thorough builds: a block freed by another thread while already on the
 * owner's lists (the freeing thread cannot look: that would race) is found
 * here, before the merge.  Marks the local lists in a bitmap, O(lists +
 * chain).  Returns the first such block, or NULL.  (LODE_SECURE alone needs
 * no walk: the freeing thread reads the block's trailer, FREE on a list.) */
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

/* A block that other threads freed twice closed the remote chain into a
 * cycle.  The chain is cut before the block's second appearance and the
 * double free reported on that block: the other frees still merge (with
 * LODE_ON_ERROR=warn they were all dropped, the page never emptied: review,
 * 2026-12-07).  A block whose link the second push overwrote, and the ones
 * after it, stay counted as live (unreachable).  False when the page holds
 * too many blocks for the bitmap: the chain is then dropped. */
static bool chain_cut_cycle(lode_page_t* page, lode_block_t* head, uint64_t carved) {
  enum { MAX_BLOCKS = LODE_SMALL_PAGE_SIZE / 8 };
  uint64_t seen[MAX_BLOCKS / 64] = {0};
  if (page->reserved > MAX_BLOCKS) return false;
  lode_block_t* prev = NULL;
  for (lode_block_t* b = head; b != NULL; prev = b, b = lode_block_next(page, b)) {
    size_t i = (size_t)((uint8_t*)b - page->area) / page->block_size;
    if (i >= MAX_BLOCKS) return false;
    if (seen[i / 64] >> (i % 64) & 1) {
      /* (an address never carved is reported once, as not allocated, by
       * the merge's walk) */
      if ((uint64_t)((uint8_t*)b - page->area) < carved) _lode_error_pointer("free", "double free", b);
      lode_block_set_next(page, prev, NULL);
      return true;
    }
    seen[i / 64] |= (uint64_t)1 << (i % 64);
  }
  return true;
}

#ifdef LODE_SECURE
/* A write after free over a remotely freed block's link (its first word)
 * made it point anywhere: the chain ends before that block, which is
 * reported and kept out with the rest (leaked), not followed into a fault
 * (security waf_remote 8, 2026-12-07: SIGSEGV in the merge's walk). */
static lode_block_t* chain_cut_overwritten(lode_page_t* page, lode_block_t* head) {
  lode_block_t* prev = NULL;
  size_t steps = 0;
  for (lode_block_t* b = head; b != NULL && ++steps <= page->reserved; prev = b, b = lode_block_next(page, b)) {
    uintptr_t next = (uintptr_t)lode_block_next(page, b);
    uint64_t off = (uint64_t)(next - (uintptr_t)page->area);
    if (next != 0 && (off >= (uint64_t)page->reserved * page->block_size || !lode_is_multiple(off, page->block_magic))) {
      _lode_error_block("free", "write after free (a free block's link is overwritten)", b, page->block_size);
      if (prev == NULL) return NULL;
      lode_block_set_next(page, prev, NULL);
      return head;
    }
  }
  return head;
}
#endif

#ifdef LODE_SECURE
/* Blocks other threads freed wait in their owner's quarantine as its own
 * frees do: merged straight back, the next mallocs of their size got the
 * block another thread had just freed (security reuse_remote, 2026-12-07).
 * The owner takes them in as a malloc merges them or takes its delayed
 * frees (heap.c).  A block that left the quarantine is marked checked
 * (FREE, extent 0; a wipe's extent is never 0): it does not go in again. */
bool _lode_page_quarantine_remote(lode_page_t* page, lode_block_t* block, lode_quarantine_t* q, void* out[2],
                                  size_t* n) {
  size_t e;
  lode_alloc_kind_t k;
  *n = 0;
  if (q == NULL || !_lode_option(LODE_OPTION_QUARANTINE) || _lode_page_segment(page)->kind == LODE_PAGE_HUGE ||
      !_lode_trailer_get(page, (uint8_t*)block, &e, &k) || k != LODE_KIND_FREE || e == 0)
    return false;
  *(uint64_t*)(void*)block = 0; /* its link: the wipe's zero again */
  *n = _lode_quarantine_push(q, block, page->block_size, out);
  return true;
}

/* The blocks a merge's pushes send home, while a page search walks the
 * queues: as remote frees of their pages (merged later, not again taken
 * in), not owner frees that could retire a page under the search. */
static void quarantine_send_home(void* out[2], size_t n) {
  for (size_t i = 0; i < n; i++) {
    lode_page_t* op = _lode_segment_page_of(_lode_ptr_segment(out[i]), out[i]);
    if (!_lode_block_is_wiped(op, out[i])) {
      _lode_error_block("free", "write after free", out[i], op->block_size);
      _lode_block_retire(op, out[i]);
      continue;
    }
    _lode_block_verified(op, out[i]);
    _lode_page_free_remote(op, out[i]);
  }
}
#endif

/* Move remote frees into local_free; returns how many.  LODE_SECURE, q not
 * NULL: fresh ones go to the owner's quarantine q instead. */
static size_t page_merge_thread_free(lode_page_t* page, lode_quarantine_t* q) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  lode_block_t* head;
  do {
    head = lode_tf_block(tf);
    if (head == NULL) return 0;
  } while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf,
                                                  lode_tf_make(NULL, lode_tf_delayed(tf)),
                                                  memory_order_acq_rel, memory_order_relaxed));
  /* Another thread's free could not ask how far the page is carved (only
   * the owner reads capacity): a block beyond it was never handed out, and
   * merged it would be handed out twice once carved.  Reported here and
   * dropped.  The chain's blocks lie in the area, so more steps than the
   * area holds blocks is a cycle.  The first walk changes no link, so a
   * cycle is cut where it closes (uncarved blocks unlinked first turned one
   * into a block's loop on itself: a double free reported on a block freed
   * once, review 2026-12-07); the rare uncarved ones go in a second walk. */
#ifdef LODE_SECURE
  head = chain_cut_overwritten(page, head);
  if (head == NULL) return 0;
#endif
  uint64_t carved = page->carved;
  size_t count, steps;
  lode_block_t *tail, *b;
  bool cut = false, uncarved;
walk:
  count = steps = 0;
  tail = NULL;
  uncarved = false;
  for (b = head; b != NULL; b = lode_block_next(page, b)) {
    bool carved_block = (uint64_t)((uint8_t*)b - page->area) < carved;
    if (lode_unlikely(++steps > page->reserved || (carved_block && ++count > page->capacity))) {
      if (!cut && chain_cut_cycle(page, head, carved)) {
        cut = true;
        goto walk;
      }
      _lode_error_pointer("free", "double free (cycle in remote frees) in page", page);
      return 0;
    }
    if (lode_likely(carved_block)) tail = b;
    else uncarved = true;
  }
  if (lode_unlikely(uncarved)) {
    lode_block_t* kept = NULL;
    for (b = head; b != NULL;) {
      lode_block_t* next = lode_block_next(page, b);
      if ((uint64_t)((uint8_t*)b - page->area) < carved) {
        kept = b;
      } else {
        _lode_error_pointer("free", "invalid pointer (not allocated)", b);
        if (kept == NULL) head = next;
        else lode_block_set_next(page, kept, next);
      }
      b = next;
    }
  }
  if (count == 0) return 0;
#if LODE_DEBUG >= 2
  lode_block_t* dup = remote_double_free(page, head);
  if (lode_unlikely(dup != NULL)) {
    /* The remote push already overwrote the block's link on the owner's
     * list: the chain is not merged (its blocks stay counted as live). */
    _lode_error_pointer("free", "double free", dup);
    return 0;
  }
#endif
#ifdef LODE_SECURE
  if (q != NULL) {
    lode_block_t* kept = NULL;
    count = 0;
    for (b = head; b != NULL;) {
      lode_block_t* next = lode_block_next(page, b);
      void* out[2];
      size_t n;
      if (_lode_page_quarantine_remote(page, b, q, out, &n)) {
        quarantine_send_home(out, n);
      } else {
        if (kept == NULL) tail = b;
        lode_block_set_next(page, b, kept);
        kept = b;
        count++;
      }
      b = next;
    }
    head = kept;
    if (count == 0) return 0;
  }
#else
  (void)q;
#endif
  if (page->local_free == NULL) page->local_free_tail = tail;
  lode_block_set_next(page, tail, page->local_free);
  page->local_free = head;
  lode_assert(count <= page->used);
  page->used -= (uint32_t)count;
  return count;
}

#ifdef LODE_SECURE
bool _lode_page_scrub(lode_page_t* page) {
  size_t bsize = page->block_size;
  /* a huge page's segment goes back whole; its area runs on into address
   * space kept for growth, never committed */
  if (_lode_page_segment(page)->kind == LODE_PAGE_HUGE) return false;
  if (!page->claimed_zero) {
    /* Beyond the carved blocks lies an older life's memory: it is cleared,
     * or this page, and every later life of it, would be carved clearing
     * again.  Only what is in memory is written: a discard of what the page
     * did use would fault it back in at its next claim. */
    size_t carved = (size_t)page->carved;
    _lode_wipe_range(page->area + carved, page->area_size - carved);
  }
  for (uint32_t i = 0; i < page->capacity; i++) {
    uint64_t* w = (uint64_t*)(void*)(page->area + (size_t)i * bsize);
    uint64_t* t = (uint64_t*)(void*)((uint8_t*)w + bsize - LODE_TRAILER_SIZE);
    if (*w != 0) *w = 0; /* read first: a discarded page is not faulted back in */
    if (__atomic_load_n(t, __ATOMIC_RELAXED) != 0) __atomic_store_n(t, 0, __ATOMIC_RELAXED);
  }
  return true;
}
#endif

/* Level-3 check: every block is either live or on exactly one local list. */
bool _lode_page_accounting_ok(const lode_page_t* page) {
  size_t n = 0;
  for (const lode_block_t* b = page->free; b != NULL && n <= page->capacity; b = lode_block_next(page, b)) n++;
  for (const lode_block_t* b = page->local_free; b != NULL && n <= page->capacity; b = lode_block_next(page, b)) n++;
  return n + page->used == page->capacity;
}

static void page_collect(lode_page_t* page, bool force, lode_quarantine_t* q) {
  /* After the merge: a block freed by its owner and then by another thread
   * breaks the owner's lists, and the merge is what reports it. */
  page_merge_thread_free(page, q);
  lode_assert_expensive(_lode_page_accounting_ok(page));
  if (page->local_free == NULL) return;
  page->free_is_zero = 0; /* freed blocks join the list */
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

void _lode_page_collect(lode_page_t* page, bool force) { page_collect(page, force, NULL); }

#ifdef LODE_SECURE
void _lode_page_collect_owned(lode_page_t* page, lode_quarantine_t* q) { page_collect(page, false, q); }

/* The fresh frees of one list to q, the others kept in order (its tail is
 * the last kept).  A link written over is cut first: a walk must not follow
 * it out of the page. */
static size_t list_quarantine_fresh(lode_page_t* page, lode_block_t** list, lode_block_t** tail,
                                    lode_quarantine_t* q, size_t* taken) {
  lode_block_t *kept = NULL, *last = NULL;
  size_t n_kept = 0, steps = 0;
  for (lode_block_t* b = chain_cut_overwritten(page, *list); b != NULL && ++steps <= page->reserved;) {
    lode_block_t* next = lode_block_next(page, b);
    void* out[2];
    size_t n;
    if (_lode_page_quarantine_remote(page, b, q, out, &n)) {
      quarantine_send_home(out, n);
      (*taken)++;
    } else {
      if (last == NULL) kept = b;
      else lode_block_set_next(page, last, b);
      last = b;
      n_kept++;
    }
    b = next;
  }
  if (last != NULL) {
    lode_block_set_next(page, last, NULL);
    *tail = last;
  }
  *list = kept;
  return n_kept;
}

size_t _lode_page_quarantine_listed(lode_page_t* page, lode_quarantine_t* q) {
  if (q == NULL || !_lode_option(LODE_OPTION_QUARANTINE)) return 0;
  size_t taken = 0;
  size_t listed = list_quarantine_fresh(page, &page->free, &page->free_tail, q, &taken) +
                  list_quarantine_fresh(page, &page->local_free, &page->local_free_tail, q, &taken);
  /* quarantined blocks count as live, and so do those a cut link lost
   * (as a remote chain's: kept off every list for good) */
  page->used = page->capacity - (uint32_t)listed;
  return taken;
}
#endif

/* --- delayed free --------------------------------------------------------- */
/* Owner side: change the delayed mode, waiting out a remote thread that is in
 * the middle of pushing to the heap (it holds a heap pointer then).  That
 * thread may never go on: cancelled asynchronously, or stopped in a signal
 * handler that never returns.  After LODE_WAIT_LIMIT_MS the mode is changed
 * anyway and false returned: the caller must then keep the heap's memory
 * (a late push lands in it).  A fork child never waits: its fork handler
 * cleared every FREEING (_lode_pages_forget_freeing). */
bool _lode_page_set_delayed(lode_page_t* page, lode_delayed_t d, bool override_never) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
  lode_wait_t w = {0, 0};
  bool gave_up = false;
  for (;;) {
    lode_delayed_t cur = lode_tf_delayed(tf);
    if (cur == LODE_DELAYED_FREEING && !gave_up) {
      LODE_POINT(LODE_POINT_WAIT_FREEING, page);
      gave_up = _lode_wait_step(&w, "a remote free in flight on page", page);
      tf = atomic_load_explicit(&page->thread_free, memory_order_acquire);
      continue;
    }
    if (cur == d || (cur == LODE_DELAYED_NEVER && !override_never)) return !gave_up;
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, lode_tf_make(lode_tf_block(tf), d),
                                              memory_order_acq_rel, memory_order_acquire))
      return !gave_up;
  }
}

void _lode_pages_forget_freeing(lode_segment_t* seg) {
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
    if (lode_tf_delayed(tf) == LODE_DELAYED_FREEING)
      atomic_store_explicit(&page->thread_free, lode_tf_make(lode_tf_block(tf), LODE_DELAYED_NO), memory_order_relaxed);
  }
}

/* Remote side: a block freed by a thread that does not own the segment. */
void _lode_page_free_remote(lode_page_t* page, lode_block_t* block) {
  /* Before the push: after it the owner may free the page's last block and
   * release the segment (test_remote_free).  No test point lies between the
   * two, so no simulated check does; a real thread's check there misses the
   * push until the next mark or full check. */
  lode_segment_check_stale(_lode_page_segment(page));
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
  LODE_POINT(LODE_POINT_REMOTE_FREEING, page);
  /* While FREEING is set the owner cannot retire the heap under us. */
  lode_heap_t* heap = atomic_load_explicit(&page->heap, memory_order_acquire);
  if (heap != NULL) {
    LODE_POINT(LODE_POINT_REMOTE_PUSHING, page);
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

/* --- aligned blocks --------------------------------------------------------- */
/* Block start of a pointer inside an aligned allocation. */
lode_block_t* _lode_page_unalign(const lode_page_t* page, const void* p) {
  size_t off = (size_t)((const uint8_t*)p - page->area);
  return (lode_block_t*)(page->area + (off / page->block_size) * page->block_size);
}

/* A block handed out at an offset d > 0 (an over-aligned allocation) carries
 * in its first word, which lies before d, a tag: a hash of its address in
 * the high half and d in the low half.  free() then tells the pointer that
 * was handed out from any other pointer into the block: an interior pointer
 * whose offset merely looks aligned, or the block's own start.  (d < 2 MiB.) */
static uint64_t aligned_tag_of(const lode_block_t* block) {
  uint64_t x = (uint64_t)(uintptr_t)block ^ 0x6c6f64655f616c69ull;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 29;
  return x & ~(uint64_t)0xffffffffu;
}

void _lode_page_aligned_tag_set(const lode_page_t* page, lode_block_t* block, const void* p) {
  (void)page;
  uint64_t d = (uint64_t)((const uint8_t*)p - (const uint8_t*)block);
  lode_assert(d >= sizeof(uint64_t) && d < page->block_size);
  block->next = (lode_block_t*)(uintptr_t)(aligned_tag_of(block) | d);
}

/* The offset a tagged block was handed out at, 0 when it carries no tag.
 * Any thread may ask (LODE_SECURE's checked memcpy): the first word of a
 * block without a tag is the program's, read with a relaxed load. */
size_t _lode_page_aligned_offset(const lode_block_t* block) {
  uint64_t w = __atomic_load_n((const uint64_t*)(const void*)block, __ATOMIC_RELAXED);
  return (w & ~(uint64_t)0xffffffffu) == aligned_tag_of(block) ? (size_t)(w & 0xffffffffu) : 0;
}

bool _lode_page_aligned_tag_ok(const lode_page_t* page, const lode_block_t* block, const void* p) {
  (void)page;
  uint64_t d = (uint64_t)((const uint8_t*)p - (const uint8_t*)block);
  uint64_t w = (uint64_t)(uintptr_t)block->next;
  bool tagged = (w & ~(uint64_t)0xffffffffu) == aligned_tag_of(block) && (w & 0xffffffffu) != 0;
  return d == 0 ? !tagged : tagged && (w & 0xffffffffu) == d;
}
