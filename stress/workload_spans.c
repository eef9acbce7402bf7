/* spans: a constant live set of large blocks, replaced a bank at a time.
 * Each worker (the first MAX_WORKING) keeps two banks of BANK blocks, nine
 * in ten of 64 KiB .. 2 MiB (lode's large blocks: spans of 64 KiB slices in
 * 4 MiB segments), the rest smaller.  Each round it fills the empty bank,
 * works on it (realloc, aligned replacements, swaps through the transfer
 * slots, so some of its frees next round are remote), then frees the other
 * bank: the live bytes swing between one bank and two, the same each round.
 *
 * A search for room for a large block that gave up after the first 16
 * segments with any free slice (the recently touched, nearly full ones)
 * mapped new segments while older ones had room (review, 2026-12-06: 1,104
 * segments for 229 MiB live); only a unit test saw it (mutant 90).  Check
 * M2, at each round barrier with every worker parked: what the process
 * holds beyond the workload's start must stay, for lode, under a bound on
 * its segments (see bound()), and for any allocator must not keep growing
 * (see spans_barrier()). */
#include "stress.h"

#include <stdio.h>
#include <stdlib.h>

enum { BANK = 64, MAX_WORKING = 8, XFER_SLOTS = 16 };
#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define LARGE_MIN (64 * KIB + 1) /* lode: up to 64 KiB is a medium block */
#define LARGE_MAX (2 * MIB)      /* lode: above 2 MiB is huge (a segment of its own) */

/* Uniform, not log-scaled: blocks of 1-2 MiB are what a nearly full
 * segment cannot hold. */
static size_t draw_size(worker_t* w) {
  size_t max = workload_max(W_SPANS);
  if (max <= LARGE_MIN || rng_chance(&w->rng, 10)) return rng_logsize(&w->rng, 16, max < 64 * KIB ? max : 64 * KIB);
  return LARGE_MIN + (size_t)rng_below(&w->rng, max - LARGE_MIN + 1);
}

static size_t* peak; /* per worker: the most its two banks held, usable bytes */

static void spans_round(worker_t* w) {
  if (w->index >= MAX_WORKING) return; /* a machine with many cores holds no more */
  if (w->user == NULL) {
    w->user = malloc(sizeof(ltable_t));
    if (w->user == NULL) abort();
    lt_init(w->user, 2 * BANK);
  }
  ltable_t* t = w->user;
  lblock_t* fresh = &t->b[(size_t)(w->round & 1) * BANK];
  lblock_t* old = &t->b[(size_t)(~w->round & 1) * BANK];
  for (int i = 0; i < BANK; i++) {
    fresh[i].p = blk_alloc(w, draw_size(w));
    op_done(w);
  }
  for (int i = 0; i < BANK / 4; i++) {
    lblock_t* b = &fresh[rng_below(&w->rng, BANK)];
    unsigned r = (unsigned)rng_below(&w->rng, 100);
    if (r < 40) {
      b->p = blk_realloc(w, b->p, draw_size(w));
    } else if (r < 80) {
      /* another worker frees ours; ours frees what it left (remote frees) */
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      if (q != NULL) blk_verify(w, q, "received through a transfer slot");
      b->p = q != NULL ? q : blk_alloc(w, draw_size(w));
    } else {
      blk_free(w, b->p);
      b->p = blk_aligned(w, (size_t)4096 << rng_below(&w->rng, 9), draw_size(w)); /* 4 KiB .. 1 MiB */
    }
    op_done(w);
  }
  size_t held = 0;
  for (int i = 0; i < 2 * BANK; i++)
    if (t->b[i].p != NULL) held += T->usable(t->b[i].p);
  if (held > peak[w->index]) peak[w->index] = held;
  for (int i = 0; i < BANK; i++) {
    blk_free(w, old[i].p);
    old[i].p = NULL;
    op_done(w);
  }
}

/* M2's bound for lode on what the process holds beyond its start.  The
 * workload runs with purging off (delay -1 unless --purge-delay): a freed
 * slice stays committed until a block reuses it, so resident memory is the
 * high-water mark of the threads' segments and the check measures the
 * search for room, not timing.  Segments are per thread: for each working
 * thread, the segments its peak (two banks) fills, twice over for the room
 * spans leave unused, plus four (unit.large_spans's bound); 16 MiB for the
 * driver and the checker.  Measured: lode holds 1.2-1.3 x the peak. */
static size_t bound(void) {
  size_t b = 16 * MIB;
  for (int i = 0; i < opt.threads && i < MAX_WORKING; i++) b += (2 * (peak[i] / (4 * MIB) + 1) + 4) * 4 * MIB;
  return b;
}

static size_t base_rss, warm_max;

static void spans_begin(void) {
  peak = calloc((size_t)opt.threads, sizeof(*peak));
  if (peak == NULL) abort();
  base_rss = stress_rss_bytes();
  warm_max = 0;
}

static void spans_end(void) {
  free(peak);
  peak = NULL;
}

static void spans_barrier(long round, long live) {
  size_t rss, held, ex, pk = 0;
  if (!stress_held_memory(base_rss, live, &rss, &held, &ex)) return;
  for (int i = 0; i < opt.threads; i++) pk += peak[i];
  if (getenv("LODE_STRESS_SPANS_TRACE")) {
    stress_stats_t st;
    target_stats(&st);
    fprintf(stderr,
            "spans r%ld held %.1f MiB live %.1f MiB peak %.1f MiB excess %.1f MiB committed %.1f MiB segments %zu "
            "bound %.1f MiB\n",
            round, (double)held / MIB, (double)live / MIB, (double)pk / MIB, (double)ex / MIB,
            (double)st.committed / MIB, st.segments, (double)bound() / MIB);
  }
  if (T->white_box && held > bound())
    oracle_fail("M2", NULL,
                "after round %ld the process holds %.1f MiB beyond its start, %.1f MiB live (%.1f MiB at its "
                "peak); the bound on its segments is %.1f MiB",
                round, (double)held / MIB, (double)live / MIB, (double)pk / MIB, (double)bound() / MIB);
  oracle_excess_growth("M2", round, ex, &warm_max); /* any allocator */
}

const workload_t wl_spans = {.round = spans_round, .leave = lt_leave, .begin = spans_begin,
                             .barrier = spans_barrier, .end = spans_end, .default_max = LARGE_MAX,
                             .transfer_slots = XFER_SLOTS, .respawn_percent = 0, .bench_rounds = 100,
                             .purge_delay = -1};
