/* The allocation API: malloc/free fast paths, calloc, realloc, aligned
 * allocation, usable size, and validation of the pointers handed to free.
 *
 * Fast paths: a small malloc pops the first block of pages_direct[size/8];
 * a free by the owner thread pushes on local_free.  Neither takes a lock or
 * an atomic read-modify-write (only plain loads of atomics). */
#include "internal.h"

#include <stdlib.h>

#ifdef LODE_SECURE
static void* secure_alloc(lode_heap_t* heap, size_t size, size_t alignment, lode_alloc_kind_t kind);
static void secure_free(void* p, lode_alloc_kind_t kind, size_t size, const char* func);
static void* secure_realloc(lode_heap_t* heap, void* p, size_t newsize);
static uint8_t* secure_check(void* p, lode_alloc_kind_t kind, size_t size, const char* func, lode_page_t** ppage,
                             size_t* pend, bool giving_up);
#endif

/* Not the fast path: the generic one, and before it a thread's first
 * allocation (its thread data).  A thread whose exit already ran (a later
 * pthread key destructor allocates) gives its new thread data back at once:
 * no destructor would run for it again. */
static void exit_again(void) {
  /* the exit's collect makes OS calls: the caller's errno (ENOMEM on a
   * failure) must survive them */
  int e = errno;
  _lode_thread_exit_again();
  errno = e;
}

static lode_noinline void* malloc_slow(lode_heap_t* heap, size_t size) {
  if (lode_likely(heap->tld != NULL)) return _lode_heap_malloc_generic(heap, size);
  bool exited = LODE_TLS(thread_exited);
  heap = _lode_thread_init();
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  void* p = _lode_heap_malloc_generic(heap, size);
  if (p == NULL) errno = ENOMEM;
  if (exited) exit_again();
  return p;
}

/* The same for an allocation that goes on with its page after the pop
 * (calloc asks whether it reads as zero, an aligned or LODE_SECURE one marks
 * it): the thread data goes back only once it is done, since from then on
 * another thread may adopt the page.  once_begin gives *heap thread data if
 * it is the empty heap of a thread whose exit ran; once_end(true) gives it
 * back. */
static bool once_begin(lode_heap_t** heap) {
  if (lode_likely((*heap)->tld != NULL || !LODE_TLS(thread_exited))) return false;
  lode_heap_t* h = _lode_thread_init();
  if (h == NULL) return false; /* the allocation fails as malloc_slow's would */
  *heap = h;
  return true;
}

static void once_end(bool once) {
  if (lode_unlikely(once)) exit_again();
}

/* A heap is its owner's alone (lode.h): another thread allocating from it
 * would pop its free lists and rework its queues unlocked, and hand blocks
 * out twice.  Reported (EINVAL); collect, delete and destroy of such a heap
 * are ignored instead, as lode.h says.  The empty heap of a thread whose
 * exit ran has no owner to ask. */
static bool heap_is_callers(lode_heap_t* heap, const char* func) {
  if (lode_likely(heap->tld == NULL || heap->tld->thread_id == _lode_thread_id())) return true;
  _lode_error_pointer(func, "heap of another thread (only its owner may allocate from it)", heap);
  errno = EINVAL;
  return false;
}

static inline void* heap_malloc_small(lode_heap_t* heap, size_t size) {
  lode_page_t* page = heap->pages_direct[(size + 7) >> 3];
  if (lode_unlikely(page->free == NULL)) return malloc_slow(heap, size);
  lode_assert_internal(page->block_size >= size);
  return lode_page_pop(page);
}

static inline void* heap_malloc(lode_heap_t* heap, size_t size) {
  if (lode_likely(size <= LODE_DIRECT_MAX)) return heap_malloc_small(heap, size);
  if (lode_likely(size <= LODE_LARGE_OBJ_MAX)) {
    /* Medium and large sizes: the first page of the bin, as the direct
     * table would give it. */
    lode_page_t* page = heap->pages[lode_bin_of(size)].first;
    if (lode_likely(page != NULL && page->free != NULL)) return lode_page_pop(page);
  }
  return malloc_slow(heap, size);
}

void* lode_malloc(size_t size) {
#ifdef LODE_SECURE
  return secure_alloc(NULL, size, 0, LODE_KIND_MALLOC);
#else
  return heap_malloc(_lode_heap_get_default(), size);
#endif
}

void* lode_heap_malloc(lode_heap_t* heap, size_t size) {
  if (heap != NULL && !heap_is_callers(heap, "lode_heap_malloc")) return NULL;
#ifdef LODE_SECURE
  return secure_alloc(heap, size, 0, LODE_KIND_MALLOC);
#else
  if (heap == NULL) heap = _lode_heap_get_default();
  return heap_malloc(heap, size);
#endif
}

static bool mul_overflow(size_t a, size_t b, size_t* out) { return __builtin_mul_overflow(a, b, out); }

/* Memory lode knows to be zero is not cleared again: a block popped from a
 * page whose free list holds only never-used blocks of memory fresh from the
 * OS (or purged in a mode that zeroes) holds nothing but its link. */
void* lode_heap_calloc(lode_heap_t* heap, size_t count, size_t size) {
  if (heap != NULL && !heap_is_callers(heap, "lode_heap_calloc")) return NULL;
  size_t total;
  if (mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
#ifdef LODE_SECURE
  return lode_heap_malloc(heap, total); /* handed out zeroed */
#endif
  if (heap == NULL) heap = _lode_heap_get_default();
  bool once = once_begin(&heap);
  void* p = lode_heap_malloc(heap, total);
  if (p != NULL) {
    lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(p), p);
    if (page->free_is_zero && (uint8_t*)p >= page->area && (uint8_t*)p < page->area + page->area_size)
      memset(p, 0, total < sizeof(lode_block_t) ? total : sizeof(lode_block_t));
    else
      memset(p, 0, total);
  }
  once_end(once);
  return p;
}

void* lode_calloc(size_t count, size_t size) { return lode_heap_calloc(NULL, count, size); }

/* --- pointer validation ----------------------------------------------------- */
/* Cheap double-free test, owner thread only.  A free block's first word is
 * its link: NULL at a list's end (then it must be one of the known tails), or
 * a block boundary of its own page (then it is looked for on the lists within
 * a few steps).  Any other first word means the block is live.  Remote frees
 * not yet merged (thread_free) are walked too: their links were published by
 * the pushing thread's release CAS, which the acquire load below sees.
 * LODE_SECURE and LODE_DEBUG >= 2 walk the lists in full. */
#if defined(LODE_SECURE) || LODE_DEBUG >= 2
#define DOUBLE_FREE_WALK ((size_t)-1)
#else
#define DOUBLE_FREE_WALK ((size_t)16)
#endif

static bool list_contains(const lode_page_t* page, const lode_block_t* list, const lode_block_t* b,
                          size_t limit) {
  for (size_t n = 0; list != NULL && n < limit && n <= page->capacity; n++) {
    if (list == b) return true;
    list = lode_block_next(page, list);
  }
  return false;
}

static bool remote_contains(const lode_page_t* page, const lode_block_t* b) {
  uintptr_t tf = atomic_load_explicit(&((lode_page_t*)page)->thread_free, memory_order_acquire);
  return list_contains(page, lode_tf_block(tf), b, DOUBLE_FREE_WALK);
}

#ifdef LODE_TESTING
static _Atomic(size_t) list_walks; /* frees that looked like double frees and walked the lists */
size_t lode_test_double_free_walks(void) { return atomic_load_explicit(&list_walks, memory_order_relaxed); }
#define COUNT_LIST_WALK() atomic_fetch_add_explicit(&list_walks, 1, memory_order_relaxed)
#else
#define COUNT_LIST_WALK() ((void)0)
#endif

static inline bool looks_double_free(const lode_page_t* page, const lode_block_t* b) {
  /* (a list's head needs no test of its own: its link is its successor, or
   * NULL when it is the tail too) */
  uintptr_t next = (uintptr_t)lode_block_next(page, b);
  if (next == 0) {
    return (page->local_free != NULL && b == page->local_free_tail) ||
           (page->free != NULL && b == page->free_tail) || remote_contains(page, b);
  }
  uintptr_t off = next - (uintptr_t)page->area;
  if (lode_likely(off >= page->carved || !lode_is_multiple(off, page->block_magic)))
    return false;
  COUNT_LIST_WALK();
  return list_contains(page, page->local_free, b, DOUBLE_FREE_WALK) ||
         list_contains(page, page->free, b, DOUBLE_FREE_WALK) || remote_contains(page, b);
}


/* Resolve p to its segment, page and block start, or report it.  Returns
 * NULL when p is not a block lode handed out. */
static lode_block_t* resolve(const void* p, const char* func, lode_segment_t** pseg, lode_page_t** ppage) {
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  if (seg == NULL || seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg)) {
    _lode_error_pointer(func, "invalid pointer", p);
    return NULL;
  }
  lode_page_t* page = _lode_segment_page_of(seg, p);
  const uint8_t* u = p;
  if (u < page->area || u >= page->area + page->area_size || page->block_size == 0) {
    _lode_error_pointer(func, "invalid pointer", p);
    return NULL;
  }
  /* A page that went back to its segment holds no block: every block of it
   * was freed (p's too), or p was never handed out.  in_use is an atomic the
   * owner stores, so another thread's free may ask too: pushed on the free
   * page's remote list, p would land in the page's next life if the push
   * met the page's claim. */
  if (!atomic_load_explicit(&page->in_use, memory_order_relaxed)) {
    _lode_error_pointer(func, "invalid pointer (not allocated)", p);
    return NULL;
  }
  uint64_t off = (uint64_t)(u - page->area);
  /* The area's tail past its last block holds none: another thread (which
   * may not ask how far the page is carved) took one there for a block, and
   * LODE_SECURE read its trailer past the area, from the guard page (review,
   * 2026-12-07: a fault, no report).  reserved is fixed for the page's life. */
  if (seg->kind != LODE_PAGE_HUGE && off / page->block_size >= page->reserved) {
    _lode_error_pointer(func, "invalid pointer (not allocated)", p);
    return NULL;
  }
  lode_block_t* block = (lode_block_t*)u;
  if (atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_HAS_ALIGNED) {
    /* An aligned allocation hands out a pointer inside its block, whose
     * first word then says where (page.c): any other pointer into the block
     * is not one lode handed out.  A freed block lost its tag to its link. */
    block = _lode_page_unalign(page, p);
    if (!_lode_page_aligned_tag_ok(page, block, p)) {
      /* the owner may look at its lists: a freed aligned block lost its tag */
      bool mine = atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == _lode_thread_id();
      bool is_free = mine && block != (lode_block_t*)u && looks_double_free(page, block);
      /* another thread may not walk the owner's lists: either may be true
       * (review, 2026-12-06: a second free of an aligned block by another
       * thread was reported as an interior pointer only) */
      const char* what = is_free ? "double free"
                         : mine  ? "invalid pointer (not the start of a block)"
                                 : "invalid pointer (not the start of a block) or double free";
#ifdef LODE_SECURE
      /* The trailer is an atomic any thread may read: FREE names a second
       * free by any thread, the owner's lists aside (review, 2026-12-06:
       * one by another thread read "or double free", with no block size). */
      size_t end;
      lode_alloc_kind_t k;
      size_t d = (size_t)(u - (uint8_t*)block);
      bool live = d != 0 && _lode_trailer_get(page, (uint8_t*)block, &end, &k);
      if (live && k == LODE_KIND_FREE)
        what = "double free";
      else if (live && d >= 2 * LODE_GUARD_WORD && d < end &&
               (_lode_block_guard_ok(page, (uint8_t*)block, d) || (seg->kind >= LODE_PAGE_LARGE && d == 16)))
        /* p was handed out (its guard word, or a large block's one offset
         * says so): an underflow ran over the guard word into the tag */
        what = "heap underflow (the tag at the block's start is overwritten)";
      else if (!is_free)
        what = "invalid pointer (not the start of a block)";
      _lode_error_block(func, what, p, page->block_size);
#else
      _lode_error_pointer(func, what, p);
#endif
      return NULL;
    }
  } else if (seg->kind == LODE_PAGE_HUGE ? off != 0 : !lode_is_multiple(off, page->block_magic)) {
    _lode_error_pointer(func, "invalid pointer (not the start of a block)", p);
    return NULL;
  }
  *pseg = seg;
  *ppage = page;
  return block;
}

/* What only the owner of a resolved block may ask (another thread may not
 * read how far its page is carved, nor its lists): that it was handed out
 * and is not free.  free, realloc and usable_size ask it alike: realloc of a
 * freed block returned it while it was on a free list (two owners later).
 * Reports and returns false if not; true on any other thread. */
static bool owner_block_live(const lode_segment_t* seg, const lode_page_t* page, const lode_block_t* block,
                             const void* p, const char* func) {
  if (atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != _lode_thread_id()) return true;
  uint64_t off = (uint64_t)((const uint8_t*)block - page->area);
  if (off >= page->carved) {
    _lode_error_pointer(func, "invalid pointer (not allocated)", p);
    return false;
  }
  if (page->used == 0 || looks_double_free(page, block)) {
    _lode_error_pointer(func, "double free", p);
    return false;
  }
  return true;
}

/* A free by a thread that does not own the block's segment.  The one block
 * of an exited thread's huge segment: the freeing thread releases the
 * segment (nobody else would, short of a forced collect). */
static void free_remote(lode_segment_t* seg, lode_page_t* page, lode_block_t* block) {
  uintptr_t owner = atomic_load_explicit(&seg->thread_id, memory_order_acquire);
  /* read while the block is live: once it is pushed, a reclaim may release
   * the segment to the cache, which unmaps it or maps it anew (review,
   * 2026-12-06: a race under TSan, a fault with a delay put here) */
  bool huge = seg->kind == LODE_PAGE_HUGE;
  lode_tld_t* tld = _lode_heap_get_default()->tld;
  /* An exited thread's huge segment: this thread takes it over and releases
   * it, if it has thread data to adopt it with. */
  bool take = huge && owner == 0 && tld != NULL;
  if (huge && !take) {
    /* Otherwise the free waits on the segment's remote list: for its owner
     * to allocate or collect (an idle producer's huge blocks, all freed by
     * their consumer, stayed resident: review, 2026-12-06, 8 x 64 MiB, 529
     * MiB through malloc_trim), or, its owner gone, for a reclaim (a thread
     * that never allocated, freeing an exited thread's blocks: stress held,
     * 2026-12-06).  Their bytes go now, before the free is published (after
     * it, the segment may already be reused).  Not the page of a
     * LODE_SECURE trailer: it says FREE to a second free. */
    uint8_t* lo;
    size_t n = lode_huge_reset_range(page, block, &lo);
    if (n != 0) _lode_os_reset(lo, n);
  }
  _lode_page_free_remote(page, block);
  if (take) _lode_abandoned_take_huge(seg, tld);
}

static lode_noinline void free_slow(void* p, const char* func) {
  if (p == NULL) return;
  lode_segment_t* seg;
  lode_page_t* page;
  lode_block_t* block = resolve(p, func, &seg, &page);
  if (block == NULL || !owner_block_live(seg, page, block, p, func)) return;
  /* free leaves errno alone (POSIX.1-2024; glibc since 2.33): a purge,
   * reset or unmap below that the OS refuses would set it */
  int e = errno;
  if (atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == _lode_thread_id())
    _lode_heap_free_block(page, block);
  else
    free_remote(seg, page, block);
  errno = e;
}

/* A free by a thread that does not own p's segment, p's chunk a segment
 * start (lode_free's map test): resolve's checks without its second map
 * look-up and free_slow's second owner test, then the push on the page's
 * remote list.  Every free of a producer/consumer program comes here
 * (`lode-bench-fastpath --pattern remote`: 171 instructions before, 71 now;
 * mimalloc 2.0.9 79).  A huge block, a page holding aligned blocks, a
 * span's tail, and anything the checks refuse go to free_slow, which
 * reports or does the rest. */
static lode_noinline void free_other(void* p) {
  lode_segment_t* seg = _lode_ptr_segment(p);
  lode_page_t* page = _lode_segment_page_at(seg, p);
  uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)page->area);
  if (lode_likely(seg->cookie == (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg) && seg->kind != LODE_PAGE_HUGE &&
                  (atomic_load_explicit(&page->flags, memory_order_relaxed) &
                   (LODE_PAGE_HAS_ALIGNED | LODE_PAGE_SPAN_TAIL)) == 0 &&
                  off < page->area_size && page->block_size != 0 &&
                  atomic_load_explicit(&page->in_use, memory_order_relaxed) &&
                  lode_is_multiple(off, page->block_magic))) {
    _lode_page_free_remote(page, p);
    return;
  }
  free_slow(p, "free");
}

/* push on local_free, used already counted down */
static inline void local_push_counted(lode_page_t* page, lode_block_t* block) {
  lode_assert_internal(page->in_use && atomic_load_explicit(&page->heap, memory_order_relaxed) != NULL);
  lode_block_t* head = page->local_free;
  if (lode_unlikely(head == NULL)) page->local_free_tail = block;
  lode_block_set_next(page, block, head);
  page->local_free = block;
}

static inline void local_push(lode_page_t* page, lode_block_t* block, int32_t left) {
  page->used = (uint32_t)left;
  local_push_counted(page, block);
}

/* The fast path's rare cases, on a block start of the caller's own page
 * (flags clear): a first word of 0 (the tail of a list, or a program's
 * NULL) or one that could be a link of the page, or a page with nothing
 * live.  The owner's exact test decides; a bad free goes to free_slow,
 * which reports it. */
static lode_noinline void free_rare(lode_page_t* page, lode_block_t* block, int32_t left) {
  if (left < 0 || looks_double_free(page, block)) {
    free_slow(block, "free");
    return;
  }
  local_push(page, block, left);
  /* the last live block: the page retires without free_slow's second look-up */
  if (left == 0) _lode_heap_page_retire(page);
}

/* The fast path in one test per question, everything else out of line:
 * NULL and foreign pointers fail the map test (free_slow sorts them out); a
 * block whose first word could be a link of its page (or is NULL) gets the
 * exact double-free test in free_slow.  Written for few instructions: the
 * owner's and flags' tests each compare with a memory operand, and used-1
 * <= 0 as a signed number sends both the page's last block (retire) and a
 * page with nothing live (a double free) out of the common path in one
 * branch. */
void lode_free(void* p) {
#ifdef LODE_SECURE
  secure_free(p, LODE_KIND_MALLOC, LODE_UNSIZED, "free");
  return;
#endif
  if (lode_likely(_lode_segment_map_is_start(p))) {
    lode_segment_t* seg = _lode_ptr_segment(p);
    if (lode_unlikely(atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != _lode_thread_id())) {
      free_other(p);
      return;
    }
    lode_page_t* page = _lode_segment_page_at(seg, p);
    if (lode_likely(atomic_load_explicit(&page->flags, memory_order_relaxed) == 0)) {
      lode_block_t* block = p;
      uintptr_t area = (uintptr_t)page->area;
      uint64_t carved = page->carved, off = (uint64_t)((uintptr_t)p - area);
      /* the first word is read only once p is known to be a block start:
       * an interior pointer may be misaligned */
      if (lode_likely(off < carved && lode_is_multiple(off, page->block_magic))) {
        uintptr_t next = (uintptr_t)lode_block_next(page, block);
        if (lode_likely(next - area >= carved && next != 0)) {
          /* used is counted down in place (one instruction), and back up
           * for a page with nothing live */
          int32_t left = (int32_t)--page->used;
          if (lode_likely(left > 0)) {
            local_push_counted(page, block);
            return;
          }
          if (left == 0) {
            /* the last live block (each free of an alloc/free loop): the
             * page retires, kept a while if it is its bin's only page */
            local_push_counted(page, block);
            _lode_heap_page_retire(page);
            return;
          }
          page->used++;
        }
        free_rare(page, block, (int32_t)(page->used - 1));
        return;
      }
    }
  }
  free_slow(p, "free");
}

#ifdef LODE_OVERRIDE
/* liblode.so: malloc and free are lode_malloc and lode_free themselves, not
 * wrappers that jump to them (override.c has the other entry points). */
__attribute__((visibility("default"), alias("lode_malloc"))) void* malloc(size_t size);
__attribute__((visibility("default"), alias("lode_free"))) void free(void* p);
#endif

size_t lode_usable_size(const void* p) {
  if (p == NULL) return 0;
#ifdef LODE_SECURE
  /* what was asked for: the rest is the canary's */
  if (_lode_zero_contains(p)) {
    (void)_lode_zero_live(p, "malloc_usable_size");
    return 0;
  }
  lode_page_t* spage;
  size_t end;
  uint8_t* sblock =
      secure_check((void*)(uintptr_t)p, LODE_KIND_FREE, LODE_UNSIZED, "malloc_usable_size", &spage, &end, false);
  return sblock == NULL ? 0 : end - (size_t)((const uint8_t*)p - sblock);
#endif
  lode_segment_t* seg;
  lode_page_t* page;
  lode_block_t* block = resolve(p, "malloc_usable_size", &seg, &page);
  if (block == NULL || !owner_block_live(seg, page, block, p, "malloc_usable_size")) return 0;
  return page->block_size - (size_t)((const uint8_t*)p - (uint8_t*)block);
}

/* Where `size` bytes at `alignment` go (the default build's over-aligned
 * allocations and every LODE_SECURE one): the aligned pointer, and in
 * *pblock its block's start.  *ppage is set only for a huge block placed at
 * an aligned offset of its own segment (it may lie beyond the segment's
 * first 4 MiB, where masking the address finds no header).  NULL when out
 * of memory.  Tagging an interior pointer is the caller's. */
static uint8_t* place_aligned(lode_heap_t* heap, size_t size, size_t alignment, uint8_t** pblock,
                              lode_page_t** ppage) {
  *ppage = NULL;
  if (alignment <= LODE_MAX_ALIGN && (size >= alignment || size > 8)) return *pblock = heap_malloc(heap, size);
  if (alignment <= LODE_OS_PAGE_SIZE && size <= LODE_MEDIUM_OBJ_MAX) {
    /* Classes 2^k are multiples of any alignment <= 2^k; page areas are
     * 4 KiB aligned. */
    size_t bin = lode_bin_of(size < alignment ? alignment : size);
    while (lode_bin_size(bin) % alignment != 0) bin++;
    return *pblock = heap_malloc(heap, lode_bin_size(bin));
  }
  /* Over-allocated up to a large block: an alignment above 64 KiB for a
   * small size once took a huge segment each (review, 2026-12-06: 500
   * blocks of 64 bytes at 128 KiB, 1 GB resident, a mapping each). */
  size_t over = size + alignment - 1;
  if (over > LODE_LARGE_OBJ_MAX) {
    if (heap->tld == NULL && (heap = _lode_thread_init()) == NULL) return NULL;
    lode_page_t* page = _lode_heap_huge_page(heap, size, alignment);
    if (page == NULL) return NULL;
    uint8_t* block = (uint8_t*)lode_page_pop(page);
    _lode_page_set_delayed(page, LODE_DELAYED_USE, false);
    _lode_queue_to_full(heap, page);
    *ppage = page;
    return *pblock = block;
  }
  uint8_t* raw = heap_malloc(heap, over);
  *pblock = raw;
  return raw == NULL ? NULL : (uint8_t*)lode_align_up((uintptr_t)raw, alignment);
}

/* Whether the caller owns seg, for a realloc of its block to newsize.  An
 * exited thread's huge block is taken over first (as a reclaim would), so
 * it grows in place or moves by mremap: copied, every page of the new block
 * was written (review, 2026-12-06: 1 GiB with 1 MiB used, grown to 1.5 GiB:
 * 1029 MiB resident, seconds). */
static bool realloc_owns(lode_segment_t* seg, size_t offset, size_t newsize) {
  uintptr_t me = _lode_thread_id();
  if (atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == me) return true;
  lode_tld_t* tld = _lode_heap_get_default()->tld;
  if (seg->kind != LODE_PAGE_HUGE || tld == NULL || offset != 0 || newsize <= LODE_LARGE_OBJ_MAX ||
      atomic_load_explicit(&seg->thread_id, memory_order_acquire) != 0)
    return false;
  _lode_abandoned_take_huge(seg, tld);
  return atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == me;
}

/* --- LODE_SECURE: every block checked ------------------------------------------ */
/* A secure build gives each block a trailer (canary.c) and routes every
 * allocation and free through here instead of the fast paths above:
 *   - malloc: the block is checked to be as its free left it (a write after
 *     free shows), zeroed, its trailer and canary set;
 *   - free: its trailer, its canary and the trailer of the block before it
 *     are checked (overflow, underflow, double free, the wrong free for its
 *     kind or size), then it is wiped and waits in the quarantine;
 *   - malloc(0) gets an address that faults (zero_alloc.c). */
#ifdef LODE_SECURE
static const char* kind_alloc_name(lode_alloc_kind_t k) {
  return k == LODE_KIND_NEW ? "operator new" : k == LODE_KIND_NEW_ARRAY ? "operator new[]" : "malloc";
}

static void* secure_place(lode_heap_t* heap, size_t size, size_t alignment, lode_alloc_kind_t kind);

static void* secure_alloc(lode_heap_t* heap, size_t size, size_t alignment, lode_alloc_kind_t kind) {
  if (size == 0) {
    /* malloc(0) only: a block of an explicit heap belongs to that heap, and
     * new(0)'s must carry its kind (its delete is checked as any other) */
    if (alignment <= LODE_MAX_ALIGN && heap == NULL && kind == LODE_KIND_MALLOC) {
      void* z = _lode_zero_alloc();
      if (z != NULL) return z;
    }
    size = 1; /* the range is used up, or a stricter alignment: a one-byte block */
  }
  if (size > LODE_MAX_ALLOC_SIZE || alignment > LODE_MAX_ALLOC_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  if (heap == NULL) heap = _lode_heap_get_default();
  bool once = once_begin(&heap);
  void* p = secure_place(heap, size, alignment, kind);
  once_end(once);
  return p;
}

/* Room before the pointer for a guard word (canary.c) in a block that
 * place_aligned (as its tests go) puts at or near the start of a large span:
 * no guard page lies between spans, and no trailer before a span's block
 * (review, 2026-12-06: a one-byte underflow of one went unseen).  Small and
 * medium page areas and a plain huge block follow a guard page; a huge block
 * placed at an aligned offset follows a gap (huge_gap).  16 bytes, asked for
 * on top: the pointer goes to the first aligned place 16 bytes or more into
 * the block.  At malloc's alignment a size that turns huge by it goes huge,
 * guard word and all (it had none: 2 MiB - 23 .. - 8 bytes; a plain huge
 * block has room for it).  An over-aligned one that would turn huge keeps
 * none: a huge block is placed at its alignment with no room before it
 * (review, 2026-12-07: the pointer moved a whole alignment past its room,
 * over its trailer).  0: none. */
static size_t secure_front(size_t need, size_t alignment) {
  size_t place = alignment <= LODE_MAX_ALIGN                                         ? need
                 : alignment <= LODE_OS_PAGE_SIZE && need <= LODE_MEDIUM_OBJ_MAX ? 0
                                                                                   : need + alignment - 1;
  if (place <= LODE_MEDIUM_OBJ_MAX || place > LODE_LARGE_OBJ_MAX) return 0;
  return alignment <= LODE_MAX_ALIGN || place + 16 <= LODE_LARGE_OBJ_MAX ? 16 : 0;
}

/* The 16 bytes before a huge block placed at an aligned offset of its own
 * segment: they lie in a gap after the header (and its guard page) that
 * nothing writes, so they read as zero unless an underflow wrote there.
 * Only read (a write would fault in a page, a huge one where advised); a
 * handout clears what an earlier life of a cached mapping left.  NULL: no
 * such gap.  Not under a simulated OS: the gap is not committed memory. */
static uint8_t* huge_gap(const lode_segment_t* seg, const lode_page_t* page, const uint8_t* block) {
#ifdef LODE_SIM
  (void)seg;
  (void)page;
  (void)block;
  return NULL;
#else
  if (seg->kind != LODE_PAGE_HUGE || block != page->area ||
      (size_t)(page->area - (const uint8_t*)seg) < seg->header_size + 16)
    return NULL;
  return page->area - 16;
#endif
}

static bool gap_is_zero(const uint8_t* gap) {
  uint64_t w[2];
  __builtin_memcpy(w, gap, sizeof w);
  return (w[0] | w[1]) == 0;
}

static void* secure_place(lode_heap_t* heap, size_t size, size_t alignment, lode_alloc_kind_t kind) {
  uint8_t* block;
  lode_page_t* page;
  size_t front = secure_front(size + LODE_TRAILER_SIZE, alignment);
  uint8_t* p = place_aligned(heap, size + LODE_TRAILER_SIZE + front, alignment, &block, &page);
  if (p != NULL && front != 0 && (size_t)(p - block) < front)
    p = (uint8_t*)lode_align_up((uintptr_t)block + front, alignment > front ? alignment : front);
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (page == NULL) page = _lode_segment_page_of(_lode_ptr_segment(block), block);
  /* The popped block's link is the list's new head: one written over after
   * the free (its first word) points anywhere.  The rest of the list is
   * dropped (leaked), not followed. */
  uintptr_t next = (uintptr_t)page->free, off = next - (uintptr_t)page->area;
  if (next != 0 && (off >= page->carved || !lode_is_multiple(off, page->block_magic))) {
    page->free = NULL;
    _lode_error_block(kind_alloc_name(kind), "write after free (a free block's link is overwritten)", block,
                      page->block_size);
  }
  size_t d = (size_t)(p - block);
  if (!_lode_block_handout(page, block, d + size, kind, page->free_is_zero)) {
    /* kept out of every list: it is not as lode left it */
    _lode_error_block(kind_alloc_name(kind), "write after free (a freed block changed)", block, page->block_size);
    errno = ENOMEM;
    return NULL;
  }
  if (d != 0) {
    atomic_fetch_or_explicit(&page->flags, LODE_PAGE_HAS_ALIGNED, memory_order_relaxed);
    _lode_page_aligned_tag_set(page, (lode_block_t*)block, p);
    _lode_block_guard_set(page, block, d);
  }
  uint8_t* gap = huge_gap(_lode_page_segment(page), page, block);
  if (gap != NULL && !gap_is_zero(gap)) _lode_raw_memset(gap, 0, 16);
  return p;
}

/* A live block of this lode, checked: its start in *pblock, its requested
 * end in *pend.  NULL (reported) when p is not one, or its block was
 * overwritten around it, or was allocated by another kind than `kind`
 * (LODE_KIND_FREE: any), or size (unless LODE_UNSIZED) is not its requested
 * size. */
static uint8_t* secure_check(void* p, lode_alloc_kind_t kind, size_t size, const char* func, lode_page_t** ppage,
                             size_t* pend, bool giving_up) {
  lode_segment_t* seg;
  lode_page_t* page;
  uint8_t* block = (uint8_t*)resolve(p, func, &seg, &page);
  if (block == NULL) return NULL;
  size_t bsize = page->block_size, end;
  lode_alloc_kind_t k;
  /* only the owner may read how far its page is carved */
  bool mine = atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == _lode_thread_id();
  if (mine && (size_t)(block - page->area) >= page->carved) {
    _lode_error_pointer(func, "invalid pointer (not allocated)", p);
    return NULL;
  }
  size_t d = (size_t)((uint8_t*)p - block);
  if (!_lode_trailer_get(page, block, &end, &k) || (k != LODE_KIND_FREE && end <= d)) {
    _lode_error_block(func, "heap overflow (the block's trailer is overwritten)", p, bsize);
    if (giving_up) _lode_block_retire(page, block); /* its program gave it up */
    return NULL;
  }
  if (k == LODE_KIND_FREE) {
    _lode_error_block(func, "double free", p, bsize);
    return NULL;
  }
  if (!_lode_block_canary_ok(page, block, end)) {
    _lode_error_block(func, "heap overflow (the canary after the block is overwritten)", p, bsize);
    return NULL;
  }
  if (!_lode_block_guard_ok(page, block, d)) {
    _lode_error_block(func, "heap underflow (the guard word before the block is overwritten)", p, bsize);
    return NULL;
  }
  uint8_t* gap = huge_gap(seg, page, block);
  if (gap != NULL && !gap_is_zero(gap)) {
    _lode_error_block(func, "heap underflow (the bytes before the block are written)", p, bsize);
    return NULL;
  }
  if (!_lode_block_padding_ok(block, d)) {
    _lode_error_block(func, "heap underflow (the alignment padding before the block is written)", p, bsize);
    return NULL;
  }
  size_t e2;
  lode_alloc_kind_t k2;
  if (block > page->area && !_lode_trailer_get(page, block - bsize, &e2, &k2)) {
    _lode_error_block(func, "heap underflow (the trailer before the block is overwritten)", p, bsize);
    return NULL;
  }
  if (kind != LODE_KIND_FREE && k != kind) {
    const char* what = k == LODE_KIND_NEW         ? "mismatched free (the block is from operator new)"
                       : k == LODE_KIND_NEW_ARRAY ? "mismatched free (the block is from operator new[])"
                                                  : "mismatched free (the block is from malloc)";
    _lode_error_block(func, what, p, bsize);
    return NULL;
  }
  /* exact: a sized delete naming 0 is checked too (review, 2026-12-06: 0
   * stood for unsized), and new(0)'s one-byte block was asked for as 0 */
  if (size != LODE_UNSIZED && size != end - d && !(size == 0 && end - d == 1 && k != LODE_KIND_MALLOC)) {
    _lode_error_block(func, "sized delete with the wrong size", p, bsize);
    return NULL;
  }
  *ppage = page;
  *pend = end;
  return block;
}

static void secure_release(void* p, lode_page_t* page, uint8_t* block, size_t end, const char* func);

static void secure_free(void* p, lode_alloc_kind_t kind, size_t size, const char* func) {
  if (p == NULL) return;
  if (_lode_zero_contains(p)) {
    if (kind == LODE_KIND_NEW || kind == LODE_KIND_NEW_ARRAY) /* new(0) never gives one out */
      _lode_error_pointer(func, "mismatched free (the block is from malloc(0))", p);
    else
      _lode_zero_free(p, func);
    return;
  }
  lode_page_t* page;
  size_t end;
  uint8_t* block = secure_check(p, kind, size, func, &page, &end, true);
  if (block == NULL) return;
  /* free leaves errno alone (POSIX.1-2024; glibc since 2.33): the wipe and
   * the release make OS calls the OS may refuse */
  int e = errno;
  secure_release(p, page, block, end, func);
  errno = e;
}

static void secure_release(void* p, lode_page_t* page, uint8_t* block, size_t end, const char* func) {
  lode_segment_t* seg = _lode_page_segment(page);
  /* huge blocks too (review, 2026-12-06: an indexed write past a 3 MB
   * block's canary went unseen); from 64 KiB on only resident pages are read */
  if (!_lode_block_slack_ok(page, block, end)) {
    /* kept out of every list, as a block with a broken canary */
    _lode_error_block(func, "heap overflow (past the canary: the end of the block is written)", p, page->block_size);
    return;
  }
  if (seg->kind == LODE_PAGE_HUGE) {
    /* unmapped next, or cached: a cached mapping stays readable, and a
     * dangling pointer (a checked memcpy too: the address is no longer
     * lode's) would read the freed bytes */
    if (_lode_segment_cache_accepts(seg->size)) _lode_wipe_range(block, end);
    _lode_trailer_set(page, block, 0, LODE_KIND_FREE);
  } else {
    _lode_block_wipe(page, block, end);
  }
  if (atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != _lode_thread_id()) {
    free_remote(seg, page, (lode_block_t*)block);
    return;
  }
  lode_tld_t* tld = _lode_heap_get_default()->tld;
  if (seg->kind == LODE_PAGE_HUGE || tld == NULL || !_lode_option(LODE_OPTION_QUARANTINE)) {
    _lode_heap_free_block(page, (lode_block_t*)block);
    return;
  }
  void* out[2];
  size_t n = _lode_quarantine_push(&tld->quarantine, block, page->block_size, out);
  for (size_t i = 0; i < n; i++) _lode_heap_quarantine_release(out[i]);
}

static void* secure_realloc(lode_heap_t* heap, void* p, size_t newsize) {
  if (p == NULL) return secure_alloc(heap, newsize, 0, LODE_KIND_MALLOC);
  if (_lode_zero_contains(p)) {
    if (!_lode_zero_live(p, "realloc")) {
      errno = EINVAL;
      return NULL;
    }
    void* q = secure_alloc(heap, newsize, 0, LODE_KIND_MALLOC);
    if (q != NULL) _lode_zero_free(p, "realloc");
    return q;
  }
  lode_page_t* page;
  size_t end;
  uint8_t* block = secure_check(p, LODE_KIND_MALLOC, LODE_UNSIZED, "realloc", &page, &end, false);
  if (block == NULL) {
    errno = EINVAL;
    return NULL;
  }
  /* a write past the canary, as the free checks it: a realloc in place took
   * that byte into the block, and the free after it saw nothing (security
   * of_slack_realloc, of_huge_slack_realloc, 2026-12-07) */
  if (!_lode_block_slack_ok(page, block, end)) {
    _lode_error_block("realloc", "heap overflow (past the canary: the end of the block is written)", p,
                      page->block_size);
    errno = EINVAL;
    return NULL;
  }
  if (newsize > LODE_MAX_ALLOC_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t d = (size_t)((uint8_t*)p - block), room = page->block_size - LODE_TRAILER_SIZE - d;
  lode_segment_t* seg = _lode_page_segment(page);
  if (seg->kind == LODE_PAGE_HUGE && newsize > LODE_LARGE_OBJ_MAX && realloc_owns(seg, d, newsize)) {
    /* Huge blocks shrink and grow in place within their reservation, as in
     * the default build; the trailer moves with the block's end (d: the
     * block's guard word or alignment before the pointer). */
    size_t need = d + newsize + LODE_TRAILER_SIZE, usable = page->block_size;
    _lode_block_unseal(page, block, end);
    bool in_place = true;
    if (need <= usable) {
      if (need < usable / 2 || usable - need >= LODE_SEGMENT_SIZE) _lode_segment_huge_shrink(page, need);
    } else {
      in_place = _lode_segment_huge_grow(page, need);
    }
    _lode_block_seal(page, block, in_place ? d + newsize : end, LODE_KIND_MALLOC);
    /* a shrink leaves the old bytes past the new canary: the slack must read
     * as zero to the free's check (and to the block's next growth) */
    if (in_place) _lode_block_slack_clear(page, block, d + newsize, end);
    if (in_place) return p;
  }
  if (newsize != 0 && newsize <= room && newsize >= room / 2 && _lode_page_segment(page)->kind != LODE_PAGE_HUGE) {
    _lode_block_resize(page, block, end, d + newsize, LODE_KIND_MALLOC);
    return p;
  }
  if (seg->kind == LODE_PAGE_LARGE && newsize > room && d + newsize <= LODE_LARGE_OBJ_MAX - LODE_TRAILER_SIZE &&
      atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == _lode_thread_id() &&
      atomic_load_explicit(&page->heap, memory_order_relaxed) == (heap != NULL ? heap : _lode_heap_get_default())) {
    /* A large block grows in place as in the default build: its canary and
     * trailer move to the new end, and what it grew into is cleared unless
     * known zero (past the old canary the block was zero already). */
    size_t old_size = page->block_size;
    bool zero;
    _lode_block_unseal(page, block, end);
    if (_lode_heap_large_grow(atomic_load_explicit(&page->heap, memory_order_relaxed), page,
                              d + newsize + LODE_TRAILER_SIZE, &zero)) {
      _lode_os_touch(block + old_size, page->block_size - old_size); /* a simulated OS clears it */
      if (!zero) _lode_raw_memset(block + old_size, 0, page->block_size - old_size);
      _lode_block_seal(page, block, d + newsize, LODE_KIND_MALLOC);
      return p;
    }
    _lode_block_seal(page, block, end, LODE_KIND_MALLOC);
  }
  void* q = secure_alloc(heap, newsize, 0, LODE_KIND_MALLOC);
  if (q == NULL) return NULL; /* p stays valid */
  size_t old = end - d, copy = old < newsize ? old : newsize;
  if (!_lode_os_copy(q, p, copy)) _lode_raw_memcpy(q, p, copy);
  secure_free(p, LODE_KIND_MALLOC, LODE_UNSIZED, "realloc");
  return q;
}

void* _lode_alloc_kind(size_t size, size_t alignment, lode_alloc_kind_t kind) {
  if (alignment != 0 && !lode_is_pow2(alignment)) { /* 0: malloc's alignment */
    errno = EINVAL;
    return NULL;
  }
  return secure_alloc(NULL, size, alignment, kind);
}

void _lode_free_kind(void* p, lode_alloc_kind_t kind, size_t size, const char* func) {
  secure_free(p, kind, size, func);
}

/* A range that starts outside every page area (a guard page, a segment
 * header) and ends in one runs under the first block of that area: with
 * free lists in random order that block is now and then the one a program
 * copies just before, and the copy faulted in the guard page, unreported
 * (security uf_1_memcpy, 2 runs in 8 under load, 2026-12-07). */
static bool range_end_ok(const uint8_t* u, size_t n, const char* func) {
  if (n - 1 > UINTPTR_MAX - (uintptr_t)u) return true;
  const uint8_t* e = u + n - 1;
  lode_segment_t* seg = _lode_segment_map_lookup(e);
  if (seg == NULL || seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg)) return true;
  lode_page_t* page = _lode_segment_page_of(seg, e);
  if (e < page->area || e >= page->area + page->area_size || page->block_size == 0) return true;
  _lode_error_block(func, "access to heap memory that is not allocated", u, page->block_size);
  return false;
}

bool _lode_range_ok(const void* p, size_t n, const char* func) {
  if (n == 0) return true;
  if (_lode_zero_contains(p)) {
    _lode_error_pointer(func, "access through a malloc(0) pointer", p);
    return false;
  }
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  if (seg == NULL || seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg)) return range_end_ok(p, n, func);
  lode_page_t* page = _lode_segment_page_of(seg, p);
  const uint8_t* u = p;
  size_t bsize = page->block_size;
  if (u < page->area || u >= page->area + page->area_size || bsize == 0) /* lode's own tables */
    return range_end_ok(u, n, func);
  if (!page->in_use) { /* a heap destroyed with it, or a page since given back */
    _lode_error_block(func, "access to heap memory that is not allocated", p, bsize);
    return false;
  }
  /* past the last block (the area's tail, a huge block's room to grow) the
   * "trailer" would lie past the area, in a guard page or another mapping */
  size_t index = (size_t)(u - page->area) / bsize;
  const uint8_t* block = page->area + index * bsize;
  size_t end;
  lode_alloc_kind_t k;
  if (index >= page->reserved || !_lode_trailer_get(page, block, &end, &k) || k == LODE_KIND_FREE) {
    _lode_error_block(func, "access to heap memory that is not allocated", p, bsize);
    return false;
  }
  if (n > end || (size_t)(u - block) > end - n) {
    _lode_error_block(func, "heap overflow (the range runs past the end of its block)", p, bsize);
    return false;
  }
  if ((atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_HAS_ALIGNED) &&
      (size_t)(u - block) < _lode_page_aligned_offset((const lode_block_t*)block)) {
    _lode_error_block(func, "heap underflow (the range starts before its block)", p, bsize);
    return false;
  }
  return true;
}
#endif

/* --- aligned allocation ------------------------------------------------------ */
/* Small alignments: the first size class that is a multiple of the
 * alignment, in a page whose area start is aligned too, gives naturally
 * aligned blocks.  Otherwise over-allocate and hand out an interior pointer;
 * the page is marked so free finds the block start. */
static void* aligned_place(lode_heap_t* heap, size_t size, size_t alignment, bool zero);

void* _lode_heap_malloc_aligned(lode_heap_t* heap, size_t size, size_t alignment, bool zero) {
  if (!lode_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
#ifdef LODE_SECURE
  (void)zero; /* handed out zeroed */
  return secure_alloc(heap, size, alignment, LODE_KIND_MALLOC);
#endif
  if (heap == NULL) heap = _lode_heap_get_default();
  if (size > LODE_MAX_ALLOC_SIZE || alignment > LODE_MAX_ALLOC_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  if (size == 0) size = 1;
  bool once = once_begin(&heap);
  void* p = aligned_place(heap, size, alignment, zero);
  once_end(once);
  return p;
}

static void* aligned_place(lode_heap_t* heap, size_t size, size_t alignment, bool zero) {
  if (alignment <= LODE_MAX_ALIGN && (size >= alignment || size > 8))
    return zero ? lode_heap_calloc(heap, 1, size) : heap_malloc(heap, size);
  uint8_t* block;
  lode_page_t* page;
  uint8_t* p = place_aligned(heap, size, alignment, &block, &page);
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (p != block) {
    if (page == NULL) page = _lode_segment_page_of(_lode_ptr_segment(block), block);
    atomic_fetch_or_explicit(&page->flags, LODE_PAGE_HAS_ALIGNED, memory_order_relaxed);
    _lode_page_aligned_tag_set(page, (lode_block_t*)block, p);
  }
  if (zero) memset(p, 0, size);
  lode_assert(((uintptr_t)p & (alignment - 1)) == 0);
  return p;
}

void* lode_heap_aligned_alloc(lode_heap_t* heap, size_t alignment, size_t size) {
  if (heap != NULL && !heap_is_callers(heap, "lode_heap_aligned_alloc")) return NULL;
  return _lode_heap_malloc_aligned(heap, size, alignment, false);
}

void* lode_aligned_alloc(size_t alignment, size_t size) {
  return _lode_heap_malloc_aligned(NULL, size, alignment, false);
}

int lode_posix_memalign(void** out, size_t alignment, size_t size) {
  if (out == NULL || !lode_is_pow2(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  int saved = errno;
  void* p = _lode_heap_malloc_aligned(NULL, size, alignment, false);
  if (p == NULL) {
    int e = errno;
    errno = saved;
    return e == EINVAL ? EINVAL : ENOMEM;
  }
  *out = p;
  return 0;
}

/* --- realloc ------------------------------------------------------------------ */
void* lode_heap_realloc(lode_heap_t* heap, void* p, size_t newsize) {
  if (heap != NULL && !heap_is_callers(heap, "lode_heap_realloc")) return NULL;
#ifdef LODE_SECURE
  return secure_realloc(heap, p, newsize);
#endif
  if (p == NULL) return lode_heap_malloc(heap, newsize);
  lode_segment_t* seg;
  lode_page_t* page;
  lode_block_t* block = resolve(p, "realloc", &seg, &page);
  if (block == NULL || !owner_block_live(seg, page, block, p, "realloc")) {
    errno = EINVAL;
    return NULL;
  }
  size_t offset = (size_t)((uint8_t*)p - (uint8_t*)block);
  size_t usable = page->block_size - offset;
  if (newsize > LODE_MAX_ALLOC_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  bool mine = realloc_owns(seg, offset, newsize);
  if (seg->kind == LODE_PAGE_HUGE && mine && offset == 0 && newsize > LODE_LARGE_OBJ_MAX) {
    /* Huge blocks shrink and grow in place within their reservation. */
    if (newsize <= usable) {
      if (newsize < usable / 2 || usable - newsize >= LODE_SEGMENT_SIZE) _lode_segment_huge_shrink(page, newsize);
      return p;
    }
    if (_lode_segment_huge_grow(page, newsize)) return p;
    /* Past its room: the whole mapping moves, if the block stays in the heap
     * a copy would take it to. */
    lode_heap_t* to = heap != NULL ? heap : _lode_heap_get_default();
    if (atomic_load_explicit(&page->heap, memory_order_relaxed) == to) {
      void* q = _lode_heap_huge_remap(to, page, newsize);
      if (q != NULL) return q;
    }
  } else if (newsize <= usable && newsize >= usable / 2 && seg->kind != LODE_PAGE_HUGE) {
    return p; /* fits and does not waste more than half */
  } else if (seg->kind == LODE_PAGE_LARGE && mine && offset == 0 && newsize > usable && newsize <= LODE_LARGE_OBJ_MAX) {
    lode_heap_t* to = heap != NULL ? heap : _lode_heap_get_default();
    bool zero;
    if (atomic_load_explicit(&page->heap, memory_order_relaxed) == to && _lode_heap_large_grow(to, page, newsize, &zero))
      return p;
  }
  void* q = lode_heap_malloc(heap, newsize);
  if (q == NULL) return NULL; /* p stays valid */
  size_t copy = newsize < usable ? newsize : usable;
  if (!_lode_os_copy(q, p, copy)) memcpy(q, p, copy);
  lode_free(p);
  return q;
}

void* lode_realloc(void* p, size_t newsize) { return lode_heap_realloc(NULL, p, newsize); }

void* lode_reallocarray(void* p, size_t count, size_t size) {
  size_t total;
  if (mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return lode_realloc(p, total);
}
