/* rptest: the rpmalloc benchmark shape.  Each thread keeps a working set
 * (512 slots) of blocks of 16 B .. 16 KiB (log scale) and replaces random
 * slots; a quarter of the blocks it retires are published in the transfer
 * slots instead of freed, and the block found there (allocated by another
 * thread) is verified and freed here: a steady stream of cross-thread frees. */
#include "stress.h"

#include <stdlib.h>

enum { RPTEST_CAP = 512 };

static void rptest_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, RPTEST_CAP);
  }
  ltable_t* t = w->user;
  size_t max = workload_max(W_RPTEST);
  for (long i = 0; i < opt.round_ops; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, RPTEST_CAP)];
    if (b->p != NULL && rng_chance(&w->rng, 25)) {
      blk_verify(w, b->p, "before handing over");
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      if (q != NULL) {
        blk_verify(w, q, "received through a transfer slot");
        blk_free(w, q);
      }
    } else {
      blk_free(w, b->p);
    }
    b->size = rng_logsize(&w->rng, 16, max);
    b->p = blk_alloc(w, b->size);
    op_done(w);
  }
}

const workload_t wl_rptest = {.round = rptest_round, .leave = lt_leave, .default_max = 16 << 10,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
