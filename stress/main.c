/* lode-stress: options, the round loop (barriers, abandon/re-create rounds,
 * process checks, A5 at the end), the status line, the table and --json. */
#include "stress.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

options_t opt;
round_ctl_t ctl;
const char* const workload_names[W_COUNT] = {"mixed",   "collect",  "churn", "heaps",   "xthread",
                                                 "large",   "fork",     "held",     "spans",    "realloc", "espresso", "huge",
                                                 "gthread", "leak",     "rptest",  "thrash",   "larson",   "orphans"};
static const workload_t* const workloads[W_COUNT] = {&wl_mixed, &wl_collect, &wl_churn,
                                                      &wl_heaps, &wl_xthread, &wl_large, &wl_fork, &wl_held, &wl_spans,
                                                      &wl_realloc, &wl_espresso, &wl_huge, &wl_gthread,
                                                      &wl_leak, &wl_rptest, &wl_thrash, &wl_larson, &wl_orphans};
static const long collect_delays[] = {3000, 10, 0, -1, 250, 1000, 50, 8000};

size_t workload_max(int wl) {
  size_t d = workloads[wl]->default_max;
  return opt.max_size && opt.max_size < d ? opt.max_size : d;
}

static void usage(const char* fmt, const char* arg) {
  if (fmt) {
    fprintf(stderr, "lode-stress: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
  }
  fprintf(stderr,
          "usage: lode-stress [options]\n"
          "  --workload LIST       comma list of mixed,collect,churn,heaps,xthread,large,fork,held,spans,\n"
          "                        orphans (the torture set, default: torture), realloc,espresso,huge,\n"
          "                        gthread,leak,rptest,thrash,larson (classic benchmark shapes: classic);\n"
          "                        all = both\n"
          "  --threads N           worker threads (default 2 x cores)\n"
          "  --seconds S           total run time, split over the workloads (default 10)\n"
          "  --rounds R            rounds per workload instead of a time limit (--bench: 300, large 20)\n"
          "  --round-ops N         operations per thread per round (default 2000)\n"
          "  --seed S              seed (default: random; always printed)\n"
          "  --purge-delay MS      fix the purge delay (default: collect cycles 3000,10,0,-1,...)\n"
          "  --collect-rate N      ops between collects in the collect workload (default 64);\n"
          "                        mixed collects every 8 x N ops, one in ten forced\n"
          "  --force-ratio F       share of forced collects in the collect workload, 0..1 (default 0.25)\n"
          "  --check-every N       ops between lode_check_thread calls (default 500; 0 = never)\n"
          "  --max-size BYTES      cap on block sizes (default per workload)\n"
          "  --target T            allocator: %s (default lode)\n"
          "  --collect-via V       libc target, forced collects: trim = malloc_trim(0) (default),\n"
          "                        own = the preloaded allocator's own call when it exports one\n"
          "                        (mi_collect, jemalloc's purge, tcmalloc's release)\n"
          "  --bench               fixed work, no checks or patterns; prints time, peak RSS, faults\n"
          "  --touch T             --bench writes: first = one byte of each block (default),\n"
          "                        pages = one byte in every 4 KiB of it (a program using its memory),\n"
          "                        all = every byte of it (a program that fills its objects)\n"
          "  --wipe-floor          --bench: before each free the driver zeroes the block (below\n"
          "                        64 KiB) and reads it back: the least a hardened allocator's\n"
          "                        wipe and write-after-free check cost, on any allocator\n"
          "  --floor               --bench --workload huge: no allocator; each slot writes into a\n"
          "                        region of its own, and a floor line adds the writes alone and\n"
          "                        the first touch of the largest live total (a bound for any\n"
          "                        allocator with 4 KiB pages)\n"
          "  --json                machine-readable summary on stdout (table goes to stderr)\n"
          "  --quiet               no status lines\n"
          "  --inject-corruption I[@R[:exit]] corrupt invariant I (e.g. P1) in round R (default 0), or\n"
          "                        as the workers exit after it, to prove the oracle fires and\n"
          "                        its replay line brings the failure back\n"
          "exit: 0 pass, 1 violation / pattern mismatch (fatal signals re-raise), 2 usage\n",
          target_names());
  exit(2);
}

static long parse_long(const char* flag, const char* v, long lo, long hi) {
  char* end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) usage("bad value for %s", flag);
  return x;
}

static double parse_double(const char* flag, const char* v, double lo, double hi) {
  char* end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !(x >= lo && x <= hi)) usage("bad value for %s", flag);
  return x;
}

#ifdef STRESS_MIMALLOC_EXE
/* --target mimalloc lives in a sibling binary linked with mimalloc. */
static void exec_mimalloc(char** argv) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 64);
  if (n <= 0) usage("cannot locate %s", STRESS_MIMALLOC_EXE);
  self[n] = 0;
  char* slash = strrchr(self, '/');
  snprintf(slash ? slash + 1 : self, 64, "%s", STRESS_MIMALLOC_EXE);
  setenv("LODE_STRESS_ARGV0", argv[0], 1);
  execv(self, argv);
  fprintf(stderr, "lode-stress: cannot run %s for --target mimalloc\n", self);
  exit(2);
}
#endif

static void parse(int argc, char** argv) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  opt.threads = (int)(ncpu > 0 ? 2 * ncpu : 4);
  opt.collect_rate = 64;
  opt.force_ratio = 0.25;
  opt.check_every = 500;
  opt.round_ops = 2000;
  opt.target = "lode";
  opt.argv0 = argv[0];
  bool seed_set = false;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    bool has = i + 1 < argc;
    const char* v = has ? argv[i + 1] : NULL;
#define NEEDV()                                 \
  do {                                          \
    if (!has) usage("%s needs a value", a);     \
    i++;                                        \
  } while (0)
    if (!strcmp(a, "--workload")) {
      NEEDV();
      opt.workloads = 0;
      char buf[256];
      snprintf(buf, sizeof(buf), "%s", v);
      for (char* save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        if (!strcmp(tok, "all") || !strcmp(tok, "torture") || !strcmp(tok, "classic")) {
          unsigned torture = W_TORTURE_SET, every = (1u << W_COUNT) - 1;
          opt.workloads |= !strcmp(tok, "all") ? every : !strcmp(tok, "torture") ? torture : every & ~torture;
          continue;
        }
        while (k < W_COUNT && strcmp(tok, workload_names[k])) k++;
        if (k == W_COUNT) usage("unknown workload '%s'", tok);
        opt.workloads |= 1u << k;
      }
      if (!opt.workloads) usage("empty workload list%s", "");
    } else if (!strcmp(a, "--threads")) {
      NEEDV();
      opt.threads = (int)parse_long(a, v, 1, 256);
    } else if (!strcmp(a, "--seconds")) {
      NEEDV();
      opt.seconds = parse_double(a, v, 0.001, 1e7);
    } else if (!strcmp(a, "--rounds")) {
      NEEDV();
      opt.rounds = parse_long(a, v, 1, 1L << 40);
    } else if (!strcmp(a, "--round-ops")) {
      NEEDV();
      opt.round_ops = parse_long(a, v, 1, 1L << 32);
    } else if (!strcmp(a, "--seed")) {
      NEEDV();
      char* end;
      errno = 0;
      opt.seed = strtoull(v, &end, 0);
      if (errno || end == v || *end || *v == '-') usage("bad value for %s", a);
      seed_set = true;
    } else if (!strcmp(a, "--purge-delay")) {
      NEEDV();
      opt.purge_delay = parse_long(a, v, -1000000000L, 1000000000L);
      opt.purge_delay_set = true;
    } else if (!strcmp(a, "--collect-rate")) {
      NEEDV();
      opt.collect_rate = parse_long(a, v, 1, 1L << 32);
    } else if (!strcmp(a, "--force-ratio")) {
      NEEDV();
      opt.force_ratio = parse_double(a, v, 0, 1);
    } else if (!strcmp(a, "--check-every")) {
      NEEDV();
      opt.check_every = parse_long(a, v, 0, 1L << 40);
    } else if (!strcmp(a, "--max-size")) {
      NEEDV();
      opt.max_size = (size_t)parse_long(a, v, 16, 1L << 34);
    } else if (!strcmp(a, "--target")) {
      NEEDV();
      opt.target = v;
    } else if (!strcmp(a, "--touch")) {
      NEEDV();
      if (!strcmp(v, "pages")) opt.touch = TOUCH_PAGES;
      else if (!strcmp(v, "all")) opt.touch = TOUCH_ALL;
      else if (strcmp(v, "first") != 0) usage("bad value for --touch: '%s' (first, pages or all)", v);
    } else if (!strcmp(a, "--wipe-floor")) {
      opt.wipe_floor = true;
    } else if (!strcmp(a, "--floor")) {
      opt.floor = true;
    } else if (!strcmp(a, "--collect-via")) {
      NEEDV();
      if (!strcmp(v, "own")) opt.collect_own = true;
      else if (strcmp(v, "trim") != 0) usage("bad value for --collect-via: '%s' (trim or own)", v);
    } else if (!strcmp(a, "--inject-corruption")) {
      NEEDV();
      static char inv[16];
      const char* at = strchr(v, '@');
      size_t len = at ? (size_t)(at - v) : strlen(v);
      if (len == 0 || len >= sizeof(inv)) usage("bad value for --inject-corruption: '%s' (INV or INV@ROUND)", v);
      memcpy(inv, v, len);
      inv[len] = '\0';
      opt.inject = inv;
      if (at != NULL) {
        char* end;
        errno = 0;
        opt.inject_round = strtol(at + 1, &end, 10);
        opt.inject_at_exit = !strcmp(end, ":exit");
        if (at[1] < '0' || at[1] > '9' || (*end != '\0' && !opt.inject_at_exit) || errno != 0)
          usage("bad round in --inject-corruption: '%s' (INV@ROUND or INV@ROUND:exit, ROUND >= 0)", v);
      }
    } else if (!strcmp(a, "--json")) {
      opt.json = true;
    } else if (!strcmp(a, "--bench")) {
      opt.bench = true;
    } else if (!strcmp(a, "--quiet")) {
      opt.quiet = true;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(NULL, NULL);
    } else {
      usage("unknown option '%s'", a);
    }
  }
  if (!opt.workloads) opt.workloads = W_TORTURE_SET;
#ifdef STRESS_MIMALLOC_EXE
  if (!strcmp(opt.target, "mimalloc")) exec_mimalloc(argv);
#endif
  const char* a0 = getenv("LODE_STRESS_ARGV0");
  if (a0 && *a0) opt.argv0 = a0; /* replay lines name the binary the user ran */
  T = target_find(opt.target);
  if (T == NULL) usage("unknown or unavailable target '%s'", opt.target);
  if (opt.seconds > 0 && opt.rounds > 0) usage("give --seconds or --rounds, not both%s", "");
  if (opt.bench && opt.seconds > 0) usage("--bench runs a fixed amount of work: use --rounds, not --seconds%s", "");
  if (opt.wipe_floor && !opt.bench) usage("--wipe-floor applies to --bench%s", "");
  if (opt.floor && (!opt.bench || opt.workloads != 1u << W_HUGE))
    usage("--floor applies to --bench --workload huge%s", "");
  if (opt.touch != TOUCH_FIRST && !opt.bench) usage("--touch applies to --bench (checked runs fill every block)%s", "");
  if (opt.collect_own && strcmp(opt.target, "libc") != 0)
    usage("--collect-via applies to --target libc (got target '%s')", opt.target);
  if (opt.inject && !target_can_corrupt())
    usage("--inject-corruption needs --target lode and a LODE_TESTING build (got target '%s')", opt.target);
  if (opt.seconds == 0 && opt.rounds == 0) {
    if (!opt.bench) opt.seconds = 10; /* bench: per-workload round counts: 300 rounds, large 20 */
  }
  if (!seed_set) {
    if (opt.bench) opt.seed = 1;
    else if (getrandom(&opt.seed, sizeof(opt.seed), 0) != (ssize_t)sizeof(opt.seed))
      opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    opt.seed &= (1ull << 53) - 1; /* survives JSON and shells unchanged */
  }
}

/* --- barrier with a timed wait for the main thread ------------------------------ */
static pthread_mutex_t bar_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bar_main = PTHREAD_COND_INITIALIZER, bar_workers = PTHREAD_COND_INITIALIZER;
static int bar_arrived, bar_expected;
static long bar_generation;

static void worker_arrive_and_wait(void) {
  pthread_mutex_lock(&bar_lock);
  long g = bar_generation;
  if (++bar_arrived == bar_expected) pthread_cond_signal(&bar_main);
  while (bar_generation == g) pthread_cond_wait(&bar_workers, &bar_lock);
  pthread_mutex_unlock(&bar_lock);
}

static void main_release(void) {
  pthread_mutex_lock(&bar_lock);
  bar_arrived = 0;
  bar_generation++;
  pthread_cond_broadcast(&bar_workers);
  pthread_mutex_unlock(&bar_lock);
}

/* --- status ----------------------------------------------------------------------- */
typedef struct {
  long ops, checks, violations, collects, qcollects, rounds, respawns;
  double seconds;
  size_t peak_rss;
  stress_stats_t s0, s1;
  bool ran;
} result_t;

static worker_t* workers;
static pthread_t* tids;
static result_t results[W_COUNT];

double stress_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t stress_rss_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char b[128];
  ssize_t n = read(fd, b, sizeof(b) - 1);
  close(fd);
  if (n <= 0) return 0;
  b[n] = 0;
  unsigned long size = 0, res = 0;
  return sscanf(b, "%lu %lu", &size, &res) == 2 ? (size_t)res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static long sum_field(size_t off) {
  long s = 0;
  for (int i = 0; i < opt.threads; i++) s += atomic_load_explicit((_Atomic long*)((char*)&workers[i] + off), memory_order_relaxed);
  return s;
}
#define SUM(field) sum_field(offsetof(worker_t, field))

static double last_status, status_ops_t;
static long status_ops;
static bool tty;

static void status(result_t* r, int wl, bool force) {
  double t = stress_now_s();
  size_t rss = stress_rss_bytes();
  if (rss > r->peak_rss) r->peak_rss = rss;
  if (opt.quiet || opt.bench) return;
  double period = tty ? 1.0 : 5.0;
  if (!force && t - last_status < period) return;
  long ops = SUM(ops);
  double rate = t > status_ops_t ? (double)(ops - status_ops) / (t - status_ops_t) : 0;
  status_ops = ops;
  status_ops_t = t;
  last_status = t;
  stress_stats_t s;
  target_stats(&s);
  char line[256];
  if (s.valid)
    snprintf(line, sizeof(line),
             "[%s r%ld] %.0f ops/s, live %.1f MiB, rss %.1f MiB, queued %zu, abandoned %zu, reclaims %zu",
             workload_names[wl], ctl.round, rate, (double)SUM(live_bytes) / 1048576.0, (double)rss / 1048576.0,
             s.queued, s.abandoned, s.reclaimed - r->s0.reclaimed);
  else
    snprintf(line, sizeof(line), "[%s r%ld] %.0f ops/s, live %.1f MiB, rss %.1f MiB", workload_names[wl], ctl.round,
             rate, (double)SUM(live_bytes) / 1048576.0, (double)rss / 1048576.0);
  if (tty) fprintf(stderr, "\r%-110s", line);
  else fprintf(stderr, "%s\n", line);
}

static void main_wait_all(result_t* r, int wl, int n) {
  pthread_mutex_lock(&bar_lock);
  while (bar_arrived < n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&bar_main, &bar_lock, &ts);
    if (bar_arrived < n) {
      pthread_mutex_unlock(&bar_lock);
      status(r, wl, false);
      pthread_mutex_lock(&bar_lock);
    }
  }
  pthread_mutex_unlock(&bar_lock);
}

/* --- workers ------------------------------------------------------------------------ */
static void* worker_main(void* arg) {
  worker_t* w = arg;
  oracle_set_thread(w);
  const workload_t* wl = workloads[w->workload];
  for (;;) {
    /* ctl was written by main before this thread was created or released */
    w->round = ctl.round;
    w->rops = 0;
    w->rng = rng_derive(opt.seed, w->workload, w->round, w->index, 0);
    wl->round(w);
    worker_arrive_and_wait();
    if (ctl.final) {
      wl->leave(w, true);
      drain_share(w);
      T->collect(true);
      oracle_check_thread(w, "after freeing everything and a forced collect, before exit");
      return NULL;
    }
    if (ctl.exit_now) {
      w->rng = rng_derive(opt.seed, w->workload, w->round, w->index, -1);
      wl->leave(w, false); /* exits holding blocks parked in transfer slots */
      if (opt.inject_at_exit && w->index == 0 && w->round == opt.inject_round) oracle_inject();
      oracle_check_thread(w, "before exit");
      return NULL;
    }
  }
}

static void spawn_workers(int wl) {
  bar_expected = opt.threads;
  for (int i = 0; i < opt.threads; i++) {
    worker_t* w = &workers[i];
    long keep_ops = atomic_load(&w->ops), keep_checks = atomic_load(&w->checks);
    long keep_c = atomic_load(&w->collects), keep_q = atomic_load(&w->qcollects), keep_l = atomic_load(&w->live_bytes);
    memset(w, 0, sizeof(*w));
    atomic_store(&w->ops, keep_ops);
    atomic_store(&w->checks, keep_checks);
    atomic_store(&w->collects, keep_c);
    atomic_store(&w->qcollects, keep_q);
    atomic_store(&w->live_bytes, keep_l);
    w->local_live = keep_l;
    w->workload = wl;
    w->index = i;
    w->child = -1;
    w->pseed = mix64(opt.seed ^ (0x9e37ull * (uint64_t)(wl + 1)));
    if (pthread_create(&tids[i], NULL, worker_main, w) != 0) {
      fprintf(stderr, "lode-stress: pthread_create failed\n");
      exit(1);
    }
  }
}

static void join_workers(void) {
  for (int i = 0; i < opt.threads; i++) pthread_join(tids[i], NULL);
}

static void set_round(int wl, long round) {
  ctl.round = round;
  long delay = opt.purge_delay_set ? opt.purge_delay : 10;
  /* --bench keeps lode's default delay: the LD_PRELOAD and mimalloc runs cannot be told
   * another one, and seconds or "never" would only inflate lode's RSS. */
  if (wl == W_COLLECT && !opt.purge_delay_set && !opt.bench)
    delay = collect_delays[round % (long)(sizeof(collect_delays) / sizeof(collect_delays[0]))];
  else if (workloads[wl]->purge_delay != 0 && !opt.purge_delay_set && !opt.bench)
    delay = workloads[wl]->purge_delay;
  ctl.purge_delay = delay;
  target_set_purge_delay(delay);
  rng_t r = rng_derive(opt.seed, wl, round, -1, 99);
  unsigned respawn = workloads[wl]->respawn_percent;
  ctl.exit_after = rng_chance(&r, respawn);
  oracle_update_replay(wl, round);
}

static void run_workload(int wl, double budget, size_t baseline) {
  result_t* r = &results[wl];
  worker_t main_ctx = {.workload = wl, .index = -1, .child = -1};
  oracle_set_thread(&main_ctx);
  memset(workers, 0, sizeof(worker_t) * (size_t)opt.threads);
  ctl.workload = wl;
  ctl.final = false;
  ctl.exit_now = false;
  ctl.wseed = opt.seed;
  transfer_init(workloads[wl]->transfer_slots);
  r->ran = true;
  target_stats(&r->s0);
  double t0 = stress_now_s();
  last_status = status_ops_t = t0;
  status_ops = 0;
  long round = 0;
  set_round(wl, round);
  void (*barrier)(long, long) = workloads[wl]->barrier;
  if (workloads[wl]->begin) workloads[wl]->begin();
  spawn_workers(wl);
  for (;;) {
    main_wait_all(r, wl, opt.threads);
    /* every worker is parked: process-wide state must hold */
    oracle_check_process("at the round barrier, all workers parked");
    status(r, wl, false);
    if (barrier) barrier(round, SUM(live_bytes));
    r->rounds++;
    long limit = opt.rounds ? opt.rounds : opt.bench ? workloads[wl]->bench_rounds : 0;
    bool stop = limit ? round + 1 >= limit : stress_now_s() - t0 >= budget;
    if (stop) {
      ctl.final = true;
      oracle_update_replay(wl, round); /* this round is the last now, exit or not */
      main_release();
      join_workers();
      break;
    }
    if (ctl.exit_after) {
      ctl.exit_now = true;
      main_release();
      join_workers();
      r->respawns++;
      oracle_check_process("after the workers exited holding blocks (abandoned segments)");
      ctl.exit_now = false;
      set_round(wl, ++round);
      spawn_workers(wl);
    } else {
      set_round(wl, ++round);
      main_release();
    }
  }
  /* A5: everything freed, every worker collected before exiting. */
  ctl.exit_after = false;
  for (size_t i = 0; i < transfer_count(); i++)
    if (transfer_take(i) != NULL) oracle_fail("A5", NULL, "transfer slot %zu not drained at the end", i);
  T->collect(true);
  oracle_check_process("at the end, after the final forced collect");
  oracle_check_clean(baseline);
  if (workloads[wl]->end) workloads[wl]->end();
  r->seconds = stress_now_s() - t0;
  r->ops = SUM(ops);
  r->checks = SUM(checks);
  r->collects = SUM(collects);
  r->qcollects = SUM(qcollects);
  target_stats(&r->s1);
  if (tty && !opt.quiet && !opt.bench) fprintf(stderr, "\n");
  if (wl == W_COLLECT && T->white_box && !opt.bench && !opt.purge_delay_set && r->rounds >= 2 && r->qcollects == 0 &&
      r->collects > 0)
    oracle_fail("COLLECT", NULL,
                "no non-forced collect met a queued page in %ld rounds: the scenario was not exercised", r->rounds);
  if (opt.bench) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* CPU time beside wall time: with more threads than CPUs the wall clock
     * also counts waits for a CPU, which no allocator causes */
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("bench workload=%s target=%s threads=%d rounds=%ld seconds=%.4f cpu_seconds=%.4f peak_rss_kib=%ld "
           "minor_faults=%ld\n",
           workload_names[wl], opt.floor ? "floor" : opt.target, opt.threads, r->rounds, r->seconds, cpu, ru.ru_maxrss,
           ru.ru_minflt);
    if (workloads[wl]->report) workloads[wl]->report();
    fflush(stdout);
  }
}

static void fmt_count(char* b, size_t n, size_t v, bool valid) {
  if (!valid) snprintf(b, n, "-");
  else snprintf(b, n, "%zu", v);
}

static void print_table(FILE* f) {
  fprintf(f, "\n%-8s %7s %11s %10s %9s %9s %9s %9s %8s %7s %10s\n", "workload", "rounds", "ops", "ops/s",
          "peakRSS", "purges", "abandons", "reclaims", "checks", "viol", "q-collects");
  for (int wl = 0; wl < W_COUNT; wl++) {
    result_t* r = &results[wl];
    if (!r->ran) continue;
    char pu[24], ab[24], re[24], qc[32];
    bool v = r->s0.valid;
    fmt_count(pu, sizeof(pu), r->s1.purges - r->s0.purges, v);
    fmt_count(ab, sizeof(ab), r->s1.abandoned_total - r->s0.abandoned_total, v);
    fmt_count(re, sizeof(re), r->s1.reclaimed - r->s0.reclaimed, v);
    if (wl == W_COLLECT) snprintf(qc, sizeof(qc), "%ld/%ld", r->qcollects, r->collects);
    else snprintf(qc, sizeof(qc), "-");
    fprintf(f, "%-8s %7ld %11ld %10.0f %8.1fM %9s %9s %9s %8ld %7ld %10s\n", workload_names[wl], r->rounds, r->ops,
            r->seconds > 0 ? (double)r->ops / r->seconds : 0, (double)r->peak_rss / 1048576.0, pu, ab, re, r->checks,
            r->violations, qc);
  }
  fprintf(f, "(q-collects: non-forced collects that met queued pages / all collects)\n");
}

static void print_json(void) {
  printf("{\"tool\":\"lode-stress\",\"target\":\"%s\",\"seed\":%llu,\"threads\":%d,\"bench\":%s,\"result\":\"pass\","
         "\"workloads\":[",
         opt.floor ? "floor" : opt.target, (unsigned long long)opt.seed, opt.threads, opt.bench ? "true" : "false");
  bool first = true;
  for (int wl = 0; wl < W_COUNT; wl++) {
    result_t* r = &results[wl];
    if (!r->ran) continue;
    bool v = r->s0.valid;
    printf("%s{\"name\":\"%s\",\"rounds\":%ld,\"respawns\":%ld,\"ops\":%ld,\"seconds\":%.3f,\"ops_per_s\":%.0f,"
           "\"peak_rss_bytes\":%zu,\"purges\":%zd,\"abandons\":%zd,\"reclaims\":%zd,\"checks\":%ld,\"violations\":%ld,"
           "\"collects\":%ld,\"collects_met_queued\":%ld}",
           first ? "" : ",", workload_names[wl], r->rounds, r->respawns, r->ops, r->seconds,
           r->seconds > 0 ? (double)r->ops / r->seconds : 0, r->peak_rss,
           v ? (ssize_t)(r->s1.purges - r->s0.purges) : (ssize_t)-1,
           v ? (ssize_t)(r->s1.abandoned_total - r->s0.abandoned_total) : (ssize_t)-1,
           v ? (ssize_t)(r->s1.reclaimed - r->s0.reclaimed) : (ssize_t)-1, r->checks, r->violations, r->collects,
           r->qcollects);
    first = false;
  }
  printf("]}\n");
}

int main(int argc, char** argv) {
  parse(argc, argv);
  tty = isatty(2) != 0;
  oracle_init();
  workers = calloc((size_t)opt.threads, sizeof(worker_t));
  tids = calloc((size_t)opt.threads, sizeof(pthread_t));
  if (workers == NULL || tids == NULL) return 1;
  int nwl = __builtin_popcount(opt.workloads);
  FILE* out = opt.json ? stderr : stdout;
  fprintf(out, "lode-stress: target %s, seed %llu, threads %d, %s, workloads", opt.floor ? "none" : opt.target,
          (unsigned long long)opt.seed, opt.threads, opt.bench ? "bench" : "checks on");
  for (int wl = 0; wl < W_COUNT; wl++)
    if (opt.workloads & (1u << wl)) fprintf(out, " %s", workload_names[wl]);
  if (!T->white_box && !strcmp(opt.target, "libc")) fprintf(out, ", forced collect: %s", target_forced_collect());
  if (opt.touch == TOUCH_PAGES) fprintf(out, ", every 4 KiB of each block written");
  if (opt.touch == TOUCH_ALL) fprintf(out, ", every byte of each block written");
  if (opt.wipe_floor) fprintf(out, ", freed blocks wiped and read back by the driver");
  if (opt.floor) fprintf(out, ", no allocator: its floor on this machine");
  if (opt.rounds) fprintf(out, ", %ld rounds each\n", opt.rounds);
  else if (opt.bench) fprintf(out, ", 300 rounds each (large: 20)\n");
  else fprintf(out, ", %.1f s in total\n", opt.seconds);
  fflush(out);
  /* Baseline for A5: committed memory before any worker ran. */
  T->collect(true);
  stress_stats_t base;
  target_stats(&base);
  for (int wl = 0; wl < W_COUNT; wl++)
    if (opt.workloads & (1u << wl)) run_workload(wl, opt.seconds / nwl, base.committed);
  if (!opt.bench || !opt.json) print_table(out);
  if (opt.json) print_json();
  fprintf(out, "lode-stress: PASS (seed %llu)\n", (unsigned long long)opt.seed);
  return 0;
}
