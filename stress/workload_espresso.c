/* espresso: single-thread small-object churn, the shape of the logic
 * minimiser that allocator papers time.  Only worker 0 works (the others
 * return at once, so the run is one thread whatever --threads says).  Each
 * step allocates a burst of 1..64 small blocks (8..256 B, mostly under 64 B),
 * keeps them in a table of live objects, and frees a random run of the table,
 * so lifetimes are short and mixed; every block is patterned and checked. */
#include "stress.h"

#include <stdlib.h>

enum { ESPRESSO_CAP = 2048 };

static void espresso_round(worker_t* w) {
  if (w->index != 0) return;
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, ESPRESSO_CAP);
  }
  ltable_t* t = w->user;
  long i = 0;
  while (i < opt.round_ops) {
    int burst = 1 + (int)rng_below(&w->rng, 64);
    for (int k = 0; k < burst && i < opt.round_ops; k++, i++) {
      lblock_t* b = &t->b[rng_below(&w->rng, ESPRESSO_CAP)];
      blk_free(w, b->p);
      size_t size = rng_chance(&w->rng, 80) ? rng_logsize(&w->rng, 8, 64) : rng_logsize(&w->rng, 65, 256);
      b->p = blk_alloc(w, size);
      b->size = size;
      op_done(w);
    }
    size_t start = rng_below(&w->rng, ESPRESSO_CAP);
    size_t run = rng_below(&w->rng, 48);
    for (size_t k = 0; k < run; k++) {
      lblock_t* b = &t->b[(start + k) % ESPRESSO_CAP];
      blk_free(w, b->p);
      b->p = NULL;
    }
  }
}

const workload_t wl_espresso = {.round = espresso_round, .leave = lt_leave, .default_max = 256,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
