/* held: memory held over time, in a server's shape.  Producers serve one
 * request per round from a fresh heap (never from their default heap),
 * delete the heap with the request's blocks live and hand them to their
 * consumer, which frees them the next round: every free is remote, and
 * half the requests carry a huge block.  The live set is the same each
 * round, so what the process holds must not grow with time.
 *
 * Three bugs of lode held memory this way and no suite saw it (review,
 * 2026-12-06): the pages of deleted heaps came back only when their owner
 * allocated from its default heap (2 GB after 500 requests); a huge block
 * freed by another thread stayed resident until its owner allocated again;
 * an exited thread's free pages stayed committed.  A quarter of the
 * requests are served by a thread of their own that exits.  Check M1, at each round
 * barrier with every worker parked: resident memory beyond the workload's
 * start and its live bytes must stay under a bound (lode; see bound()), and
 * for any allocator must not keep growing: after the warm-up rounds it may
 * not exceed twice the largest excess they saw plus slack. */
#include "stress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { SLOTS = 1032, SMALL_BLOCKS = 1024, MAX_PAIRS = 128 };
#define MIB ((size_t)1 << 20)
#define HUGE_MIN (32 * MIB) /* huge blocks of 32-64 MiB: one held is over any bound */

/* Pairs: worker 2k produces, 2k+1 consumes; an odd last worker consumes
 * its own requests (its frees are local).  A producer serves one round in
 * four and idles between, as a server thread between requests: whatever
 * waits for its owner to run (the bug of the huge block) waits for three
 * barriers. */
static int producer_of(const worker_t* w) { return w->index & ~1; }
static bool is_producer(const worker_t* w) { return (w->index & 1) == 0; }
static bool self_served(const worker_t* w) { return is_producer(w) && w->index + 1 >= opt.threads; }
/* the slots hold MAX_PAIRS pairs: workers past them idle */
static bool idles(const worker_t* w) { return w->index >= 2 * MAX_PAIRS; }
static bool serves(const worker_t* w) { return ((w->round + w->index / 2) & 3) == 0; }
static size_t slot_of(int producer, long round, int k) {
  return ((size_t)producer * 2 + (size_t)(round & 1)) * SLOTS + (size_t)k;
}

static void consume(worker_t* w, long round) {
  int p = producer_of(w);
  for (int k = 0; k < SLOTS; k++) {
    void* b = transfer_take(slot_of(p, round, k));
    if (b == NULL) continue;
    blk_verify(w, b, "received from the producer's deleted heap");
    blk_free(w, b);
    op_done(w);
  }
}

static _Atomic size_t request_max; /* bytes of the largest request's small blocks */

static void produce(worker_t* w) {
  void* heap = T->heap_new();
  if (heap == NULL) oracle_fail("ALLOC", NULL, "heap_new returned NULL");
  int k = 0;
  size_t bytes = 0;
  for (; k < SMALL_BLOCKS; k++) {
    size_t size = rng_chance(&w->rng, 5) ? rng_logsize(&w->rng, 4096, 32 << 10) : 16 + (size_t)rng_below(&w->rng, 4080);
    transfer_swap(slot_of(w->index, w->round, k), blk_heap_alloc(w, heap, size));
    bytes += size;
    op_done(w);
  }
  size_t m = atomic_load(&request_max);
  while (bytes > m && !atomic_compare_exchange_weak(&request_max, &m, bytes)) {
  }
  if (rng_chance(&w->rng, 50)) {
    size_t size = HUGE_MIN + (size_t)rng_below(&w->rng, HUGE_MIN);
    transfer_swap(slot_of(w->index, w->round, k), blk_heap_alloc(w, heap, size));
    op_done(w);
  }
  T->heap_delete(heap); /* its blocks live on, and go to the consumer */
}

/* A request served by a thread of its own (thread per request): it exits
 * with the blocks live, and the consumer, which never allocated, frees an
 * exited thread's blocks -- its huge one too (mutant 80).  The producer
 * waits in the join, so the request thread may use its context. */
static void* request_thread(void* arg) {
  worker_t* w = arg;
  oracle_set_thread(w);
  produce(w);
  return NULL;
}

static void held_round(worker_t* w) {
  if (idles(w)) return;
  /* the consumer frees what its producer handed over the round before
   * (the barrier between them orders the banks) */
  if (!is_producer(w) || self_served(w)) consume(w, w->round - 1);
  if (!is_producer(w) || !serves(w)) return;
  if (!rng_chance(&w->rng, 25)) {
    produce(w);
    return;
  }
  pthread_t th;
  if (pthread_create(&th, NULL, request_thread, w) != 0) {
    fprintf(stderr, "lode-stress: pthread_create failed\n");
    exit(1);
  }
  pthread_join(th, NULL);
  oracle_set_thread(w);
}

static void held_leave(worker_t* w, bool final) {
  if (!final || idles(w)) return; /* the blocks wait in the slots for the next threads */
  /* at the end each consumer frees both banks of its producer; a producer
   * whose consumer is another worker leaves them to it */
  if (is_producer(w) && !self_served(w)) return;
  consume(w, w->round);
  consume(w, w->round - 1);
}

/* M1's bound on what lode holds at a barrier beyond the live bytes, with
 * the purge delay fixed (begin() turns the backoff off: a delay grown to
 * 640 ms holds what 640 ms of frees left, by design).  Per producer, four
 * requests' small blocks: the pages of the live request (part free), of
 * the one its consumer freed (merged at the backing heap's next sweep), and
 * pages that wait for the delay to purge them -- it runs when the producer
 * next allocates, three rounds later.  For the process, 16 MiB: the
 * driver's own memory and the checker's.  A huge block freed by another
 * thread counts in no term: its bytes go back before its free is
 * published.  One its owner freed (an odd last worker serves itself) waits
 * warm in the segment cache for the delay, up to the cache's bound: 48 MiB
 * or half of what is committed (segment_cache.c). */
static size_t bound(void) {
  size_t producers = (size_t)(opt.threads + 1) / 2;
  if (producers > MAX_PAIRS) producers = MAX_PAIRS;
  size_t b = producers * 4 * atomic_load(&request_max) + 16 * MIB;
  if (opt.threads & 1) {
    stress_stats_t st;
    target_stats(&st);
    b += st.committed / 2 > 48 * MIB ? st.committed / 2 : 48 * MIB;
  }
  return b;
}

static size_t base_rss, warm_max;
static long saved_backoff;

static void held_begin(void) {
  saved_backoff = target_set_purge_backoff(0);
  base_rss = stress_rss_bytes();
  warm_max = 0;
  atomic_store(&request_max, 0);
}

static void held_end(void) { target_set_purge_backoff(saved_backoff); }

static void held_barrier(long round, long live) {
  size_t rss, held, ex;
  if (!stress_held_memory(base_rss, live, &rss, &held, &ex)) return;
  if (getenv("LODE_STRESS_HELD_TRACE")) {
    stress_stats_t st;
    target_stats(&st);
    fprintf(stderr,
            "held r%ld rss %.1f MiB live %.1f MiB excess %.1f MiB committed %.1f MiB pages %zu abandoned %zu queued %zu "
            "bound %.1f MiB\n",
            round, (double)rss / MIB, (double)live / MIB, (double)ex / MIB, (double)st.committed / MIB, st.pages,
            st.abandoned, st.queued, (double)bound() / MIB);
  }
  if (T->white_box && ex > bound())
    oracle_fail("M1", NULL,
                "after round %ld the process holds %.1f MiB beyond its start and its %.1f MiB live; the bound is "
                "%.1f MiB",
                round, (double)ex / MIB, (double)live / MIB, (double)bound() / MIB);
  oracle_excess_growth("M1", round, ex, &warm_max);
}

const workload_t wl_held = {.round = held_round, .leave = held_leave, .begin = held_begin,
                            .barrier = held_barrier, .end = held_end,
                            .default_max = 32 << 10, .transfer_slots = MAX_PAIRS * 2 * 2 * SLOTS, .respawn_percent = 2,
                            .bench_rounds = 200};
