/* lode-stress: shared declarations of the stress drivers.
 *
 * One binary runs the torture workloads (mixed, collect, churn, heaps,
 * xthread, large, fork, held, spans, orphans) and the classic benchmark shapes against an
 * allocator backend (target.c).  Every random choice comes
 * from a PRNG derived from (seed, workload, round, thread[, child]); the
 * oracle (oracle.c) turns any broken invariant, pattern mismatch or fatal
 * signal into a report with one command line that replays the case. */
#ifndef LODE_STRESS_H
#define LODE_STRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- PRNG: splitmix64 ------------------------------------------------------ */
typedef struct {
  uint64_t s;
} rng_t;

static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline uint64_t rng_next(rng_t* r) {
  r->s += 0x9e3779b97f4a7c15ull;
  return mix64(r->s);
}
static inline uint64_t rng_below(rng_t* r, uint64_t n) { return n ? rng_next(r) % n : 0; }
static inline bool rng_chance(rng_t* r, unsigned percent) { return rng_below(r, 100) < percent; }
/* Uniform in [lo, hi] on a log scale: most values small (a power law). */
size_t rng_logsize(rng_t* r, size_t lo, size_t hi);
/* The stream for (seed, workload, round, thread, sub). */
rng_t rng_derive(uint64_t seed, int workload, long round, int thread, long sub);

/* --- allocator targets ----------------------------------------------------- */
typedef struct target_s {
  const char* name;
  bool white_box;  /* lode's checker and statistics are available */
  bool real_heaps; /* heap_* are real allocator heaps (else emulated) */
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*realloc)(void*, size_t);
  void* (*aligned)(size_t alignment, size_t size);
  size_t (*usable)(const void*);
  void (*collect)(bool force);
  void* (*heap_new)(void);
  void (*heap_delete)(void*);
  void (*heap_destroy)(void*);
  void* (*heap_malloc)(void*, size_t);
  bool (*heap_owns)(const void* heap, const void* p); /* NULL: unknown */
} target_t;

extern const target_t* T;
const target_t* target_find(const char* name);
const char* target_names(void); /* for the usage text */
const char* target_forced_collect(void); /* what a forced collect calls */

/* White-box hooks; no-ops (return 0) unless the target is lode. */
typedef struct {
  size_t purges, abandoned_total, abandoned, reclaimed, queued, committed, pages, segments;
  bool valid;
} stress_stats_t;
void target_stats(stress_stats_t* out);
size_t target_check_thread(void);
size_t target_check_process(void);
size_t target_check_clean(size_t baseline);
size_t target_thread_queued(void); /* pages on the calling thread's purge queue */
size_t target_idle_collects_keep(const void** kept); /* check R1: empty pages five collects keep */
int64_t target_now_ms(void);
void target_set_purge_delay(long ms);
long target_get_purge_delay(void);
long target_set_purge_backoff(long doublings); /* returns the old value */
int target_corrupt(const char* inv); /* -1 when unsupported */
bool target_can_corrupt(void);
void target_install_reporter(void);

/* --- patterns -------------------------------------------------------------- */
/* Fills n bytes at p with the pattern of block (key, size, seed). */
void pattern_fill(void* p, size_t n, uintptr_t key, size_t size, uint64_t seed);
/* Offset of the first byte that differs from the pattern, or SIZE_MAX. */
size_t pattern_verify(const void* p, size_t n, uintptr_t key, size_t size, uint64_t seed,
                      uint64_t* want, uint64_t* got);

/* --- transfer slots ---------------------------------------------------------- */
void transfer_init(size_t count);
size_t transfer_count(void);
void* transfer_swap(size_t slot, void* p);          /* atomic exchange */
bool transfer_put_if_empty(size_t slot, void* p);   /* CAS NULL -> p */
void* transfer_take(size_t slot);                   /* exchange with NULL */

/* --- options and run state --------------------------------------------------- */
/* The torture workloads (the default set) are the first W_CLASSIC and those
 * added after the classic ones (an index is part of each workload's seeds:
 * a new one goes last, so the others replay as before); the rest have the
 * shapes of the classic allocator benchmarks (--workload classic). */
enum { W_MIXED, W_COLLECT, W_CHURN, W_HEAPS, W_XTHREAD, W_LARGE, W_FORK, W_HELD, W_SPANS,
       W_REALLOC, W_ESPRESSO, W_HUGE, W_GTHREAD, W_LEAK, W_RPTEST, W_THRASH, W_LARSON, W_ORPHANS, W_COUNT };
#define W_CLASSIC W_REALLOC
#define W_TORTURE_SET (((1u << W_CLASSIC) - 1) | (1u << W_ORPHANS))
extern const char* const workload_names[W_COUNT];

enum { TOUCH_FIRST, TOUCH_PAGES, TOUCH_ALL }; /* what --bench writes of each block */

typedef struct {
  uint64_t seed;
  int threads;
  double seconds;      /* 0: use rounds */
  long rounds;         /* per workload; 0: use seconds */
  long purge_delay;    /* fixed delay when purge_delay_set */
  bool purge_delay_set;
  long collect_rate;   /* ops between collects in the collect workload */
  double force_ratio;  /* share of forced collects */
  long check_every;    /* ops between lode_check_thread calls */
  size_t max_size;     /* 0: per-workload default */
  long round_ops;      /* operations per thread per round */
  bool json, bench, quiet;
  bool wipe_floor;     /* --bench --wipe-floor: the driver wipes each freed block and reads it back */
  bool floor;          /* --bench --floor (huge only): no allocator, the machine's floor for the steps */
  int touch;           /* --bench --touch: TOUCH_FIRST, TOUCH_PAGES (every 4 KiB), TOUCH_ALL (every byte) */
  bool collect_own;    /* --collect-via own: libc target's forced collect asks the
                          preloaded allocator through its own call */
  const char* inject;  /* --inject-corruption INV[@ROUND] */
  long inject_round;   /* the round it happens in (default 0) */
  bool inject_at_exit; /* INV@ROUND:exit: as worker 0 exits at the end of that round */
  const char* target;
  const char* argv0;
  unsigned workloads;  /* bit mask */
} options_t;
extern options_t opt;

/* Per-thread context: everything a report needs. */
typedef struct worker_s {
  int workload;
  int index;        /* thread index; children: parent index */
  int child;        /* -1 for a worker, else the child number */
  long round;
  rng_t rng;
  uint64_t pseed;   /* pattern seed of this workload */
  /* counters, read by the main thread for the status line */
  _Atomic long ops, checks, collects, qcollects, live_bytes;
  long local_live;
  long rops;        /* operations in the current round */
  void* user;       /* workload state */
} worker_t;

/* Shared per-workload control (set by main while workers are parked). */
typedef struct {
  int workload;
  long round;        /* round being run */
  bool exit_after;   /* workers exit at the end of this round (abandon) */
  bool exit_now;     /* set at the barrier: released workers exit */
  bool final;        /* last round: drain and exit */
  uint64_t wseed;    /* seed of this workload */
  long purge_delay;  /* delay in force this round */
} round_ctl_t;
extern round_ctl_t ctl;

/* --- oracle ----------------------------------------------------------------- */
void oracle_init(void);
void oracle_set_thread(worker_t* w);   /* context for reports from this thread */
worker_t* oracle_thread(void);
/* Replay line for the current round (main keeps it up to date). */
void oracle_update_replay(int workload, long round);
void oracle_inject(void); /* --inject-corruption: corrupts lode now */
/* A failure: prints the report and the replay line, exits 1. */
_Noreturn void oracle_fail(const char* invariant, const void* object, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs lode_check_thread, fails on any violation. */
void oracle_check_thread(worker_t* w, const char* when);
void oracle_check_process(const char* when);
void oracle_check_clean(size_t baseline);
/* The memory-held workloads' check for any allocator (held's M1, spans'
 * M2): with the same live set each round, the excess (resident beyond the
 * start and the live bytes) may not, from round 64 on, pass twice the most
 * it reached in rounds 8-31 plus 32 MiB.  Call at every round barrier;
 * *warm_max starts at 0. */
void oracle_excess_growth(const char* check, long round, size_t excess, size_t* warm_max);
/* The memory-held workloads' numbers at a barrier: resident bytes beyond
 * `base` (*held) and beyond the live bytes too (*excess, 0 when negative).
 * False when the resident size does not measure the allocator: no /proc,
 * or a sanitizer's shadow memory in it (its purges do not give that back). */
bool stress_held_memory(size_t base, long live, size_t* rss, size_t* held, size_t* excess);
/* Called by lode's checker (installed by target.c) in the checking thread. */
void oracle_report_cb(const char* inv, const void* obj, const char* msg);
extern atomic_long oracle_violations;

/* Block helpers with pattern and size checks (no checks in bench mode). */
void* blk_alloc(worker_t* w, size_t size);
void* blk_aligned(worker_t* w, size_t alignment, size_t size);
void* blk_heap_alloc(worker_t* w, void* heap, size_t size);
void* blk_realloc(worker_t* w, void* p, size_t size);
void blk_verify(worker_t* w, const void* p, const char* when);
void blk_free(worker_t* w, void* p);
/* Counts one operation; runs the periodic thread check. */
void op_done(worker_t* w);

/* --- workloads ---------------------------------------------------------------- */
typedef struct {
  /* called in the worker thread at the start of each round it runs */
  void (*round)(worker_t* w);
  /* called when the worker exits: at an abandon round (final=false) it keeps
   * some blocks alive in transfer slots; at the end (final=true) it frees all */
  void (*leave)(worker_t* w, bool final);
  size_t default_max;
  size_t transfer_slots;    /* slots blocks travel through between threads */
  unsigned respawn_percent; /* rounds that end with every worker exiting */
  long bench_rounds;        /* --bench rounds unless --rounds */
  /* NULL, or called by main: before the first worker starts, at each round
   * barrier with every worker parked (with their live bytes), at the end */
  void (*begin)(void);
  void (*barrier)(long round, long live);
  void (*end)(void);
  void (*report)(void); /* --bench, after the timed run: further measurements */
  long purge_delay; /* lode's purge delay in its rounds unless --purge-delay; 0: 10 ms */
} workload_t;
extern const workload_t wl_mixed, wl_collect, wl_churn, wl_heaps, wl_xthread, wl_large, wl_fork, wl_held, wl_spans,
    wl_orphans;
extern const workload_t wl_realloc, wl_espresso, wl_huge, wl_gthread, wl_leak, wl_rptest, wl_thrash, wl_larson;

/* Local block table shared by the workloads (block_table.c). */
typedef struct {
  void* p;
  size_t size;
  int heap; /* index into the worker's heap table; 0 = default */
} lblock_t;
typedef struct {
  lblock_t* b;
  size_t cap;
  long live;
} ltable_t;
void lt_init(ltable_t* t, size_t cap);
void lt_release(worker_t* w, ltable_t* t, bool keep_some); /* frees, or parks some in slots */
void lt_destroy(ltable_t* t);
/* workload_t.leave of workloads whose w->user is one ltable_t. */
void lt_leave(worker_t* w, bool final);
/* Takes a block from a random transfer slot and frees it (cross-thread free). */
void drain_some(worker_t* w, int n);
/* At the end: frees this worker's share of the transfer slots. */
void drain_share(worker_t* w);
size_t workload_max(int wl);
/* Resident bytes of the process (/proc/self/statm; 0 without it), read
 * without allocating. */
size_t stress_rss_bytes(void);
double stress_now_s(void); /* CLOCK_MONOTONIC, seconds */

#endif
