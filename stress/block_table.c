/* Local block tables of the workloads (ltable_t) and the helpers that move
 * their blocks through the transfer slots; every block goes through the
 * oracle's checked blk_* calls. */
#include "stress.h"

#include <stdlib.h>

void lt_init(ltable_t* t, size_t cap) {
  t->b = calloc(cap, sizeof(*t->b));
  if (t->b == NULL) abort();
  t->cap = cap;
  t->live = 0;
}

void lt_destroy(ltable_t* t) {
  free(t->b);
  t->b = NULL;
  t->cap = 0;
}

void lt_leave(worker_t* w, bool final) {
  ltable_t* t = w->user;
  if (t == NULL) return;
  lt_release(w, t, !final);
  lt_destroy(t);
  free(t);
  w->user = NULL;
}

void lt_release(worker_t* w, ltable_t* t, bool keep_some) {
  for (size_t i = 0; i < t->cap; i++) {
    void* p = t->b[i].p;
    if (p == NULL) continue;
    t->b[i].p = NULL;
    if (keep_some && rng_chance(&w->rng, 50)) {
      blk_verify(w, p, "before handing over at thread exit");
      blk_free(w, transfer_swap((size_t)rng_next(&w->rng), p));
    } else {
      blk_free(w, p);
    }
  }
  t->live = 0;
}

void drain_some(worker_t* w, int n) {
  for (int i = 0; i < n; i++) blk_free(w, transfer_take((size_t)rng_next(&w->rng)));
}

void drain_share(worker_t* w) {
  size_t n = transfer_count();
  for (size_t i = (size_t)w->index; i < n; i += (size_t)opt.threads) blk_free(w, transfer_take(i));
}
