/* larson: the Larson server shape.  Each thread frees and allocates at
 * random in a table of 1024 blocks (8..1024 B); when a worker exits at an
 * abandon round it hands its whole table on through the transfer slots, and
 * a new thread starts by taking blocks from the slots into its table, so the
 * blocks it frees were allocated by threads that have since exited. */
#include "stress.h"

#include <stdlib.h>

enum { LARSON_CAP = 1024 };

static void larson_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    ltable_t* t = w->user;
    lt_init(t, LARSON_CAP);
    size_t n = transfer_count();
    size_t first = (size_t)rng_below(&w->rng, n);
    for (size_t k = 0, got = 0; k < n && got < LARSON_CAP; k++) {
      void* q = transfer_take((first + k) % n);
      if (q == NULL) continue;
      blk_verify(w, q, "inherited from an exited thread");
      t->b[got++].p = q;
    }
  }
  ltable_t* t = w->user;
  size_t max = workload_max(W_LARSON);
  for (long i = 0; i < opt.round_ops; i++) {
    lblock_t* b = &t->b[rng_below(&w->rng, LARSON_CAP)];
    blk_free(w, b->p);
    b->size = rng_logsize(&w->rng, 8, max);
    b->p = blk_alloc(w, b->size);
    op_done(w);
  }
}

static void larson_leave(worker_t* w, bool final) {
  ltable_t* t = w->user;
  if (t == NULL) return;
  if (!final) {
    size_t n = transfer_count();
    for (size_t i = 0; i < LARSON_CAP; i++) {
      void* p = t->b[i].p;
      if (p == NULL) continue;
      t->b[i].p = NULL;
      bool placed = false;
      for (int k = 0; k < 8 && !placed; k++) placed = transfer_put_if_empty((size_t)rng_below(&w->rng, n), p);
      if (!placed) blk_free(w, p);
    }
  }
  lt_leave(w, final);
}

const workload_t wl_larson = {.round = larson_round, .leave = larson_leave, .default_max = 1024,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
