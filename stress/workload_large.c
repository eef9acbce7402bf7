/* large: large and huge sizes, realloc grow/shrink chains (a shrink must
 * keep the bytes within the new size and leave the whole new usable size
 * writable), aligned allocations from 16 B to 1 MiB alignment. */
#include "stress.h"

#include <stdlib.h>

enum { LARGE_CAP = 12 };

static void large_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, LARGE_CAP);
  }
  ltable_t* t = w->user;
  size_t max = workload_max(W_LARGE);
  size_t lo = max < (64u << 10) ? 16 : 64u << 10;
  long n = opt.round_ops / 32 + 1;
  for (long i = 0; i < n; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, LARGE_CAP)];
    unsigned r = (unsigned)rng_below(&w->rng, 100);
    if (r < 30) {
      blk_free(w, b->p);
      b->p = blk_alloc(w, rng_logsize(&w->rng, lo, max));
    } else if (r < 55) {
      if (b->p == NULL) b->p = blk_alloc(w, rng_logsize(&w->rng, lo, max));
      int chain = 1 + (int)rng_below(&w->rng, 4);
      size_t size = T->usable(b->p);
      for (int k = 0; k < chain; k++) {
        if (rng_chance(&w->rng, 50)) size = size + size / 8 + (size_t)rng_below(&w->rng, 3 * size + 1);
        else size = size / (2 + rng_below(&w->rng, 7)) + (size_t)rng_below(&w->rng, 4096);
        if (size > max) size = max;
        if (size < 16) size = 16;
        b->p = blk_realloc(w, b->p, size);
      }
    } else if (r < 70) {
      blk_free(w, b->p);
      size_t align = (size_t)16 << rng_below(&w->rng, 17); /* 16 B .. 1 MiB */
      b->p = blk_aligned(w, align, rng_logsize(&w->rng, 16, max < (2u << 20) ? max : (2u << 20)));
    } else if (r < 88) {
      blk_free(w, b->p);
      b->p = NULL;
    } else {
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      b->p = q;
      if (q) blk_verify(w, q, "received through a transfer slot");
    }
    if (r == 99) T->collect(rng_chance(&w->rng, 30));
    op_done(w);
  }
}

const workload_t wl_large = {.round = large_round, .leave = lt_leave, .default_max = (size_t)6 << 20,
                            .transfer_slots = 32, .respawn_percent = 30, .bench_rounds = 20};
