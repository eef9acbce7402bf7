/* realloc: blocks grown and shrunk by realloc (the shape of programs that
 * build strings and vectors): each slot of a table holds a block that is
 * resized to a size a random factor (1/4 .. 4x) away from its current one,
 * within 8 B .. the workload's maximum; patterns are checked across every
 * move by blk_realloc.  Occasionally a block is freed and restarted small. */
#include "stress.h"

#include <stdlib.h>

enum { REALLOC_CAP = 256 };

static size_t realloc_next(rng_t* r, size_t cur) {
  size_t max = workload_max(W_REALLOC);
  size_t n = cur;
  unsigned c = (unsigned)rng_below(r, 100);
  if (c < 55) n = cur + cur / 2 + rng_below(r, 64) + 1;        /* grow */
  else if (c < 85) n = cur / 2 + rng_below(r, cur / 4 + 1);    /* shrink */
  else n = cur + rng_below(r, 16);                              /* small step */
  if (n < 8) n = 8;
  if (n > max) n = 8 + rng_below(r, 256);
  return n;
}

static void realloc_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, REALLOC_CAP);
  }
  ltable_t* t = w->user;
  for (long i = 0; i < opt.round_ops; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, REALLOC_CAP)];
    if (b->p == NULL) {
      b->size = 8 + rng_below(&w->rng, 120);
      b->p = blk_alloc(w, b->size);
    } else if (rng_chance(&w->rng, 3)) {
      blk_free(w, b->p);
      b->p = NULL;
    } else {
      b->size = realloc_next(&w->rng, b->size);
      b->p = blk_realloc(w, b->p, b->size);
    }
    op_done(w);
  }
}

const workload_t wl_realloc = {.round = realloc_round, .leave = lt_leave, .default_max = (size_t)1 << 20,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
