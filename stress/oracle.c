/* The oracle: captures the checker's reports with the reporting thread's
 * context, turns any violation, pattern mismatch or fatal signal into one
 * report with the command line that replays the case, and wraps every
 * allocation in pattern and size checks. */
#include "stress.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

atomic_long oracle_violations;
static __thread worker_t* tl_worker;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* First violation the checker reported in this thread since the last check. */
static __thread struct {
  int count;
  char inv[16];
  const void* obj;
  char msg[200];
} tl_seen;

/* Replay line and context for the signal handler: written by main while the
 * workers are parked, read by the handler. */
static char replay_line[1024];
static char sig_context[160];

void oracle_set_thread(worker_t* w) { tl_worker = w; }
worker_t* oracle_thread(void) { return tl_worker; }

extern char** environ;

/* WORD with all but its first LEAD characters single-quoted for the shell
 * when they need to be. */
static int fmt_quoted(char* buf, size_t n, const char* word, size_t lead) {
  const char* v = word + lead;
  bool plain = *v != 0;
  for (const char* c = v; *c; c++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:,+-=@", *c)) plain = false;
  if (plain) return snprintf(buf, n, "%s", word);
  int k = snprintf(buf, n, "%.*s'", (int)lead, word);
  for (const char* c = v; *c && k > 0 && (size_t)k < n; c++)
    k += *c == '\'' ? snprintf(buf + k, n - (size_t)k, "'\\''") : snprintf(buf + k, n - (size_t)k, "%c", *c);
  if (k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, "'");
  return k;
}

/* NAME=value and a space, the value quoted when it needs to be. */
static int fmt_env_word(char* buf, size_t n, const char* word) {
  const char* eq = strchr(word, '=');
  if (eq == NULL) return 0;
  int k = fmt_quoted(buf, n, word, (size_t)(eq + 1 - word));
  if (k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " ");
  return k;
}

/* The replay names what else decides the run: the preloaded allocator
 * (--target libc tests whatever LD_PRELOAD put in malloc's place) and lode's
 * options from the environment (LODE_PURGE_MODE and the like). */
static int fmt_replay(char* buf, size_t n, int workload, long round) {
  int k = 0;
  /* A round that ends with the workers exiting (holding blocks) must not be
   * the replay's last: the last round drains and frees everything instead,
   * and a failure on the way out would not come back.  The round after it
   * is never reached (the failure ends the run first). */
  long rounds = round + (ctl.exit_after && !ctl.final ? 2 : 1);
  for (char** e = environ; e != NULL && *e != NULL && (size_t)k < n; e++) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 ? (*e)[11] != 0 : strncmp(*e, "LODE_", 5) == 0) {
      int w = fmt_env_word(buf + k, n - (size_t)k, *e);
      if (w < 0) return w;
      k += w;
    }
  }
  if ((size_t)k >= n) return k;
  k += fmt_quoted(buf + k, n - (size_t)k, opt.argv0, 0); /* a path with a space must stay one word */
  if (k < 0 || (size_t)k >= n) return k;
  k += snprintf(buf + k, n - (size_t)k,
                   " --target %s --workload %s --seed %llu --threads %d --rounds %ld --round-ops %ld "
                   "--collect-rate %ld --force-ratio %g --check-every %ld",
                   opt.target, workload_names[workload], (unsigned long long)opt.seed, opt.threads,
                   rounds, opt.round_ops, opt.collect_rate, opt.force_ratio, opt.check_every);
  if (opt.purge_delay_set && k > 0 && (size_t)k < n)
    k += snprintf(buf + k, n - (size_t)k, " --purge-delay %ld", opt.purge_delay);
  if (opt.max_size && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " --max-size %zu", opt.max_size);
  if (opt.collect_own && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " --collect-via own");
  if (opt.bench && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " --bench");
  if (opt.wipe_floor && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " --wipe-floor");
  if (opt.floor && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, " --floor");
  if (opt.touch != TOUCH_FIRST && k > 0 && (size_t)k < n)
    k += snprintf(buf + k, n - (size_t)k, " --touch %s", opt.touch == TOUCH_PAGES ? "pages" : "all");
  if (opt.inject && k > 0 && (size_t)k < n)
    k += snprintf(buf + k, n - (size_t)k, " --inject-corruption %s", opt.inject);
  if (opt.inject && (opt.inject_round || opt.inject_at_exit) && k > 0 && (size_t)k < n)
    k += snprintf(buf + k, n - (size_t)k, "@%ld", opt.inject_round);
  if (opt.inject && opt.inject_at_exit && k > 0 && (size_t)k < n) k += snprintf(buf + k, n - (size_t)k, ":exit");
  return k;
}

void oracle_update_replay(int workload, long round) {
  fmt_replay(replay_line, sizeof(replay_line), workload, round);
  snprintf(sig_context, sizeof(sig_context), "workload %s, round %ld, seed %llu, target %s", workload_names[workload],
           round, (unsigned long long)opt.seed, opt.target);
}

static void describe_thread(char* buf, size_t n) {
  worker_t* w = tl_worker;
  if (w == NULL || w->index < 0) snprintf(buf, n, "main");
  else if (w->child >= 0) snprintf(buf, n, "%d (child %d of worker %d)", w->index, w->child, w->index);
  else snprintf(buf, n, "%d", w->index);
}

_Noreturn void oracle_fail(const char* invariant, const void* object, const char* fmt, ...) {
  pthread_mutex_lock(&fail_lock); /* the first failure reports; others wait for exit */
  atomic_fetch_add(&oracle_violations, 1);
  char msg[600], who[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  describe_thread(who, sizeof(who));
  worker_t* w = tl_worker;
  int wl = w ? w->workload : ctl.workload;
  /* main's own context never counts rounds: ctl does */
  long round = w && w->index >= 0 ? w->round : ctl.round;
  char replay[1024];
  fmt_replay(replay, sizeof(replay), wl, round);
  fflush(stdout);
  fprintf(stderr,
          "\nlode-stress: FAILURE\n"
          "  invariant: %s\n"
          "  workload:  %s\n"
          "  thread:    %s\n"
          "  round:     %ld\n"
          "  seed:      %llu\n"
          "  target:    %s\n"
          "  object:    %p\n"
          "  message:   %s\n"
          "  replay:    %s\n"
          "  (thread interleavings are not deterministic: the replay re-runs the same case with the same seeds)\n",
          invariant, workload_names[wl], who, round, (unsigned long long)opt.seed, opt.target, object, msg, replay);
  fflush(stderr);
  _exit(1);
}

void oracle_report_cb(const char* inv, const void* obj, const char* msg) {
  char who[64];
  describe_thread(who, sizeof(who));
  fprintf(stderr, "lode-stress: invariant %s violated at %p: %s [thread %s]\n", inv, obj, msg, who);
  if (tl_seen.count++ == 0) {
    snprintf(tl_seen.inv, sizeof(tl_seen.inv), "%s", inv);
    snprintf(tl_seen.msg, sizeof(tl_seen.msg), "%s", msg);
    tl_seen.obj = obj;
  }
}

static void fail_if_seen(size_t n, const char* what, const char* when) {
  if (n == 0 && tl_seen.count == 0) return;
  if (tl_seen.count == 0) oracle_fail("?", NULL, "%s reported %zu violations (%s)", what, n, when);
  oracle_fail(tl_seen.inv, tl_seen.obj, "%s (%s, %s; %zu violations)", tl_seen.msg, what, when, n);
}

void oracle_check_thread(worker_t* w, const char* when) {
  if (opt.bench || !T->white_box) return;
  tl_seen.count = 0;
  size_t n = target_check_thread();
  if (w) atomic_store_explicit(&w->checks, atomic_load_explicit(&w->checks, memory_order_relaxed) + 1,
                               memory_order_relaxed);
  fail_if_seen(n, "lode_check_thread", when);
}

void oracle_check_process(const char* when) {
  if (opt.bench || !T->white_box) return;
  tl_seen.count = 0;
  fail_if_seen(target_check_process(), "lode_check_process", when);
}

void oracle_excess_growth(const char* check, long round, size_t excess, size_t* warm_max) {
  enum { WARM_FROM = 8, WARM_TO = 32, GROWTH_FROM = 64 };
  const size_t mib = (size_t)1 << 20;
  if (round >= WARM_FROM && round < WARM_TO && excess > *warm_max) *warm_max = excess;
  if (round >= GROWTH_FROM && excess > 2 * *warm_max + 32 * mib)
    oracle_fail(check, NULL,
                "after round %ld the memory held beyond the live bytes grew to %.1f MiB (at most %.1f MiB in rounds "
                "%d-%d), with the same live set each round",
                round, (double)excess / (double)mib, (double)*warm_max / (double)mib, WARM_FROM, WARM_TO - 1);
}

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define RSS_MEANS_ALLOCATOR 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define RSS_MEANS_ALLOCATOR 0
#endif
#endif
#ifndef RSS_MEANS_ALLOCATOR
#define RSS_MEANS_ALLOCATOR 1
#endif

bool stress_held_memory(size_t base, long live, size_t* rss, size_t* held, size_t* excess) {
  *rss = stress_rss_bytes();
  if (*rss == 0 || !RSS_MEANS_ALLOCATOR) return false;
  *held = *rss > base ? *rss - base : 0;
  size_t l = live > 0 ? (size_t)live : 0;
  *excess = *held > l ? *held - l : 0;
  return true;
}

void oracle_check_clean(size_t baseline) {
  if (opt.bench || !T->white_box) return;
  tl_seen.count = 0;
  fail_if_seen(target_check_clean(baseline), "lode_check_clean", "A5 after everything was freed and collected");
}

/* --- fatal signals ------------------------------------------------------------ */
static struct sigaction old_actions[32];
static volatile sig_atomic_t in_handler;

static void put(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t k = write(2, s, n);
    if (k <= 0) return;
    s += k;
    n -= (size_t)k;
  }
}

static void put_long(long v) {
  char b[24];
  int i = 23;
  b[i] = 0;
  bool neg = v < 0;
  unsigned long u = neg ? (unsigned long)-v : (unsigned long)v;
  do {
    b[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u && i > 1);
  if (neg) b[--i] = '-';
  put(b + i);
}

static void on_fatal(int sig, siginfo_t* info, void* uc) {
  (void)uc;
  if (!in_handler) {
    in_handler = 1;
    put("\nlode-stress: FAILURE\n  invariant: fatal signal ");
    put_long(sig);
    put(sig == SIGSEGV ? " (SIGSEGV)" : sig == SIGBUS ? " (SIGBUS)" : sig == SIGABRT ? " (SIGABRT)" : "");
    put("\n  context:   ");
    put(sig_context);
    put("\n  thread:    ");
    worker_t* w = tl_worker;
    if (w == NULL || w->index < 0) put("main");
    else {
      put_long(w->index);
      if (w->child >= 0) {
        put(" (child ");
        put_long(w->child);
        put(")");
      }
      put("\n  round:     ");
      put_long(w->round);
    }
    put("\n  replay:    ");
    put(replay_line);
    put("\n  (thread interleavings are not deterministic: the replay re-runs the same case with the same seeds)\n");
  }
  /* Hand the signal to whoever had it before (a sanitizer, or the default). */
  sigaction(sig, &old_actions[sig], NULL);
  if (info == NULL || info->si_code <= 0 || sig == SIGABRT) raise(sig);
  /* a fault returns and re-executes the faulting instruction */
}

void oracle_init(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, &old_actions[sigs[i]]);
  }
  target_install_reporter();
}

/* --- blocks ------------------------------------------------------------------- */
static inline void add_live(worker_t* w, long d) {
  w->local_live += d;
  atomic_store_explicit(&w->live_bytes, w->local_live, memory_order_relaxed);
}

/* --bench writes the first byte of a block (the allocator cannot skip
 * faulting it in), with --touch pages one byte in every 4 KiB of it, with
 * --touch all every byte (a program that fills its objects: the lines an
 * allocator touches at a block's end are then the program's too). */
static void bench_touch(void* p, size_t size) {
  volatile char* c = p;
  if (opt.touch == TOUCH_ALL) {
    memset(p, 1, size);
    return;
  }
  c[0] = 1;
  if (opt.touch == TOUCH_PAGES)
    for (size_t off = 4096; off < size; off += 4096) c[off] = 1;
}

static void* after_alloc(worker_t* w, void* p, size_t size, size_t align, const char* what) {
  if (p == NULL) oracle_fail("ALLOC", NULL, "%s(size %zu, alignment %zu) returned NULL", what, size, align);
  if (opt.bench) {
    bench_touch(p, size);
    return p;
  }
  size_t want_align = align ? align : (size >= 16 ? 16 : 8);
  if ((uintptr_t)p % want_align != 0)
    oracle_fail("ALIGN", p, "%s(size %zu) returned a block not aligned to %zu", what, size, want_align);
  size_t us = T->usable(p);
  if (us < size) oracle_fail("USABLE", p, "%s: usable size %zu < requested %zu", what, us, size);
  pattern_fill(p, us, (uintptr_t)p, us, w->pseed);
  add_live(w, (long)us);
  return p;
}

void* blk_alloc(worker_t* w, size_t size) { return after_alloc(w, T->malloc(size), size, 0, "malloc"); }
void* blk_aligned(worker_t* w, size_t alignment, size_t size) {
  return after_alloc(w, T->aligned(alignment, size), size, alignment, "aligned_alloc");
}
void* blk_heap_alloc(worker_t* w, void* heap, size_t size) {
  return after_alloc(w, T->heap_malloc(heap, size), size, 0, "heap_malloc");
}

static void verify_range(worker_t* w, const void* p, size_t n, uintptr_t key, size_t keysize, const char* inv,
                         const char* when) {
  uint64_t want = 0, got = 0;
  size_t off = pattern_verify(p, n, key, keysize, w->pseed, &want, &got);
  if (off == SIZE_MAX) return;
  oracle_fail(inv, p,
              "%s: block %p (usable %zu): byte %zu differs from its pattern (word want %016llx, got %016llx)%s", when,
              p, keysize, off, (unsigned long long)want, (unsigned long long)got,
              got == 0 ? " -- memory reads zero: purged or reset while live?"
                       : " -- overlap, stray write, or usable size changed");
}

void blk_verify(worker_t* w, const void* p, const char* when) {
  if (opt.bench || p == NULL) return;
  size_t us = T->usable(p);
  verify_range(w, p, us, (uintptr_t)p, us, "PATTERN", when);
}

/* --wipe-floor: what a hardened allocator must do at least for a freed
 * block (below the size where LODE_SECURE wipes by residency): clear it,
 * and once before its reuse read that it is still clear.  Read back at once
 * here, from cache, so this is a lower bound of the cost; the usable size
 * is the class's, a little more than a request.  Timed against the same
 * allocator without it, it says how close a secure build can get. */
static volatile uint64_t wipe_floor_sink;
static void wipe_floor(void* p) {
  size_t n = T->usable(p) / 8;
  if (n >= ((size_t)64 << 10) / 8) return;
  uint64_t* w = p;
  memset(p, 0, n * 8);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 |= w[i];
    a1 |= w[i + 1];
    a2 |= w[i + 2];
    a3 |= w[i + 3];
  }
  for (; i < n; i++) a0 |= w[i];
  wipe_floor_sink |= a0 | a1 | a2 | a3;
}

void blk_free(worker_t* w, void* p) {
  if (p == NULL) return;
  if (!opt.bench) {
    size_t us = T->usable(p);
    verify_range(w, p, us, (uintptr_t)p, us, "PATTERN", "before free");
    add_live(w, -(long)us);
  } else if (opt.wipe_floor) {
    wipe_floor(p);
  }
  T->free(p);
}

void* blk_realloc(worker_t* w, void* p, size_t size) {
  if (opt.bench) {
    void* q = T->realloc(p, size);
    if (q == NULL) oracle_fail("ALLOC", p, "realloc(%zu) returned NULL", size);
    bench_touch(q, size);
    return q;
  }
  size_t old_us = T->usable(p);
  verify_range(w, p, old_us, (uintptr_t)p, old_us, "PATTERN", "before realloc");
  void* q = T->realloc(p, size);
  if (q == NULL) oracle_fail("ALLOC", p, "realloc(%p, %zu) returned NULL", p, size);
  size_t us = T->usable(q);
  if (us < size) oracle_fail("USABLE", q, "realloc from %zu to %zu: usable size %zu < new size", old_us, size, us);
  if ((uintptr_t)q % 16 != 0 && size >= 16) oracle_fail("ALIGN", q, "realloc returned a block not aligned to 16");
  size_t keep = old_us < size ? old_us : size;
  verify_range(w, q, keep, (uintptr_t)p, old_us, "REALLOC", "bytes within the new size after realloc");
  pattern_fill(q, us, (uintptr_t)q, us, w->pseed); /* the whole usable size must be writable */
  add_live(w, (long)us - (long)old_us);
  return q;
}

void oracle_inject(void) {
  if (target_corrupt(opt.inject) != 0) {
    fprintf(stderr, "lode-stress: --inject-corruption %s: unknown or unsupported invariant\n", opt.inject);
    _exit(2);
  }
}

void op_done(worker_t* w) {
  long n = atomic_load_explicit(&w->ops, memory_order_relaxed) + 1;
  atomic_store_explicit(&w->ops, n, memory_order_relaxed);
  w->rops++;
  if (opt.bench) return;
  if (opt.inject && !opt.inject_at_exit && w->index == 0 && w->child < 0 && w->round == opt.inject_round &&
      w->rops == opt.round_ops / 2) {
    oracle_inject();
    oracle_check_thread(w, "after the injected corruption");
  }
  if (T->white_box && opt.check_every > 0 && n % opt.check_every == 0) oracle_check_thread(w, "periodic check");
}
