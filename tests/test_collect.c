/* Collect, forced and not (P4), and the scenario mimalloc 1.9.2 got wrong:
 * in a non-main thread, a non-forced collect with a positive delay leaves
 * pages queued, and that is correct. */
#include "internal.h"
#include "test.h"

#include <pthread.h>

typedef struct {
  long delay;
  size_t queued_after_nonforced;
  size_t queued_after_forced;
  size_t violations;
} scenario_t;

static void* nonmain_collect(void* arg) {
  scenario_t* s = arg;
  lode_option_set(LODE_OPTION_PURGE_DELAY, s->delay);
  enum { N = 2000 };
  void* keep = lode_malloc(5000); /* keeps the segment, so pages queue */
  void* p[N];
  for (int i = 0; i < N; i++) p[i] = lode_malloc(1024); /* ~32 whole pages */
  for (int i = N - 1; i >= 0; i--) lode_free(p[i]);     /* every page empties */
  lode_collect(false);
  s->queued_after_nonforced = lode_heap_get_default()->tld->purge.count;
  s->violations += lode_check_thread();
  lode_collect(true);
  s->queued_after_forced = lode_heap_get_default()->tld->purge.count;
  s->violations += lode_check_thread();
  lode_free(keep);
  return NULL;
}

static void nonforced_collect_may_leave_queue(void) {
  scenario_t s = {.delay = 5000};
  pthread_t t;
  pthread_create(&t, NULL, nonmain_collect, &s);
  pthread_join(t, NULL);
  CHECK(s.queued_after_nonforced > 0); /* the 1.9.2 assertion would fire here */
  CHECK_EQ(s.queued_after_forced, 0);
  CHECK_EQ(s.violations, 0);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

static void delay_zero_and_negative(void) {
  scenario_t z = {.delay = 0}, n = {.delay = -1};
  pthread_t t;
  pthread_create(&t, NULL, nonmain_collect, &z);
  pthread_join(t, NULL);
  CHECK_EQ(z.queued_after_nonforced, 0);
  CHECK_EQ(z.violations, 0);
  pthread_create(&t, NULL, nonmain_collect, &n);
  pthread_join(t, NULL);
  CHECK_EQ(n.queued_after_nonforced, 0);
  CHECK_EQ(n.violations, 0);
}

static void forced_collect_empties_and_purges(void) {
  lode_test_set_clock(test_clock, NULL);
  test_clock_set(10);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 1000);
  void* keep = lode_malloc(100);
  lode_heap_t* h = lode_heap_new();
  for (int i = 0; i < 3000; i++) (void)!lode_heap_malloc(h, 200);
  lode_heap_destroy(h);
  lode_tld_t* tld = lode_heap_get_default()->tld;
  CHECK(tld->purge.count > 0);
  lode_collect(false);
  CHECK(tld->purge.count > 0);
  CHECK_EQ(lode_check_thread(), 0);
  lode_collect(true);
  CHECK_EQ(tld->purge.count, 0);
  CHECK_EQ(lode_check_thread(), 0);
  for (int k = 0; k < LODE_PAGE_KINDS; k++)
    for (lode_segment_t* s = tld->segments[k].first; s; s = s->next)
      for (uint32_t i = 0; i < s->page_count; i++) CHECK(s->pages[i].in_use || !s->pages[i].is_committed);
  lode_free(keep);
  lode_collect(true);
  lode_test_set_clock(NULL, NULL);
}

/* A forced collect gives an empty segment back whole (one munmap, or one
 * cache entry, unmapped in the same collect), without an madvise for each of
 * its queued pages first. */
typedef struct {
  size_t purges, munmaps, queued_before, queued_after, violations;
} whole_t;

static void* empty_segment_goes_whole(void* arg) {
  whole_t* w = arg;
  lode_option_set(LODE_OPTION_PURGE_DELAY, 5000);
  enum { N = 2000 };
  void* p[N];
  for (int i = 0; i < N; i++) p[i] = lode_malloc(1024); /* ~32 pages of one fresh segment */
  for (int i = 0; i < N; i++) lode_free(p[i]);
  w->queued_before = lode_heap_get_default()->tld->purge.count;
  lode_stats_t a, b;
  lode_stats_get(&a);
  lode_collect(true);
  lode_stats_get(&b);
  w->purges = b.purges - a.purges;
  w->munmaps = b.munmaps - a.munmaps;
  w->queued_after = lode_heap_get_default()->tld->purge.count;
  w->violations = lode_check_thread();
  return NULL;
}

static void forced_collect_releases_empty_segments_whole(void) {
  whole_t w = {0};
  pthread_t t;
  pthread_create(&t, NULL, empty_segment_goes_whole, &w);
  pthread_join(t, NULL);
  CHECK(w.queued_before >= 16);
  CHECK_EQ(w.queued_after, 0);
  CHECK_EQ(w.purges, 0);
  CHECK(w.munmaps >= 1);
  CHECK_EQ(w.violations, 0);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

/* Free pages side by side go back in one OS call (one madvise, one TLB
 * shootdown), whether the timer or a forced collect purges them. */
typedef struct {
  int adjacent;
  size_t timer_purges, timer_pages_left, forced_purges, forced_pages_left, violations;
} run_t;

static void free_adjacent_pages(lode_page_t** pages, int n, int* adjacent) {
  lode_heap_t* h[16];
  for (int i = 0; i < n; i++) {
    h[i] = lode_heap_new();
    void* p = lode_heap_malloc(h[i], 3000); /* a page of its own */
    pages[i] = _lode_segment_page_of(_lode_ptr_segment(p), p);
  }
  for (int i = 0; i < n; i++) lode_heap_destroy(h[i]); /* each page leaves at once */
  *adjacent = 1;
  for (int i = 1; i < n; i++)
    *adjacent &= _lode_page_segment(pages[i]) == _lode_page_segment(pages[0]) &&
                 pages[i]->index == pages[i - 1]->index + 1;
}

static size_t committed_count(lode_page_t** pages, int n) {
  size_t c = 0;
  for (int i = 0; i < n; i++) c += pages[i]->is_committed;
  return c;
}

static void* purge_adjacent(void* arg) {
  run_t* r = arg;
  enum { N = 8 };
  lode_page_t* pages[N];
  int adj1, adj2;
  lode_option_set(LODE_OPTION_PURGE_DELAY, 100);
  test_clock_set(100000);
  void* keep = lode_malloc(64); /* keeps the segment */
  free_adjacent_pages(pages, N, &adj1);
  lode_stats_t a, b;
  lode_stats_get(&a);
  test_clock_set(100100);
  lode_collect(false);
  lode_stats_get(&b);
  r->timer_purges = b.purges - a.purges;
  r->timer_pages_left = committed_count(pages, N);
  free_adjacent_pages(pages, N, &adj2);
  lode_stats_get(&a);
  lode_collect(true);
  lode_stats_get(&b);
  r->forced_purges = b.purges - a.purges;
  r->forced_pages_left = committed_count(pages, N);
  r->adjacent = adj1 && adj2;
  r->violations = lode_check_thread();
  lode_free(keep);
  lode_collect(true);
  return NULL;
}

static void adjacent_pages_purge_in_one_call(void) {
  lode_collect(true); /* no cached segment: the thread's pages come in order */
  lode_test_set_clock(test_clock, NULL);
  run_t r = {0};
  pthread_t t;
  pthread_create(&t, NULL, purge_adjacent, &r);
  pthread_join(t, NULL);
  lode_test_set_clock(NULL, NULL);
  CHECK(r.adjacent);
  CHECK_EQ(r.timer_pages_left, 0);
  CHECK_EQ(r.timer_purges, 1);
  CHECK_EQ(r.forced_pages_left, 0);
  CHECK_EQ(r.forced_purges, 1);
  CHECK_EQ(r.violations, 0);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

/* The checker's P4 really distinguishes the two: an expired page left on the
 * queue after a non-forced collect is a violation. */
static void p4_catches_expired_leftover(void) {
  lode_test_set_clock(test_clock, NULL);
  test_clock_set(100);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 10);
  void* keep = lode_malloc(100);
  lode_heap_t* h = lode_heap_new();
  (void)!lode_heap_malloc(h, 300);
  lode_heap_destroy(h);
  lode_tld_t* tld = lode_heap_get_default()->tld;
  CHECK(tld->purge.count > 0);
  test_clock_set(200);
  lode_collect(false);
  CHECK(tld->purge.first == NULL || tld->purge.first->purge_expire > 200);
  CHECK_EQ(lode_check_thread(), 0);
  lode_check_set_reporter(test_reporter, NULL);
  /* Pretend the collect skipped one: requeue without counting a push. */
  h = lode_heap_new();
  (void)!lode_heap_malloc(h, 300);
  lode_heap_destroy(h);
  tld->mark.queue_pushes = tld->queue_pushes;
  tld->mark.page_frees = tld->page_frees;
  tld->mark.time = 10000;
  test_seen_count = 0;
  CHECK(lode_check_thread() > 0);
  CHECK(test_was_reported("P4"));
  lode_check_set_reporter(NULL, NULL);
  lode_collect(true);
  lode_free(keep);
  lode_collect(true);
  lode_test_set_clock(NULL, NULL);
}

/* A non-forced collect retires an emptied page as a free would: its bin's
 * only page stays for its ticks (a producer that collects often kept
 * claiming and carving a fresh page for every size it had used), a page
 * with others in its bin goes back; a forced collect takes both. */
static void* free_it(void* p) {
  lode_free(p);
  return NULL;
}

static void free_elsewhere(void* p) {
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
}

static void nonforced_collect_retires_as_free_does(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 5000);
  lode_heap_t* h = lode_heap_new();
  void* keep = lode_heap_malloc(h, 5000); /* keeps the segment */
  /* one 48-byte page emptied by another thread's free */
  void* a = lode_heap_malloc(h, 48);
  lode_page_t* pa = _lode_segment_page_of(_lode_ptr_segment(a), a);
  free_elsewhere(a);
  lode_heap_collect(h, false);
  CHECK(pa->in_use && atomic_load_explicit(&pa->heap, memory_order_relaxed) == h);
  CHECK(h->pages[pa->bin].first == pa && pa->used == 0 && pa->retire_expire > 0);
  CHECK_EQ(lode_check_thread(), 0);
  /* two 200-byte pages: the first (full by then) has all its blocks freed
   * elsewhere while the second is its bin's page to allocate from */
  enum { N = 600 };
  void* b[N];
  for (int i = 0; i < N; i++) b[i] = lode_heap_malloc(h, 200);
  lode_page_t* p0 = _lode_segment_page_of(_lode_ptr_segment(b[0]), b[0]);
  lode_page_t* pn = _lode_segment_page_of(_lode_ptr_segment(b[N - 1]), b[N - 1]);
  CHECK(p0 != pn);
  int moved = 0;
  for (int i = 0; i < N; i++) {
    if (_lode_segment_page_of(_lode_ptr_segment(b[i]), b[i]) == p0) {
      free_elsewhere(b[i]);
      b[i] = NULL;
      moved++;
    }
  }
  CHECK(moved > 0);
  lode_heap_collect(h, false);
  CHECK(!p0->in_use || atomic_load_explicit(&p0->heap, memory_order_relaxed) != h); /* gone */
  CHECK(pn->in_use && atomic_load_explicit(&pn->heap, memory_order_relaxed) == h);
  CHECK(pa->in_use && atomic_load_explicit(&pa->heap, memory_order_relaxed) == h); /* still kept */
  CHECK_EQ(lode_check_thread(), 0);
  lode_heap_collect(h, true);
  CHECK(!pa->in_use || atomic_load_explicit(&pa->heap, memory_order_relaxed) != h); /* forced: gone */
  CHECK_EQ(lode_check_thread(), 0);
  for (int i = 0; i < N; i++) lode_free(b[i]);
  lode_free(keep);
  lode_heap_delete(h);
  lode_collect(true);
  CHECK_EQ(lode_check_thread(), 0);
}

/* Retired pages age at each non-forced collect too: a thread that stops
 * allocating gets them back within five collects (review: its collects
 * kept them for good), also a page a fast malloc took back before a forced
 * collect and another thread emptied after (it kept a stale retire count
 * and lost its bin's retired bit). */
static bool in_heap(lode_page_t* page, lode_heap_t* h) {
  return page->in_use && atomic_load_explicit(&page->heap, memory_order_relaxed) == h;
}

static int collects_until_gone(lode_page_t* page, lode_heap_t* h) {
  int n = 0;
  while (in_heap(page, h) && n < 100) {
    lode_heap_collect(h, false);
    n++;
  }
  return n;
}

static void idle_collects_give_retired_pages_back(void) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, 5000);
  lode_heap_t* h = lode_heap_new();
  void* keep = lode_heap_malloc(h, 5000);
  void* a = lode_heap_malloc(h, 48);
  lode_page_t* pa = _lode_segment_page_of(_lode_ptr_segment(a), a);
  lode_free(a); /* retired by the free */
  CHECK(in_heap(pa, h) && pa->retire_expire > 0);
  int n = collects_until_gone(pa, h);
  CHECK(n >= 2 && n <= 5);
  void* m = lode_heap_malloc(h, 40000); /* a medium page: 4 ticks */
  lode_page_t* pm = _lode_segment_page_of(_lode_ptr_segment(m), m);
  lode_free(m);
  n = collects_until_gone(pm, h);
  CHECK(n >= 1 && n <= 5);
  void* b = lode_heap_malloc(h, 48);
  lode_free(b);
  b = lode_heap_malloc(h, 48); /* the retired page, taken back by the fast path */
  lode_page_t* pb = _lode_segment_page_of(_lode_ptr_segment(b), b);
  lode_heap_collect(h, true);
  free_elsewhere(b);
  n = collects_until_gone(pb, h);
  CHECK(n >= 2 && n <= 5);
  CHECK_EQ(lode_check_thread(), 0);
  lode_free(keep);
  lode_heap_delete(h);
  lode_collect(true);
}

int main(void) {
  RUN(nonforced_collect_may_leave_queue);
  RUN(delay_zero_and_negative);
  RUN(forced_collect_empties_and_purges);
  RUN(forced_collect_releases_empty_segments_whole);
  RUN(p4_catches_expired_leftover);
  RUN(adjacent_pages_purge_in_one_call);
  RUN(nonforced_collect_retires_as_free_does);
  RUN(idle_collects_give_retired_pages_back);
  return test_done();
}
