/* Cross-thread traffic with no join in between: a producer allocates and a
 * consumer frees through a ring (remote frees race with the owner's merges),
 * and threads die holding blocks while others allocate and reclaim at the
 * same time.  Under ThreadSanitizer this is where ordering bugs show. */
#include "internal.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

enum { RING = 256, ITEMS = 60000 };
static _Atomic(unsigned char*) ring[RING];
static atomic_int producer_done;
static atomic_long corrupt;

static void* producer(void* arg) {
  (void)arg;
  for (int i = 0; i < ITEMS; i++) {
    size_t n = 16 + (size_t)(i % 97) * 8;
    unsigned char* p = lode_malloc(n);
    memset(p, (unsigned char)n, n);
    unsigned char* expected = NULL;
    while (!atomic_compare_exchange_weak(&ring[i % RING], &expected, p)) expected = NULL;
    if (i % 1000 == 0) lode_collect(false);
  }
  atomic_store(&producer_done, 1);
  return NULL;
}

static void* consumer(void* arg) {
  (void)arg;
  int got = 0;
  while (got < ITEMS) {
    for (int k = 0; k < RING; k++) {
      unsigned char* p = atomic_exchange(&ring[k], NULL);
      if (p == NULL) continue;
      size_t n = lode_usable_size(p) >= 16 ? (size_t)p[0] : 0;
      for (size_t j = 0; j < n && j < 16; j++) if (p[j] != p[0]) atomic_fetch_add(&corrupt, 1);
      lode_free(p);
      got++;
    }
  }
  return NULL;
}

static void producer_consumer(void) {
  pthread_t a, b;
  pthread_create(&a, NULL, producer, NULL);
  pthread_create(&b, NULL, consumer, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK_EQ(atomic_load(&corrupt), 0);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

enum { POOL = 4096 };
static _Atomic(void*) pool[POOL];
static atomic_int stop;

static void* die_holding(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < 300; i++) {
    seed = seed * 1103515245u + 12345u;
    void* p = lode_malloc(32 + seed % 2000);
    void* old = atomic_exchange(&pool[seed % POOL], p);
    lode_free(old);
  }
  return NULL; /* abandons segments holding pool blocks */
}

static void* spawner(void* arg) {
  for (unsigned r = 0; !atomic_load(&stop); r++) {
    pthread_t t;
    pthread_create(&t, NULL, die_holding, (void*)(uintptr_t)(r * 2 + (uintptr_t)arg));
    pthread_join(t, NULL);
  }
  return NULL;
}

static size_t reclaimed_before;

static bool reclaimed_yet(void) {
  lode_stats_t st;
  lode_stats_get(&st);
  return st.segments_reclaimed > reclaimed_before;
}

static void* allocator(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void* mine[512] = {0};
  /* on a loaded machine the spawners may not have abandoned anything in the
   * first 40,000 rounds: go on (boundedly) until something was reclaimed */
  for (int i = 0; i < 40000 || (i < 4000000 && (i % 1024 != 0 || !reclaimed_yet())); i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned k = seed % 512;
    lode_free(mine[k]);
    mine[k] = lode_malloc(16 + seed % 3000); /* fresh pages come from reclaim */
    if (i % 7 == 0) lode_free(atomic_exchange(&pool[seed % POOL], NULL));
  }
  for (int k = 0; k < 512; k++) lode_free(mine[k]);
  return NULL;
}

static void concurrent_abandon_and_reclaim(void) {
  lode_stats_t before, after;
  lode_stats_get(&before);
  reclaimed_before = before.segments_reclaimed;
  pthread_t s1, s2, a1, a2;
  pthread_create(&s1, NULL, spawner, (void*)1);
  pthread_create(&s2, NULL, spawner, (void*)2);
  pthread_create(&a1, NULL, allocator, (void*)3);
  pthread_create(&a2, NULL, allocator, (void*)4);
  pthread_join(a1, NULL);
  pthread_join(a2, NULL);
  atomic_store(&stop, 1);
  pthread_join(s1, NULL);
  pthread_join(s2, NULL);
  lode_stats_get(&after);
  CHECK(after.segments_reclaimed > before.segments_reclaimed);
  CHECK_EQ(lode_check_process(), 0);
  for (int k = 0; k < POOL; k++) lode_free(atomic_exchange(&pool[k], NULL));
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
  CHECK_EQ(lode_check_clean(before.committed_current), 0);
}

/* A page not first in its bin whose blocks other threads freed: its bin's
 * mallocs never look at it, so only the sweep of the generic malloc path
 * merges those frees and gives the empty page back. */
enum { SW_BLOCKS = 200 };
static void* sw_blocks[SW_BLOCKS];
static size_t sw_per;
static void* free_rest_of_first_page(void* arg) {
  (void)arg;
  for (size_t i = 1; i < sw_per; i++) lode_free(sw_blocks[i]);
  return NULL;
}

static void sweep_gives_back_remotely_emptied_page(void) {
  lode_heap_t* heap = lode_heap_new();
  CHECK(heap != NULL);
  for (size_t i = 0; i < SW_BLOCKS; i++) sw_blocks[i] = lode_heap_malloc(heap, 1000); /* 1024-byte class */
  lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(sw_blocks[0]), sw_blocks[0]);
  sw_per = page->reserved; /* the heap's first page: blocks 0 .. reserved-1 */
  CHECK(sw_per < SW_BLOCKS && page->used == sw_per);
  lode_free(sw_blocks[0]); /* no longer full: behind the bin's current page */
  CHECK(page != heap->pages[page->bin].first);
  pthread_t t;
  pthread_create(&t, NULL, free_rest_of_first_page, NULL); /* the rest, remotely */
  pthread_join(t, NULL);
  CHECK(page->in_use && page->used == sw_per - 1); /* nothing merged the remote frees yet */
  for (int i = 0; i < 2000; i++) lode_free(lode_heap_malloc(heap, 100 << 10)); /* generic mallocs */
  CHECK(!page->in_use || page->heap != heap); /* swept: merged, empty, given back */
  CHECK_EQ(lode_check_thread(), 0);
  for (size_t i = sw_per; i < SW_BLOCKS; i++) lode_free(sw_blocks[i]);
  lode_heap_delete(heap);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

/* A producer that waits while its consumer frees its huge blocks: the
 * frees wait on the segments' remote lists until the producer allocates or
 * collects, and the blocks stayed resident (review, 2026-12-06: 8 x 64 MiB
 * held through malloc_trim).  The freeing thread drops their bytes. */
enum { IDLE_BLOCKS = 4 };
#define IDLE_SIZE ((size_t)16 << 20)
static void* idle_block[IDLE_BLOCKS];
static pthread_barrier_t idle_made, idle_freed;
static void* produce_and_wait(void* arg) {
  (void)arg;
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    idle_block[i] = lode_malloc(IDLE_SIZE);
    memset(idle_block[i], 1, IDLE_SIZE);
  }
  pthread_barrier_wait(&idle_made);
  pthread_barrier_wait(&idle_freed); /* idle while they are freed and measured */
  return NULL;
}

static void remote_free_of_huge_block_drops_its_pages(void) {
  pthread_barrier_init(&idle_made, NULL, 2);
  pthread_barrier_init(&idle_freed, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, produce_and_wait, NULL);
  pthread_barrier_wait(&idle_made);
  size_t before = 0, after = 0;
  for (int i = 0; i < IDLE_BLOCKS; i++) before += _lode_os_resident(idle_block[i], IDLE_SIZE);
  uint8_t* keep[IDLE_BLOCKS];
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    keep[i] = idle_block[i];
    lode_free(idle_block[i]);
  }
  for (int i = 0; i < IDLE_BLOCKS; i++) after += _lode_os_resident(keep[i], IDLE_SIZE);
  printf("resident in the idle producer's huge blocks: %zu KiB before their frees, %zu KiB after\n", before >> 10,
         after >> 10);
  CHECK(before >= (size_t)IDLE_BLOCKS * IDLE_SIZE / 2);
  CHECK(after <= (size_t)IDLE_BLOCKS * (64 << 10)); /* at most a page or two each */
  pthread_barrier_wait(&idle_freed);
  pthread_join(t, NULL);
  pthread_barrier_destroy(&idle_made);
  pthread_barrier_destroy(&idle_freed);
  CHECK_EQ(lode_check_process(), 0);
  lode_collect(true);
}

/* The same after the producer exited, freed by a thread that never
 * allocated: with no thread data it cannot take the abandoned segment
 * over, and the block stayed resident until some thread reclaimed it
 * (stress held, 2026-12-06: 42 MiB held with nothing live). */
static void* produce_and_exit(void* arg) {
  (void)arg;
  for (int i = 0; i < IDLE_BLOCKS; i++) {
    idle_block[i] = lode_malloc(IDLE_SIZE);
    memset(idle_block[i], 1, IDLE_SIZE);
  }
  return NULL;
}
static size_t exited_before, exited_after;
static void* free_only(void* arg) {
  (void)arg;
  CHECK(_lode_heap_get_default()->tld == NULL); /* this thread never allocated */
  for (int i = 0; i < IDLE_BLOCKS; i++) exited_before += _lode_os_resident(idle_block[i], IDLE_SIZE);
  for (int i = 0; i < IDLE_BLOCKS; i++) lode_free(idle_block[i]);
  for (int i = 0; i < IDLE_BLOCKS; i++) exited_after += _lode_os_resident(idle_block[i], IDLE_SIZE);
  return NULL;
}

static void free_of_exited_threads_huge_block_by_fresh_thread_drops_its_pages(void) {
  pthread_t t;
  pthread_create(&t, NULL, produce_and_exit, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, free_only, NULL);
  pthread_join(t, NULL);
  printf("resident in an exited thread's huge blocks: %zu KiB before a fresh thread freed them, %zu KiB after\n",
         exited_before >> 10, exited_after >> 10);
  CHECK(exited_before >= (size_t)IDLE_BLOCKS * IDLE_SIZE / 2);
  CHECK(exited_after <= (size_t)IDLE_BLOCKS * (64 << 10));
  CHECK_EQ(lode_check_process(), 0);
  lode_collect(true);
  CHECK_EQ(lode_check_process(), 0);
}

/* LODE_ON_ERROR=warn: a block freed twice by another thread closes the
 * page's remote list into a cycle; the owner's merge reported it and dropped
 * the whole list, so the eight good frees before it were lost and the page
 * never emptied (review, 2026-12-07).  Now only the double free is dropped. */
enum { CYC = 10 };
static void* cyc_blocks[CYC];
static void* free_all_then_first_again(void* arg) {
  (void)arg;
  for (int i = 0; i < CYC - 1; i++) lode_free(cyc_blocks[i]);
  lode_free(cyc_blocks[0]);
  return NULL;
}

static void remote_double_free_keeps_the_other_frees(void) {
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_WARN);
  lode_heap_t* heap = lode_heap_new();
  CHECK(heap != NULL);
  if (heap == NULL) return;
  for (int i = 0; i < CYC; i++) cyc_blocks[i] = lode_heap_malloc(heap, 64);
  lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(cyc_blocks[0]), cyc_blocks[0]);
  CHECK_EQ(page->used, CYC);
  pthread_t t;
  pthread_create(&t, NULL, free_all_then_first_again, NULL);
  pthread_join(t, NULL);
  lode_heap_collect(heap, false); /* the merge: "double free", the rest kept */
  CHECK_EQ(page->used, 1);
  lode_free(cyc_blocks[CYC - 1]);
  CHECK_EQ(page->used, 0);
  CHECK_EQ(lode_check_thread(), 0);
  lode_heap_destroy(heap);
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_ABORT);
  lode_collect(true);
}

/* The same with an address the page never carved freed twice by the other
 * thread around a good free (U, C, U): the merge unlinked U while walking,
 * which turned the cycle into C's loop on itself, and reported C, freed
 * once, as a double free (review, 2026-12-07).  U is reported (not
 * allocated) and C merges, unreported. */
static void* uncarved_u;
static void* carved_c;
static void* free_u_c_u(void* arg) {
  (void)arg;
  lode_free(uncarved_u);
  lode_free(carved_c);
  lode_free(uncarved_u);
  return NULL;
}
static const void* err_ptr[8];
static char err_what[8][64];
static int err_count;
static void record_error(const char* func, const char* what, const void* p) {
  (void)func;
  if (err_count < 8) {
    err_ptr[err_count] = p;
    snprintf(err_what[err_count], sizeof(err_what[0]), "%s", what);
  }
  err_count++;
}

static void remote_cycle_through_uncarved_block_names_it(void) {
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_WARN);
  lode_heap_t* heap = lode_heap_new();
  CHECK(heap != NULL);
  if (heap == NULL) return;
  void* keep = lode_heap_malloc(heap, 64);
  carved_c = lode_heap_malloc(heap, 64);
  lode_page_t* page = _lode_segment_page_of(_lode_ptr_segment(carved_c), carved_c);
  CHECK(page->capacity < page->reserved);
  uncarved_u = page->area + (size_t)page->capacity * page->block_size;
  uint32_t used = page->used;
  err_count = 0;
  lode_test_set_error_hook(record_error);
  pthread_t t;
  pthread_create(&t, NULL, free_u_c_u, NULL);
  pthread_join(t, NULL);
  lode_heap_collect(heap, false);
  lode_test_set_error_hook(NULL);
  CHECK_EQ(page->used, used - 1); /* C merged */
  int u_reports = 0, c_reports = 0;
  for (int i = 0; i < err_count && i < 8; i++) {
    u_reports += err_ptr[i] == uncarved_u; /* (LODE_SECURE: at the free, by its trailer) */
    c_reports += err_ptr[i] == carved_c;
  }
  CHECK_EQ(c_reports, 0);
  CHECK(u_reports >= 1);
  CHECK_EQ(lode_check_thread(), 0);
  lode_free(keep);
  lode_heap_destroy(heap);
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_ABORT);
  lode_collect(true);
}

int main(void) {
  RUN(producer_consumer);
  RUN(concurrent_abandon_and_reclaim);
  RUN(sweep_gives_back_remotely_emptied_page);
  RUN(remote_free_of_huge_block_drops_its_pages);
  RUN(free_of_exited_threads_huge_block_by_fresh_thread_drops_its_pages);
  RUN(remote_double_free_keeps_the_other_frees);
  RUN(remote_cycle_through_uncarved_block_names_it);
  return test_done();
}
