/* gthread: glibc's bench-malloc-thread shape.  Every thread loops over a
 * fixed working set of its own (1024 slots), replacing a random slot with a
 * block of a random small size (8 B .. 4 KiB, log scale); no block crosses
 * threads, so the run times each thread's fast path against the others'. */
#include "stress.h"

#include <stdlib.h>

enum { GTHREAD_CAP = 1024 };

static void gthread_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, GTHREAD_CAP);
  }
  ltable_t* t = w->user;
  size_t max = workload_max(W_GTHREAD);
  for (long i = 0; i < opt.round_ops; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, GTHREAD_CAP)];
    blk_free(w, b->p);
    b->size = rng_logsize(&w->rng, 8, max);
    b->p = blk_alloc(w, b->size);
    op_done(w);
  }
}

const workload_t wl_gthread = {.round = gthread_round, .leave = lt_leave, .default_max = 4096,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
