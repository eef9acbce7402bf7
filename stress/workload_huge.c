/* huge: huge-block replacement, one thread.  A table of 20..100 slots (the
 * count drawn once from the seed) holds blocks of 5..25 MiB; each step
 * replaces a random slot with a fresh block that is written through (value
 * initialised: checked runs pattern it, --bench runs fill it with memset).
 * Only worker 0 works; one step per 2000 --round-ops so a round stays short. */
#include "stress.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  ltable_t t;
  size_t slots;
} huge_t;

static void huge_round(worker_t* w) {
  if (w->index != 0) return;
  if (w->user == NULL) {
    huge_t* h = malloc(sizeof(huge_t));
    rng_t r = rng_derive(opt.seed, W_HUGE, -1, 0, 0);
    h->slots = 20 + (size_t)rng_below(&r, 81);
    lt_init(&h->t, h->slots);
    w->user = h;
  }
  huge_t* h = w->user;
  size_t lo = (size_t)5 << 20, hi = workload_max(W_HUGE);
  if (hi < lo) lo = hi;
  long steps = opt.round_ops / 2000;
  if (steps < 1) steps = 1;
  for (long i = 0; i < steps; i++) {
    lblock_t* b = &h->t.b[rng_below(&w->rng, h->slots)];
    blk_free(w, b->p);
    b->size = lo + (size_t)rng_below(&w->rng, hi - lo + 1);
    b->p = blk_alloc(w, b->size);
    if (opt.bench && b->p != NULL) memset(b->p, 0x5a, b->size);
    op_done(w);
  }
}

static void huge_leave(worker_t* w, bool final) {
  huge_t* h = w->user;
  if (h == NULL) return;
  lt_release(w, &h->t, !final);
  lt_destroy(&h->t);
  free(h);
  w->user = NULL;
}

const workload_t wl_huge = {.round = huge_round, .leave = huge_leave, .default_max = (size_t)25 << 20,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 60};
