/* churn: short-lived threads exit holding live blocks (their segments are
 * abandoned); the workers free those blocks later (frees into abandoned
 * segments) and allocate, which reclaims the segments. */
#include "stress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { CHURN_CAP = 256 };

static void* child_main(void* arg) {
  worker_t* c = arg;
  oracle_set_thread(c);
  long n = opt.round_ops / 6 + 1;
  void* mine[64] = {0};
  for (long i = 0; i < n; i++) {
    size_t size = rng_logsize(&c->rng, 8, rng_chance(&c->rng, 3) ? 128 << 10 : 4096);
    void* p = blk_alloc(c, size);
    unsigned r = (unsigned)rng_below(&c->rng, 100);
    if (r < 60) {
      /* hand over; whatever was there (often a dead child's block) is freed here */
      blk_free(c, transfer_swap((size_t)rng_next(&c->rng), p));
    } else {
      size_t k = (size_t)rng_below(&c->rng, 64);
      blk_free(c, mine[k]);
      mine[k] = p;
    }
    op_done(c);
  }
  oracle_check_thread(c, "child before exit");
  /* exit holding blocks: park them all in slots so someone frees them */
  for (size_t k = 0; k < 64; k++)
    if (mine[k]) blk_free(c, transfer_swap((size_t)rng_next(&c->rng), mine[k]));
  return NULL;
}

static void churn_round(worker_t* w) {
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    lt_init(w->user, CHURN_CAP);
  }
  ltable_t* t = w->user;
  int children = 1 + (int)rng_below(&w->rng, 3);
  long per = opt.round_ops / (children + 1) + 1;
  for (int c = 0; c <= children; c++) {
    for (long i = 0; i < per; i++) {
      lblock_t* b = &t->b[rng_below(&w->rng, CHURN_CAP)];
      unsigned r = (unsigned)rng_below(&w->rng, 100);
      if (r < 40) {
        drain_some(w, 1); /* free into a (maybe abandoned) foreign segment */
      } else if (r < 80) {
        blk_free(w, b->p); /* allocation reclaims abandoned segments */
        b->p = blk_alloc(w, rng_logsize(&w->rng, 8, 4096));
      } else {
        blk_free(w, b->p);
        b->p = NULL;
      }
      if (r == 99) T->collect(false);
      op_done(w);
    }
    if (c == children) break;
    worker_t* child = calloc(1, sizeof(*child));
    if (child == NULL) abort();
    child->workload = w->workload;
    child->index = w->index;
    child->child = c;
    child->round = w->round;
    child->pseed = w->pseed;
    child->rng = rng_derive(opt.seed, w->workload, w->round, w->index, c + 1);
    pthread_t th;
    if (pthread_create(&th, NULL, child_main, child) != 0) {
      fprintf(stderr, "lode-stress: pthread_create failed\n");
      exit(1);
    }
    pthread_join(th, NULL);
    atomic_fetch_add_explicit(&w->ops, atomic_load(&child->ops), memory_order_relaxed);
    atomic_fetch_add_explicit(&w->checks, atomic_load(&child->checks), memory_order_relaxed);
    w->local_live += atomic_load(&child->live_bytes);
    free(child);
  }
}

const workload_t wl_churn = {.round = churn_round, .leave = lt_leave, .default_max = 128 << 10,
                            .transfer_slots = 4096, .respawn_percent = 50, .bench_rounds = 300};
