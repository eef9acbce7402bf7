/* The invariant checker: the oracle of the stress and fuzz suites.  It reads
 * lode's structures and reports every broken invariant to the reporter;
 * nothing here changes state, and nothing runs unless called. */
#include "internal.h"

#include <stdio.h>
#include <unistd.h>

static lode_check_reporter_fn* reporter;
static void* reporter_arg;
#define violations LODE_TLS(check_violations)

static void default_reporter(const char* inv, const void* obj, const char* msg, void* arg) {
  (void)arg;
  char buf[300];
  int n = snprintf(buf, sizeof(buf), "lode: invariant %s violated at %p: %s\n", inv, obj, msg);
  if (n > 0) {
    ssize_t w = write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    (void)w;
  }
}

void lode_check_set_reporter(lode_check_reporter_fn* fn, void* arg) {
  reporter = fn;
  reporter_arg = arg;
}

void _lode_check_report(const char* inv, const void* obj, const char* msg) {
  violations++;
  if (reporter) reporter(inv, obj, msg, reporter_arg);
  else default_reporter(inv, obj, msg, NULL);
}

#define REPORT_IF(cond, inv, obj, msg) \
  do {                                  \
    if (cond) _lode_check_report(inv, obj, msg); \
  } while (0)

/* Length of a free list, or SIZE_MAX when it leaves the page, misaligns or
 * loops (longer than the page can hold). */
/* The three tests are one branch (| not ||), and the link decoding is
 * chosen outside the loop: a fuzzing compiler counts every branch taken, and
 * this walk runs after every fuzz op. */
#define LIST_STEP(next_expr)                                                                     \
  while (b != NULL) {                                                                            \
    uint64_t off = (uint64_t)((const uint8_t*)b - page->area);                                   \
    if ((int)(off >= bytes) | (int)!lode_is_multiple(off, page->block_magic) | (int)(++n > limit))     \
      return SIZE_MAX;                                                                           \
    b = (next_expr);                                                                             \
  }
static size_t list_length(const lode_page_t* page, const lode_block_t* b, bool raw_links) {
  size_t n = 0;
  size_t limit = (size_t)page->capacity + 1;
  uint64_t bytes = (uint64_t)page->capacity * page->block_size;
  if (raw_links) {
    LIST_STEP(b->next)
  } else {
    LIST_STEP(lode_block_next(page, b))
  }
  return n;
}
#undef LIST_STEP

#ifdef LODE_TESTING
static uint64_t lists_sig(const lode_page_t* page) {
  uint64_t x = (uintptr_t)page->free * 0x9e3779b97f4a7c15ull;
  x ^= ((uintptr_t)page->local_free + page->used) * 0xbf58476d1ce4e5b9ull;
  x ^= (atomic_load_explicit(&page->thread_free, memory_order_relaxed) + page->capacity) * 0x94d049bb133111ebull;
  return x | 1; /* 0: never walked */
}
#endif

/* F1: no block is on two of the lists.  The counts alone cannot see a block
 * both free and local-free while a live one is missing (review).  Pages of
 * up to MARK_MAX blocks (every small page) have their blocks marked as the
 * lists are counted: a length walk and then a marking walk were two chains
 * of dependent loads a block, and the checker is most of the simulation's
 * time (it runs after every fuzz op). */
#define MARK_MAX 8192
typedef struct {
  uint64_t seen[MARK_MAX / 64];
  unsigned shift;   /* block index = (offset >> shift) * inverse: */
  uint64_t inverse; /* the size's odd part's inverse mod 2^64 divides exactly */
  bool shared;      /* a block was seen again */
} marks_t;

/* False when there is nothing to mark: one list alone cannot share a block
 * (and most pages have only their free list). */
static bool marks_init(marks_t* m, const lode_page_t* page, const lode_block_t* tf) {
  if ((page->free != NULL) + (page->local_free != NULL) + (tf != NULL) < 2) return false;
  if (page->capacity > MARK_MAX || page->block_size == 0) return false;
  memset(m->seen, 0, ((size_t)page->capacity + 63) / 64 * sizeof(uint64_t));
  m->shift = (unsigned)__builtin_ctzll(page->block_size);
  uint64_t odd = page->block_size >> m->shift, x = odd; /* right to 3 bits */
  for (int k = 0; k < 5; k++) x *= 2 - odd * x;       /* each step doubles them */
  m->inverse = x;
  m->shared = false;
  return true;
}

/* list_length, marking each block.  A block seen before is on an earlier
 * list (shared), or this one loops, which the length bound then reports:
 * either way the walk goes on, so the counts are whole. */
static size_t list_mark(const lode_page_t* page, const lode_block_t* b, marks_t* m) {
  size_t n = 0;
  size_t limit = (size_t)page->capacity + 1;
  uint64_t bytes = (uint64_t)page->capacity * page->block_size;
  while (b != NULL) {
    uint64_t off = (uint64_t)((const uint8_t*)b - page->area);
    if ((int)(off >= bytes) | (int)!lode_is_multiple(off, page->block_magic) | (int)(++n > limit)) return SIZE_MAX;
    size_t i = (size_t)((off >> m->shift) * m->inverse);
    uint64_t bit = (uint64_t)1 << (i % 64);
    m->shared |= (m->seen[i / 64] & bit) != 0;
    m->seen[i / 64] |= bit;
    b = lode_block_next(page, b);
  }
  return n;
}

/* F1/F2/F3: one page's block accounting (owner's view).  quick: skip a page
 * whose lists the last walk saw as they are (lode_test_check_thread_quick). */
static void check_page_blocks(lode_page_t* page, const char* acct_inv, bool quick) {
#ifdef LODE_TESTING
  uint64_t sig = lists_sig(page);
  if (quick && page->check_sig == sig) return;
  page->check_sig = sig;
#else
  (void)quick;
#endif
  const lode_block_t* tf = lode_tf_block(atomic_load_explicit(&page->thread_free, memory_order_acquire));
  marks_t m;
  bool marked = marks_init(&m, page, tf);
  size_t nfree = marked ? list_mark(page, page->free, &m) : list_length(page, page->free, false);
  marked = marked && nfree != SIZE_MAX;
  size_t nlocal = marked ? list_mark(page, page->local_free, &m) : list_length(page, page->local_free, false);
  marked = marked && nlocal != SIZE_MAX;
  size_t nthread = marked ? list_mark(page, tf, &m) : list_length(page, tf, false);
  marked = marked && nthread != SIZE_MAX;
  REPORT_IF(nfree == SIZE_MAX, "F1", page, "free list leaves the page, misaligned or cyclic");
  REPORT_IF(nlocal == SIZE_MAX, "F1", page, "local_free list leaves the page, misaligned or cyclic");
  REPORT_IF(nthread == SIZE_MAX, "F2", page, "thread_free list leaves the page, misaligned or cyclic");
  REPORT_IF(page->capacity > page->reserved, "F1", page, "capacity exceeds reserved blocks");
  if (nfree != SIZE_MAX && nlocal != SIZE_MAX)
    REPORT_IF(page->used + nfree + nlocal != page->capacity, acct_inv, page,
              "used + |free| + |local_free| != capacity (a block is lost or counted twice)");
  if (nthread != SIZE_MAX) REPORT_IF(nthread > page->used, "F2", page, "more remote frees pending than blocks in use");
  if (marked) REPORT_IF(m.shared, acct_inv, page, "a block is on two free lists");
}

static size_t count_queue(const lode_page_queue_t* q, size_t limit, bool* broken) {
  size_t n = 0;
  const lode_page_t* prev = NULL;
  for (const lode_page_t* p = q->first; p != NULL; p = p->next) {
    if (p->prev != prev || ++n > limit) {
      *broken = true;
      return n;
    }
    prev = p;
  }
  if (q->last != prev) *broken = true;
  return n;
}

static void check_heap(const lode_heap_t* heap, const lode_tld_t* tld, uintptr_t tid, bool quick) {
  REPORT_IF(heap->tld != tld, "H1", heap, "heap's thread data is not its thread's");
  size_t pages = 0;
  for (size_t b = 0; b < LODE_BIN_COUNT; b++) {
    const lode_page_queue_t* q = &heap->pages[b];
#ifdef LODE_TESTING
    /* quick: only the bins the record says have pages (most are empty);
     * a full pass finds a bin with pages the record left out */
    bool said = heap->check_bins[b / 64] >> (b % 64) & 1;
    if (quick && !said) continue;
    REPORT_IF(said != (q->first != NULL), "H1", q, "heap's record of its bins with pages is wrong");
#endif
    bool broken = false;
    size_t n = count_queue(q, 1u << 24, &broken);
    if (broken) {
      _lode_check_report("H1", q, "heap page queue is not a well-formed list");
      continue;
    }
    pages += n;
    for (lode_page_t* page = q->first; page != NULL; page = page->next) {
      lode_segment_t* seg = _lode_page_segment(page);
      uint8_t flags = atomic_load_explicit(&page->flags, memory_order_relaxed);
      REPORT_IF(page->on_purge_queue, "P3", page, "page in use by a heap is on a purge queue");
      /* its next free would inherit it (review, 2026-12-07: purged at once) */
      REPORT_IF(page->purge_expire != 0, "P3", page, "page in use by a heap keeps a purge expiry");
      REPORT_IF(!page->in_use, "H1", page, "page in a heap queue is not marked in use");
      REPORT_IF(atomic_load_explicit(&page->heap, memory_order_relaxed) != heap, "H1", page,
                "page sits in a queue of a heap it does not name");
      REPORT_IF(atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != tid, "H1", page,
                "page of this thread's heap lies in a segment this thread does not own");
      REPORT_IF(b == LODE_BIN_FULL ? !(flags & LODE_PAGE_IN_FULL) : ((flags & LODE_PAGE_IN_FULL) || page->bin != b),
                "H1", page, "page is in the wrong bin queue");
      REPORT_IF(lode_tf_delayed(atomic_load_explicit(&page->thread_free, memory_order_relaxed)) == LODE_DELAYED_NEVER,
                "F3", page, "page of a live heap refuses delayed frees");
      check_page_blocks(page, "F1", quick);
    }
    size_t bsize = b >= 1 && b < LODE_BIN_HUGE ? q->block_size : SIZE_MAX; /* lode_bin_size(b), kept */
    if (bsize <= LODE_DIRECT_MAX) {
      const lode_page_t* want = q->first ? q->first : &_lode_page_empty;
      REPORT_IF(heap->pages_direct[bsize / 8] != want, "H1", heap,
                "direct table does not point at the first page of its bin");
    }
  }
  REPORT_IF(pages != heap->page_count, "H1", heap, "heap page count differs from its queues");
}


static void check_purge_queue(const lode_tld_t* tld, uintptr_t tid) {
  const lode_purge_queue_t* q = &tld->purge;
  size_t n = 0;
  const lode_page_t* prev = NULL;
  bool broken = false;
  for (const lode_page_t* page = q->first; page != NULL; page = page->purge_next) {
    if (page->purge_prev != prev) {
      _lode_check_report("P2", page, "purge queue back link broken");
      broken = true;
      break;
    }
    if (++n > q->count + 1) {
      _lode_check_report("P2", q, "purge queue longer than its count (cycle or duplicate)");
      broken = true;
      break;
    }
    if (prev != NULL && prev->purge_expire > page->purge_expire)
      _lode_check_report("P2", page, "purge queue expiries out of order");
    lode_segment_t* seg = _lode_page_segment(page);
    REPORT_IF(page->in_use || atomic_load_explicit(&page->heap, memory_order_relaxed) != NULL, "P1", page,
              "queued page is in use or in a heap");
    REPORT_IF(page->in_use, "P3", page, "page in use is on the purge queue");
    REPORT_IF(!page->in_use && page->used != 0, "P1", page, "queued page holds live blocks");
    REPORT_IF(page->purge_expire <= 0, "P1", page, "queued page has no expiry (or one that wrapped below zero)");
    REPORT_IF(!page->is_committed, "P1", page, "queued page has no memory to purge");
    REPORT_IF(!page->on_purge_queue, "P5", page, "queued page is not marked as queued");
    REPORT_IF(atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != tid || seg->tld != tld ||
                  seg->is_abandoned,
              "P1", page, "queued page lies in a segment this thread does not own");
    prev = page;
  }
  if (!broken) {
    REPORT_IF(q->last != prev, "P2", q, "purge queue last pointer is not its last page");
    REPORT_IF(n != q->count, "P2", q, "purge queue count differs from its length");
  }
}

/* S1: a free page carries nothing of a life it had (in a heap, as a span's
 * head or tail, in a segment of another kind before the cache took it). */
static void check_free_page(const lode_page_t* page) {
  REPORT_IF(page->used != 0 || page->capacity != 0 || page->carved != 0 || page->free != NULL ||
                page->local_free != NULL,
            "S1", page, "free page still holds blocks or free lists");
  REPORT_IF(atomic_load_explicit(&page->flags, memory_order_relaxed) != 0 ||
                atomic_load_explicit(&page->thread_free, memory_order_relaxed) != 0 ||
                atomic_load_explicit(&page->heap, memory_order_relaxed) != NULL,
            "S1", page, "free page still has flags, remote frees or a heap");
  REPORT_IF(page->span_back != 0 || page->span_count != 0, "S1", page, "free page still marked part of a span");
  REPORT_IF(page->is_committed && page->area_zero, "S1", page, "committed free page claims its memory reads as zero");
  REPORT_IF(page->area == NULL || page->area_size == 0, "S1", page, "free page has no area");
}

/* The thread's heaps, asked "is this page's heap one of them" once per page
 * in use: a walk of the list for a few heaps, a binary search of a sorted
 * copy for many (100,000 heaps walked per page took minutes).  The copy is
 * lode's own memory, never a malloc: the checker must not allocate. */
typedef struct {
  const lode_heap_t* first;
  size_t n;
  uintptr_t* sorted;
} heap_set_t;
#define HEAP_SET_WALK 64

static void sift_down(uintptr_t* a, size_t root, size_t n) {
  for (size_t child; (child = 2 * root + 1) < n; root = child) {
    if (child + 1 < n && a[child + 1] > a[child]) child++;
    if (a[root] >= a[child]) return;
    uintptr_t t = a[root];
    a[root] = a[child];
    a[child] = t;
  }
}

static void heap_set_init(heap_set_t* s, const lode_tld_t* tld, size_t n) {
  *s = (heap_set_t){tld->heaps, n, NULL};
  if (n <= HEAP_SET_WALK || (s->sorted = _lode_os_alloc_meta(n * sizeof(uintptr_t))) == NULL) return;
  size_t i = 0;
  for (const lode_heap_t* h = tld->heaps; h != NULL && i < n; h = h->next) s->sorted[i++] = (uintptr_t)h;
  for (size_t k = n / 2; k-- > 0;) sift_down(s->sorted, k, n); /* heapsort */
  for (size_t end = n; end-- > 1;) {
    uintptr_t t = s->sorted[0];
    s->sorted[0] = s->sorted[end];
    s->sorted[end] = t;
    sift_down(s->sorted, 0, end);
  }
}

static bool heap_set_has(const heap_set_t* s, const lode_heap_t* owner) {
  if (s->sorted == NULL) {
    size_t nh = 0;
    for (const lode_heap_t* h = s->first; h != NULL && nh < s->n; h = h->next, nh++)
      if (h == owner) return true;
    return false;
  }
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->sorted[mid] < (uintptr_t)owner) lo = mid + 1;
    else hi = mid;
  }
  return lo < s->n && s->sorted[lo] == (uintptr_t)owner;
}

static void heap_set_done(heap_set_t* s) {
  if (s->sorted != NULL) _lode_os_free_meta(s->sorted, s->n * sizeof(uintptr_t));
}

static void check_segments(const lode_tld_t* tld, uintptr_t tid, const heap_set_t* heaps, size_t* flagged_out,
                           size_t* heads_out) {
  size_t flagged = 0, heads = 0;
  for (int k = 0; k < LODE_PAGE_KINDS; k++) {
    const lode_segment_list_t* list = &tld->segments[k];
    bool seen_full = false;
    size_t n = 0;
    for (const lode_segment_t* seg = list->first; seg != NULL; seg = seg->next) {
      if (++n > list->count + 1) {
        _lode_check_report("H1", list, "segment list longer than its count");
        break;
      }
      REPORT_IF(seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg), "H1", seg, "segment cookie damaged");
      REPORT_IF(atomic_load_explicit(&seg->thread_id, memory_order_relaxed) != tid || seg->tld != tld, "A4", seg,
                "segment on this thread's list has another owner");
      REPORT_IF(seg->is_abandoned, "A1", seg, "owned segment is marked abandoned");
      REPORT_IF((int)seg->kind != k, "H1", seg, "segment on the wrong kind list");
      REPORT_IF(!_lode_segment_map_is_start(seg), "H1", seg, "segment missing from the segment map");
      uint32_t used = 0, committed = 0;
      for (uint32_t i = 0; i < seg->page_count; i++) {
        const lode_page_t* page = &seg->pages[i];
        used += page->in_use;
        if (page->span_back != 0) {
          const lode_page_t* head = page - page->span_back;
          REPORT_IF(page->span_back > i || !page->in_use || !head->in_use || head->span_back != 0 ||
                        head->span_count <= page->span_back || page->on_purge_queue,
                    "H1", page, "span tail does not belong to an in-use span head");
          REPORT_IF(atomic_load_explicit(&page->flags, memory_order_relaxed) != LODE_PAGE_SPAN_TAIL, "H1", page,
                    "span tail is not flagged as one (free would take it for a page)");
        } else if (page->in_use && page->span_count > 1) {
          REPORT_IF(i + page->span_count > seg->page_count, "H1", page, "span runs past its segment");
        }
        if (page->in_use && page->span_back == 0) {
          heads++;
          /* the fast free's block-start test reads the magic; a huge block's
           * frees must not reach it (exact only below 4 GiB) */
          REPORT_IF(page->block_magic != lode_div_magic(page->block_size), "F1", page,
                    "block-start magic does not match the block size");
          REPORT_IF(page->carved != (uint64_t)page->capacity * page->block_size, "F1", page,
                    "carved bytes do not match capacity times block size");
          REPORT_IF(page->retire_ticks != lode_retire_ticks(page->bin, page->block_size), "H1", page,
                    "retire ticks do not match the page's bin and block size");
          REPORT_IF(atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_SPAN_TAIL, "H1", page,
                    "page in use is flagged as a span tail");
          REPORT_IF(seg->kind == LODE_PAGE_HUGE &&
                        !(atomic_load_explicit(&page->flags, memory_order_relaxed) & LODE_PAGE_IN_FULL),
                    "H1", page, "huge page in use is not in its heap's full queue");
          const lode_heap_t* owner = atomic_load_explicit(&page->heap, memory_order_relaxed);
          REPORT_IF(!heap_set_has(heaps, owner), "H1", page, "page in use belongs to no live heap of its thread");
        }
        if (!page->in_use) check_free_page(page);
        committed += page->is_committed;
        /* Every page on the queue is flagged (check_purge_queue) and the
         * queue holds no page twice (a doubly linked list cannot without a
         * cycle): equal counts mean every flagged page is on it. */
        flagged += page->on_purge_queue;
        if (!page->in_use && page->purged_at >= 0)
          REPORT_IF(page->purged_at < page->last_expire, "P6", page, "page was purged before its delay expired");
      }
      REPORT_IF(used != seg->used, "H1", seg, "segment used-page count is wrong");
      REPORT_IF(committed != seg->committed, "H1", seg, "segment committed-page count is wrong");
      bool has_free = seg->used < seg->page_count;
      if (k != LODE_PAGE_HUGE) {
        REPORT_IF(has_free && seen_full, "H1", seg, "segment with a free page sits behind a full one");
        if (!has_free) seen_full = true;
      }
    }
    REPORT_IF(n != list->count && n <= list->count + 1, "H1", list, "segment list count differs from its length");
  }
  *flagged_out = flagged;
  *heads_out = heads;
}

/* O1 (LODE_SIM): the simulated OS found purged memory written when it was
 * committed again: a live block in a page lode purged, or a stray write. */
static void check_sim_os(void) {
#ifdef LODE_SIM
  lode_sim_os_stats_t st;
  lode_sim_os_stats(&st);
  REPORT_IF(st.poison_errors != 0, "O1", st.first_error, "memory was written while purged");
  const void* fit;
  REPORT_IF(_lode_heap_fresh_errors(&fit) != 0, "A6", fit,
            "a segment was mapped while this one (owned, or abandoned before the reclaim) could hold the block");
#endif
}

/* A7 (LODE_SIM): the block of an abandoned huge segment that another thread
 * freed holds none of its pages resident.  The free gave them back before
 * its push, or took the segment and released it (_lode_abandoned_take_huge);
 * listed with them, the segment waits for a reclaim that may never come
 * (review, 2026-12-07: a free while the owner's exit or a forced collect
 * held it off the list).  Unless the OS refused something this input. */
static void check_freed_huge(const lode_segment_t* seg) {
#ifdef LODE_SIM
  const lode_page_t* page = &seg->pages[0];
  const lode_block_t* b = lode_tf_block(atomic_load_explicit(&page->thread_free, memory_order_acquire));
  if (b == NULL || !_lode_os_sim_on() || _lode_os_sim_refused_this_input()) return;
  uint8_t* lo;
  size_t n = lode_huge_reset_range(page, b, &lo);
  unsigned char vec[256];
  for (size_t at = 0; at < n; at += sizeof(vec) * LODE_OS_PAGE_SIZE) {
    size_t len = n - at < sizeof(vec) * LODE_OS_PAGE_SIZE ? n - at : sizeof(vec) * LODE_OS_PAGE_SIZE;
    _lode_os_sim_resident_map(lo + at, len, vec);
    for (size_t i = 0; i < len / LODE_OS_PAGE_SIZE; i++)
      if (vec[i]) {
        _lode_check_report("A7", seg, "freed huge block of an abandoned segment still resident, the segment listed");
        return;
      }
  }
#else
  (void)seg;
#endif
}

/* P4: what the last collect promised still holds if nothing was queued or
 * freed since. */
static bool mark_holds(const lode_tld_t* tld) {
  const lode_collect_mark_t* m = &tld->mark;
  return m->kind != 0 && m->queue_pushes == tld->queue_pushes && m->page_frees == tld->page_frees &&
         m->adoptions == tld->adoptions && m->warm_takes == tld->warm_takes;
}

static void check_collect_mark(const lode_tld_t* tld) {
  const lode_collect_mark_t* m = &tld->mark;
  if (!mark_holds(tld)) return;
  if (m->kind == 2) {
    REPORT_IF(tld->purge.first != NULL, "P4", tld->purge.first, "purge queue not empty after a forced collect");
    for (int k = 0; k < LODE_PAGE_KINDS; k++)
      for (const lode_segment_t* seg = tld->segments[k].first; seg != NULL; seg = seg->next)
        for (uint32_t i = 0; i < seg->page_count; i++)
          REPORT_IF(!seg->pages[i].in_use && seg->pages[i].is_committed, "P4", &seg->pages[i],
                    "free page still committed after a forced collect");
  } else {
    for (const lode_page_t* p = tld->purge.first; p != NULL && p->purge_expire <= m->time; p = p->purge_next) {
      _lode_check_report("P4", p, "expired page still queued after a non-forced collect");
      break;
    }
  }
}

/* The heaps on the thread's list up to where it would cycle (reported, H1);
 * Brent's walk: O(length), no memory. */
static size_t heap_list_length(const lode_tld_t* tld) {
  const lode_heap_t* mark = tld->heaps;
  size_t n = 0, power = 1, lam = 0;
  for (const lode_heap_t* h = tld->heaps; h != NULL; h = h->next) {
    n++;
    lam++;
    REPORT_IF(h->next != NULL && h->next->prev != h, "H1", h, "the heap list's back link is wrong");
    if (h->next == mark && mark != NULL) {
      REPORT_IF(true, "H1", h, "the thread's heap list has a cycle");
      return n;
    }
    if (lam == power) {
      mark = h;
      power *= 2;
      lam = 0;
    }
  }
  return n;
}

static size_t check_thread(bool quick) {
  violations = 0;
  check_sim_os();
  lode_heap_t* heap = _lode_heap_get_default();
  lode_tld_t* tld = heap->tld;
  if (tld == NULL) return 0;
  uintptr_t tid = _lode_thread_id();
  REPORT_IF(tld->thread_id != tid, "H1", tld, "thread data belongs to another thread");
  /* Heaps are not limited in number: the walks stop at a cycle, not at a
   * count (a cap of 100,000 reported the oldest heap's pages as in no heap:
   * review, 2026-12-07). */
  size_t nheaps = heap_list_length(tld), queued = 0, nh = 0;
  for (const lode_heap_t* h = tld->heaps; h != NULL && nh < nheaps; h = h->next, nh++) {
    check_heap(h, tld, tid, quick);
    queued += h->page_count;
  }
  check_purge_queue(tld, tid);
  if (quick) return violations; /* the segments' pages: at the next full check */
  size_t flagged = 0, heads = 0;
  heap_set_t heaps;
  heap_set_init(&heaps, tld, nheaps);
  check_segments(tld, tid, &heaps, &flagged, &heads);
  heap_set_done(&heaps);
  REPORT_IF(flagged != tld->purge.count, "P5", tld, "pages marked queued differ from the queue's length");
  /* every page in use sits in a queue of one of the thread's heaps (one in
   * none, its heap's count lowered to match, is never allocated from nor
   * retired: review) */
  REPORT_IF(heads != queued, "H1", tld, "pages in use differ from the pages its heaps' queues hold");
  check_collect_mark(tld);
  return violations;
}

size_t lode_check_thread(void) { return check_thread(false); }

#ifdef LODE_TESTING
size_t lode_test_check_thread_quick(void) { return check_thread(true); }
#endif

/* --- process-wide ------------------------------------------------------------ */
/* A4, queues of other threads: every page a thread's queue holds is flagged
 * and lies in one of its segments, and the flagged pages of its segments are
 * as many (so each is on it: see check_segments). */
#define TLD_TALLY 256
typedef struct {
  const lode_tld_t* tld;
  size_t flagged;
} tld_tally_t;

/* (counted: the flags were tallied, which a quick pass leaves out) */
static void tally_queues(const tld_tally_t* t, size_t n, bool counted) {
  for (size_t i = 0; i < n; i++) {
    const lode_purge_queue_t* q = &t[i].tld->purge;
    size_t len = 0;
    for (const lode_page_t* p = q->first; p != NULL && len <= q->count; p = p->purge_next, len++)
      REPORT_IF(!p->on_purge_queue || _lode_page_segment(p)->tld != t[i].tld, "A4", p,
                "a thread's purge queue holds a page not flagged queued or not its own");
    REPORT_IF(len != q->count || (counted && t[i].flagged != q->count), "A4", t[i].tld,
              "pages flagged queued in a thread's segments differ from its queue");
  }
}

/* Whether seg is on its owner's list of its kind (walked at most as far
 * as the list's count: a longer list is check_thread's H1). */
static bool on_owner_list(const lode_segment_t* seg) {
  const lode_segment_list_t* list = &seg->tld->segments[seg->kind];
  size_t n = 0;
  for (const lode_segment_t* s = list->first; s != NULL && n <= list->count; s = s->next, n++)
    if (s == seg) return true;
  return false;
}

/* The thread data of live threads, copied before the segment registry's
 * lock is taken (the thread list's lock comes first everywhere else, as in
 * a fork's prepare): an owned segment's data must be among them, or its
 * thread is gone and its exit never ran (A4). */
typedef struct {
  const lode_tld_t** tld;
  size_t n, bytes; /* bytes: of lode's own memory, 0 for the caller's stack */
} live_set_t;

/* (on the stack up to `cap`: the fuzz harness checks after most ops, and a
 * mapping per check would cost more than the check) */
static void live_set_init(live_set_t* l, const lode_tld_t** stack, size_t cap) {
  size_t n = _lode_thread_data_live(stack, cap);
  *l = (live_set_t){stack, n, 0};
  if (n <= cap) return;
  *l = (live_set_t){NULL, 0, 0};
  for (cap = 2 * n;;) {
    size_t bytes = lode_align_up(cap * sizeof(lode_tld_t*), LODE_OS_PAGE_SIZE);
    const lode_tld_t** t = _lode_os_alloc_meta(bytes);
    if (t == NULL) return; /* not checked */
    size_t m = _lode_thread_data_live(t, bytes / sizeof(lode_tld_t*));
    if (m <= bytes / sizeof(lode_tld_t*)) {
      *l = (live_set_t){t, m, bytes};
      return;
    }
    _lode_os_free_meta(t, bytes);
    cap = 2 * m;
  }
}

static bool live_set_has(const live_set_t* l, const lode_tld_t* tld) {
  if (l->tld == NULL) return true;
  for (size_t i = 0; i < l->n; i++)
    if (l->tld[i] == tld) return true;
  return false;
}

static size_t check_process(bool quick) {
  violations = 0;
  check_sim_os();
  const lode_tld_t* me = _lode_heap_get_default()->tld;
  bool promised = me != NULL && me->mark.kind == 2 && mark_holds(me) && me->mark.abandons == _lode_abandoned_pushes();
  const lode_tld_t* live_stack[64];
  live_set_t live;
  live_set_init(&live, live_stack, 64);
  _lode_segments_lock();
  size_t abandoned_seen = 0, listed = 0;
  /* one tally per owning thread: as many as segments at most, on the stack
   * up to TLD_TALLY (beyond, the queues of the threads past it went
   * unchecked, silently: review) */
  size_t nseg = 0;
  for (lode_segment_t* seg = _lode_segments_all(); !quick && seg != NULL; seg = seg->all_next) nseg++;
  tld_tally_t tally_stack[TLD_TALLY];
  tld_tally_t* tally = tally_stack;
  size_t tally_cap = TLD_TALLY, tally_bytes = 0;
  if (nseg > TLD_TALLY) {
    tally_bytes = lode_align_up(nseg * sizeof(tld_tally_t), LODE_OS_PAGE_SIZE);
    tld_tally_t* big = _lode_os_alloc_meta(tally_bytes);
    if (big != NULL) tally = big, tally_cap = nseg;
    else tally_bytes = 0;
  }
  size_t ntally = 0;
  for (lode_segment_t* seg = _lode_segments_all(); seg != NULL; seg = seg->all_next) {
    REPORT_IF(seg->cookie != (LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg), "H1", seg, "segment cookie damaged");
    uintptr_t owner = atomic_load_explicit(&seg->thread_id, memory_order_acquire);
    if (owner == LODE_THREAD_ID_FORKED) continue; /* a fork child: its parent's threads' */
    if (seg->is_abandoned) {
      abandoned_seen++;
      REPORT_IF(owner != 0 || seg->tld != NULL, "A1", seg, "abandoned segment still has an owner");
      REPORT_IF(seg->abandoned_pages != seg->used, "A1", seg, "in-use pages of an abandoned segment not all counted abandoned");
      if (seg->kind == LODE_PAGE_HUGE) check_freed_huge(seg);
#ifdef LODE_TESTING
      /* quick: its pages as the last walk saw them (P4's promise is new
       * after a forced collect, which may have kept a segment unmarked) */
      bool stale = atomic_exchange_explicit(&seg->check_stale, 0, memory_order_relaxed);
      if (quick && !stale && !promised) continue;
#endif
      /* P4 for abandoned segments: the caller's last forced collect purged
       * the free pages of those it kept (another's puts back only what it
       * purged too), and only a newer abandon (counted at its push) brings
       * committed free pages to the list: a remote free frees no page, a
       * reclaim takes the segment off */
      for (uint32_t i = 0; promised && i < seg->page_count; i++)
        REPORT_IF(!seg->pages[i].in_use && seg->pages[i].is_committed, "P4", &seg->pages[i],
                  "free page of an abandoned segment still committed after a forced collect");
      for (uint32_t i = 0; i < seg->page_count; i++) {
        lode_page_t* page = &seg->pages[i];
        REPORT_IF(page->on_purge_queue, "P5", page, "page of an abandoned segment is on a purge queue");
        if (!page->in_use && !quick) check_free_page(page);
        if (!page->in_use || page->span_back) continue;
        REPORT_IF(atomic_load_explicit(&page->heap, memory_order_relaxed) != NULL, "A1", page,
                  "page of an abandoned segment still in a heap");
        /* its heap is gone: a remote free must not look for it (the owner's
         * exit switched the page to NEVER after any free in flight ended) */
        REPORT_IF(lode_tf_delayed(atomic_load_explicit(&page->thread_free, memory_order_relaxed)) != LODE_DELAYED_NEVER,
                  "F3", page, "page of an abandoned segment accepts delayed frees");
        check_page_blocks(page, "A3", quick);
      }
    } else {
      REPORT_IF(owner == 0 || seg->tld == NULL || seg->tld->thread_id != owner, "A4", seg,
                "segment has no single owner");
      if (seg->tld == NULL) continue;
      /* owned, it is on its owner's list (a segment on none is never
       * searched for pages nor released: review) */
      REPORT_IF(!on_owner_list(seg), "A4", seg,
                "segment is on none of its owner's segment lists");
      size_t k = 0;
      while (k < ntally && tally[k].tld != seg->tld) k++;
      if (k == ntally)
        REPORT_IF(!live_set_has(&live, seg->tld), "A4", seg,
                  "segment belongs to the data of a gone thread whose exit never ran");
      if (k == ntally && ntally < tally_cap) tally[ntally++] = (tld_tally_t){seg->tld, 0};
      if (k == ntally) continue; /* more threads than segments: cannot be */
      if (quick) continue;       /* the A4 tally is the full passes' */
      for (uint32_t i = 0; i < seg->page_count; i++) tally[k].flagged += seg->pages[i].on_purge_queue;
    }
  }
  tally_queues(tally, ntally, !quick);
  if (tally_bytes != 0) _lode_os_free_meta(tally, tally_bytes);
  _lode_segments_unlock();
  if (live.bytes != 0) _lode_os_free_meta(live.tld, live.bytes);
  size_t count = _lode_abandoned_count();
  size_t n = 0;
  lode_segment_t* prev = NULL;
  for (lode_segment_t* seg = _lode_abandoned_first(); seg != NULL; prev = seg, seg = seg->next) {
    if (++n > count + 1) {
      _lode_check_report("A2", seg, "abandoned list longer than its count (cycle or duplicate)");
      break;
    }
    /* reclaims unlink from the middle and the oldest end: both links matter */
    REPORT_IF(seg->prev != prev, "A2", seg, "abandoned list's back link is wrong");
    REPORT_IF(prev != NULL && prev->abandoned_at < seg->abandoned_at, "A2", seg,
              "abandoned list out of age order (newest first)");
    REPORT_IF(!seg->is_abandoned, "A1", seg, "segment on the abandoned list is not marked abandoned");
    for (lode_segment_t* other = seg->next; other != NULL && listed < count + 1; other = other->next, listed++)
      REPORT_IF(other == seg, "A1", seg, "segment on the abandoned list twice");
  }
  REPORT_IF(n != count && n <= count + 1, "A2", NULL, "abandoned count differs from the list's length");
  REPORT_IF(n <= count && _lode_abandoned_last() != prev, "A2", _lode_abandoned_last(),
            "abandoned list's oldest end is not its last segment");
  REPORT_IF(n != abandoned_seen && n <= count + 1, "A1", NULL, "abandoned segments missing from the abandoned list");
  REPORT_IF(atomic_load_explicit(&_lode_stats.segments_abandoned, memory_order_relaxed) != count, "A2", NULL,
            "abandoned statistic differs from the list's count");
  return violations;
}

size_t lode_check_process(void) { return check_process(false); }

#ifdef LODE_TESTING
size_t lode_test_check_process_quick(void) { return check_process(true); }
#endif

/* A5: everything freed and collected leaves nothing behind. */
size_t lode_check_clean(size_t committed_baseline) {
  violations = 0;
  size_t abandoned = _lode_abandoned_count();
  REPORT_IF(abandoned != 0, "A5", _lode_abandoned_first(), "abandoned segments remain after everything was freed");
  size_t committed = atomic_load_explicit(&_lode_stats.committed_current, memory_order_relaxed);
  REPORT_IF(committed > committed_baseline, "A5", NULL, "committed memory above its starting level");
  lode_tld_t* tld = _lode_heap_get_default()->tld;
  if (tld != NULL) REPORT_IF(tld->purge.count != 0, "A5", tld->purge.first, "pages still queued after a forced collect");
  return violations;
}
