/* Segments: reserve, carve into pages, find and claim free pages, take them
 * back, purge their memory and release whole segments.  Mechanisms only:
 * which page to purge when, and whether to reclaim an abandoned segment
 * before mapping a new one, is decided above (purge_queue.c, heap.c).
 *
 * Large blocks (64 KiB to 2 MiB) take spans: a large segment is 64 slices of
 * 64 KiB, a block gets the first run of free slices that holds it, and when
 * it is freed the slices are free pages again that a block of any size can
 * take (a page per size class, as small and medium blocks have, would keep
 * memory one size freed from every other size, and a thread would hold a
 * segment for each class it uses).
 *
 * Invariants:
 *   seg->used == number of pages with in_use (a span counts all its slices)
 *   a span's head has span_count slices; the slice k after it has in_use and
 *     span_back == k, is on no queue and in no heap
 *   seg->committed == number of pages with is_committed
 *   a segment is on its owner's tld->segments[kind] list exactly once, with
 *     every segment that has a free page ahead of every full one
 *   a free page's area_zero says its area reads as zero (fresh, or purged in
 *     a mode that zeroes), so a claim knows whether calloc must clear
 *   a released segment has no page on a purge queue (its caller took them off)
 *   a segment's metadata is all zero before it is carved: a mapping from the
 *     cache gets its header cleared, nothing of its last life survives */
#include "internal.h"

#include <pthread.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lode_segment_t* registry_first; /* guarded by registry_lock */

void _lode_segments_lock(void) { pthread_mutex_lock(&registry_lock); }
void _lode_segments_unlock(void) { pthread_mutex_unlock(&registry_lock); }
void _lode_segments_fork_child(void) { pthread_mutex_unlock(&registry_lock); }
lode_segment_t* _lode_segments_all(void) { return registry_first; }

static void registry_add(lode_segment_t* seg) {
  pthread_mutex_lock(&registry_lock);
  seg->all_prev = NULL;
  seg->all_next = registry_first;
  if (registry_first) registry_first->all_prev = seg;
  registry_first = seg;
  pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(lode_segment_t* seg) {
  pthread_mutex_lock(&registry_lock);
  if (seg->all_prev) seg->all_prev->all_next = seg->all_next; else registry_first = seg->all_next;
  if (seg->all_next) seg->all_next->all_prev = seg->all_prev;
  pthread_mutex_unlock(&registry_lock);
}

/* LODE_SECURE: the header ends in a guard page, so an underflow of the
 * first block faults instead of writing over the page metadata. */
#ifdef LODE_SECURE
#define HEADER_GUARD LODE_OS_PAGE_SIZE
#else
#define HEADER_GUARD ((size_t)0)
#endif
static size_t segment_header_size(size_t page_count) {
  size_t h = sizeof(lode_segment_t) + (page_count - 1) * sizeof(lode_page_t);
  return lode_align_up(h, LODE_OS_PAGE_SIZE) + HEADER_GUARD;
}

/* A huge block's committed extent from the area's offset in its segment:
 * whole OS pages. */
static size_t huge_extent(size_t area_offset, size_t size) {
  size_t end = lode_align_up(area_offset + size, LODE_OS_PAGE_SIZE);
  if (end < size) return size; /* overflow: the caller's size check fails */
  return end - area_offset;
}

/* LODE_HUGE_OS_PAGES: transparent huge pages for a huge block, as 2 MiB
 * units [start, end) of its segment.  start: the unit of the block's first
 * byte (an over-aligned block's padding before it gets none).  end: the last
 * unit wholly inside the block, so no unit holding the block's end faults in
 * whole, up to 2 MiB past it (the whole mapping was advised and the end
 * rounded up to 2 MiB: xz -T2 held 318 MB against glibc's 302) -- except
 * for a block that grew in place or moved to grow: its end's unit is
 * advised too, as the next grow would write it (the units a realloc loop in
 * 64 KiB steps wrote were each its end's once, faulted 4 KiB at a time and
 * never huge: 65,549 faults to 256 MiB, against 3,208). */
static void huge_advice_range(size_t mapped, size_t area, size_t bsize, bool growing, size_t* start, size_t* end) {
  const size_t unit = LODE_HUGE_OS_PAGE_SIZE;
  size_t e = growing ? lode_align_up(area + bsize, unit) : (area + bsize) & ~(unit - 1);
  if (e > (mapped & ~(unit - 1))) e = mapped & ~(unit - 1);
  *start = area & ~(unit - 1);
  /* (not a small block that is huge for its alignment only) */
  *end = bsize > LODE_LARGE_OBJ_MAX && e > *start ? e : *start;
}

/* The advice made [start, end) (seg->advised: how far it reaches; SIZE_MAX
 * when unknown, a cached mapping's last life).  LODE_HUGE_OS_PAGES=0 gives
 * none and takes none back: where the system's THP is `always`, advice
 * against them would forbid what the system would give. */
static void huge_advise(lode_segment_t* seg, size_t bsize, bool growing) {
  if (!_lode_os_huge_pages_wanted()) return;
  size_t start, end, was = seg->advised, area = (size_t)(seg->pages[0].area - (uint8_t*)seg);
  huge_advice_range(seg->size, area, bsize, growing, &start, &end);
  if (end == was) return;
  uint8_t* base = (uint8_t*)seg;
  if (was == SIZE_MAX) {
    /* against huge pages only outside the block: a block too small for
     * advice keeps what its units had (where THP is `always`, a fresh one
     * gets huge pages; so does this one) */
    size_t tail = (area + bsize) & ~(LODE_HUGE_OS_PAGE_SIZE - 1);
    if (tail < end) tail = end;
    _lode_os_advise_small_pages(base, start);
    _lode_os_advise_huge_pages(base + start, end - start);
    _lode_os_advise_small_pages(base + tail, seg->size - tail);
  } else if (end > was) {
    if (was < start) was = start;
    _lode_os_advise_huge_pages(base + was, end - was);
  } else {
    _lode_os_advise_small_pages(base + end, was - end);
  }
  seg->advised = end;
}

size_t _lode_segment_huge_extent(const lode_page_t* page, size_t size) {
  return huge_extent((size_t)(page->area - (const uint8_t*)_lode_page_segment(page)), size);
}

static size_t page_committed_bytes(const lode_page_t* page) {
  return _lode_page_segment(page)->kind == LODE_PAGE_HUGE ? page->block_size : page->area_size;
}

/* --- the tld's segment lists --------------------------------------------- */
void _lode_segment_list_remove(lode_segment_list_t* list, lode_segment_t* seg) {
  if (seg->prev) seg->prev->next = seg->next; else list->first = seg->next;
  if (seg->next) seg->next->prev = seg->prev; else list->last = seg->prev;
  seg->next = seg->prev = NULL;
  list->count--;
}

void _lode_segment_list_push(lode_segment_list_t* list, lode_segment_t* seg, bool front) {
  if (front) {
    seg->prev = NULL;
    seg->next = list->first;
    if (list->first) list->first->prev = seg; else list->last = seg;
    list->first = seg;
  } else {
    seg->next = NULL;
    seg->prev = list->last;
    if (list->last) list->last->next = seg; else list->first = seg;
    list->last = seg;
  }
  list->count++;
}

/* Keep segments with a free page in front so finding one is O(1). */
void _lode_segment_update_position(lode_segment_t* seg, lode_tld_t* tld) {
  if (seg->kind == LODE_PAGE_HUGE) return;
  lode_segment_list_t* list = &tld->segments[seg->kind];
  bool has_free = seg->used < seg->page_count;
  if (has_free && list->first != seg) {
    _lode_segment_list_remove(list, seg);
    _lode_segment_list_push(list, seg, true);
  } else if (!has_free && list->last != seg) {
    _lode_segment_list_remove(list, seg);
    _lode_segment_list_push(list, seg, false);
  }
}

/* --- allocate and release -------------------------------------------------- */
/* A segment made from a cached mapping: pages still committed from its last
 * life become committed free pages (the caller schedules their purge).  A
 * huge block takes its mapping's old warm tail as part of itself, up to its
 * own extent again (*huge_size grows; the block counts it and its free
 * gives it back): a program that replaces blocks of random sizes faulted a
 * larger one's memory in again each time a smaller one had dropped it
 * (bench, 2026-12-08: 20 slots of 5-25 MiB, 600 replacements, 170,000
 * faults and 1.6 s against tcmalloc's 0.8 s).  Past that it keeps what
 * half the committed memory has room for beside the cache's entries and
 * other blocks' tails (seg->held, given back at its free) and the rest is
 * dropped: twice what it asked for, plus that share. */
static void segment_take_warm(lode_segment_t* seg, const lode_segment_cache_info_t* c, size_t* huge_size,
                              lode_tld_t* tld) {
  if (seg->kind == LODE_PAGE_HUGE) {
    /* The new block [a, b) is committed (and counted) by the caller. */
    size_t h = seg->header_size, a = (size_t)(seg->pages[0].area - (uint8_t*)seg);
    size_t end = (size_t)c->warm, keep = a + seg->pages[0].area_size; /* (not a guard page) */
    if (*huge_size < keep - a - *huge_size) {
      size_t twice = a + 2 * *huge_size;
      seg->held = end > twice ? _lode_segment_cache_hold((end < keep ? end : keep) - twice) : 0;
      keep = twice + seg->held;
    }
    if (end > a + *huge_size) *huge_size = (end < keep ? end : keep) - a;
    size_t b = a + *huge_size; /* huge_size: the extent */
    bool dropped = true; /* a refused discard leaves old bytes: the block is not vouched for */
    if (end > h && a > h) dropped = _lode_os_discard((uint8_t*)seg + h, (end < a ? end : a) - h);
    if (end > b) dropped = _lode_os_discard((uint8_t*)seg + b, end - b) && dropped;
    seg->pages[0].free_is_zero = seg->pages[0].claimed_zero = end <= a && dropped;
    return;
  }
  /* New committed free pages: what this thread's last collect promised (P4)
   * no longer holds, even when a negative delay queues nothing. */
  if (c->warm != 0) tld->warm_takes++;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    page->area_zero = (c->zero >> i) & 1;
    page->area_wiped = 0;
    if (!(c->warm & ((uint64_t)1 << i))) continue;
    /* How far each was written is not kept: assume all of it (the cache
     * bound, which asks the OS at the next release, errs toward holding less). */
    page->touched = (uint32_t)(lode_align_up(page->area_size, LODE_OS_PAGE_SIZE) / LODE_OS_PAGE_SIZE);
    page->is_committed = 1;
    page->area_wiped = page->area_zero; /* committed: only a wiped page can read as zero */
    page->area_zero = 0;
    seg->committed++;
    _lode_stat_add(&_lode_stats.committed_current, &_lode_stats.committed_peak, page->area_size);
  }
}

#ifdef LODE_SECURE
static void segment_guard(lode_segment_t* seg, void* p, size_t size) {
  lode_guard_t g = _lode_os_guard(p, size);
  if (g == LODE_GUARD_MARKER) seg->guard_markers = true;
  if (g == LODE_GUARD_PROTECT) seg->guard_protects++;
}
#endif

/* huge_sizep (huge kind only, else NULL): the block's size in, its extent
 * out (a cached mapping's warm tail may add to it). */
static lode_segment_t* segment_alloc(lode_page_kind_t kind, size_t* huge_sizep, size_t alignment, lode_tld_t* tld) {
  size_t huge_size = huge_sizep != NULL ? *huge_sizep : 0;
  size_t page_shift, page_count, size;
  switch (kind) {
    case LODE_PAGE_SMALL: page_shift = LODE_SMALL_PAGE_SHIFT; break;
    case LODE_PAGE_MEDIUM: page_shift = LODE_MEDIUM_PAGE_SHIFT; break;
    case LODE_PAGE_LARGE: page_shift = LODE_SMALL_PAGE_SHIFT; break; /* slices: spans */
    default: page_shift = LODE_SEGMENT_SHIFT; break;
  }
  page_count = kind == LODE_PAGE_HUGE ? 1 : LODE_SEGMENT_SIZE >> page_shift;
  size_t header = segment_header_size(page_count);
  size_t area_offset = header;
  if (kind == LODE_PAGE_HUGE) {
    if (alignment > LODE_OS_PAGE_SIZE) area_offset = lode_align_up(header, alignment);
    huge_size = huge_extent(area_offset, huge_size);
    size = area_offset + huge_size;
    if (size < huge_size) return NULL;
#ifdef LODE_SECURE
    size += LODE_OS_PAGE_SIZE; /* room for the guard page */
#endif
  } else {
    size = LODE_SEGMENT_SIZE;
  }
  if (!_lode_segment_map_init()) return NULL;
  size = lode_align_up(size, LODE_OS_PAGE_SIZE);
  size_t mapped = size;
  lode_segment_t* seg = NULL;
  lode_segment_cache_info_t cached;
  /* A huge block gets as much address space again (untouched, so it costs
   * no memory): realloc can then grow it in place instead of copying. */
  size_t want = size;
  if (kind == LODE_PAGE_HUGE && size - area_offset <= LODE_HUGE_SLACK_MAX) want = size + (size - area_offset);
  /* A warm cached mapping too small for the block may move to a reservation
   * of that size -- not under an address-space limit (as reserve_flex), nor
   * with LODE_SECURE, whose guard markers lie where the layout put them. */
  size_t grow_to = 0;
#ifndef LODE_SECURE
  if (kind == LODE_PAGE_HUGE && !_lode_os_address_space_limited()) grow_to = want;
#endif
  bool reused = alignment <= LODE_SEGMENT_SIZE && _lode_segment_cache_take(kind, size, grow_to, &cached);
  if (reused) {
    seg = cached.base;
    mapped = cached.size;
  } else {
    if (kind == LODE_PAGE_HUGE && !_lode_os_overcommit_ok(huge_size)) return NULL;
    seg = _lode_os_reserve_flex(size, want, alignment > LODE_SEGMENT_SIZE ? alignment : LODE_SEGMENT_SIZE, &mapped);
  }
  /* A fresh huge mapping is advised before its header is written: a unit
   * already faulted in 4 KiB pages stays so (the block's first 2 MiB,
   * beside the header, faulted 512 times). */
  size_t advised = reused ? SIZE_MAX : 0;
  if (seg != NULL && !reused && kind == LODE_PAGE_HUGE && _lode_os_huge_pages_wanted()) {
    size_t start;
    huge_advice_range(mapped, area_offset, huge_size, false, &start, &advised);
    _lode_os_advise_huge_pages((uint8_t*)seg + start, advised - start);
  }
  if (seg == NULL) return NULL;
  if (!_lode_os_commit(seg, header)) {
    _lode_os_release(seg, mapped, 0, 0);
    return NULL;
  }
  size = mapped; /* a cached mapping may be larger: a huge area gets the slack */
  _lode_os_touch(seg, header - HEADER_GUARD);
  /* Fresh memory is zero: only non-zero fields are set.  A cached mapping's
   * header still holds its last life. */
  if (reused) memset(seg, 0, header - HEADER_GUARD);
#ifdef LODE_SECURE
  /* a cached mapping of this layout may have its markers still */
  bool guards_in_place = reused && cached.guard_markers;
  seg->guard_markers = guards_in_place;
  if (!guards_in_place) segment_guard(seg, (uint8_t*)seg + header - HEADER_GUARD, HEADER_GUARD);
#endif
  seg->cookie = LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)seg;
  seg->tld = tld;
  seg->size = lode_align_up(size, LODE_OS_PAGE_SIZE);
  seg->header_size = header;
  seg->advised = advised; /* a cached mapping's advice is its last life's */
  seg->kind = kind;
  seg->page_shift = kind == LODE_PAGE_HUGE ? 47 : (uint32_t)page_shift;
  seg->page_count = (uint32_t)page_count;
  for (size_t i = 0; i < page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    uint8_t* start = (uint8_t*)seg + (i << page_shift);
    page->index = (uint16_t)i;
    page->area = i == 0 ? (uint8_t*)seg + area_offset : start;
    page->area_size = kind == LODE_PAGE_HUGE ? size - area_offset
                                             : ((size_t)1 << page_shift) - (size_t)(page->area - start);
    page->purged_at = -2; /* never purged */
    page->area_zero = 1;
    page->free_is_zero = page->claimed_zero = kind == LODE_PAGE_HUGE;
#ifdef LODE_SECURE
    /* A guard page ends every page area: a linear overflow faults instead
     * of running into the next page's blocks.  (Large slices get theirs
     * when a span takes them: one at the span's end.) */
    if (kind != LODE_PAGE_LARGE) {
      page->area_size -= LODE_OS_PAGE_SIZE;
      if (!guards_in_place) segment_guard(seg, page->area + page->area_size, LODE_OS_PAGE_SIZE);
    }
#endif
  }
  if (reused) segment_take_warm(seg, &cached, &huge_size, tld);
  if (huge_sizep != NULL) *huge_sizep = huge_size;
  if (!_lode_segment_map_add(seg, seg->size)) {
    _lode_os_release(seg, seg->size, header, seg->guard_protects);
    return NULL;
  }
  atomic_store_explicit(&seg->thread_id, tld->thread_id, memory_order_release);
  registry_add(seg);
  _lode_stat_add(&_lode_stats.segments_current, &_lode_stats.segments_peak, 1);
  _lode_segment_list_push(&tld->segments[kind], seg, true);
  return seg;
}

lode_segment_t* _lode_segment_alloc(lode_tld_t* tld, lode_page_kind_t kind) {
  lode_assert(kind != LODE_PAGE_HUGE);
  return segment_alloc(kind, NULL, 0, tld);
}

/* What a released segment still holds: which pages are committed, how far
 * they were written, and how much of that is in memory.  Written is an upper
 * bound (a program that writes one byte of a 1 MiB block leaves one OS page
 * resident), so the cache bound asks the OS: one mincore for a whole
 * regular segment -- at once only when the bound takes more than half the
 * cache's room; otherwise the cache asks when the bound would make it evict
 * (threads that come and go paid 1.5 % of xthread for mincore, their pages
 * all written). */
static void segment_measure_warm(const lode_segment_t* seg, lode_segment_cache_info_t* info) {
  if (seg->kind == LODE_PAGE_HUGE) {
    const lode_page_t* page = &seg->pages[0];
    info->exact = true;
    if (!page->is_committed) return;
    size_t area = (size_t)(page->area - (const uint8_t*)seg);
    /* a grown block's end unit is advised whole: a huge page there holds
     * memory past the block's end, to be counted and dropped as warm */
    size_t end = area + page->block_size, area_end = area + page->area_size; /* (not a guard page) */
    if (seg->advised != SIZE_MAX && seg->advised > end) end = seg->advised < area_end ? seg->advised : area_end;
    info->warm = end;
    info->resident = seg->header_size + _lode_os_resident(page->area, end - area);
    return;
  }
  size_t end = 0;
  info->header_size = (uint32_t)seg->header_size;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    const lode_page_t* page = &seg->pages[i];
    /* (LODE_SECURE: a wiped page reads as zero too, committed or not) */
    if ((page->area_zero && !page->is_committed) || page->area_wiped) info->zero |= (uint64_t)1 << i;
    if (!page->is_committed) continue;
    info->warm |= (uint64_t)1 << i;
    info->resident += (size_t)page->touched * LODE_OS_PAGE_SIZE; /* carved: a bound */
    if (page->touched == 0) continue;
    size_t first = (size_t)(page->area - (const uint8_t*)seg) / LODE_OS_PAGE_SIZE;
    for (size_t j = first; j < first + page->touched; j++) info->counted[j / 8] |= (uint8_t)(1u << (j % 8));
    end = (first + page->touched) * LODE_OS_PAGE_SIZE;
  }
  info->measure_end = end;
  info->exact = end == 0;
  if (info->resident > _lode_segment_cache_room() / 2) _lode_segment_cache_measure(info);
}

/* Release a segment that holds no live block: the map forgets it, the memory
 * goes to the segment cache or the OS. */
void _lode_segment_release(lode_segment_t* seg, lode_tld_t* tld) {
  lode_assert(seg->used == 0 || seg->kind == LODE_PAGE_HUGE);
  size_t committed = seg->header_size;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    lode_assert(!page->on_purge_queue);
    if (page->is_committed) committed += page_committed_bytes(page);
  }
  if (tld != NULL && !seg->is_abandoned) _lode_segment_list_remove(&tld->segments[seg->kind], seg);
  _lode_segment_cache_unhold(seg->held); /* (before the put: the tail goes back with the mapping) */
  seg->held = 0;
  _lode_segment_map_remove(seg, seg->size);
  registry_remove(seg);
  _lode_stat_sub(&_lode_stats.segments_current, 1);
  seg->cookie = 0;
  lode_segment_cache_info_t info = {.base = seg,
                                    .size = seg->size,
                                    .kind = seg->kind,
                                    .resident = seg->header_size,
                                    .has_protected = seg->has_protected,
                                    .guard_markers = seg->guard_markers,
                                    .guard_protects = seg->guard_protects};
  if (_lode_segment_cache_accepts(seg->size)) {
    segment_measure_warm(seg, &info);
    if (_lode_segment_cache_put(&info, committed)) return;
  }
  _lode_os_release(seg, seg->size, committed, info.guard_protects);
}

bool _lode_segment_try_release(lode_segment_t* seg, lode_tld_t* tld) {
  if (seg->used != 0 || seg->committed != 0) return false;
  _lode_segment_release(seg, tld);
  return true;
}

/* --- pages ----------------------------------------------------------------- */
/* (The caller notes a comeback of purged memory: once per claim, see slices_take.) */
static bool page_commit(lode_page_t* page, lode_segment_t* seg) {
  if (page->is_committed) return true;
  if (!_lode_os_commit(page->area, page->area_size)) return false;
  page->is_committed = 1;
  seg->committed++;
  return true;
}

static lode_page_t* segment_find_free_page(lode_segment_t* seg) {
  lode_page_t* fallback = NULL;
  for (uint32_t i = 0; i < seg->page_count; i++) {
    lode_page_t* page = &seg->pages[i];
    if (page->in_use) continue;
    if (page->is_committed) return page; /* reuse warm memory first */
    if (fallback == NULL) fallback = page;
  }
  return fallback;
}

/* --- large blocks: spans of slices ------------------------------------------ */
/* Slice i's own area (slice 0's starts after the header).  (No guard page
 * ends a span, even in LODE_SECURE: the two mprotects of each span's life
 * cost a fifth of the mixed workload; the trailer catches an overflow.) */
static uint8_t* slice_start(lode_segment_t* seg, uint32_t i) {
  return i == 0 ? (uint8_t*)seg + seg->header_size : (uint8_t*)seg + ((size_t)i << seg->page_shift);
}
static uint8_t* slice_end(lode_segment_t* seg, uint32_t i) {
  return (uint8_t*)seg + ((size_t)(i + 1) << seg->page_shift);
}

/* First run of free slices in seg that holds a block of bsize: its start and
 * length, or -1. */
static int span_find(lode_segment_t* seg, size_t bsize, uint32_t* count) {
  size_t slice = (size_t)1 << seg->page_shift;
  for (uint32_t s = 0; s < seg->page_count; s++) {
    if (seg->pages[s].in_use) continue;
    size_t off = (size_t)(slice_start(seg, s) - (uint8_t*)seg) - ((size_t)s << seg->page_shift);
    uint32_t n = (uint32_t)((off + bsize + slice - 1) / slice);
    if (s + n > seg->page_count) return -1;
    uint32_t k = 1;
    while (k < n && !seg->pages[s + k].in_use) k++;
    if (k == n) {
      *count = n;
      return (int)s;
    }
    s += k; /* pages[s + k] is in use */
  }
  return -1;
}

/* A slice joins a span (back slices behind its head) or leaves it (0): a
 * tail's flag sends free's fast path to the head (_lode_segment_page_at). */
static void slice_set_back(lode_page_t* p, uint32_t back) {
  p->span_back = (uint8_t)back;
  /* a tail has no flags of its own; a head keeps its own */
  if (back != 0) atomic_store_explicit(&p->flags, LODE_PAGE_SPAN_TAIL, memory_order_relaxed);
  else atomic_fetch_and_explicit(&p->flags, (uint8_t)~LODE_PAGE_SPAN_TAIL, memory_order_relaxed);
}

/* A span leaves use: every slice is a free page of its own again, with its
 * share of what the span had written. */
void _lode_segment_span_split(lode_segment_t* seg, lode_page_t* head) {
  uint32_t s = head->index, n = head->span_count ? head->span_count : 1;
  size_t touched_end = (size_t)(head->area - (uint8_t*)seg) + (size_t)head->touched * LODE_OS_PAGE_SIZE;
  for (uint32_t j = s; j < s + n; j++) {
    lode_page_t* p = &seg->pages[j];
    p->area = slice_start(seg, j);
    p->area_size = (size_t)(slice_end(seg, j) - p->area);
    size_t a = (size_t)(p->area - (uint8_t*)seg);
    p->touched = touched_end > a ? (uint32_t)((touched_end - a < p->area_size ? touched_end - a : p->area_size) / LODE_OS_PAGE_SIZE) : 0;
    lode_page_set_in_use(p, false);
    slice_set_back(p, 0);
    p->span_count = 0;
    p->area_zero = 0;
  }
  seg->used -= n - 1; /* the caller takes the head's */
}

/* Slices [from, to), free, join the span whose head is slice s: each is
 * committed and in use.  *zero: all of them read as zero (fresh, purged in
 * a mode that zeroes, or wiped).  When a commit fails, those taken are free
 * again (committed ones stay so: the caller's purge policy decides). */
static bool slices_take(lode_segment_t* seg, uint32_t s, uint32_t from, uint32_t to, bool* zero) {
  *zero = true;
  /* A span taking back slices the timer purged is one comeback, not one per
   * slice: counted per slice, one claim of a 16-slice span raised the purge
   * back-off by its maximum at once (realloc: the delay went from 20 to 320
   * ms in one claim, and stayed at 640 ms for the rest of the run). */
  int64_t gone_at = -1;
  for (uint32_t j = from; j < to; j++)
    if (!seg->pages[j].is_committed && seg->pages[j].purged_at > gone_at) gone_at = seg->pages[j].purged_at;
  if (gone_at >= 0) _lode_purge_note_comeback(gone_at);
  for (uint32_t j = from; j < to; j++) {
    lode_page_t* p = &seg->pages[j];
    lode_assert(!p->in_use && !p->on_purge_queue); /* P3: the caller took it off its queue */
    *zero = *zero && ((p->area_zero && !p->is_committed) || p->area_wiped);
    p->area_wiped = 0;
    if (!page_commit(p, seg)) {
      for (uint32_t k = from; k < j; k++) {
        lode_page_set_in_use(&seg->pages[k], false);
        slice_set_back(&seg->pages[k], 0);
      }
      seg->used -= j - from;
      return false;
    }
    lode_page_set_in_use(p, true);
    slice_set_back(p, j - s);
    p->area_zero = 0;
    /* in use, it waits for no purge: an expiry kept from an abandoned time
     * (a forced collect purged it there) came back, long past, for its next
     * free after an adoption, and a page just emptied was purged at once */
    p->purge_expire = 0;
    seg->used++;
  }
  return true;
}

/* The head's written extent (OS pages from its area) covering what slices
 * [from, to) had written, at least `touched`. */
static uint32_t span_touched(const lode_segment_t* seg, const lode_page_t* head, uint32_t from, uint32_t to,
                             uint32_t touched) {
  for (uint32_t j = from; j < to; j++) {
    const lode_page_t* p = &seg->pages[j];
    size_t t = p->touched ? (size_t)(p->area - head->area) / LODE_OS_PAGE_SIZE + p->touched : 0;
    if (t > touched) touched = (uint32_t)t;
  }
  return touched;
}

static void span_set(lode_segment_t* seg, lode_page_t* head, uint32_t count, uint32_t touched) {
  head->touched = touched;
  head->span_count = (uint8_t)count;
  head->area_size = (size_t)(slice_end(seg, head->index + count - 1) - head->area);
}

/* Growing a large block in place (realloc): how many slices after head's
 * span a block of bsize needs, if all of them are free; 0 when any is in
 * use, the segment ends first, or the span holds bsize already. */
uint32_t _lode_segment_span_room(const lode_page_t* head, size_t bsize) {
  lode_segment_t* seg = _lode_page_segment(head);
  if (seg->kind != LODE_PAGE_LARGE || !head->in_use || head->span_back != 0) return 0;
  size_t slice = (size_t)1 << seg->page_shift;
  uint32_t s = head->index, n = head->span_count ? head->span_count : 1;
  size_t end = (size_t)(head->area - (uint8_t*)seg) + bsize; /* from the segment's start */
  size_t need = (end + slice - 1) / slice - s;
  if (need <= n || s + need > seg->page_count) return 0;
  for (uint32_t j = s + n; j < s + need; j++)
    if (seg->pages[j].in_use) return 0;
  return (uint32_t)(need - n);
}

/* The `extra` free slices after head's span join it, committed (P3: the
 * caller took them off its purge queue); *zero: whether their memory is
 * known to read as zero, as a claim decides.  False when a commit fails:
 * the span is as it was, and slices committed on the way are free and
 * committed (the caller queues them for purging). */
bool _lode_segment_span_extend(lode_tld_t* tld, lode_page_t* head, uint32_t extra, bool* zero) {
  lode_segment_t* seg = _lode_page_segment(head);
  uint32_t s = head->index, n = head->span_count ? head->span_count : 1;
  if (!slices_take(seg, s, s + n, s + n + extra, zero)) return false;
  /* the area no longer read as zero when claimed: what the block does not
   * cover of the new slices keeps their old bytes, which LODE_SECURE's scrub
   * must clear before it vouches for the area */
  if (!*zero) head->claimed_zero = 0;
  span_set(seg, head, n + extra, span_touched(seg, head, s + n, s + n + extra, head->touched));
  _lode_segment_update_position(seg, tld);
  return true;
}

bool _lode_segment_fits(lode_segment_t* seg, size_t bsize) {
  if (seg->used >= seg->page_count) return false;
  if (seg->kind != LODE_PAGE_LARGE || bsize == 0) return true;
  uint32_t n;
  return span_find(seg, bsize, &n) >= 0;
}

lode_page_t* _lode_segment_page_find(lode_tld_t* tld, lode_page_kind_t kind, size_t bsize, uint32_t* slices) {
  lode_segment_list_t* list = &tld->segments[kind];
  if (kind != LODE_PAGE_LARGE) {
    lode_segment_t* seg = list->first;
    if (seg == NULL || seg->used == seg->page_count) return NULL;
    *slices = 1;
    return segment_find_free_page(seg);
  }
  /* At most 16 segments that could hold the block are searched; those with
   * fewer free slices than it needs are passed over uncounted.  The list's
   * front is the recently touched, nearly full ones: counting them, the
   * search gave up before the older free ones and a new segment was mapped
   * (review, 2026-12-06: 1,104 segments for 229 MiB live).  256 passed over
   * bound the walk of a thread with thousands of nearly full segments. */
  uint32_t need = (uint32_t)(bsize >> LODE_SMALL_PAGE_SHIFT);
  int n = 0, walked = 0;
  for (lode_segment_t* seg = list->first; seg != NULL && seg->used < seg->page_count && n < 16 && walked < 256;
       seg = seg->next, walked++) {
    if (seg->page_count - seg->used < need) continue;
    n++;
    int s = span_find(seg, bsize, slices);
    if (s >= 0) return &seg->pages[s];
  }
  return NULL;
}

bool _lode_segment_claim(lode_tld_t* tld, lode_page_t* head, uint32_t n) {
  lode_segment_t* seg = _lode_page_segment(head);
  uint32_t s = head->index;
  bool zero;
  if (!slices_take(seg, s, s, s + n, &zero)) return false;
  head->free_is_zero = zero;
  head->claimed_zero = zero;
  if (seg->kind == LODE_PAGE_LARGE) span_set(seg, head, n, span_touched(seg, head, s, s + n, 0));
  _lode_segment_update_position(seg, tld);
  _lode_stat_add(&_lode_stats.pages_current, &_lode_stats.pages_peak, 1);
  return true;
}

lode_page_t* _lode_segment_huge_alloc(lode_tld_t* tld, size_t size, size_t alignment, size_t* pbsize) {
  size_t bsize = size;
  lode_segment_t* seg = segment_alloc(LODE_PAGE_HUGE, &bsize, alignment, tld);
  if (seg == NULL) return NULL;
  lode_page_t* page = &seg->pages[0];
  /* Commit only what the block needs; the rest of the area backs in-place growth. */
  page->area_size = seg->size - (size_t)(page->area - (uint8_t*)seg);
#ifdef LODE_SECURE
  page->area_size -= LODE_OS_PAGE_SIZE;
#endif
  LODE_POINT(LODE_POINT_HUGE_MAPPED, seg);
  if (bsize > page->area_size) bsize = page->area_size;
  *pbsize = bsize;
  if (!_lode_os_commit(page->area, bsize)) {
    /* A warm mapping's old bytes lie here, and the release measures nothing
     * of a page never committed: the cache would take them for zero.  Not
     * only in the block's range: a tail (or an aligned block's padding)
     * whose discard segment_take_warm saw refused keeps them too, and a
     * larger block takes it next -- so all of the mapping past the header
     * goes.  When the OS keeps them, they are what they are: resident, so
     * the page is released as committed (counted, measured warm: not zero). */
    uint8_t* from = (uint8_t*)seg + seg->header_size;
    if (!page->free_is_zero && !_lode_os_discard(from, (size_t)(page->area + page->area_size - from))) {
      lode_page_set_block_size(page, bsize);
      page->is_committed = 1;
      seg->committed = 1;
      _lode_stat_add(&_lode_stats.committed_current, &_lode_stats.committed_peak, bsize);
    }
    _lode_segment_release(seg, tld);
    return NULL;
  }
#ifdef LODE_SECURE
  /* A warm mapping's last block was not wiped (the cache is no heap): what
   * of it is in memory is cleared here, not all of it faulted in by the carve. */
  if (!page->claimed_zero) {
    _lode_wipe_range(page->area, bsize);
    page->free_is_zero = page->claimed_zero = 1;
  }
#endif
#ifdef LODE_SECURE
  if (bsize < page->area_size && _lode_os_protect_room(page->area + bsize, page->area_size - bsize))
    seg->has_protected = true; /* a grow unprotects what it takes; a reuse, all */
#endif
  huge_advise(seg, bsize, false);
  page->is_committed = 1;
  page->area_zero = 0;
  seg->committed = 1;
  lode_page_set_in_use(page, true);
  seg->used = 1;
  _lode_stat_add(&_lode_stats.pages_current, &_lode_stats.pages_peak, 1);
  return page;
}

/* Shrink a huge block in place: the tail is decommitted and becomes
 * inaccessible, so usable_size must shrink with it.  When the OS keeps the
 * tail, the block keeps its size (still committed, counted and usable: a
 * shrink in place may leave a block larger than asked). */
void _lode_segment_huge_shrink(lode_page_t* page, size_t new_size) {
  size_t nb = _lode_segment_huge_extent(page, new_size);
  if (nb >= page->block_size) return;
  lode_segment_t* seg = _lode_page_segment(page);
  if (!_lode_os_decommit(page->area + nb, page->block_size - nb)) return;
  seg->has_protected = true;
  /* a grown block's end unit, advised whole, may hold a huge page's memory
   * past the old end: it goes too (nothing counts it) */
  size_t area = (size_t)(page->area - (uint8_t*)seg), old_end = area + page->block_size;
  size_t unit_end = seg->advised < area + page->area_size ? seg->advised : area + page->area_size; /* (not a guard page) */
  if (seg->advised != SIZE_MAX && unit_end > old_end) (void)_lode_os_discard((uint8_t*)seg + old_end, unit_end - old_end);
  lode_page_set_block_size(page, nb);
  huge_advise(seg, nb, false);
}

bool _lode_segment_huge_grow(lode_page_t* page, size_t new_size) {
  size_t nb = _lode_segment_huge_extent(page, new_size);
  if (nb <= page->block_size) return true;
  /* Only the growth is new memory: probing with the whole new size mapped
   * that much address space once more, which an address-space limit
   * refused although the reservation holds it (review, 2026-12-06: 600 ->
   * 300 -> 500 MiB failed under RLIMIT_AS). */
  if (nb > page->area_size || !_lode_os_overcommit_ok(nb - page->block_size)) return false;
  uint8_t* grow = page->area + page->block_size;
  bool ok = _lode_page_segment(page)->has_protected ? _lode_os_commit_protected(grow, nb - page->block_size)
                                                     : _lode_os_commit(grow, nb - page->block_size);
  if (!ok) return false;
  lode_page_set_block_size(page, nb);
  huge_advise(_lode_page_segment(page), nb, true);
  return true;
}

/* A huge block that outgrew its reservation moves whole -- header and block
 * -- to a new one with room to grow again (as a new block gets), by mremap:
 * no copy, no page faulted in again.  Its owner took the page off its heap's
 * queue and puts back what this returns: the page at its new place, or NULL
 * (the segment as it was).  Not with protected ranges (a shrunk block's
 * decommitted tail, LODE_SECURE's guard page): they would move inside it. */
lode_page_t* _lode_segment_huge_remap(lode_tld_t* tld, lode_page_t* page, size_t new_size) {
#ifdef LODE_SECURE
  (void)tld;
  (void)page;
  (void)new_size;
  return NULL;
#else
  lode_segment_t* seg = _lode_page_segment(page);
  if (seg->has_protected) return NULL;
  size_t area_offset = (size_t)(page->area - (uint8_t*)seg);
  size_t nb = huge_extent(area_offset, new_size), old_size = seg->size, old_block = page->block_size;
  size_t want = area_offset + nb;
  if (nb <= old_block || want < nb || !_lode_os_overcommit_ok(nb - old_block)) return NULL; /* the growth: as in place */
  /* room to grow again, as a new block gets it: not under an address-space
   * limit, where it would halve what fits (as _lode_os_reserve_flex) */
  if (nb <= LODE_HUGE_SLACK_MAX && !_lode_os_address_space_limited()) want += nb;
  _lode_segment_map_remove(seg, old_size);
  registry_remove(seg);
  _lode_segment_list_remove(&tld->segments[LODE_PAGE_HUGE], seg);
  lode_segment_t* moved = _lode_os_remap(seg, old_size, want, LODE_SEGMENT_SIZE);
  if (moved == NULL) moved = seg; /* it stays */
  bool mapped = _lode_segment_map_add(moved, moved == seg ? old_size : want);
  lode_assert(mapped); /* reservations lie below LODE_ADDRESS_LIMIT */
  (void)mapped;
  registry_add(moved);
  _lode_segment_list_push(&tld->segments[LODE_PAGE_HUGE], moved, true);
  if (moved == seg) return NULL;
  /* Fields that hold the segment's address (the list and registry links
   * were set again above; the heap's queue links are the caller's). */
  moved->cookie = LODE_SEGMENT_COOKIE ^ (uint64_t)(uintptr_t)moved;
  moved->size = want;
  lode_page_t* p = &moved->pages[0];
  p->area = (uint8_t*)moved + area_offset;
  p->area_size = want - area_offset;
  _lode_os_commit_fresh(p->area + old_block, nb - old_block);
  lode_page_set_block_size(p, nb);
  huge_advise(moved, nb, true); /* the moved part kept its advice; the new part has none */
  return p;
#endif
}

/* Bytes between a page's area and the next page's: LODE_SECURE's guard page
 * (small and medium kinds; a free large slice has none). */
static size_t page_gap(const lode_segment_t* seg) {
#ifdef LODE_SECURE
  return seg->kind == LODE_PAGE_LARGE ? 0 : LODE_OS_PAGE_SIZE;
#else
  (void)seg;
  return 0;
#endif
}

bool _lode_segment_pages_touch(const lode_segment_t* seg, uint32_t i) {
  const lode_page_t* a = &seg->pages[i];
  return i + 1 < seg->page_count && a->area + a->area_size + page_gap(seg) == seg->pages[i + 1].area;
}

/* Pages lo..hi are one range (guard pages between them included): one
 * madvise (one TLB shootdown across the process's CPUs) does for all.
 * False when the OS refused: a failed purge is no purge (review,
 * 2026-12-06: it was counted as done, the memory stayed resident and no
 * collect tried again).  The pages are then as before -- committed, counted
 * in seg->committed and committed_current, their bytes and written extent
 * kept -- and on no queue: a forced collect, which purges every free
 * committed page, tries again. */
bool _lode_segment_purge_pages(lode_segment_t* seg, uint32_t lo, uint32_t hi, int64_t purged_at) {
  size_t counted = 0;
  uint32_t touched[LODE_SEGMENT_SIZE >> LODE_SMALL_PAGE_SHIFT]; /* what a refusal restores */
  int64_t was_purged_at[LODE_SEGMENT_SIZE >> LODE_SMALL_PAGE_SHIFT];
  lode_assert(hi - lo < sizeof(touched) / sizeof(touched[0]));
  for (uint32_t i = lo; i <= hi; i++) {
    lode_page_t* p = &seg->pages[i];
    lode_assert(!p->in_use && p->is_committed && !p->on_purge_queue);
    touched[i - lo] = p->touched;
    was_purged_at[i - lo] = p->purged_at;
    p->purged_at = purged_at;
    p->is_committed = 0;
    p->touched = 0;
    counted += page_committed_bytes(p);
  }
  const lode_page_t* last = &seg->pages[hi];
  LODE_POINT(LODE_POINT_PURGING, seg);
  /* what the purge did, not what the mode said before it */
  bool zero;
  if (!_lode_os_purge(seg->pages[lo].area, (size_t)(last->area + last->area_size - seg->pages[lo].area), counted,
                      &zero)) {
    for (uint32_t i = lo; i <= hi; i++) {
      lode_page_t* p = &seg->pages[i];
      p->is_committed = 1;
      p->touched = touched[i - lo];
      p->purged_at = was_purged_at[i - lo];
    }
    return false;
  }
  for (uint32_t i = lo; i <= hi; i++) seg->pages[i].area_zero = zero;
  seg->committed -= hi - lo + 1;
  return true;
}

/* A page leaves its heap: it is free now (its purge is the caller's
 * decision).  Huge memory goes back at once. */
uint32_t _lode_segment_page_free(lode_page_t* page, lode_tld_t* tld, bool wiped) {
  lode_segment_t* seg = _lode_page_segment(page);
  lode_assert(page->in_use);
  lode_page_set_in_use(page, false);
  page->free = page->local_free = NULL;
  page->used = 0;
  lode_page_set_capacity(page, 0);
  page->retire_expire = 0;
  page->free_is_zero = 0;
  atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
  atomic_store_explicit(&page->thread_free, 0, memory_order_relaxed);
  atomic_store_explicit(&page->heap, NULL, memory_order_release);
  uint32_t slices = 1;
  if (seg->kind == LODE_PAGE_LARGE) {
    slices = page->span_count ? page->span_count : 1;
    _lode_segment_span_split(seg, page);
  }
  for (uint32_t j = 0; j < slices; j++) page[j].area_wiped = wiped;
  seg->used--;
  tld->page_frees++;
  _lode_stat_sub(&_lode_stats.pages_current, 1);
  if (seg->kind == LODE_PAGE_HUGE) {
    _lode_segment_release(seg, tld);
    return 0;
  }
  _lode_segment_update_position(seg, tld);
  return slices;
}
