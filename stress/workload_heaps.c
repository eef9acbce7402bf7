/* heaps: heap_new / heap_delete / heap_destroy.  Blocks of deleted heaps
 * outlive them (and may travel to other threads); blocks of heaps that will
 * be destroyed never leave their thread.  Blocks of dead threads arrive
 * through the transfer slots while this thread's heaps allocate (and reclaim
 * abandoned segments): a destroy must never free a block another heap owns,
 * which the patterns of those blocks show.  Without real heaps (libc) the
 * heaps are emulated: destroy frees the heap's blocks one by one. */
#include "stress.h"

#include <stdlib.h>

enum { HEAPS_CAP = 384, NHEAPS = 5, FILL_MAX = 160 };
enum { MODE_NONE, MODE_DELETE, MODE_DESTROY };

typedef struct {
  ltable_t t;
  void* heap[NHEAPS]; /* [0] is the default heap */
  int mode[NHEAPS];
  /* blocks that fill whole pages of a heap, so the heap owns full pages
   * when it is deleted or destroyed */
  void* fill[NHEAPS][FILL_MAX];
  int nfill[NHEAPS];
} heaps_state_t;

static void end_heap(worker_t* w, heaps_state_t* s, int h) {
  if (s->mode[h] == MODE_DELETE) {
    T->heap_delete(s->heap[h]);
    /* the full pages moved to the default heap too: the blocks stay valid,
     * and freeing them must go through a live heap */
    for (int i = 0; i < s->nfill[h]; i++) blk_free(w, s->fill[h][i]);
    if (s->nfill[h]) oracle_check_thread(w, "after deleting a heap with full pages and freeing their blocks");
    for (size_t i = 0; i < s->t.cap; i++)
      if (s->t.b[i].p && s->t.b[i].heap == h) {
        s->t.b[i].heap = 0; /* lives on in the default heap */
        blk_verify(w, s->t.b[i].p, "after its heap was deleted");
      }
  } else {
    for (size_t i = 0; i < s->t.cap; i++) {
      lblock_t* b = &s->t.b[i];
      if (b->p == NULL || b->heap != h) continue;
      if (T->real_heaps) {
        blk_verify(w, b->p, "before its heap is destroyed");
        if (!opt.bench) w->local_live -= (long)T->usable(b->p);
      } else {
        blk_free(w, b->p);
      }
      b->p = NULL;
    }
    for (int i = 0; i < s->nfill[h]; i++) {
      if (T->real_heaps) {
        blk_verify(w, s->fill[h][i], "before its heap is destroyed");
        if (!opt.bench) w->local_live -= (long)T->usable(s->fill[h][i]);
      } else {
        blk_free(w, s->fill[h][i]);
      }
    }
    if (T->real_heaps) T->heap_destroy(s->heap[h]);
    else T->heap_delete(s->heap[h]);
    if (s->nfill[h]) oracle_check_thread(w, "after destroying a heap with full pages");
  }
  s->nfill[h] = 0;
  s->heap[h] = NULL;
  s->mode[h] = MODE_NONE;
}

static void heaps_round(worker_t* w) {
  if (w->user == NULL) {
    heaps_state_t* s = calloc(1, sizeof(*s));
    if (s == NULL) abort();
    lt_init(&s->t, HEAPS_CAP);
    w->user = s;
  }
  heaps_state_t* s = w->user;
  long n = opt.round_ops;
  size_t max = workload_max(W_HEAPS);
  for (long i = 0; i < n; i++) {
    lblock_t* b = &s->t.b[rng_below(&w->rng, HEAPS_CAP)];
    int h = (int)rng_below(&w->rng, NHEAPS);
    unsigned r = (unsigned)rng_below(&w->rng, 1000);
    if (r < 450) {
      /* allocate from heap h (the default when h is not live) */
      if (b->p && b->heap != 0 && s->mode[b->heap] == MODE_DESTROY && rng_chance(&w->rng, 50)) {
        op_done(w); /* leave it to the destroy */
        continue;
      }
      blk_free(w, b->p);
      b->p = NULL;
      if (s->heap[h] == NULL) h = 0;
      size_t size = rng_logsize(&w->rng, 8, rng_chance(&w->rng, 5) ? max : 2048);
      b->p = h ? blk_heap_alloc(w, s->heap[h], size) : blk_alloc(w, size);
      b->heap = h;
      if (h && T->heap_owns && !opt.bench && !T->heap_owns(s->heap[h], b->p))
        oracle_fail("H1", b->p, "block just allocated from heap %d is not owned by it", h);
    } else if (r < 700) {
      blk_free(w, b->p);
      b->p = NULL;
    } else if (r < 850) {
      /* trade blocks that may leave this thread; receive any block */
      if (b->p && b->heap != 0 && s->mode[b->heap] == MODE_DESTROY) {
        op_done(w);
        continue;
      }
      void* q = transfer_swap((size_t)rng_next(&w->rng), b->p);
      b->p = q;
      b->heap = 0;
      if (q && !opt.bench) {
        blk_verify(w, q, "received through a transfer slot");
        for (int k = 1; k < NHEAPS && T->heap_owns; k++)
          if (s->mode[k] == MODE_DESTROY && T->heap_owns(s->heap[k], q))
            oracle_fail("H1", q,
                        "a block from another thread is owned by heap %d of this thread, which will be destroyed", k);
      }
    } else if (r < 900) {
      if (b->p && (b->heap == 0 || s->mode[b->heap] == MODE_DELETE))
        b->p = blk_realloc(w, b->p, rng_logsize(&w->rng, 8, 4096)), b->heap = 0;
    } else if (r < 950) {
      if (h != 0 && s->heap[h] == NULL) {
        s->heap[h] = T->heap_new();
        if (s->heap[h] == NULL) oracle_fail("ALLOC", NULL, "heap_new returned NULL");
        s->mode[h] = rng_chance(&w->rng, 50) ? MODE_DELETE : MODE_DESTROY;
        if (rng_chance(&w->rng, 50)) { /* fill whole pages of one size class */
          static const size_t fill_sizes[] = {512, 1024, 2048};
          size_t size = fill_sizes[rng_below(&w->rng, 3)];
          int count = (int)((64u << 10) / size) + 8;
          for (int k = 0; k < count; k++) s->fill[h][k] = blk_heap_alloc(w, s->heap[h], size);
          s->nfill[h] = count;
        }
      }
    } else {
      if (h != 0 && s->heap[h] != NULL) end_heap(w, s, h);
    }
    op_done(w);
  }
}

static void heaps_leave(worker_t* w, bool final) {
  heaps_state_t* s = w->user;
  if (s == NULL) return;
  for (int h = 1; h < NHEAPS; h++)
    if (s->heap[h]) end_heap(w, s, h);
  lt_release(w, &s->t, !final);
  lt_destroy(&s->t);
  free(s);
  w->user = NULL;
}

const workload_t wl_heaps = {.round = heaps_round, .leave = heaps_leave, .default_max = 64 << 10,
                            .transfer_slots = 4096, .respawn_percent = 30, .bench_rounds = 300};
