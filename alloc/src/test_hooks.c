/* Test-only corruption hooks (LODE_TESTING): each breaks one invariant on
 * purpose, so the tests can show that its check really fires. */
#include "internal.h"

#include <pthread.h>

bool lode_test_owns(const void* p) {
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  return seg != NULL && atomic_load_explicit(&seg->thread_id, memory_order_relaxed) == _lode_thread_id();
}

size_t lode_test_page_live(const void* p) {
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  if (seg == NULL || atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != _lode_thread_id()) return SIZE_MAX;
  lode_page_t* page = seg->kind == LODE_PAGE_HUGE ? &seg->pages[0] : _lode_segment_page_of(seg, p);
  if (!atomic_load_explicit(&page->in_use, memory_order_relaxed)) return SIZE_MAX;
  return page->used;
}

bool lode_test_page_in_use(const void* p) {
#ifdef LODE_SECURE
  if (_lode_zero_contains(p)) return true; /* malloc(0)'s addresses are handed out again */
#endif
  lode_segment_t* seg = _lode_segment_map_lookup(p);
  if (seg == NULL) return false;
  lode_page_t* page = seg->kind == LODE_PAGE_HUGE ? &seg->pages[0] : _lode_segment_page_of(seg, p);
  return atomic_load_explicit(&page->in_use, memory_order_relaxed) != 0;
}

uintptr_t lode_test_thread_id(void) { return _lode_thread_id(); }
bool lode_test_thread_has_data(void) { return _lode_heap_get_default()->tld != NULL; }

void lode_test_thread_exit(void) { _lode_thread_exit_again(); }

static lode_tld_t* my_tld(void) { return lode_heap_get_default()->tld; }

/* A free page waiting on this thread's purge queue. */
static lode_page_t* queued_page(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000000);
  lode_heap_t* h = lode_heap_new();
  if (h == NULL) return NULL;
  void* p = lode_heap_malloc(h, 64);
  (void)p;
  lode_heap_destroy(h);
  return my_tld()->purge.last;
}

/* A live page of this thread's backing heap. */
static lode_page_t* live_page(void** keep) {
  void* p = lode_malloc(48);
  if (p == NULL) return NULL;
  *keep = p;
  return _lode_segment_page_of(_lode_ptr_segment(p), p);
}

static void* exit_holding_block(void* arg) {
  (void)arg;
  void* p = lode_malloc(100);
  void* q = lode_malloc(100);
  return p != NULL && q != NULL ? p : NULL;
}

static void* exit_holding_two_kinds(void* arg) {
  (void)arg;
  void* p = lode_malloc(100);
  void* q = lode_malloc(20000);
  return p != NULL && q != NULL ? p : NULL;
}

/* A segment of a thread that exited holding live blocks.  The hooks that
 * corrupt it assume no other thread reclaims it meanwhile (unit tests); a
 * concurrent reclaimer can empty the list, hence the retries. */
static lode_segment_t* abandoned_segment(void) {
  for (int tries = 0; tries < 16; tries++) {
    pthread_t t;
    if (pthread_create(&t, NULL, exit_holding_block, NULL) != 0) return NULL;
    pthread_join(t, NULL);
    lode_segment_t* seg = _lode_abandoned_first();
    if (seg != NULL) return seg;
  }
  return NULL;
}

int lode_test_corrupt(const char* inv) {
  if (inv == NULL) return -1;
  void* keep = NULL;
  if (strcmp(inv, "P1") == 0) {
    lode_page_t* page = queued_page();
    if (page == NULL) return -1;
    page->used = 3; /* a queued page that claims live blocks */
    return 0;
  }
  if (strcmp(inv, "P2") == 0) {
    lode_page_t* page = queued_page();
    if (page == NULL) return -1;
    page->purge_prev = page;
    return 0;
  }
  if (strcmp(inv, "P3") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    page->on_purge_queue = 1;
    return 0;
  }
  if (strcmp(inv, "P4") == 0) {
    lode_option_set(LODE_OPTION_PURGE_DELAY, 1000000);
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_collect(true);
    lode_segment_t* seg = _lode_page_segment(page);
    for (uint32_t i = 0; i < seg->page_count; i++) {
      lode_page_t* p = &seg->pages[i];
      if (!p->in_use && !p->is_committed) {
        p->is_committed = 1; /* as if the forced collect skipped it */
        seg->committed++;
        return 0;
      }
    }
    return -1;
  }
  if (strcmp(inv, "P5") == 0) {
    lode_segment_t* seg = abandoned_segment();
    if (seg == NULL) return -1;
    seg->pages[seg->page_count - 1].on_purge_queue = 1;
    return 0;
  }
  if (strcmp(inv, "P6") == 0) {
    lode_page_t* page = queued_page();
    if (page == NULL) return -1;
    _lode_purge_queue_remove(my_tld(), page);
    page->last_expire = 1000;
    page->purged_at = 10; /* purged 990 ms early */
    return 0;
  }
  if (strcmp(inv, "A1") == 0) {
    lode_segment_t* seg = abandoned_segment();
    if (seg == NULL) return -1;
    atomic_store(&seg->thread_id, (uintptr_t)0x1234);
    return 0;
  }
  if (strcmp(inv, "A2") == 0) {
    /* No abandoned segment needed: the statistic stays one ahead of the list
     * even when other threads abandon and reclaim meanwhile (lode-stress). */
    _lode_stat_add(&_lode_stats.segments_abandoned, NULL, 1);
    return 0;
  }
  if (strcmp(inv, "A2-links") == 0) {
    lode_segment_t* seg = abandoned_segment();
    if (seg == NULL) return -1;
    seg->prev = seg; /* the newest segment has nothing before it */
    return 0;
  }
  if (strcmp(inv, "A2-age") == 0) {
    /* a thread exits holding a small and a medium block: two segments */
    pthread_t t;
    if (pthread_create(&t, NULL, exit_holding_two_kinds, NULL) != 0) return -1;
    pthread_join(t, NULL);
    lode_segment_t* seg = _lode_abandoned_first();
    if (seg == NULL || seg->next == NULL) return -1;
    seg->abandoned_at = seg->next->abandoned_at - 1; /* the newest looks older than the next */
    return 0;
  }
  if (strcmp(inv, "S1") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_segment_t* seg = _lode_page_segment(page);
    for (uint32_t i = 0; i < seg->page_count; i++) {
      if (!seg->pages[i].in_use) {
        lode_page_set_capacity(&seg->pages[i], 7); /* as if its last life were not cleared */
        return 0;
      }
    }
    return -1;
  }
  if (strcmp(inv, "A3") == 0) {
    lode_segment_t* seg = abandoned_segment();
    if (seg == NULL) return -1;
    for (uint32_t i = 0; i < seg->page_count; i++) {
      if (seg->pages[i].in_use) {
        seg->pages[i].local_free = NULL; /* the dead thread's own frees vanish */
        seg->pages[i].free = NULL;
        return 0;
      }
    }
    return -1;
  }
  if (strcmp(inv, "A4") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    atomic_store(&_lode_page_segment(page)->thread_id, (uintptr_t)0x5678);
    return 0;
  }
  if (strcmp(inv, "A5") == 0) {
    return abandoned_segment() == NULL ? -1 : 0; /* a block nobody frees */
  }
  if (strcmp(inv, "F1") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    page->used++;
    return 0;
  }
  if (strcmp(inv, "F1-shared") == 0) {
    /* free and local_free one list, the counts kept whole: a block counted
     * twice, the free list's blocks lost (only the lists' marks show it) */
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
#ifdef LODE_SECURE
    lode_option_set(LODE_OPTION_QUARANTINE, 0); /* the frees below go to local_free */
#endif
    void* more[8];
    int freed = 0;
    for (int i = 0; i < 8; i++) more[i] = lode_malloc(48);
    for (int i = 0; i < 8; i++)
      if (freed < 3 && _lode_segment_page_of(_lode_ptr_segment(more[i]), more[i]) == page) lode_free(more[i]), freed++;
    size_t nfree = 0, nlocal = 0;
    for (lode_block_t* b = page->free; b != NULL; b = lode_block_next(page, b)) nfree++;
    for (lode_block_t* b = page->local_free; b != NULL; b = lode_block_next(page, b)) nlocal++;
    if (nlocal == 0 || page->used + nfree < nlocal) return -1;
    page->free = page->local_free;
    page->free_tail = page->local_free_tail;
    page->used = (uint32_t)(page->used + nfree - nlocal);
    return 0;
  }
  if (strcmp(inv, "F1-cycle") == 0) {
    /* the free list's last block links back to its first: a list that
     * never ends, its marks seen again on the same list */
    lode_page_t* page = live_page(&keep);
    if (page == NULL || page->free == NULL || lode_block_next(page, page->free) == NULL) return -1;
    lode_block_t* last = page->free;
    while (lode_block_next(page, last) != NULL) last = lode_block_next(page, last);
    lode_block_set_next(page, last, page->free);
    return 0;
  }
  if (strcmp(inv, "H1-unqueued") == 0) {
    /* a page in use taken out of its heap's queues, the count kept right */
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_heap_t* heap = atomic_load(&page->heap);
    _lode_queue_remove(heap, _lode_page_queue_of(heap, page), page);
    heap->page_count--;
    return 0;
  }
  if (strcmp(inv, "H1-bins") == 0) {
    /* the heap's record says a bin with a page has none: the quick pass
     * would pass over it for good */
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_heap_t* heap = atomic_load(&page->heap);
    size_t bin = (size_t)(_lode_page_queue_of(heap, page) - heap->pages);
    heap->check_bins[bin / 64] &= ~((uint64_t)1 << (bin % 64));
    return 0;
  }
  if (strcmp(inv, "A4-unlisted") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_segment_t* seg = _lode_page_segment(page);
    _lode_segment_list_remove(&seg->tld->segments[seg->kind], seg); /* owned, on no list */
    return 0;
  }
  if (strcmp(inv, "F2") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    atomic_store(&page->thread_free, (uintptr_t)0x1000);
    return 0;
  }
  if (strcmp(inv, "F3") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    atomic_store(&page->thread_free, lode_tf_make(lode_tf_block(atomic_load(&page->thread_free)), LODE_DELAYED_NEVER));
    return 0;
  }
  if (strcmp(inv, "H1") == 0) {
    lode_page_t* page = live_page(&keep);
    if (page == NULL) return -1;
    lode_heap_get_default()->pages_direct[2] = page; /* 16-byte sizes now point at a 48-byte page */
    return 0;
  }
  return -1;
}
