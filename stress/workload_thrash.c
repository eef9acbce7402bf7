/* thrash: cache-thrash / cache-scratch shape (false sharing).  Each thread
 * allocates small blocks (8..64 B) that sit next to other threads' blocks or
 * were allocated by another thread, and writes every byte of them many times
 * (a volatile read and write of the same value, so the pattern survives and
 * checked runs still verify it).  Half the blocks are taken from the transfer
 * slots (allocated elsewhere: the scratch case), half are its own (thrash). */
#include "stress.h"

static void scribble(void* p, size_t n, int times) {
  volatile unsigned char* c = p;
  for (int k = 0; k < times; k++)
    for (size_t i = 0; i < n; i++) c[i] = c[i];
}

static void thrash_round(worker_t* w) {
  size_t max = workload_max(W_THRASH);
  for (long i = 0; i < opt.round_ops; i++) {
    size_t size = rng_logsize(&w->rng, 8, max);
    void* p = blk_alloc(w, size);
    scribble(p, size, 16);
    if (rng_chance(&w->rng, 50)) {
      void* q = transfer_swap((size_t)rng_next(&w->rng), p);
      if (q != NULL) {
        blk_verify(w, q, "received through a transfer slot");
        scribble(q, 8, 16);
        blk_free(w, q);
      }
    } else {
      blk_free(w, p);
    }
    op_done(w);
  }
}

static void thrash_leave(worker_t* w, bool final) {
  (void)w;
  (void)final; /* blocks in the slots are drained by main */
}

const workload_t wl_thrash = {.round = thrash_round, .leave = thrash_leave, .default_max = 64,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
