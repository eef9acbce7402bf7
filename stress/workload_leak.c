/* leak: the mleak shape.  Each thread allocates small and medium blocks and
 * frees most of them at once, but keeps ("leaks") a fraction that grows with
 * the round (1% in round 0, +1% a round, up to 50%) in a growing table.  The
 * table is bounded (32768 blocks a thread): when full, its older half is
 * freed, so a long run plateaus instead of exhausting memory. */
#include "stress.h"

#include <stdlib.h>

enum { LEAK_CAP = 32768 };

static void leak_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, LEAK_CAP);
  }
  ltable_t* t = w->user;
  size_t max = workload_max(W_LEAK);
  unsigned keep = (unsigned)(1 + (w->round < 49 ? w->round : 49));
  for (long i = 0; i < opt.round_ops; i++) {
    size_t size = rng_logsize(&w->rng, 8, max);
    void* p = blk_alloc(w, size);
    if (!rng_chance(&w->rng, keep)) {
      blk_free(w, p);
    } else {
      if ((size_t)t->live == LEAK_CAP) {
        for (size_t k = 0; k < LEAK_CAP / 2; k++) blk_free(w, t->b[k].p);
        for (size_t k = 0; k < LEAK_CAP / 2; k++) t->b[k] = t->b[k + LEAK_CAP / 2];
        for (size_t k = LEAK_CAP / 2; k < LEAK_CAP; k++) t->b[k].p = NULL;
        t->live = LEAK_CAP / 2;
      }
      t->b[t->live].p = p;
      t->b[t->live].size = size;
      t->live++;
    }
    op_done(w);
  }
}

static void leak_leave(worker_t* w, bool final) {
  ltable_t* t = w->user;
  if (t != NULL) t->live = 0;
  lt_leave(w, final);
}

const workload_t wl_leak = {.round = leak_round, .leave = leak_leave, .default_max = 16 << 10,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
