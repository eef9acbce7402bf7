/* huge: huge-block replacement, one thread, in malloc-large's shape: a
 * table of 20 slots holds blocks of 5..25 MiB; each step replaces a random
 * slot with a fresh block that is written through (value initialised:
 * checked runs pattern it, --bench runs fill it with memset).  Replacements
 * outnumber the slots 30 to 1 in a --bench run, so it measures reuse, not the
 * first fill (until 2026-12-08 one step per round, a table of 20..100 and
 * threads that exited with it: 60 steps, mostly filling, which timed the
 * kernel's first faults).  Only worker 0 works and never exits; ten steps
 * per 2000 --round-ops.
 *
 * --floor runs the same steps with no allocator, to tell what this machine
 * allows (page faults cost 2-8x more on one host than another): each slot
 * writes into a region of its own, mapped untouched at the start -- perfect
 * reuse, nothing moved or given back, so its faults are each slot's largest
 * block once.  After the timed run the report times the same steps again on
 * regions already in memory (the writes alone) and the first touch of the
 * largest total the table held (what any allocator faults in at least,
 * unless it moves blocks): their sum bounds every allocator with 4 KiB
 * pages from below. */
#include "stress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_SLOTS 20

typedef struct {
  uint32_t slot;
  size_t size;
} floor_step_t;

/* Worker 0's alone; the report reads it after the workers were joined. */
static struct {
  uint8_t* base;
  size_t region;
  size_t cur[HUGE_SLOTS], live, peak;
  floor_step_t* steps;
  size_t n, cap;
} fl;

static void floor_die(const char* what) {
  fprintf(stderr, "lode-stress: --floor: %s failed\n", what);
  exit(1);
}

static void floor_write(uint32_t slot, size_t size) {
  if (fl.base == NULL) {
    fl.base = mmap(NULL, fl.region * HUGE_SLOTS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fl.base == MAP_FAILED) floor_die("mmap of the slots' regions");
  }
  if (fl.n == fl.cap) {
    fl.cap = fl.cap ? 2 * fl.cap : 1024;
    fl.steps = realloc(fl.steps, fl.cap * sizeof(floor_step_t));
    if (fl.steps == NULL) floor_die("realloc of the step record");
  }
  fl.steps[fl.n++] = (floor_step_t){slot, size};
  fl.live = fl.live - fl.cur[slot] + size;
  fl.cur[slot] = size;
  if (fl.live > fl.peak) fl.peak = fl.live;
  memset(fl.base + slot * fl.region, 0, size);
}

static void huge_report(void) {
  if (!opt.floor || fl.base == NULL) return;
  memset(fl.base, 1, fl.region * HUGE_SLOTS); /* all in memory: no fault below */
  double t0 = stress_now_s();
  for (size_t i = 0; i < fl.n; i++) memset(fl.base + fl.steps[i].slot * fl.region, 0, fl.steps[i].size);
  double work = stress_now_s() - t0;
  /* The regions go first: the touch then takes memory this process just
   * gave back, as an allocator's reuse would (memory new to a VM can cost a
   * host fault besides: 0.14 s against 1.0 s for the same touch here). */
  munmap(fl.base, fl.region * HUGE_SLOTS);
  volatile uint8_t* p = mmap(NULL, fl.peak, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) floor_die("mmap of the largest live total");
  t0 = stress_now_s();
  for (size_t o = 0; o < fl.peak; o += 4096) p[o] = 1;
  double touch = stress_now_s() - t0;
  munmap((void*)p, fl.peak);
  free(fl.steps);
  printf("floor workload=huge steps=%zu work_seconds=%.4f first_touch_seconds=%.4f peak_live_kib=%zu "
         "bound_seconds=%.4f\n",
         fl.n, work, touch, fl.peak >> 10, work + touch);
  memset(&fl, 0, sizeof(fl));
}

static void huge_round(worker_t* w) {
  if (w->index != 0) return;
  if (w->user == NULL && !opt.floor) {
    ltable_t* t = malloc(sizeof(ltable_t));
    lt_init(t, HUGE_SLOTS);
    w->user = t;
  }
  ltable_t* t = w->user;
  size_t lo = (size_t)5 << 20, hi = workload_max(W_HUGE);
  if (hi < lo) lo = hi;
  fl.region = hi;
  long steps = opt.round_ops / 200;
  if (steps < 1) steps = 1;
  for (long i = 0; i < steps; i++) {
    uint32_t slot = (uint32_t)rng_below(&w->rng, HUGE_SLOTS);
    size_t size = lo + (size_t)rng_below(&w->rng, hi - lo + 1);
    if (opt.floor) {
      floor_write(slot, size);
    } else {
      lblock_t* b = &t->b[slot];
      blk_free(w, b->p);
      b->size = size;
      b->p = blk_alloc(w, b->size);
      if (opt.bench && b->p != NULL) memset(b->p, 0, b->size);
    }
    op_done(w);
  }
}

static void huge_leave(worker_t* w, bool final) {
  ltable_t* t = w->user;
  if (t == NULL) return;
  lt_release(w, t, !final);
  lt_destroy(t);
  free(t);
  w->user = NULL;
}

const workload_t wl_huge = {.round = huge_round, .leave = huge_leave, .report = huge_report,
                            .default_max = (size_t)25 << 20, .transfer_slots = 4096, .respawn_percent = 0,
                            .bench_rounds = 60};
