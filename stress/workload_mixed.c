/* mixed: sizes from 8 B up (power law: mostly small, some large and a few
 * huge), each block patterned and verified before free or realloc; blocks
 * handed between threads through the transfer slots; occasional collects. */
#include "stress.h"

#include <stdlib.h>

enum { MIXED_CAP = 512 };

static size_t mixed_size(rng_t* r) {
  size_t max = workload_max(W_MIXED);
  unsigned c = (unsigned)rng_below(r, 1000);
  size_t lo = 8, hi = 1024;
  if (c >= 850 && c < 980) lo = 1025, hi = 64 << 10;
  else if (c >= 980 && c < 999) lo = (64 << 10) + 1, hi = 1 << 20;
  else if (c >= 999) lo = (1 << 20) + 1, hi = max;
  if (hi > max) hi = max;
  if (lo > hi) lo = hi;
  return rng_logsize(r, lo, hi);
}

static void mixed_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, MIXED_CAP);
  }
  ltable_t* t = w->user;
  long n = opt.round_ops;
  long collect_every = opt.collect_rate * 8;
  for (long i = 0; i < n; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, MIXED_CAP)];
    unsigned r = (unsigned)rng_below(&w->rng, 100);
    if (r < 50) {
      blk_free(w, b->p);
      b->p = blk_alloc(w, mixed_size(&w->rng));
    } else if (r < 68) {
      blk_free(w, b->p);
      b->p = NULL;
    } else if (r < 78) {
      b->p = b->p ? blk_realloc(w, b->p, mixed_size(&w->rng)) : blk_alloc(w, mixed_size(&w->rng));
    } else if (r < 92) {
      if (b->p) blk_verify(w, b->p, "before handing over");
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      b->p = NULL;
      if (q != NULL) {
        blk_verify(w, q, "received through a transfer slot");
        if (rng_chance(&w->rng, 50)) blk_free(w, q);
        else b->p = q;
      }
    } else {
      blk_free(w, b->p);
      size_t align = (size_t)16 << rng_below(&w->rng, 8);
      b->p = blk_aligned(w, align, mixed_size(&w->rng));
    }
    if (collect_every > 0 && (i + 1) % collect_every == 0) T->collect(rng_chance(&w->rng, 10));
    op_done(w);
  }
}

const workload_t wl_mixed = {.round = mixed_round, .leave = lt_leave, .default_max = (size_t)3 << 20,
                            .transfer_slots = 1024, .respawn_percent = 30, .bench_rounds = 300};
