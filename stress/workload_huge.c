/* huge: huge-block replacement, one thread, in malloc-large's shape: a
 * table of 20 slots holds blocks of 5..25 MiB; each step replaces a random
 * slot with a fresh block that is written through (value initialised:
 * checked runs pattern it, --bench runs fill it with memset).  Replacements
 * outnumber the slots 30 to 1 in a --bench run, so it measures reuse, not the
 * first fill (until 2026-12-08 one step per round, a table of 20..100 and
 * threads that exited with it: 60 steps, mostly filling, which timed the
 * kernel's first faults).  Only worker 0 works and never exits; ten steps
 * per 2000 --round-ops. */
#include "stress.h"

#include <stdlib.h>
#include <string.h>

#define HUGE_SLOTS 20

static void huge_round(worker_t* w) {
  if (w->index != 0) return;
  if (w->user == NULL) {
    ltable_t* t = malloc(sizeof(ltable_t));
    lt_init(t, HUGE_SLOTS);
    w->user = t;
  }
  ltable_t* t = w->user;
  size_t lo = (size_t)5 << 20, hi = workload_max(W_HUGE);
  if (hi < lo) lo = hi;
  long steps = opt.round_ops / 200;
  if (steps < 1) steps = 1;
  for (long i = 0; i < steps; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, HUGE_SLOTS)];
    blk_free(w, b->p);
    b->size = lo + (size_t)rng_below(&w->rng, hi - lo + 1);
    b->p = blk_alloc(w, b->size);
    if (opt.bench && b->p != NULL) memset(b->p, 0, b->size);
    op_done(w);
  }
}

static void huge_leave(worker_t* w, bool final) {
  ltable_t* t = w->user;
  if (t == NULL) return;
  lt_release(w, t, !final);
  lt_destroy(t);
  free(t);
  w->user = NULL;
}

const workload_t wl_huge = {.round = huge_round, .leave = huge_leave, .default_max = (size_t)25 << 20,
                            .transfer_slots = 4096, .respawn_percent = 0, .bench_rounds = 60};
