/* The harness core: runs one decoded input through a scheduler (simulated
 * threads, or real ones), applies every operation to lode and to the shadow
 * model (ops.c), and runs the oracle:
 *   after every op     the op's own promises (ops.c), no pointer error lode
 *                      did not have to report, lode_check_thread on its thread;
 *   after ops that change process-wide state (an exit, a collect, a heap op, a
 *                      cross-thread free, a reclaim or abandon, a resume)
 *                      lode_check_process, unless a thread is parked mid-op;
 *   at the end         everything freed, forced collects, full checks and A5.
 * Every option and lode's message sink are set up before each input, the
 * clock and OS-failure injection reset after it, so nothing carries over to
 * the next and the environment changes nothing. */
#include "harness.h"

#include <errno.h>
#include <lode.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testing.h"

static fz_config_t config;
const fz_config_t* fz_cfg = &config;
static const fz_sched_t* S;

static const fz_program_t* prog;
static unsigned long inputs_run; /* fz_run calls so far: an input's number */
unsigned long fz_input_number(void) { return inputs_run; }
static size_t op_index = SIZE_MAX; /* op being run, SIZE_MAX outside ops */
static fz_heap_t heaps[FZ_HEAPS];
static bool fail_armed; /* a fail-os with a count > 0 ran in this input */
static size_t baseline;
static _Atomic(int64_t) clock_ms = FZ_CLOCK_START;
static unsigned seq;        /* allocations so far: picks fill bytes */
static size_t calloc_bytes; /* this input's */
static size_t big_bytes;    /* this input's, of blocks above FZ_BIG_MIN */
static int park_armed[FZ_THREADS];
static bool full_due; /* the running op changed more than a few pages: check in full */
static int parked_point[FZ_THREADS];
static const void* parked_obj[FZ_THREADS];

const char* fz_mode_name(fz_mode_t mode) { return mode == FZ_MODE_SIM ? "sim" : "real"; }

/* --- lode's reports ------------------------------------------------------------- */
typedef struct {
  char inv[8];
  char msg[200];
  const void* obj;
} violation_t;
static violation_t first_violation;
static size_t violation_count;

static void reporter(const char* inv, const void* obj, const char* message, void* arg) {
  (void)arg;
  if (violation_count++ == 0) {
    snprintf(first_violation.inv, sizeof(first_violation.inv), "%s", inv);
    snprintf(first_violation.msg, sizeof(first_violation.msg), "%s", message);
    first_violation.obj = obj;
  }
}

static void check_result(const char* which) {
  if (violation_count == 0) return;
  fz_fail("invariant %s violated (%s, object %p): %s [%zu violation(s)]", first_violation.inv, which,
          first_violation.obj, first_violation.msg, violation_count);
}

/* Pointer errors lode reported during each thread's current op (a parked
 * op keeps its own while others run): lode reports each to this hook, and
 * (LODE_ON_ERROR=warn) hands its message to the harness's sink:
 * the message must be exactly "lode: FUNC(): WHAT 0xPOINTER", and lode must
 * write nothing else. */
typedef struct {
  size_t seen;
  char what[96], func[32];
  const void* ptr;
  const char* expected; /* set by the op: "what" prefixes, '|' between */
} error_state_t;
static error_state_t errs[FZ_THREADS + 1];

static void error_hook(const char* func, const char* what, const void* p) {
  error_state_t* e = &errs[S->current()];
  if (e->seen++ == 0) {
    snprintf(e->what, sizeof(e->what), "%s", what);
    snprintf(e->func, sizeof(e->func), "%s", func);
    e->ptr = p;
  }
}

void fz_expect_error(const char* what) {
  error_state_t* e = &errs[S->current()];
  e->seen = 0;
  e->expected = what;
}

static bool error_matches(const error_state_t* st) {
  for (const char* e = st->expected; *e;) {
    const char* bar = strchr(e, '|');
    size_t n = bar ? (size_t)(bar - e) : strlen(e);
    if (strncmp(st->what, e, n) == 0) return true;
    e += n + (bar ? 1 : 0);
  }
  return false;
}

static void errors_reset(unsigned t) { errs[t] = (error_state_t){0}; }

/* LODE_VERBOSE is on: lode reports each OS failure, the injected ones too
 * (the simulated OS's and fail-os's), with this line.  The sink counts them
 * and keeps the rest; their count must be lode's os_failures statistic
 * since the harness started (each failure reported once). */
#define VERBOSE_LINE "lode: injected OS failure 0x0 0x0\n"
static size_t verbose_lines, failures_at_start;

/* What lode wrote since messages() last took it, verbose lines left out.
 * lode hands the sink each message whole; a full buffer drops the rest, as
 * a full pipe did (64 KiB: no input's op comes near). */
static pthread_mutex_t message_lock = PTHREAD_MUTEX_INITIALIZER;
static char pending[1 << 16];
static size_t pending_len;

static void message_sink(const char* msg, size_t len) {
  const size_t vl = sizeof(VERBOSE_LINE) - 1;
  pthread_mutex_lock(&message_lock);
  if (len == vl && memcmp(msg, VERBOSE_LINE, vl) == 0) {
    verbose_lines++;
  } else {
    size_t room = sizeof(pending) - 1 - pending_len;
    if (len > room) len = room;
    memcpy(pending + pending_len, msg, len);
    pending_len += len;
  }
  pthread_mutex_unlock(&message_lock);
}

/* Everything lode wrote since the last call but verbose lines ("" when
 * nothing). */
static const char* messages(void) {
  static char text[sizeof(pending)];
  pthread_mutex_lock(&message_lock);
  memcpy(text, pending, pending_len);
  text[pending_len] = '\0';
  pending_len = 0;
  pthread_mutex_unlock(&message_lock);
  return text;
}

/* Every process that runs inputs starts the count again: an input that
 * stopped mid-way (fz_fail, a signal) in a process whose buffer it shared
 * (lode-replay's children, AFL++'s fork-server children) left its messages
 * there, and lode's count of OS failures with them.  In one process an input
 * ends only clean (nothing left), so inputs after the first keep them. */
static pid_t message_pid;

static void messages_open(void) {
  if (message_pid == getpid()) return;
  message_pid = getpid();
  lode_test_set_message_sink(message_sink);
  pending_len = 0;
  verbose_lines = 0;
  lode_stats_t st;
  lode_stats_get(&st);
  failures_at_start = st.os_failures;
}

static void check_verbose(const char* when) {
  lode_stats_t st;
  lode_stats_get(&st);
  pthread_mutex_lock(&message_lock);
  size_t lines = verbose_lines;
  pthread_mutex_unlock(&message_lock);
  if (st.os_failures - failures_at_start != lines)
    fz_fail("LODE_VERBOSE: lode counted %zu OS failures but reported %zu (%s)",
            (size_t)(st.os_failures - failures_at_start), lines, when);
}

void fz_check_no_message(const char* when) {
  const char* left = messages();
  if (*left != '\0') fz_fail("lode wrote a message no operation expected (%s): \"%s\"", when, left);
  check_verbose(when);
}

/* "lode: FUNC(): WHAT 0xPTR\n", and for errors about a block's contents
 * (LODE_SECURE) " (block of N bytes)" before the newline. */
static void check_message(const error_state_t* e) {
  char want[200];
  int n = snprintf(want, sizeof(want), "lode: %s(): %s 0x%lx", e->func, e->what, (unsigned long)(uintptr_t)e->ptr);
  const char* got = messages();
  bool ok = strncmp(got, want, (size_t)n) == 0;
  const char* rest = got + (ok ? n : 0);
  if (ok && strncmp(rest, " (block of ", 11) == 0) {
    const char* d = rest + 11;
    while (*d >= '0' && *d <= '9') d++;
    ok = d > rest + 11 && strcmp(d, " bytes)\n") == 0;
  } else {
    ok = ok && strcmp(rest, "\n") == 0;
  }
  if (!ok) fz_fail("lode's message was \"%s\", expected \"%s\\n\" (a block error may add \" (block of N bytes)\")",
                   got, want);
}

static void check_errors(unsigned t) {
  error_state_t* e = &errs[t];
  if (e->expected == NULL) {
    if (e->seen != 0)
      fz_fail("lode reported %s(): %s %p on an operation that handed it only its own pointers", e->func, e->what,
              e->ptr);
    return;
  }
  if (e->seen != 1 || !error_matches(e))
    fz_fail("expected lode to report exactly one '%s', got %zu report(s)%s%s", e->expected, e->seen,
            e->seen ? ", the first: " : "", e->seen ? e->what : "");
  check_message(e);
  errors_reset(t);
}

void fz_errors_check(void) { check_errors(S->current()); }

static int64_t harness_clock(void* arg) {
  (void)arg;
  return atomic_load_explicit(&clock_ms, memory_order_relaxed);
}

/* --- tracing and what is running -------------------------------------------------- */
void fz_trace(const char* fmt, ...) {
  if (!config.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}

static void set_where(const char* phase) {
  bool in_op = prog != NULL && op_index < prog->count;
  fz_where(phase, in_op ? &prog->ops[op_index] : NULL, op_index);
}

static void trace_op(const fz_op_t* op) {
  if (!config.verbose) return;
  char text[128];
  fz_format_op(op, text, sizeof(text));
  printf("#%-4zu %-44s", op_index + 1, text);
}

/* --- what ops.c uses --------------------------------------------------------------- */
fz_heap_t* fz_heap(unsigned h) { return &heaps[h % FZ_HEAPS]; }
unsigned fz_next_seq(void) { return seq++; }
void fz_clock_advance(int64_t ms) {
  int64_t now = atomic_fetch_add_explicit(&clock_ms, ms, memory_order_relaxed) + ms;
  /* purge expiry reads the injected clock: so must the API that shows it */
  if (lode_clock_now() != now) fz_fail("lode_clock_now() is %lld, the injected clock %lld", (long long)lode_clock_now(), (long long)now);
}
void fz_fail_os_armed(void) { fail_armed = true; }
bool fz_thread_owns(const void* p) { return lode_test_owns(p); }

void fz_expect_enomem(const char* what) {
  int e = errno;
  if (e != ENOMEM) fz_fail("%s returned NULL with errno %d (%s), expected ENOMEM", what, e, strerror(e));
  if (!fail_armed) fz_fail("%s returned NULL (ENOMEM) although no OS failure was injected", what);
  fz_trace(" = NULL (ENOMEM)");
}

bool fz_over_cap(size_t add) {
  if (fz_shadow_live_bytes() + add > FZ_LIVE_CAP) {
    fz_trace(" (skipped: over the live-bytes cap)");
    return true;
  }
  if (add > FZ_BIG_MIN) {
    if (big_bytes + add > FZ_BIG_CAP) {
      fz_trace(" (skipped: over the input's cap on large blocks)");
      return true;
    }
    big_bytes += add;
  }
  return false;
}

bool fz_calloc_over_cap(size_t add) {
  if (calloc_bytes + add > FZ_CALLOC_CAP) {
    fz_trace(" (skipped: over the input's calloc cap)");
    return true;
  }
  calloc_bytes += add;
  return false;
}

void fz_free_slot(unsigned slot, const char* why) {
  fz_slot_t* s = fz_slot(slot);
  if (!s->live) return;
  fz_shadow_verify(slot, SIZE_MAX, why);
  uint8_t* p = s->p;
  /* free leaves errno alone (POSIX.1-2024, glibc 2.33): a purge, unmap or
   * reset the OS refuses inside it must not show (review, 2026-12-07) */
  errno = EDOM;
  lode_free(p);
  if (errno != EDOM) fz_fail("free changed errno to %d (%s): free must leave errno alone", errno, strerror(errno));
  fz_shadow_drop(slot);
  s->freed = p;
}

void fz_new_block(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, const char* what) {
  if (p == NULL) {
    fz_expect_enomem(what);
    return;
  }
  /* A parked op that resumed: its slot may have been taken meanwhile. */
  fz_free_slot(slot, "when an op resumed from a park took its slot");
  fz_shadow_add(slot, p, size, align, heap, zeroed, fz_next_seq());
  fz_slot(slot)->thread = (uint8_t)S->current();
  fz_trace(" = %p usable %zu", (void*)p, fz_slot(slot)->usable);
}

/* A block the acting thread has just allocated from one of its heaps lies
 * in a segment that thread owns: a block of another thread's (or of an
 * abandoned) segment would take its owner's free lists without their lock. */
void fz_new_own_block(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, const char* what) {
  fz_new_block(slot, p, size, align, heap, zeroed, what);
  /* (LODE_SECURE's malloc(0) points into a range of no segment: usable size 0) */
  if (p != NULL && lode_usable_size(p) != 0 && !fz_thread_owns(p))
    fz_fail("%s gave %p, in a segment this thread (t%u) does not own", what, p, S->current());
}

static void verify_heap_membership(unsigned h) {
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    const fz_slot_t* s = fz_slot(i);
    if (!s->live || s->busy) continue;
    bool owns = lode_heap_owns(heaps[h].heap, s->p);
    if (s->heap == (int)h && !owns) fz_fail("s%u = %p came from h%u but lode_heap_owns says no", i, (void*)s->p, h);
    if (s->heap != (int)h && owns)
      fz_fail("s%u = %p did not come from h%u but lode_heap_owns says yes", i, (void*)s->p, h);
  }
}

void fz_heap_destroy(unsigned h) {
  full_due = true;
  verify_heap_membership(h);
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && !fz_slot(i)->busy && fz_slot(i)->heap == (int)h)
      fz_shadow_verify(i, SIZE_MAX, "before heap-destroy");
  /* Its blocks are dying while the destroy runs: parked mid-way (at
   * `purging`, say), no other thread's op may take one for live (AFL,
   * 2026-12-06: a bad-realloc of one met its freed page, and lode's "not
   * allocated" is right). */
  bool dying[FZ_SLOTS] = {false};
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && !fz_slot(i)->busy && fz_slot(i)->heap == (int)h) dying[i] = fz_slot(i)->busy = true;
  lode_heap_destroy(heaps[h].heap);
  heaps[h].live = false;
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_shadow_drop(i);
    if (dying[i]) fz_slot(i)->busy = false;
  }
  /* Blocks of every other heap stay intact. */
  fz_shadow_verify_all("after a heap-destroy of another heap");
}

void fz_heap_delete(unsigned h) {
  full_due = true;
  verify_heap_membership(h);
  lode_heap_delete(heaps[h].heap);
  heaps[h].live = false;
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_slot(i)->heap = -1;
}

void fz_exit_heaps(unsigned thread) {
  for (unsigned h = 0; h < FZ_HEAPS; h++) {
    if (!heaps[h].live || heaps[h].owner != thread) continue;
    heaps[h].live = false;
    for (unsigned i = 0; i < FZ_SLOTS; i++)
      if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_slot(i)->heap = -1;
  }
}

/* Explicitly (not by returning from the thread) when it may park inside. */
void fz_exit_current(void) { S->exit_current(park_armed[S->current()] >= 0); }
void fz_end_current(void) { S->end_current(); }
static bool ended_holding[FZ_THREADS];
void fz_ended_holding(unsigned t) {
  if (t < FZ_THREADS) ended_holding[t] = true;
}

/* --- parks ------------------------------------------------------------------------- */
bool fz_park_pending(unsigned thread);
bool fz_park_pending(unsigned thread) { return park_armed[thread] >= 0; }

void fz_park_arm(unsigned thread, int point) {
  park_armed[thread] = point;
  fz_trace(" (t%u stops at %s in its next op)", thread, lode_test_point_name((lode_point_t)point));
}

void fz_resume(unsigned thread) {
  if (!S->parked(thread)) {
    fz_trace(" (not parked: nothing)");
    return;
  }
  S->resume(thread);
  full_due = true;
}

static bool any_parked(void) {
  for (unsigned t = 0; t < FZ_THREADS; t++)
    if (S->parked(t)) return true;
  return false;
}

/* Called by lode at its test points, on the thread that reached one. */
static bool in_fork_child; /* only the forking thread exists: nothing parks, nothing is resumed */
/* The child's messages stay in its own memory: it checks them itself, at its
 * end (fz_check_no_message), and starts without the parent's pending ones
 * (those of a parked op, which the child never resumes).  Its only thread
 * holds no lock of the parent's. */
void fz_enter_fork_child(void) {
  in_fork_child = true;
  pthread_mutex_init(&message_lock, NULL);
  pending_len = 0;
}

static void point_hook(lode_point_t point, const void* obj) {
  if (in_fork_child) return;
  unsigned t = S->current();
  if (point == LODE_POINT_WAIT_FREEING) {
    /* t waits for a remote free in flight: the thread parked inside it must
     * go on, or t would wait for ever (on one OS thread, literally). */
    for (unsigned u = 0; u < FZ_THREADS; u++) {
      if (u != t && S->parked(u) && parked_obj[u] == obj &&
          (parked_point[u] == LODE_POINT_REMOTE_FREEING || parked_point[u] == LODE_POINT_REMOTE_PUSHING)) {
        fz_trace(" [t%u waits for t%u's free: resumes it]", t, u);
        S->resume(u);
        return;
      }
    }
    return;
  }
  if (t >= FZ_THREADS || park_armed[t] != (int)point) return;
  park_armed[t] = -1;
  parked_point[t] = point;
  parked_obj[t] = obj;
  fz_trace(" [t%u parked at %s]\n", t, lode_test_point_name(point));
  if (config.verbose) fflush(stdout);
  S->park();
  fz_trace(" [t%u resumed]", t);
}

/* --- jobs ---------------------------------------------------------------------------- */
/* The checks walk every free list of every page, which was most of a run's
 * time.  Most of them walk only pages whose lists changed since their last
 * walk (lode_test_check_*_quick); every FZ_FULL_CHECK_EVERY-th check of a
 * thread, and every check at an exit and at the end, walks all: a link
 * overwritten inside a list that did not change is found there. */
#define FZ_FULL_CHECK_EVERY 16
static unsigned thread_checks[FZ_THREADS + 1], process_checks;

static void check_thread_here(const char* which, bool full) {
  violation_count = 0;
  if (++thread_checks[S->current()] % FZ_FULL_CHECK_EVERY == 0 || full) lode_check_thread();
  else lode_test_check_thread_quick();
  check_result(which);
}

static void check_thread_full(const char* which) {
  violation_count = 0;
  lode_check_thread();
  check_result(which);
}

static void check_process_now(const char* which, bool full) {
  if (any_parked()) return; /* a parked op holds its state in flux */
  violation_count = 0;
  if (++process_checks % FZ_FULL_CHECK_EVERY == 0 || full) lode_check_process();
  else lode_test_check_process_quick();
  check_result(which);
}

void fz_check_thread(const char* which) { check_thread_full(which); }
void fz_check_process(const char* which) { check_process_now(which, true); }

/* Kinds the run treats apart, looked up once (by name: the table is the
 * one place that orders them). */
static int k_exit, k_exit_malloc, k_park, k_resume, k_collect;
static bool k_process[64]; /* the op changes process-wide state by itself */

static void kinds_init(void) {
  k_exit = fz_op_lookup("exit");
  k_exit_malloc = fz_op_lookup("exit-malloc");
  k_park = fz_op_lookup("park");
  k_resume = fz_op_lookup("resume");
  k_collect = fz_op_lookup("collect");
  for (size_t k = 0; k < fz_op_count && k < 64; k++)
    k_process[k] = (int)k == k_exit || (int)k == k_exit_malloc || (int)k == k_resume ||
                   strcmp(fz_ops[k].name, "collect") == 0 ||
                   strcmp(fz_ops[k].name, "heap-delete") == 0 || strcmp(fz_ops[k].name, "heap-destroy") == 0;
}

/* The slot an op works on (its block may be mid-way in lode while the op is
 * parked), or -1. */
static int op_slot(const fz_op_t* op) {
  const uint8_t* a = fz_ops[op->kind].args;
  for (int i = 0; i < FZ_MAX_ARGS; i++)
    if (a[i] == FZ_A_SLOT || a[i] == FZ_A_OUT) return op->slot;
  return -1;
}

/* One op on its worker, with its checks. */
static void worker_job(const fz_op_t* op) {
  trace_op(op);
  errors_reset(op->thread);
  full_due = op->kind == k_collect; /* a collect's promise (P4) is checked in full only */
  int slot = op_slot(op);
  if (slot >= 0) fz_slot((unsigned)slot)->busy = true;
  fz_ops[op->kind].run(op);
  if (slot >= 0) fz_slot((unsigned)slot)->busy = false;
  check_errors(op->thread);
  fz_trace("\n");
  if (op->kind != k_exit && op->kind != k_exit_malloc)
    check_thread_here("lode_check_thread on the acting thread", full_due);
}

/* Does this op change what lode_check_process looks at? */
typedef struct {
  size_t abandoned_total, reclaimed, abandoned, os_failures;
} proc_mark_t;

static void proc_mark(proc_mark_t* m) {
  lode_stats_t st;
  lode_stats_get(&st);
  *m = (proc_mark_t){st.segments_abandoned_total, st.segments_reclaimed, st.segments_abandoned, st.os_failures};
}

/* A free by another thread changes what lode_check_process looks at only
 * when it may land in an abandoned segment (one that is owned is its owner's
 * thread check's). */
static bool process_changed(const fz_op_t* op, const proc_mark_t* before, const proc_mark_t* now, bool cross_thread) {
  if (k_process[op->kind] || (cross_thread && before->abandoned != 0)) return true;
  return now->abandoned_total != before->abandoned_total || now->reclaimed != before->reclaimed;
}

/* An op that met OS failures: each was reported (LODE_VERBOSE), once.  Other
 * messages stay for the check of the op that expects them (a parked one's). */
static void check_failures_reported(const proc_mark_t* before, const proc_mark_t* now) {
  if (now->os_failures == before->os_failures) return;
  check_verbose("after an op that met OS failures");
}

static void run_op(const fz_op_t* op) {
  proc_mark_t before;
  proc_mark(&before);
  const fz_slot_t* s = fz_slot(op->slot);
  bool cross = op_slot(op) >= 0 && s->live && s->thread != op->thread;
  if (!fz_op_on_worker(op)) {
    trace_op(op);
    errors_reset(FZ_MAIN);
    fz_ops[op->kind].run(op);
    check_errors(FZ_MAIN);
    fz_trace("\n");
    proc_mark_t now;
    proc_mark(&now);
    check_failures_reported(&before, &now);
    check_process_now("lode_check_process from main, workers parked", false);
    return;
  }
  if (op->kind == k_exit && !S->alive(op->thread)) {
    trace_op(op);
    fz_trace(" (not running: nothing)\n");
    return;
  }
  int slot = op_slot(op);
  if (slot >= 0 && fz_slot((unsigned)slot)->busy) {
    trace_op(op);
    fz_trace(" (skipped: s%d's op is parked mid-way)\n", slot);
    return;
  }
  if (op->kind == k_park || op->kind == k_resume) {
    /* Bookkeeping of the scheduler: nothing runs on the thread itself. */
    trace_op(op);
    fz_ops[op->kind].run(op);
    fz_trace("\n");
  } else {
    S->run(op->thread, worker_job, op);
  }
  proc_mark_t now;
  proc_mark(&now);
  check_failures_reported(&before, &now);
  if (process_changed(op, &before, &now, cross))
    check_process_now("lode_check_process after the op, other threads parked",
                      op->kind == k_exit || op->kind == k_exit_malloc);
}

/* --- end of input ----------------------------------------------------------------------- */
static void destroy_heap_job(const fz_op_t* op) {
  errors_reset(op->thread);
  if (op->heap % 2 == 0) fz_heap_destroy(op->heap);
  else fz_heap_delete(op->heap);
  check_errors(op->thread);
  check_thread_full("lode_check_thread after destroying a heap at the end");
}

static void finish_job(const fz_op_t* op) {
  errors_reset(op->thread);
  lode_collect(true);
  check_errors(op->thread);
  check_thread_full("lode_check_thread after the final forced collect of a worker");
  S->exit_current(false);
}

static void finish_input(void) {
  op_index = SIZE_MAX;
  set_where("end of input: resuming parked threads");
  for (unsigned t = 0; t < FZ_THREADS; t++) {
    park_armed[t] = -1;
    while (S->parked(t)) S->resume(t);
  }
  set_where("end of input: fail-os reset");
  lode_test_fail_os(0);
  set_where("end of input: destroying/deleting live heaps on their owners");
  for (unsigned h = 0; h < FZ_HEAPS; h++) {
    if (!heaps[h].live) continue;
    fz_op_t op = {.thread = (uint8_t)heaps[h].owner, .heap = (uint8_t)h};
    S->run(heaps[h].owner, destroy_heap_job, &op);
  }
  set_where("end of input: freeing every live slot from main");
  errors_reset(FZ_MAIN);
  for (unsigned i = 0; i < FZ_SLOTS; i++) fz_free_slot(i, "at the end of the input");
  check_process_now("lode_check_process after freeing everything", true);
  set_where("end of input: workers' forced collect and exit");
  for (unsigned t = 0; t < FZ_THREADS; t++) {
    if (!S->alive(t)) continue;
    fz_op_t op = {.thread = (uint8_t)t};
    S->run(t, finish_job, &op);
  }
  /* a thread that ended holding thread data no exit gave back: the next
   * thread with its id runs that exit (unless an op's thread did already) */
  set_where("end of input: a new thread where one ended holding thread data");
  for (unsigned t = 0; t < FZ_THREADS; t++) {
    if (!ended_holding[t]) continue;
    ended_holding[t] = false;
    fz_op_t op = {.thread = (uint8_t)t};
    S->run(t, finish_job, &op);
  }
  S->end_input();
  set_where("end of input: main's forced collect");
  lode_collect(true);
  check_errors(FZ_MAIN);
  check_thread_full("lode_check_thread on main after the final forced collect");
  check_process_now("lode_check_process after every worker exited", true);
  set_where("end of input: lode's messages");
  fz_check_no_message("before the end of the input");
  set_where("end of input: A5 (lode_check_clean)");
  violation_count = 0;
  lode_check_clean(baseline);
  check_result("lode_check_clean against the baseline measured at start");
  set_where("between inputs");
  atomic_store_explicit(&clock_ms, FZ_CLOCK_START, memory_order_relaxed);
  lode_test_set_clock(harness_clock, NULL); /* the clock restarts: so does lode's purge backoff */
}

/* --- entry points ----------------------------------------------------------------------- */
/* Every option lode reads, set before each input: lode read its environment
 * (LODE_PURGE_MODE=free, ...) once, and an input must run as its replay
 * command runs it, whatever the environment of either; only its ops change them. */
static void options_reset(void) {
  static const struct {
    lode_option_t o;
    long v;
  } fixed[] = {
      {LODE_OPTION_PURGE_DELAY, FZ_PURGE_DELAY_DEFAULT},
      {LODE_OPTION_PURGE_MODE, LODE_PURGE_DONTNEED},
      {LODE_OPTION_SHOW_STATS, 0},
      {LODE_OPTION_VERBOSE, 1},                   /* report every OS failure */
      {LODE_OPTION_ON_ERROR, LODE_ON_ERROR_WARN}, /* report, write the message, go on */
      {LODE_OPTION_PURGE_BACKOFF, 6},
      {LODE_OPTION_HUGE_OS_PAGES, 1},
      {LODE_OPTION_QUARANTINE, 1},
  };
  _Static_assert(sizeof(fixed) / sizeof(fixed[0]) == LODE_OPTION_COUNT, "an option the harness does not set");
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    lode_option_set(fixed[i].o, fixed[i].v);
    if (lode_option_get(fixed[i].o) != fixed[i].v)
      fz_fail("lode_option_set(%d, %ld) did not take", (int)fixed[i].o, fixed[i].v);
  }
}

bool fz_init(const fz_config_t* cfg) {
  config = *cfg;
  S = config.mode == FZ_MODE_SIM ? &fz_sched_sim : &fz_sched_real;
  kinds_init();
  if (config.mode == FZ_MODE_SIM && !lode_sim_available()) {
    fprintf(stderr, "lode-fuzz: the simulated mode needs a build with LODE_SIM=ON\n");
    return false;
  }
  if (config.mode == FZ_MODE_SIM && !lode_sim_os_enable(true)) {
    fprintf(stderr, "lode-fuzz: the simulated OS must be on before lode's first allocation\n");
    return false;
  }
  if (!S->init()) return false;
  for (unsigned t = 0; t < FZ_THREADS; t++) park_armed[t] = -1;
  lode_check_set_reporter(reporter, NULL);
  lode_test_set_error_hook(error_hook);
  lode_test_set_point_hook(point_hook);
  messages_open();
  options_reset();
  lode_test_set_clock(harness_clock, NULL);
  lode_test_set_secret(0x6c6f64652d66757aull); /* LODE_SECURE's shuffles replay as they ran */
  fz_replay_changed();
  lode_collect(true); /* main's thread data exists from here on */
  lode_stats_t st;
  lode_stats_get(&st);
  baseline = st.committed_current;
  failures_at_start = st.os_failures;
  verbose_lines = 0;
  return true;
}

void fz_shell_quote(const char* s, char* buf, size_t cap) {
  if (cap == 0) return;
  bool plain = *s != '\0';
  for (const char* c = s; *c && plain; c++)
    plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("_./+,:=@%-", *c) != NULL;
  if (plain) {
    snprintf(buf, cap, "%s", s);
    return;
  }
  /* '...', each ' inside as '\'' */
  size_t n = 0;
  buf[n++] = '\'';
  for (const char* c = s; *c && n + 5 < cap; c++) {
    if (*c == '\'') {
      memcpy(buf + n, "'\\''", 4);
      n += 4;
    } else {
      buf[n++] = *c;
    }
  }
  if (n + 1 < cap) buf[n++] = '\'';
  buf[n < cap ? n : cap - 1] = '\0';
}

const char* fz_replay_command(const char* replay_bin) {
  static char cmd[4210];
  char quoted[4200];
  fz_shell_quote(replay_bin, quoted, sizeof(quoted));
  snprintf(cmd, sizeof(cmd), "%s -v", quoted);
  return cmd;
}

void fz_set_input_name(const char* name) {
  static char quoted[4200];
  fz_shell_quote(name, quoted, sizeof(quoted));
  config.input_name = quoted;
  fz_replay_changed();
}

void fz_run(const fz_program_t* p) {
  prog = p;
  inputs_run++;
  set_where("start of input");
  messages_open();
  options_reset();
  lode_sim_os_new_input();
  lode_sim_os_stats_t os0, os1;
  lode_sim_os_stats(&os0);
  fz_shadow_reset();
  memset(heaps, 0, sizeof(heaps));
  fail_armed = false;
  seq = 0;
  calloc_bytes = 0;
  big_bytes = 0;
  violation_count = 0;
  memset(thread_checks, 0, sizeof(thread_checks));
  process_checks = 0;
  memset(errs, 0, sizeof(errs));
  for (op_index = 0; op_index < prog->count; op_index++) {
    set_where("");
    run_op(&prog->ops[op_index]);
  }
  finish_input();
  prog = NULL;
  lode_sim_os_stats(&os1);
  /* the coins show in the trace: a trace that differs between a run in a
   * process of its own and one after other inputs is a leak between inputs */
  if (config.mode == FZ_MODE_SIM)
    fz_trace("simulated OS: %zu purges, %zu kept their bytes (MADV_FREE)\n", os1.purges - os0.purges,
             os1.purges_kept - os0.purges_kept);
}

void fz_run_bytes(const uint8_t* data, size_t size) {
  static fz_program_t decoded; /* large: not on the stack */
  fz_decode(data, size, &decoded);
  fz_run(&decoded);
}
