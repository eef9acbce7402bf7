/* xthread: producer/consumer.  Producers allocate and publish blocks in the
 * transfer slots, consumers take and free them, so nearly every free is a
 * cross-thread free racing with the owner's merges.  Roles swap each round. */
#include "stress.h"

static void xthread_round(worker_t* w) {
  bool producer = opt.threads == 1 ? true : ((w->index + w->round) % 2 == 0);
  bool consumer = opt.threads == 1 || !producer;
  long n = opt.round_ops;
  for (long i = 0; i < n; i++) {
    if (producer && (!consumer || (i & 1))) {
      size_t size = rng_logsize(&w->rng, 8, rng_chance(&w->rng, 5) ? 64 << 10 : 2048);
      void* p = blk_alloc(w, size);
      bool placed = false;
      for (int k = 0; k < 4 && !placed; k++) placed = transfer_put_if_empty((size_t)rng_next(&w->rng), p);
      if (!placed) blk_free(w, p);
      if ((i & 255) == 255) T->collect(false); /* merges the remote frees */
    } else {
      void* p = transfer_take((size_t)rng_next(&w->rng));
      if (p != NULL) blk_free(w, p);
      else blk_free(w, blk_alloc(w, 8 + (size_t)rng_below(&w->rng, 256)));
    }
    op_done(w);
  }
}

static void xthread_leave(worker_t* w, bool final) {
  (void)w;
  (void)final; /* blocks in the slots outlive the producer */
}

const workload_t wl_xthread = {.round = xthread_round, .leave = xthread_leave, .default_max = 64 << 10,
                            .transfer_slots = 256, .respawn_percent = 25, .bench_rounds = 300};
