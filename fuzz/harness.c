/* The harness core: runs one decoded input on the deterministic workers,
 * applies every operation to lode and to the shadow model, and runs the
 * oracle after each one (shadow checks, lode_check_thread on the acting
 * thread, lode_check_process while every other thread is parked).  At the end
 * of the input everything is freed, the workers collect and exit and are
 * joined, main runs a forced collect and A5 (lode_check_clean) is checked; the
 * options, the clock and OS-failure injection are reset, so nothing carries
 * over to the next input. */
#include "harness.h"

#include <errno.h>
#include <lode.h>
#include "testing.h"
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fz_config_t config;
const fz_config_t* fz_cfg = &config;

typedef struct {
  lode_heap_t* heap;
  unsigned owner;
  bool live;
} fz_heap_t;

static const fz_program_t* prog;
static size_t op_index = SIZE_MAX; /* op being run, SIZE_MAX outside ops */
static const char* phase = "start";
static fz_heap_t heaps[FZ_HEAPS];
static bool fail_armed; /* a fail-os with a count > 0 ran in this input */
static size_t baseline;
static _Atomic(int64_t) clock_ms = FZ_CLOCK_START;
static unsigned seq; /* allocations so far: picks fill bytes */

/* --- failure reporting -------------------------------------------------------- */
static void describe_where(char* buf, size_t cap) {
  if (prog != NULL && op_index < prog->count) {
    char op[128];
    fz_format_op(&prog->ops[op_index], op, sizeof(op));
    snprintf(buf, cap, "op #%zu (%s)", op_index + 1, op);
  } else {
    snprintf(buf, cap, "%s", phase);
  }
}

void fz_fail(const char* fmt, ...) {
  char msg[512], where[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  describe_where(where, sizeof(where));
  fflush(stdout);
  fprintf(stderr, "lode-fuzz: FAILURE at %s: %s\n", where, msg);
  if (config.input_name != NULL)
    fprintf(stderr, "lode-fuzz: replay with: %s %s\n", config.replay_cmd ? config.replay_cmd : "lode-replay -v",
            config.input_name);
  else
    fprintf(stderr, "lode-fuzz: replay the crashing input the engine saved with: %s <crash-file>\n",
            config.replay_cmd ? config.replay_cmd : "lode-replay -v");
  fflush(stderr);
  if (config.fail_mode == FZ_FAIL_EXIT) _exit(1);
  abort();
}

static void crash_handler(int sig) {
  char where[160];
  describe_where(where, sizeof(where));
  fprintf(stderr, "lode-fuzz: CRASH (signal %d) at %s\n", sig, where);
  if (config.input_name != NULL)
    fprintf(stderr, "lode-fuzz: replay with: %s %s\n", config.replay_cmd ? config.replay_cmd : "lode-replay -v",
            config.input_name);
  fflush(stderr);
  signal(sig, SIG_DFL);
  raise(sig);
}

void fz_install_crash_report(void) {
  signal(SIGSEGV, crash_handler);
  signal(SIGBUS, crash_handler);
  signal(SIGABRT, crash_handler);
  signal(SIGFPE, crash_handler);
}

/* --- lode's checker ------------------------------------------------------------- */
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

static void check_result(size_t n, const char* which) {
  (void)n; /* the reporter has counted them */
  if (violation_count == 0) return;
  fz_fail("invariant %s violated (%s, object %p): %s [%zu violation(s)]", first_violation.inv, which,
          first_violation.obj, first_violation.msg, violation_count);
}

static void check_on_worker(void) {
  check_result(lode_check_thread(), "lode_check_thread on the acting thread");
  /* Every other worker is parked and main waits: the process is quiescent. */
  check_result(lode_check_process(), "lode_check_process, other threads parked");
}

static int64_t harness_clock(void* arg) {
  (void)arg;
  return atomic_load_explicit(&clock_ms, memory_order_relaxed);
}

/* --- tracing -------------------------------------------------------------------- */
static void trace(const char* fmt, ...) {
  if (!config.verbose) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}

static void trace_op(void) {
  if (!config.verbose) return;
  char op[128];
  fz_format_op(&prog->ops[op_index], op, sizeof(op));
  printf("#%-4zu %-44s", op_index + 1, op);
}

/* --- operations ----------------------------------------------------------------- */
static void expect_enomem(const char* what) {
  int e = errno;
  if (e != ENOMEM) fz_fail("%s returned NULL with errno %d (%s), expected ENOMEM", what, e, strerror(e));
  if (!fail_armed) fz_fail("%s returned NULL (ENOMEM) although no OS failure was injected", what);
  trace(" = NULL (ENOMEM)");
}

static bool over_cap(size_t add) {
  if (fz_shadow_live_bytes() + add <= FZ_LIVE_CAP) return false;
  trace(" (skipped: over the live-bytes cap)");
  return true;
}

static void free_slot(unsigned slot, const char* why) {
  fz_slot_t* s = fz_slot(slot);
  if (!s->live) return;
  fz_shadow_verify(slot, SIZE_MAX, why);
  lode_free(s->p);
  fz_shadow_drop(slot);
}

static void added(unsigned slot) {
  const fz_slot_t* s = fz_slot(slot);
  trace(" = %p usable %zu", (void*)s->p, s->usable);
}

static void new_block(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, const char* what) {
  if (p == NULL) {
    expect_enomem(what);
    return;
  }
  fz_shadow_add(slot, p, size, align, heap, zeroed, seq++);
  added(slot);
}

static bool heap_usable(unsigned h, unsigned thread) {
  if (heaps[h].live && heaps[h].owner == thread) return true;
  trace(heaps[h].live ? " (skipped: h%u belongs to t%u)" : " (skipped: h%u not live)", h, heaps[h].owner);
  return false;
}

static void verify_heap_membership(unsigned h) {
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    const fz_slot_t* s = fz_slot(i);
    if (!s->live) continue;
    bool owns = lode_heap_owns(heaps[h].heap, s->p);
    if (s->heap == (int)h && !owns) fz_fail("s%u = %p came from h%u but lode_heap_owns says no", i, (void*)s->p, h);
    if (s->heap != (int)h && owns)
      fz_fail("s%u = %p did not come from h%u but lode_heap_owns says yes", i, (void*)s->p, h);
  }
}

static void heap_destroy(unsigned h) {
  verify_heap_membership(h);
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_shadow_verify(i, SIZE_MAX, "before heap-destroy");
  lode_heap_destroy(heaps[h].heap);
  heaps[h].live = false;
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_shadow_drop(i);
  /* Blocks of every other heap stay intact. */
  for (unsigned i = 0; i < FZ_SLOTS; i++) fz_shadow_verify(i, SIZE_MAX, "after a heap-destroy of another heap");
}

static void heap_delete(unsigned h) {
  verify_heap_membership(h);
  lode_heap_delete(heaps[h].heap);
  heaps[h].live = false;
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_slot(i)->heap = -1;
}

/* One operation on the acting worker; true when the worker must exit. */
static bool run_worker_op(const fz_op_t* op, unsigned me) {
  unsigned slot = op->slot;
  fz_slot_t* s = fz_slot(slot);
  switch (op->kind) {
    case FZ_OP_MALLOC:
      free_slot(slot, "when its slot was reused by malloc");
      if (over_cap(op->size)) break;
      new_block(slot, lode_malloc(op->size), op->size, 0, -1, false, "lode_malloc");
      break;
    case FZ_OP_CALLOC:
      if (op->flag) {
        errno = 0;
        void* p = lode_calloc(SIZE_MAX / 8, 16);
        if (p != NULL) fz_fail("lode_calloc(SIZE_MAX/8, 16) returned %p instead of NULL", p);
        if (errno != ENOMEM) fz_fail("lode_calloc overflow: errno %d, expected ENOMEM", errno);
        trace(" = NULL (ENOMEM)");
        break;
      }
      free_slot(slot, "when its slot was reused by calloc");
      if (over_cap((size_t)op->count * op->size)) break;
      new_block(slot, lode_calloc(op->count, op->size), (size_t)op->count * op->size, 0, -1, true, "lode_calloc");
      break;
    case FZ_OP_ALIGNED:
      free_slot(slot, "when its slot was reused by aligned-alloc");
      if (over_cap(op->size)) break;
      new_block(slot, lode_aligned_alloc((size_t)1 << op->align_log, op->size), op->size, (size_t)1 << op->align_log,
                -1, false, "lode_aligned_alloc");
      break;
    case FZ_OP_REALLOC: {
      if (!s->live) {
        if (over_cap(op->size)) break;
        new_block(slot, lode_realloc(NULL, op->size), op->size, 0, -1, false, "lode_realloc(NULL, n)");
        break;
      }
      if (op->size > s->size && over_cap(op->size - s->size)) break;
      fz_shadow_verify(slot, SIZE_MAX, "before realloc");
      void* old = s->p;
      errno = 0;
      void* q = lode_realloc(old, op->size);
      if (q == NULL) {
        expect_enomem("lode_realloc");
        fz_shadow_verify(slot, SIZE_MAX, "after a failed realloc (the old block must stay intact)");
        break;
      }
      /* The preserved prefix still holds the old fill. */
      fz_slot_t before = *s;
      size_t keep = before.size < op->size ? before.size : op->size;
      s->p = q;
      s->usable = keep; /* verify only the prefix at the new address */
      fz_shadow_verify(slot, keep, "after realloc (preserved prefix)");
      fz_shadow_drop(slot);
      fz_shadow_add(slot, q, op->size, 0, q == old ? before.heap : -1, false, seq++);
      added(slot);
      break;
    }
    case FZ_OP_FREE:
      if (!s->live) {
        trace(" (empty slot: nothing)");
        break;
      }
      free_slot(slot, "on free");
      break;
    case FZ_OP_HEAP_NEW: {
      if (heaps[op->heap].live) {
        trace(" (skipped: h%u live)", op->heap);
        break;
      }
      errno = 0;
      lode_heap_t* h = lode_heap_new();
      if (h == NULL) {
        expect_enomem("lode_heap_new");
        break;
      }
      heaps[op->heap] = (fz_heap_t){.heap = h, .owner = me, .live = true};
      trace(" = %p", (void*)h);
      break;
    }
    case FZ_OP_HEAP_MALLOC:
      if (!heap_usable(op->heap, me)) break;
      free_slot(slot, "when its slot was reused by heap-malloc");
      if (over_cap(op->size)) break;
      new_block(slot, lode_heap_malloc(heaps[op->heap].heap, op->size), op->size, 0, op->heap, false,
                "lode_heap_malloc");
      break;
    case FZ_OP_HEAP_DELETE:
      if (heap_usable(op->heap, me)) heap_delete(op->heap);
      break;
    case FZ_OP_HEAP_DESTROY:
      if (heap_usable(op->heap, me)) heap_destroy(op->heap);
      break;
    case FZ_OP_COLLECT:
      lode_collect(op->flag != 0);
      break;
    case FZ_OP_EXIT:
      /* Its heaps fold into the backing heap and are abandoned with it. */
      for (unsigned h = 0; h < FZ_HEAPS; h++) {
        if (!heaps[h].live || heaps[h].owner != me) continue;
        heaps[h].live = false;
        for (unsigned i = 0; i < FZ_SLOTS; i++)
          if (fz_slot(i)->live && fz_slot(i)->heap == (int)h) fz_slot(i)->heap = -1;
      }
      return true;
    case FZ_OP_BAD_DOUBLE_FREE:
      if (!s->live) break;
      fz_shadow_verify(slot, SIZE_MAX, "on free");
      lode_free(s->p);
      lode_free(s->p); /* deliberately wrong */
      fz_shadow_drop(slot);
      break;
    case FZ_OP_BAD_OVERFLOW:
      if (!s->live) break;
      memset(s->p + s->size, (uint8_t)~s->fill, op->size); /* deliberately wrong */
      break;
    case FZ_OP_BAD_SCRIBBLE: {
      if (!s->live || (size_t)op->value >= s->usable) break;
      size_t n = s->usable - (size_t)op->value;
      memset(s->p + op->value, (uint8_t)~s->fill, n < op->size ? n : op->size); /* deliberately wrong */
      break;
    }
    default: fz_fail("harness bug: op kind %u on a worker", op->kind);
  }
  return false;
}

static void run_main_op(const fz_op_t* op) {
  switch (op->kind) {
    case FZ_OP_CLOCK: atomic_fetch_add_explicit(&clock_ms, op->value, memory_order_relaxed); break;
    case FZ_OP_PURGE_DELAY: lode_option_set(LODE_OPTION_PURGE_DELAY, op->value); break;
    case FZ_OP_FAIL_OS:
      lode_test_fail_os(op->count);
      if (op->count > 0) fail_armed = true;
      break;
    default: fz_fail("harness bug: op kind %u on main", op->kind);
  }
}

/* Worker job: run ops for this thread from op_index on, until an op for
 * another thread or for main, or this thread's exit. */
static bool ops_job(unsigned me, void* arg) {
  (void)arg;
  while (op_index < prog->count) {
    const fz_op_t* op = &prog->ops[op_index];
    if (!fz_op_on_worker(op) || op->thread != me) return false;
    trace_op();
    bool exit_now = run_worker_op(op, me);
    trace("\n");
    if (exit_now) return true; /* checked by main after the join */
    check_on_worker();
    op_index++;
  }
  return false;
}

/* The next op's worker when it can take the ops job over directly: any op
 * of a live worker (an exit too: that worker then hands back to main, which
 * joins it). */
static unsigned next_worker(void) {
  if (prog == NULL || op_index >= prog->count) return FZ_THREADS;
  const fz_op_t* op = &prog->ops[op_index];
  if (!fz_op_on_worker(op) || !fz_sched_alive(op->thread)) return FZ_THREADS;
  return op->thread;
}

/* --- end of input ------------------------------------------------------------------- */
static bool destroy_heap_job(unsigned me, void* arg) {
  (void)me;
  unsigned h = (unsigned)(uintptr_t)arg;
  if (h % 2 == 0) heap_destroy(h);
  else heap_delete(h);
  check_on_worker();
  return false;
}

static bool finish_job(unsigned me, void* arg) {
  (void)me;
  (void)arg;
  lode_collect(true);
  check_result(lode_check_thread(), "lode_check_thread after the final forced collect of a worker");
  return true;
}

static void finish_input(void) {
  op_index = SIZE_MAX;
  phase = "end of input: fail-os reset";
  lode_test_fail_os(0);
  phase = "end of input: destroying/deleting live heaps on their owners";
  for (unsigned h = 0; h < FZ_HEAPS; h++)
    if (heaps[h].live) fz_sched_run(heaps[h].owner, destroy_heap_job, (void*)(uintptr_t)h);
  phase = "end of input: freeing every live slot from main";
  for (unsigned i = 0; i < FZ_SLOTS; i++) free_slot(i, "at the end of the input");
  check_result(lode_check_process(), "lode_check_process after freeing everything");
  phase = "end of input: workers' forced collect and exit";
  for (unsigned t = 0; t < FZ_THREADS; t++)
    if (fz_sched_alive(t)) fz_sched_run(t, finish_job, NULL);
  phase = "end of input: main's forced collect";
  lode_collect(true);
  check_result(lode_check_thread(), "lode_check_thread on main after the final forced collect");
  check_result(lode_check_process(), "lode_check_process after every worker exited");
  phase = "end of input: A5 (lode_check_clean)";
  check_result(lode_check_clean(baseline), "lode_check_clean against the baseline measured at start");
  phase = "between inputs";
  lode_option_set(LODE_OPTION_PURGE_DELAY, FZ_PURGE_DELAY_DEFAULT);
  atomic_store_explicit(&clock_ms, FZ_CLOCK_START, memory_order_relaxed);
  lode_test_set_clock(harness_clock, NULL); /* the clock restarts: so does lode's purge backoff */
}

/* --- entry points ---------------------------------------------------------------------- */
void fz_init(const fz_config_t* cfg) {
  config = *cfg;
  lode_check_set_reporter(reporter, NULL);
  fz_sched_set_next(next_worker);
  lode_test_set_clock(harness_clock, NULL);
  lode_option_set(LODE_OPTION_PURGE_DELAY, FZ_PURGE_DELAY_DEFAULT);
  lode_collect(true); /* main's thread data exists from here on */
  lode_stats_t st;
  lode_stats_get(&st);
  baseline = st.committed_current;
}

void fz_set_input_name(const char* name) { config.input_name = name; }

void fz_run(const fz_program_t* p) {
  prog = p;
  fz_shadow_reset();
  memset(heaps, 0, sizeof(heaps));
  fail_armed = false;
  seq = 0;
  violation_count = 0;
  phase = "start of input";
  op_index = 0;
  while (op_index < prog->count) {
    const fz_op_t* op = &prog->ops[op_index];
    if (!fz_op_on_worker(op)) {
      trace_op();
      run_main_op(op);
      trace("\n");
      check_result(lode_check_process(), "lode_check_process from main, workers parked");
      op_index++;
      continue;
    }
    if (op->kind == FZ_OP_EXIT && !fz_sched_alive(op->thread)) {
      trace_op();
      trace(" (not running: nothing)\n");
      op_index++;
      continue;
    }
    fz_sched_run(op->thread, ops_job, NULL);
    if (op_index < prog->count && prog->ops[op_index].kind == FZ_OP_EXIT &&
        !fz_sched_alive(prog->ops[op_index].thread)) {
      /* The worker exited and was joined: its segments are abandoned now. */
      check_result(lode_check_process(), "lode_check_process after the thread exited");
      op_index++;
    }
  }
  finish_input();
  prog = NULL;
}

void fz_run_bytes(const uint8_t* data, size_t size) {
  static fz_program_t decoded; /* large: not on the stack */
  fz_decode(data, size, &decoded);
  fz_run(&decoded);
}
