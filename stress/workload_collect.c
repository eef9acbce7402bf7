/* collect: workers in non-main threads call collect(false) and collect(true)
 * while allocating and freeing.  Bursts fill whole pages with small blocks,
 * free them in varying orders and collect at once, so that non-forced
 * collects really meet queued pages (the mimalloc 1.9.2 scenario: a
 * non-empty queue after a non-forced collect is correct).  The purge delay
 * cycles over rounds through long (seconds), short, 0 and negative values. */
#include "stress.h"

#include <stdlib.h>

enum { KEEP_CAP = 256, BURST_MAX = 4 * 4096 + 512 };

typedef struct {
  ltable_t keep;
  void** burst;
} collect_state_t;

/* Collect and check what the collect promised. */
static void collect_and_check(worker_t* w, bool force, long pushed, int64_t t0) {
  T->collect(force);
  atomic_store_explicit(&w->collects, atomic_load_explicit(&w->collects, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  if (opt.bench || !T->white_box) return;
  size_t q = target_thread_queued();
  long delay = ctl.purge_delay;
  if (force) {
    if (q != 0) oracle_fail("P4", NULL, "%zu pages still queued right after a forced collect", q);
  } else {
    if (q > 0)
      atomic_store_explicit(&w->qcollects, atomic_load_explicit(&w->qcollects, memory_order_relaxed) + 1,
                            memory_order_relaxed);
    int64_t age = target_now_ms() - t0;
    if (delay >= 1000 && pushed > 0 && age < delay / 2 && (long)q < pushed)
      oracle_fail("P6", NULL,
                  "a non-forced collect purged pages queued %lld ms ago with a %ld ms delay "
                  "(%ld pushed by this burst, %zu left queued)",
                  (long long)age, delay, pushed, q);
  }
  oracle_check_thread(w, force ? "right after a forced collect" : "right after a non-forced collect");
}

static const size_t burst_sizes[] = {16, 24, 32, 48, 64, 100, 128, 256, 512, 1000, 1024, 2048, 4000, 8192};

static long burst(worker_t* w, collect_state_t* s) {
  size_t size = burst_sizes[rng_below(&w->rng, sizeof(burst_sizes) / sizeof(burst_sizes[0]))];
  size_t pages = 1 + (size_t)rng_below(&w->rng, 4);
  size_t n = pages * (64u << 10) / size + (size_t)rng_below(&w->rng, 64);
  if (n > BURST_MAX) n = BURST_MAX;
  for (size_t i = 0; i < n; i++) {
    s->burst[i] = blk_alloc(w, size);
    op_done(w);
  }
  size_t q0 = target_thread_queued();
  int64_t t0 = target_now_ms();
  unsigned order = (unsigned)rng_below(&w->rng, 4);
  if (order == 2) { /* shuffled */
    for (size_t i = n - 1; i > 0; i--) {
      size_t j = (size_t)rng_below(&w->rng, i + 1);
      void* tmp = s->burst[i];
      s->burst[i] = s->burst[j];
      s->burst[j] = tmp;
    }
  }
  size_t stride = order == 3 ? 2 + (size_t)rng_below(&w->rng, 6) : 1;
  for (size_t off = 0; off < stride; off++) { /* order 3: every stride-th block, then the next offset */
    for (size_t k = off; k < n; k += stride) {
      size_t i = order == 1 ? n - 1 - k : k;
      blk_free(w, s->burst[i]);
      s->burst[i] = NULL;
      op_done(w);
    }
  }
  long pushed = (long)target_thread_queued() - (long)q0;
  collect_and_check(w, false, pushed, t0);
  return pushed;
}

static void collect_round(worker_t* w) {
  if (w->user == NULL) {
    collect_state_t* s = calloc(1, sizeof(*s));
    s->burst = calloc(BURST_MAX, sizeof(void*));
    if (s == NULL || s->burst == NULL) abort();
    lt_init(&s->keep, KEEP_CAP);
    w->user = s;
  }
  collect_state_t* s = w->user;
  long end = w->rops + opt.round_ops;
  long next_collect = opt.collect_rate;
  long since = 0;
  while (w->rops < end) {
    unsigned r = (unsigned)rng_below(&w->rng, 1000);
    if (r < 4) {
      burst(w, s);
      continue;
    }
    lblock_t* b = &s->keep.b[rng_below(&w->rng, KEEP_CAP)];
    if (r < 600) {
      blk_free(w, b->p);
      b->p = blk_alloc(w, rng_logsize(&w->rng, 8, rng_chance(&w->rng, 5) ? 256 << 10 : 4096));
    } else if (r < 900) {
      blk_free(w, b->p);
      b->p = NULL;
    } else {
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      b->p = NULL;
      blk_free(w, q);
    }
    op_done(w);
    if (++since >= next_collect) {
      since = 0;
      bool force = (double)rng_below(&w->rng, 1000000) < opt.force_ratio * 1e6;
      collect_and_check(w, force, 0, 0);
    }
  }
  /* The round's end: an idle spell of collects (R1, white box). */
  const void* kept = NULL;
  size_t stayed = opt.bench ? 0 : target_idle_collects_keep(&kept);
  if (stayed > 0)
    oracle_fail("R1", kept, "%zu empty pages still in the thread's heaps after five non-forced collects and no allocation",
                stayed);
}

static void collect_leave(worker_t* w, bool final) {
  collect_state_t* s = w->user;
  if (s == NULL) return;
  lt_release(w, &s->keep, !final);
  lt_destroy(&s->keep);
  free(s->burst);
  free(s);
  w->user = NULL;
}

const workload_t wl_collect = {.round = collect_round, .leave = collect_leave, .default_max = 256 << 10,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
