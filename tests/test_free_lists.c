/* Sharded free lists: owner frees go to local_free, remote frees to the
 * atomic thread_free, full pages learn of remote frees through the heap's
 * delayed list; nothing is lost when they merge. */
#include "internal.h"
#include "test.h"

#include <pthread.h>

static lode_page_t* page_of(void* p) { return _lode_segment_page_of(_lode_ptr_segment(p), p); }

static size_t list_len(lode_page_t* page, lode_block_t* b) {
  size_t n = 0;
  for (; b != NULL; b = lode_block_next(page, b)) n++;
  return n;
}

static void local_frees_go_to_local_free(void) {
  void* p[64];
  for (int i = 0; i < 64; i++) p[i] = lode_malloc(32);
  lode_page_t* page = page_of(p[0]);
  size_t used = page->used;
  lode_block_t* free_before = page->free;
  lode_free(p[10]);
  lode_free(p[11]);
  CHECK_EQ(page->used, used - 2);
  CHECK(page->free == free_before);            /* the allocation list is untouched */
  CHECK(page->local_free == (lode_block_t*)p[11]);
  CHECK_EQ(list_len(page, page->local_free), 2);
  for (int i = 0; i < 64; i++) if (i != 10 && i != 11) lode_free(p[i]);
  CHECK_EQ(lode_check_thread(), 0);
}

typedef struct { void** blocks; int n; } remote_arg_t;

static void* remote_free(void* arg) {
  remote_arg_t* a = arg;
  for (int i = 0; i < a->n; i++) lode_free(a->blocks[i]);
  return NULL;
}

static void remote_frees_go_to_thread_free(void) {
  enum { N = 200 };
  void* p[N];
  for (int i = 0; i < N; i++) p[i] = lode_malloc(48);
  lode_page_t* page = page_of(p[0]);
  int same = 0;
  void* mine[N];
  for (int i = 0; i < N; i++) if (page_of(p[i]) == page) mine[same++] = p[i];
  size_t used = page->used;
  remote_arg_t a = {mine, same / 2};
  pthread_t t;
  pthread_create(&t, NULL, remote_free, &a);
  pthread_join(t, NULL);
  uintptr_t tf = atomic_load(&page->thread_free);
  CHECK_EQ(list_len(page, lode_tf_block(tf)), same / 2);
  CHECK_EQ(page->used, used); /* counted live until the owner merges */
  CHECK_EQ(lode_check_thread(), 0);
  lode_collect(false);
  CHECK(lode_tf_block(atomic_load(&page->thread_free)) == NULL);
  CHECK_EQ(page->used, used - (size_t)(same / 2));
  for (int i = same / 2; i < same; i++) lode_free(mine[i]);
  for (int i = 0; i < N; i++) if (page_of(p[i]) != page) lode_free(p[i]);
  CHECK_EQ(lode_check_thread(), 0);
}

/* A new heap's first page for blocks of bs, filled: its blocks in *pall
 * (lode_malloc'd), their number in *pn. */
static lode_page_t* fill_first_page(lode_heap_t* heap, size_t bs, void*** pall, size_t* pn) {
  void* first = lode_heap_malloc(heap, bs);
  lode_page_t* page = page_of(first);
  size_t cap = page->reserved;
  void** all = lode_malloc(sizeof(void*) * cap);
  all[0] = first;
  size_t n = 1;
  while (n < cap) all[n++] = lode_heap_malloc(heap, bs);
  *pall = all;
  *pn = n;
  return page;
}

static void full_page_hears_of_remote_free(void) {
  lode_heap_t* heap = lode_heap_new();
  size_t bs = 4096, n;
  void** all;
  lode_page_t* page = fill_first_page(heap, bs, &all, &n);
  size_t cap = page->reserved;
  void* extra = lode_heap_malloc(heap, bs); /* page is full: it moves to the full queue */
  CHECK(page_of(extra) != page);
  CHECK(atomic_load(&page->flags) & LODE_PAGE_IN_FULL);
  CHECK_EQ(lode_tf_delayed(atomic_load(&page->thread_free)), LODE_DELAYED_USE);
  remote_arg_t a = {&all[3], 1};
  pthread_t t;
  pthread_create(&t, NULL, remote_free, &a);
  pthread_join(t, NULL);
  CHECK(atomic_load(&heap->thread_delayed) == all[3]); /* told the heap */
  lode_heap_collect(heap, false);
  CHECK(!(atomic_load(&page->flags) & LODE_PAGE_IN_FULL));
  CHECK_EQ(page->used, cap - 1);
  CHECK_EQ(lode_check_thread(), 0);
  for (size_t i = 0; i < n; i++) if (i != 3) lode_free(all[i]);
  lode_free(extra);
  lode_free(all);
  lode_heap_delete(heap);
  CHECK_EQ(lode_check_thread(), 0);
}

/* A page's free list grows an OS page at a time: a thread that uses a few
 * blocks of a fresh page faults in one 4 KiB page, not the whole area. */
static void extend_carves_one_os_page(void) {
  static const size_t sizes[] = {16, 48, 112, 1000, 3000};
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    lode_heap_t* heap = lode_heap_new();
    void* first = lode_heap_malloc(heap, sizes[k]);
    lode_page_t* page = page_of(first);
    size_t bsize = page->block_size;
    uintptr_t area = (uintptr_t)page->area;
    uintptr_t end = area + (uintptr_t)page->capacity * bsize;
    CHECK(page->capacity >= 1);
    CHECK(end <= lode_align_up(area + bsize, LODE_OS_PAGE_SIZE)); /* within the first block's OS page */
    /* Use up the carved blocks: the next extension ends in the next OS page. */
    uint32_t cap = page->capacity;
    void* more[512];
    size_t n = 0;
    while (page->capacity == cap && n < 512) more[n++] = lode_heap_malloc(heap, sizes[k]);
    CHECK(page->capacity > cap);
    uintptr_t end2 = area + (uintptr_t)page->capacity * bsize;
    CHECK(end2 <= lode_align_up(end + bsize, LODE_OS_PAGE_SIZE));
    for (size_t i = 0; i < n; i++) lode_free(more[i]);
    lode_free(first);
    lode_heap_delete(heap);
  }
  CHECK_EQ(lode_check_thread(), 0);
}

/* Blocks freed into a page behind the bin's front page are used before the
 * front page carves more: carving touches memory the freed blocks do not
 * (with threads that come and go, rptest peaked at 62 MiB instead of 37). */
static void freed_blocks_come_before_carving(void) {
  lode_heap_t* heap = lode_heap_new();
  size_t bs = 1000, n;
  void** all;
  lode_page_t* p1 = fill_first_page(heap, bs, &all, &n);
  CHECK_EQ(p1->capacity, p1->reserved);
  void* more[512];
  size_t m = 0;
  more[m++] = lode_heap_malloc(heap, bs); /* p1 is full: a fresh page at the front */
  lode_page_t* p2 = page_of(more[0]);
  CHECK(p2 != p1);
  while (p2->free != NULL && m < 512) more[m++] = lode_heap_malloc(heap, bs);
  CHECK(p2->free == NULL && p2->capacity < p2->reserved); /* p2 could carve more */
  uint32_t cap2 = p2->capacity;
  for (size_t i = 10; i < 14; i++) lode_free(all[i]); /* p1 leaves the full queue, behind p2 */
  CHECK(!(atomic_load(&p1->flags) & LODE_PAGE_IN_FULL));
  for (size_t i = 10; i < 14; i++) {
    all[i] = lode_heap_malloc(heap, bs);
    CHECK(page_of(all[i]) == p1);
  }
  CHECK_EQ(p2->capacity, cap2);
  CHECK_EQ(lode_check_thread(), 0);
  for (size_t i = 0; i < n; i++) lode_free(all[i]);
  for (size_t i = 0; i < m; i++) lode_free(more[i]);
  lode_free(all);
  lode_heap_delete(heap);
  CHECK_EQ(lode_check_thread(), 0);
}

/* A program that writes only a byte of each block (or nothing) frees blocks
 * whose first word it never touched.  That word must not look like a
 * free-list link, or every such free walks the lists for a double free
 * (2.5x glibc's time on a glibc-thread-like loop).  A real double free still
 * walks and is found. */
static void untouched_live_blocks_do_not_look_free(void) {
  enum { N = 256 };
  void* slot[N] = {0};
  uint64_t x = 88172645463325252ull;
  size_t walks = lode_test_double_free_walks();
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    unsigned k = (unsigned)(x % N);
    lode_free(slot[k]);
    slot[k] = lode_malloc(16 + (size_t)(x >> 40) % 512);
    ((char*)slot[k])[1] = 1; /* never the first word */
  }
  for (int k = 0; k < N; k++) lode_free(slot[k]);
  CHECK_EQ(lode_test_double_free_walks() - walks, 0);
  /* a double free of a block with free neighbours still walks and is reported */
  char *a = lode_malloc(64), *b = lode_malloc(64), *c = lode_malloc(64);
  lode_free(a);
  lode_free(b);
  lode_check_set_reporter(test_reporter, NULL);
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_IGNORE);
  walks = lode_test_double_free_walks();
  lode_free(a); /* a's link points at nothing: it is the tail; b's points at a */
  lode_free(b);
#ifndef LODE_SECURE /* there, a block's trailer says it is free: no walk (unit.secure) */
  CHECK(lode_test_double_free_walks() > walks);
#endif
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_ABORT);
  lode_check_set_reporter(NULL, NULL);
  lode_free(c);
}

int main(void) {
  RUN(extend_carves_one_os_page);
  RUN(local_frees_go_to_local_free);
  RUN(remote_frees_go_to_thread_free);
  RUN(full_page_hears_of_remote_free);
  RUN(freed_blocks_come_before_carving);
  RUN(untouched_live_blocks_do_not_look_free);
  return test_done();
}
