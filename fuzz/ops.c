/* One function per operation of the table (optable.c).  Each runs on the
 * op's thread (workers) or on main, applies the operation to lode and to the
 * shadow model, and checks what the operation itself promises; harness.c
 * runs the checks common to every op. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lode.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

/* --- allocation ----------------------------------------------------------------- */
void fz_op_malloc(const fz_op_t* op) {
  fz_free_slot(op->slot, "when its slot was reused by malloc");
  if (fz_over_cap(op->size)) return;
  fz_new_own_block(op->slot, lode_malloc(op->size), op->size, 0, -1, false, "lode_malloc");
}

void fz_op_calloc(const fz_op_t* op) {
  size_t total = (size_t)op->count * op->size;
  fz_free_slot(op->slot, "when its slot was reused by calloc");
  if (fz_over_cap(total) || fz_calloc_over_cap(total)) return;
  fz_new_own_block(op->slot, lode_calloc(op->count, op->size), total, 0, -1, true, "lode_calloc");
}

/* impossible: a request no allocator can meet, chosen by K mod 6 (the
 * slot byte: the binary form has no room for another op).  Each gives NULL
 * (posix_memalign its error code) with ENOMEM, or EINVAL for an alignment
 * that is not a power of two, and changes nothing: slot K's block, which
 * the realloc case asks to grow, keeps its bytes. */
void fz_op_impossible(const fz_op_t* op) {
  const size_t huge = SIZE_MAX / 2;
  void* p = NULL;
  int want = ENOMEM, got;
  const char* what;
  fz_slot_t* s = fz_slot(op->slot);
  errno = 0;
  switch (op->slot % 6) {
    case 0: what = "lode_calloc(SIZE_MAX/8, 16)"; p = lode_calloc(SIZE_MAX / 8, 16); break;
    case 1: what = "lode_malloc(SIZE_MAX/2)"; p = lode_malloc(huge); break;
    case 2: what = "lode_aligned_alloc(64, SIZE_MAX/2)"; p = lode_aligned_alloc(64, huge); break;
    case 3:
      what = "lode_aligned_alloc(48, 64)";
      want = EINVAL;
      p = lode_aligned_alloc(48, 64);
      break;
    case 4: {
      what = "lode_posix_memalign(&p, 64, SIZE_MAX/2)";
      void* out = (void*)0x1;
      int rc = lode_posix_memalign(&out, 64, huge);
      if (out != (void*)0x1) fz_fail("%s failed (%d) and changed *out", what, rc);
      errno = rc;
      break;
    }
    default:
      what = s->live ? "lode_realloc(slot's block, SIZE_MAX/2)" : "lode_realloc(NULL, SIZE_MAX/2)";
      p = lode_realloc(s->live ? s->p : NULL, huge);
      break;
  }
  got = errno;
  if (p != NULL) fz_fail("%s returned %p instead of NULL", what, p);
  if (got != want) fz_fail("%s: errno %d (%s), expected %s", what, got, strerror(got), want == EINVAL ? "EINVAL" : "ENOMEM");
  if (s->live) fz_shadow_verify(op->slot, SIZE_MAX, "after an impossible request (it must stay intact)");
  fz_trace(" %s = NULL (%s)", what, want == EINVAL ? "EINVAL" : "ENOMEM");
}

void fz_op_aligned(const fz_op_t* op) {
  size_t align = (size_t)1 << op->align_log;
  fz_free_slot(op->slot, "when its slot was reused by aligned-alloc");
  if (fz_over_cap(op->size)) return;
  fz_new_own_block(op->slot, lode_aligned_alloc(align, op->size), op->size, align, -1, false, "lode_aligned_alloc");
}

/* realloc in its three forms: how = 0 lode_realloc, 1 lode_heap_realloc
 * with heap h, 2 lode_reallocarray(count, size) (count 16 and size code 0 ask
 * for a product that overflows: NULL, ENOMEM, the block kept). */
static void do_realloc(const fz_op_t* op, int how, int heap, size_t count) {
  fz_slot_t* s = fz_slot(op->slot);
  size_t size = how == 2 ? count * op->size : op->size;
  const char* what = how == 0 ? "lode_realloc" : how == 1 ? "lode_heap_realloc" : "lode_reallocarray";
  void* hp = heap >= 0 ? fz_heap((unsigned)heap)->heap : NULL;
  if (how == 2 && count == 16 && op->size == 0) { /* the overflowing product */
    errno = 0;
    void* r = lode_reallocarray(s->live ? s->p : NULL, SIZE_MAX / 8, 16);
    if (r != NULL || errno != ENOMEM) fz_fail("lode_reallocarray(p, SIZE_MAX/8, 16) gave %p errno %d", r, errno);
    fz_shadow_verify(op->slot, SIZE_MAX, "after an overflowing reallocarray (the block must stay intact)");
    fz_trace(" = NULL (ENOMEM)");
    return;
  }
  if (!s->live) {
    if (fz_over_cap(size)) return;
    void* p = how == 0 ? lode_realloc(NULL, size) : how == 1 ? lode_heap_realloc(hp, NULL, size) : lode_reallocarray(NULL, count, op->size);
    fz_new_own_block(op->slot, p, size, 0, heap, false, what);
    return;
  }
  if (size > s->size && fz_over_cap(size - s->size)) return;
  fz_shadow_verify(op->slot, SIZE_MAX, "before realloc");
  void* old = s->p;
  errno = 0;
  void* q = how == 0 ? lode_realloc(old, size) : how == 1 ? lode_heap_realloc(hp, old, size) : lode_reallocarray(old, count, op->size);
  if (q == NULL) {
    fz_expect_enomem(what);
    fz_shadow_verify(op->slot, SIZE_MAX, "after a failed realloc (the old block must stay intact)");
    return;
  }
  /* The preserved prefix still holds the old fill. */
  fz_slot_t before = *s;
  size_t keep = before.size < size ? before.size : size;
  s->p = q;
  s->usable = keep; /* verify only the prefix at the new address */
  fz_shadow_verify(op->slot, keep, "after realloc (preserved prefix)");
  fz_shadow_drop(op->slot);
  /* a block that stayed keeps its heap; a moved one comes from the heap asked */
  if (q == old) fz_new_block(op->slot, q, size, 0, before.heap, false, what); /* another thread's, maybe */
  else fz_new_own_block(op->slot, q, size, 0, heap, false, what);
}

void fz_op_realloc(const fz_op_t* op) { do_realloc(op, 0, -1, 1); }

void fz_op_reallocarray(const fz_op_t* op) { do_realloc(op, 2, -1, op->count); }

void fz_op_posix_memalign(const fz_op_t* op) {
  size_t align = (size_t)1 << op->align_log;
  fz_free_slot(op->slot, "when its slot was reused by posix-memalign");
  if (fz_over_cap(op->size)) return;
  void* p = (void*)0x1;
  errno = 0;
  int rc = lode_posix_memalign(&p, align, op->size);
  if (rc != 0) {
    if (p != (void*)0x1) fz_fail("lode_posix_memalign failed (%d) and changed *out", rc);
    errno = rc;
    fz_expect_enomem("lode_posix_memalign");
    return;
  }
  fz_new_own_block(op->slot, p, op->size, align, -1, false, "lode_posix_memalign");
}

void fz_op_free(const fz_op_t* op) {
  if (!fz_slot(op->slot)->live) {
    fz_trace(" (empty slot: nothing)");
    return;
  }
  fz_free_slot(op->slot, "on free");
}

/* --- heaps -------------------------------------------------------------------------- */
static bool heap_usable(unsigned h, unsigned thread) {
  fz_heap_t* hp = fz_heap(h);
  if (hp->live && hp->owner == thread) return true;
  if (hp->live) fz_trace(" (skipped: h%u belongs to t%u)", h, hp->owner);
  else fz_trace(" (skipped: h%u not live)", h);
  return false;
}

void fz_op_heap_new(const fz_op_t* op) {
  fz_heap_t* hp = fz_heap(op->heap);
  if (hp->live) {
    fz_trace(" (skipped: h%u live)", op->heap);
    return;
  }
  errno = 0;
  lode_heap_t* h = lode_heap_new();
  if (h == NULL) {
    fz_expect_enomem("lode_heap_new");
    return;
  }
  if (hp->live) {
    /* this op was parked inside lode_heap_new (a reclaim at the thread's
     * start) while another thread's heap-new took the handle */
    lode_heap_delete(h);
    fz_trace(" (h%u was taken while this op was parked: the new heap deleted)", op->heap);
    return;
  }
  *hp = (fz_heap_t){.heap = h, .owner = op->thread, .live = true};
  fz_trace(" = %p", (void*)h);
}

void fz_op_heap_malloc(const fz_op_t* op) {
  if (!heap_usable(op->heap, op->thread)) return;
  fz_free_slot(op->slot, "when its slot was reused by heap-malloc");
  if (fz_over_cap(op->size)) return;
  fz_new_own_block(op->slot, lode_heap_malloc(fz_heap(op->heap)->heap, op->size), op->size, 0, op->heap, false,
               "lode_heap_malloc");
}

void fz_op_heap_aligned(const fz_op_t* op) {
  if (!heap_usable(op->heap, op->thread)) return;
  size_t align = (size_t)1 << op->align_log;
  fz_free_slot(op->slot, "when its slot was reused by heap-aligned-alloc");
  if (fz_over_cap(op->size)) return;
  fz_new_own_block(op->slot, lode_heap_aligned_alloc(fz_heap(op->heap)->heap, align, op->size), op->size, align,
               op->heap, false, "lode_heap_aligned_alloc");
}

void fz_op_heap_calloc(const fz_op_t* op) {
  if (!heap_usable(op->heap, op->thread)) return;
  size_t total = (size_t)op->count * op->size;
  fz_free_slot(op->slot, "when its slot was reused by heap-calloc");
  if (fz_over_cap(total) || fz_calloc_over_cap(total)) return;
  fz_new_own_block(op->slot, lode_heap_calloc(fz_heap(op->heap)->heap, op->count, op->size), total, 0, op->heap, true,
               "lode_heap_calloc");
}

void fz_op_heap_realloc(const fz_op_t* op) {
  if (!heap_usable(op->heap, op->thread)) return;
  do_realloc(op, 1, op->heap, 1);
}

/* A heap another thread owns: lode must refuse collect, delete and destroy
 * and change nothing (on real threads each would rework the owner's lists
 * unlocked; the schedulers run one thread at a time, so only the counters
 * can show it). */
enum { FOREIGN_COLLECT, FOREIGN_DELETE, FOREIGN_DESTROY };
static bool foreign_heap_refused(const fz_op_t* op, int call) {
  fz_heap_t* hp = fz_heap(op->heap);
  if (!hp->live || hp->owner == op->thread) return false;
  static const char* names[] = {"lode_heap_collect", "lode_heap_delete", "lode_heap_destroy"};
  lode_stats_t a, b;
  lode_stats_get(&a);
  if (call == FOREIGN_COLLECT) lode_heap_collect(hp->heap, op->flag != 0);
  else if (call == FOREIGN_DELETE) lode_heap_delete(hp->heap);
  else lode_heap_destroy(hp->heap);
  lode_stats_get(&b);
  if (a.pages_current != b.pages_current || a.pages_queued != b.pages_queued || a.purges != b.purges ||
      a.segments_current != b.segments_current || a.committed_current != b.committed_current ||
      a.decommits != b.decommits)
    fz_fail("%s of h%u (t%u's) from t%u was not refused: pages %zu -> %zu, queued %zu -> %zu, purges %zu -> %zu, "
            "segments %zu -> %zu, committed %zu -> %zu",
            names[call], op->heap, hp->owner, op->thread, a.pages_current, b.pages_current, a.pages_queued,
            b.pages_queued, a.purges, b.purges, a.segments_current, b.segments_current, a.committed_current,
            b.committed_current);
  fz_trace(" (refused: h%u belongs to t%u)", op->heap, hp->owner);
  return true;
}

void fz_op_heap_collect(const fz_op_t* op) {
  fz_heap_t* hp = fz_heap(op->heap);
  if (foreign_heap_refused(op, FOREIGN_COLLECT)) return;
  lode_heap_collect(hp->live ? hp->heap : NULL, op->flag != 0);
}

void fz_op_heap_delete(const fz_op_t* op) {
  if (foreign_heap_refused(op, FOREIGN_DELETE)) return;
  if (heap_usable(op->heap, op->thread)) fz_heap_delete(op->heap);
}

void fz_op_heap_destroy(const fz_op_t* op) {
  if (foreign_heap_refused(op, FOREIGN_DESTROY)) return;
  if (!heap_usable(op->heap, op->thread)) return;
  /* A destroy kills every block of the heap: one that a parked op (a realloc
   * on another thread) is still using would be the program's use after free,
   * which lode need not survive (found as an O1 write into purged memory). */
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    const fz_slot_t* s = fz_slot(i);
    if (s->live && s->busy && s->heap == (int)op->heap) {
      fz_trace(" (skipped: s%u of h%u is in a parked op)", i, op->heap);
      return;
    }
  }
  fz_heap_destroy(op->heap);
}

/* --- threads, time, options ------------------------------------------------------------ */
void fz_op_collect(const fz_op_t* op) { lode_collect(op->flag != 0); }

void fz_op_exit(const fz_op_t* op) {
  fz_exit_heaps(op->thread); /* they fold into the backing heap and are abandoned with it */
  fz_exit_current();
}

/* A destructor that runs after lode's (another library's, in the last round)
 * and allocates: lode must not keep new thread data for a thread whose exit
 * is over, for nothing would give it back.  The block lives on. */
void fz_op_exit_malloc(const fz_op_t* op) {
  fz_free_slot(op->slot, "when its slot was reused by exit-malloc");
  fz_exit_heaps(op->thread);
  /* A thread with no thread data yet (this is its first op): lode's exit
   * has nothing to run, and the allocation in the last round makes thread
   * data that no destructor gives back (lode cannot tell the round).  The
   * next thread given its id (glibc: the same thread control block) runs
   * its exit; the harness starts one there at the end of the input if no op
   * did.  A real thread registers lode's key in the op, and its exit runs
   * after the allocation (below), as pthread's next round would run it. */
  bool first = !lode_test_thread_has_data(), real = fz_cfg->mode == FZ_MODE_REAL;
  if (first) {
    if (!real) fz_ended_holding(op->thread);
  } else {
    lode_test_thread_exit();
    errno = 0;
    lode_heap_t* h = lode_heap_new(); /* it would outlive the exit: refused */
    if (h != NULL || errno != ENOMEM)
      fz_fail("lode_heap_new after the thread's exit gave %p (errno %d), not NULL with ENOMEM", (void*)h, errno);
  }
  /* which allocation: the slot's number says (each once gave a dead
   * thread's data back differently: malloc alone was fuzzed) */
  if (!fz_over_cap(op->size)) {
    switch (op->slot % 5) {
      case 0: fz_new_block(op->slot, lode_malloc(op->size), op->size, 0, -1, false, "lode_malloc"); break;
      case 1: fz_new_block(op->slot, lode_calloc(1, op->size), op->size, 0, -1, true, "lode_calloc"); break;
      case 2: fz_new_block(op->slot, lode_aligned_alloc(64, op->size), op->size, 64, -1, false, "lode_aligned_alloc"); break;
      case 3: fz_new_block(op->slot, lode_realloc(NULL, op->size), op->size, 0, -1, false, "lode_realloc"); break;
      default: /* its default heap asked for after the exit */
        fz_new_block(op->slot, lode_heap_malloc(lode_heap_get_default(), op->size), op->size, 0, -1, false,
                     "lode_heap_malloc");
        break;
    }
  }
  /* here, not in the destructor: a test point parked in it must park under
   * the scheduler's baton */
  if (first && real) lode_test_thread_exit();
  fz_end_current();
}

void fz_op_clock(const fz_op_t* op) { fz_clock_advance(op->value); }

void fz_op_purge_delay(const fz_op_t* op) {
  lode_option_set(LODE_OPTION_PURGE_DELAY, (long)op->value);
  if (lode_option_get(LODE_OPTION_PURGE_DELAY) != (long)op->value)
    fz_fail("purge delay %lld was not taken", (long long)op->value);
}

const char* const fz_osop_names[FZ_OSOPS] = {"", "purge", "discard", "reset", "protect", "unmap", "map", "any"};

unsigned fz_osop_mask(unsigned osop) {
  static const unsigned masks[FZ_OSOPS] = {LODE_OS_CLASSIC, LODE_OS_PURGE,   LODE_OS_DISCARD, LODE_OS_RESET,
                                           LODE_OS_PROTECT, LODE_OS_RELEASE, LODE_OS_MAP,     LODE_OS_ALL};
  return masks[osop % FZ_OSOPS];
}

void fz_op_fail_os(const fz_op_t* op) {
  lode_test_fail_os_ops(fz_osop_mask(op->osop), op->skip, op->count);
  if (op->count > 0) fz_fail_os_armed();
}

/* lode_option_t of the option table's rows (optable.c), in its order. */
static const lode_option_t fuzzed_options[] = {LODE_OPTION_PURGE_DELAY, LODE_OPTION_PURGE_MODE,
                                               LODE_OPTION_PURGE_BACKOFF};

/* A valid value is taken as it is; an invalid one is refused and the old
 * value stays (lode_option_set's contract). */
void fz_op_option(const fz_op_t* op) {
  lode_option_t o = fuzzed_options[op->option];
  long before = lode_option_get(o), v = (long)op->value;
  bool valid = o == LODE_OPTION_PURGE_DELAY || (o == LODE_OPTION_PURGE_MODE && v >= 0 && v <= 2) ||
               (o == LODE_OPTION_PURGE_BACKOFF && v >= 0 && v <= 16);
  lode_option_set(o, v);
  long after = lode_option_get(o);
  if (after != (valid ? v : before))
    fz_fail("option %s set to %ld: now %ld, expected %ld (%s)", fz_option_name(op->option), v, after,
            valid ? v : before, valid ? "a valid value" : "an invalid value is refused");
}

/* option-text: texts as an environment gives them, each with the value it
 * means when it means one (written out here, not computed the way lode
 * computes it).  The valid range per option is fz_op_option's. */
#define NOT_A_VALUE LONG_MIN /* (LONG_MIN itself is the "min" row's value, listed apart) */
typedef struct {
  const char* alias; /* how the .ops form writes it: no spaces, not empty */
  const char* text;
  long value;     /* NOT_A_VALUE: not a number (too large for a long, or not one) */
  bool is_min;    /* the text is LONG_MIN */
  int name_of;    /* a name: for which of text_options (-1: a number or garbage) */
} option_text_t;
static const option_text_t option_texts[] = {
    {"0", "0", 0, false, -1}, {"1", "1", 1, false, -1}, {"2", "2", 2, false, -1}, {"3", "3", 3, false, -1},
    {"-1", "-1", -1, false, -1}, {"6", "6", 6, false, -1}, {"16", "16", 16, false, -1}, {"17", "17", 17, false, -1},
    {"10", "10", 10, false, -1}, {"+5", "+5", 5, false, -1}, {"007", "007", 7, false, -1},
    {"9223372036854775807", "9223372036854775807", LONG_MAX, false, -1},
    {"9223372036854775806", "9223372036854775806", LONG_MAX - 1, false, -1},
    {"-9223372036854775808", "-9223372036854775808", 0, true, -1},
    {"9223372036854775808", "9223372036854775808", NOT_A_VALUE, false, -1},
    {"-9223372036854775809", "-9223372036854775809", NOT_A_VALUE, false, -1},
    {"99999999999999999999999", "99999999999999999999999", NOT_A_VALUE, false, -1},
    {"(empty)", "", NOT_A_VALUE, false, -1}, {"(space)1", " 1", NOT_A_VALUE, false, -1},
    {"1(space)", "1 ", NOT_A_VALUE, false, -1}, {"0x10", "0x10", NOT_A_VALUE, false, -1},
    {"1e3", "1e3", NOT_A_VALUE, false, -1}, {"abc", "abc", NOT_A_VALUE, false, -1},
    {"--1", "--1", NOT_A_VALUE, false, -1}, {"-", "-", NOT_A_VALUE, false, -1},
    {"dontneed", "dontneed", 0, false, 1}, {"free", "free", 1, false, 1}, {"decommit", "decommit", 2, false, 1},
    {"true", "true", 1, false, 3}, {"false", "false", 0, false, 3},
    {"abort", "abort", NOT_A_VALUE, false, -1}, {"FREE", "FREE", NOT_A_VALUE, false, -1},
};
static const struct {
  const char* name;
  lode_option_t option;
  long min, max;
} text_options[] = {
    {"purge-delay", LODE_OPTION_PURGE_DELAY, LONG_MIN, LONG_MAX},
    {"purge-mode", LODE_OPTION_PURGE_MODE, 0, 2},
    {"purge-backoff", LODE_OPTION_PURGE_BACKOFF, 0, 16},
    {"huge-os-pages", LODE_OPTION_HUGE_OS_PAGES, 0, 2}, /* 2: auto */
};
int fz_text_option_count(void) { return (int)(sizeof(text_options) / sizeof(text_options[0])); }
const char* fz_text_option_name(int id) { return id >= 0 && id < fz_text_option_count() ? text_options[id].name : "?"; }
int fz_text_count(void) { return (int)(sizeof(option_texts) / sizeof(option_texts[0])); }
const char* fz_text_alias(int id) { return id >= 0 && id < fz_text_count() ? option_texts[id].alias : "?"; }

void fz_op_option_text(const fz_op_t* op) {
  const option_text_t* t = &option_texts[op->text];
  int oi = op->option;
  lode_option_t o = text_options[oi].option;
  long v = t->is_min ? LONG_MIN : t->value;
  bool is_value = t->is_min || (t->value != NOT_A_VALUE && (t->name_of < 0 || t->name_of == oi));
  bool valid = is_value && v >= text_options[oi].min && v <= text_options[oi].max;
  long before = lode_option_get(o);
  errno = 0;
  int r = lode_option_set_text(o, t->text);
  int e = errno;
  long after = lode_option_get(o);
  fz_trace(" = %d (now %ld)", r, after);
  if (valid ? (r != 0 || after != v || e != 0) : (r != -1 || e != EINVAL || after != before))
    fz_fail("lode_option_set_text(%s, \"%s\") returned %d errno %d, option now %ld; expected %s %ld",
            text_options[oi].name, t->text, r, e, after, valid ? "0, errno untouched, the value" : "-1 EINVAL, unchanged",
            valid ? v : before);
}

/* stats: every number lode_stats_print_fd writes is the one lode_stats_get
 * gives (nothing runs between the two: the other threads wait). */
void fz_op_stats(const fz_op_t* op) {
  (void)op;
  static int fds[2] = {-1, -1};
  if (fds[0] < 0 && pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) fz_fail("stats: pipe2: %s", strerror(errno));
  lode_stats_t st;
  lode_stats_get(&st);
  lode_stats_print_fd(fds[1]);
  char text[2048];
  ssize_t n = read(fds[0], text, sizeof(text) - 1);
  if (n <= 0) fz_fail("lode_stats_print_fd wrote nothing");
  text[n] = '\0';
  const struct {
    const char* label;
    size_t value;
  } want[] = {
      {"segments ", 0}, {"current ", st.segments_current}, {"peak ", st.segments_peak},
      {"abandoned ", st.segments_abandoned}, {"abandoned-total ", st.segments_abandoned_total},
      {"reclaimed ", st.segments_reclaimed}, {"in-use ", st.pages_current}, {"peak ", st.pages_peak},
      {"queued-for-purge ", st.pages_queued}, {"committed ", st.committed_current / 1024},
      {"peak ", st.committed_peak / 1024}, {"reserved ", st.reserved_current / 1024}, {"mmaps ", st.mmaps},
      {"munmaps ", st.munmaps}, {"mremaps ", st.remaps}, {"commits ", st.commits}, {"decommits ", st.decommits},
      {"purges ", st.purges}, {"mprotects ", st.protects}, {"failures ", st.os_failures},
      {"threads ", st.threads_current},
  };
  const char* at = text;
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    const char* f = strstr(at, want[i].label);
    if (f == NULL) fz_fail("lode_stats_print_fd: no '%s' after offset %zu in:\n%s", want[i].label, (size_t)(at - text), text);
    at = f + strlen(want[i].label);
    if (i == 0) continue; /* the heading */
    while (*at == ' ') at++;
    char* end;
    unsigned long long got = strtoull(at, &end, 10);
    if (end == at || got != want[i].value)
      fz_fail("lode_stats_print_fd printed %s%.*s, lode_stats_get says %zu", want[i].label, (int)(end - at), at,
              want[i].value);
    at = end;
  }
  fz_trace(" (%zd bytes, all %zu numbers agree)", n, sizeof(want) / sizeof(want[0]) - 1);
}

/* fork: the acting thread forks, wherever the other threads are (one may be
 * parked mid-way in lode, at a point where a real thread could be when
 * another forks).  The child has only this thread: it must find every block
 * intact, free them all (most into pages of threads it does not have),
 * allocate and collect without waiting for a thread that is not there, and
 * pass the checks.  Once per input: a fork costs what a whole input does. */
extern void __gcov_dump(void) __attribute__((weak)); /* coverage builds: the child's counters */
#define FORK_CHILD_LIMIT_MS 20000

static void fork_child_run(void) {
  fz_enter_fork_child();
  lode_test_fail_os(0); /* the child tests what the fork left, not OS failures the parent armed */
  fz_check_thread("lode_check_thread in the fork child, before anything");
  fz_check_process("lode_check_process in the fork child, before anything");
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    fz_slot_t* s = fz_slot(i);
    if (!s->live || s->busy) continue; /* a parked op's block belongs to a thread the child lacks */
    fz_free_slot(i, "in the fork child");
  }
  static const size_t sizes[] = {16, 1000, 70656, 3u << 20};
  void* p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = lode_malloc(sizes[i]);
    if (p[i] == NULL) fz_fail("fork child: lode_malloc(%zu) returned NULL", sizes[i]);
    memset(p[i], 0x5a, sizes[i]);
  }
  for (int i = 0; i < 4; i++) lode_free(p[i]);
  lode_collect(true);
  fz_check_thread("lode_check_thread in the fork child, after freeing, allocating and a forced collect");
  fz_check_process("lode_check_process in the fork child, at its end");
  fz_check_no_message("in the fork child, at its end"); /* (a wait's report, say: mutant 24) */
  if (__gcov_dump) __gcov_dump();
  _exit(0);
}

void fz_op_fork(const fz_op_t* op) {
  (void)op;
  static unsigned long forked_in;
  if (forked_in == fz_input_number()) {
    fz_trace(" (skipped: this input forked already)");
    return;
  }
  forked_in = fz_input_number();
  fflush(NULL);
  /* Through a pointer: a --coverage build turns a direct call into one that
   * zeroes the child's counters after lode's fork handlers ran, and the
   * child's report (__gcov_dump) would leave them out. */
  static pid_t (*volatile fork_fn)(void) = fork;
  pid_t pid = fork_fn();
  if (pid < 0) {
    fz_trace(" (fork failed: %s; nothing)", strerror(errno));
    return;
  }
  if (pid == 0) fork_child_run();
  int status = 0;
  for (int ms = 0;; ms++) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) fz_fail("fork: waitpid: %s", strerror(errno));
    if (ms == FORK_CHILD_LIMIT_MS) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fz_fail("the fork child did not finish in %d s (waiting for a thread it does not have?)",
              FORK_CHILD_LIMIT_MS / 1000);
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fz_fail("the fork child failed (%s %d; its report is above)", WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  fz_check_no_message("in the parent, after its fork");
  fz_trace(" (child %d: clean)", (int)pid);
}

/* --- parks ------------------------------------------------------------------------------ */
/* The points a thread can be parked at, by lode's names (lode_test_point_name).
 * Not wait-freeing: there a thread waits for a parked one, and the harness
 * resumes that one.  An op keeps an index into this list (new points go at
 * its end, so an input in text, and a binary one of --to-bin, keeps its
 * meaning; a raw point byte is taken modulo the count); fz_op_park maps it
 * to lode's point by name. */
static const char* const point_names[] = {"remote-freeing",   "abandon-unlisted", "reclaim-popped",
                                          "reclaim-adopting", "collect-detached", "claim-failed",
                                          "remote-pushing",   "purging",          "huge-mapped"};
int fz_point_count(void) { return (int)(sizeof(point_names) / sizeof(point_names[0])); }
const char* fz_point_name(int point) { return point >= 0 && point < fz_point_count() ? point_names[point] : "?"; }
int fz_point_lookup(const char* name) {
  for (int i = 0; name != NULL && i < fz_point_count(); i++)
    if (strcmp(name, point_names[i]) == 0) return i;
  return -1;
}

void fz_op_park(const fz_op_t* op) {
  int point = lode_test_point_lookup(fz_point_name(op->point));
  if (point < 0) fz_fail("harness: lode has no test point named %s", fz_point_name(op->point));
  fz_park_arm(op->thread, point);
}
void fz_op_resume(const fz_op_t* op) { fz_resume(op->thread); }

/* --- bad input ----------------------------------------------------------------------------
 * Pointers lode never handed out.  lode must report each (the harness runs
 * lode with LODE_ON_ERROR=ignore and a hook that records every report) and
 * change nothing: the slot's block stays intact, counted and usable. */

/* A pointer inside slot s: code < 0x8000 picks an offset in (0, usable);
 * code >= 0x8000 takes the lowest set bit of the block's address when it lies
 * inside the block, as an over-aligned allocation would place its pointer
 * (lode once took such a pointer for the start of an aligned block). */
static uint8_t* interior(const fz_slot_t* s, uint16_t code) {
  if (s->usable < 2) return NULL;
  size_t off = 1 + (code & 0x7fffu) % (s->usable - 1);
  if (code & 0x8000u) {
    uintptr_t a = (uintptr_t)s->p, low = a & (~a + 1);
    if (low < s->usable) off = low;
  }
  return s->p + off;
}

typedef struct {
  lode_stats_t stats;
  size_t usable;
} unchanged_t;

static void before_bad(const fz_slot_t* s, unchanged_t* u) {
  lode_stats_get(&u->stats);
  u->usable = lode_usable_size(s->p);
}

static void after_bad(unsigned slot, const unchanged_t* u, const char* what) {
  const fz_slot_t* s = fz_slot(slot);
  lode_stats_t now;
  lode_stats_get(&now);
  if (now.pages_current != u->stats.pages_current || now.committed_current != u->stats.committed_current ||
      now.segments_current != u->stats.segments_current)
    fz_fail("%s changed lode's state (pages %zu -> %zu, committed %zu -> %zu)", what, u->stats.pages_current,
            now.pages_current, u->stats.committed_current, now.committed_current);
  if (lode_usable_size(s->p) != u->usable) fz_fail("%s changed s%u's usable size", what, slot);
  fz_shadow_verify(slot, SIZE_MAX, what);
}

static bool bad_target(const fz_op_t* op, uint8_t** q) {
  const fz_slot_t* s = fz_slot(op->slot);
  if (!s->live || (*q = interior(s, op->offset)) == NULL) {
    fz_trace(" (no live block of 2 bytes or more in s%u: nothing)", op->slot);
    return false;
  }
  fz_trace(" at %p (+%zu)", (void*)*q, (size_t)(*q - s->p));
  return true;
}

void fz_op_bad_free(const fz_op_t* op) {
  uint8_t* q;
  if (!bad_target(op, &q)) return;
  unchanged_t u;
  before_bad(fz_slot(op->slot), &u);
  fz_expect_error("invalid pointer (not the start of a block)");
  lode_free(q);
  after_bad(op->slot, &u, "after free() of a pointer inside the block");
}

void fz_op_bad_realloc(const fz_op_t* op) {
  uint8_t* q;
  if (!bad_target(op, &q)) return;
  unchanged_t u;
  before_bad(fz_slot(op->slot), &u);
  fz_expect_error("invalid pointer (not the start of a block)");
  errno = 0;
  void* r = lode_realloc(q, 64);
  if (r != NULL || errno != EINVAL) fz_fail("realloc of a pointer inside s%u returned %p, errno %d (expected NULL, EINVAL)",
                                            op->slot, r, errno);
  after_bad(op->slot, &u, "after realloc() of a pointer inside the block");
}

void fz_op_bad_usable(const fz_op_t* op) {
  uint8_t* q;
  if (!bad_target(op, &q)) return;
  unchanged_t u;
  before_bad(fz_slot(op->slot), &u);
  fz_expect_error("invalid pointer (not the start of a block)");
  size_t n = lode_usable_size(q);
  if (n != 0) fz_fail("malloc_usable_size of a pointer inside s%u returned %zu, expected 0", op->slot, n);
  after_bad(op->slot, &u, "after malloc_usable_size() of a pointer inside the block");
}

/* A free of a block already freed: lode reports it (a huge block's or an
 * emptied page's memory may be gone already: then the pointer is no longer
 * lode's at all) and changes nothing. */
static void free_reported(uint8_t* p, const char* what) {
  lode_stats_t before, after;
  lode_stats_get(&before);
  fz_expect_error("double free|invalid pointer");
  lode_free(p);
  lode_stats_get(&after);
  if (after.pages_current != before.pages_current || after.committed_current != before.committed_current)
    fz_fail("%s %p changed lode's state", what, (void*)p);
}

/* A second free of the block an empty slot's last free gave back, by any
 * thread, once its page went back to its segment (or the segment is gone):
 * every build reports it and changes nothing.  While the page is in use the
 * block may be live again (or its free found only later): nothing. */
static void free_again_after_page_freed(fz_slot_t* s) {
  uint8_t* p = s->freed;
  if (p == NULL || lode_test_page_in_use(p)) {
    fz_trace(" (empty slot: nothing)");
    return;
  }
  s->freed = NULL;
  fz_trace(" %p again, its page gone back", (void*)p);
  free_reported(p, "a free (its page gone back) of");
}

/* Only where lode promises to see it in every build: on the thread that owns
 * the block's page (a remote double free is found later, or in thorough
 * builds only: README, bad input), or, from any thread, once the page went
 * back to its segment. */
void fz_op_double_free(const fz_op_t* op) {
  fz_slot_t* s = fz_slot(op->slot);
  if (!s->live) {
    free_again_after_page_freed(s);
    return;
  }
  uint8_t* p = s->p;
  bool owner = fz_thread_owns(p);
  fz_free_slot(op->slot, "before a double free");
  if (!owner) {
    fz_trace(" (freed once: t%u does not own its page)", op->thread);
    return;
  }
  /* the just-freed block to realloc and malloc_usable_size first: each is
   * reported and refused (realloc once handed it out while it sat on a free
   * list: one block, two owners) */
  lode_stats_t before, after;
  lode_stats_get(&before);
  fz_expect_error("double free|invalid pointer");
  errno = 0;
  void* r = lode_realloc(p, 64);
  if (r != NULL || errno != EINVAL)
    fz_fail("realloc of the just-freed %p returned %p, errno %d (expected NULL, EINVAL)", (void*)p, r, errno);
  fz_errors_check();
  fz_expect_error("double free|invalid pointer");
  size_t n = lode_usable_size(p);
  if (n != 0) fz_fail("malloc_usable_size of the just-freed %p returned %zu (expected 0)", (void*)p, n);
  fz_errors_check();
  lode_stats_get(&after);
  if (after.pages_current != before.pages_current || after.committed_current != before.committed_current)
    fz_fail("realloc or malloc_usable_size of the just-freed %p changed lode's state", (void*)p);
  /* A page left with no live block keeps p on its lists.  Odd slots then
   * overwrite p's first word first (a write after free hides its link):
   * only the page's count of live blocks still tells the free is bad.  The
   * word is put back after: p sits on a free list. */
  if ((op->slot & 1) != 0 && lode_test_page_live(p) == 0) {
    uintptr_t link, junk = (uintptr_t)0x5a5a5a5a5a5a5a5bull;
    memcpy(&link, p, sizeof link);
    memcpy(p, &junk, sizeof junk);
    fz_trace(" (its first word overwritten)");
    free_reported(p, "the second free (first word overwritten) of");
    memcpy(p, &link, sizeof link);
    return;
  }
  free_reported(p, "the second free of");
}

static const char* const foreign_names[] = {"stack", "global", "libc", "header"};
int fz_foreign_count(void) { return (int)(sizeof(foreign_names) / sizeof(foreign_names[0])); }
const char* fz_foreign_name(int kind) { return kind >= 0 && kind < fz_foreign_count() ? foreign_names[kind] : "?"; }

static char foreign_global[64];

void fz_op_foreign_free(const fz_op_t* op) {
  char on_stack[64];
  void* libc_block = NULL;
  void* p = NULL;
  switch (op->foreign) {
    case 0: p = on_stack + 16; break;
    case 1: p = foreign_global + 16; break;
    case 2: p = libc_block = malloc(48); break;
    default:
      /* the header of a live block's segment (LODE_SECURE: a malloc(0) has no
       * segment, its address lies in a range of its own) */
      for (unsigned i = 0; i < FZ_SLOTS && p == NULL; i++)
        if (fz_slot(i)->live && (fz_slot(i)->size != 0 || fz_slot(i)->heap >= 0))
          p = (void*)(((uintptr_t)fz_slot(i)->p & ~(uintptr_t)((4u << 20) - 1)) + 64);
      break;
  }
  if (p == NULL) {
    fz_trace(" (no live block: no segment header to point at)");
    return;
  }
  fz_trace(" %p", p);
  lode_stats_t before, after;
  lode_stats_get(&before);
  fz_expect_error("invalid pointer");
  lode_free(p);
  lode_stats_get(&after);
  if (after.pages_current != before.pages_current || after.committed_current != before.committed_current)
    fz_fail("free() of a foreign pointer changed lode's state");
  free(libc_block);
}

/* --- deliberately wrong (text only) ------------------------------------------------------------ */
void fz_op_raw_double_free(const fz_op_t* op) {
  fz_slot_t* s = fz_slot(op->slot);
  if (!s->live) return;
  fz_shadow_verify(op->slot, SIZE_MAX, "on free");
  lode_free(s->p);
  lode_free(s->p); /* deliberately wrong: the oracle was not told */
  fz_shadow_drop(op->slot);
}

void fz_op_overflow(const fz_op_t* op) {
  fz_slot_t* s = fz_slot(op->slot);
  if (!s->live) return;
  lode_sim_os_touch(s->p + s->size, op->size);
  memset(s->p + s->size, (uint8_t)~s->fill, op->size); /* deliberately wrong */
}

void fz_op_scribble(const fz_op_t* op) {
  fz_slot_t* s = fz_slot(op->slot);
  if (!s->live || (size_t)op->value >= s->usable) return;
  size_t n = s->usable - (size_t)op->value;
  n = n < op->size ? n : op->size;
  lode_sim_os_touch(s->p + op->value, n);
  memset(s->p + op->value, (uint8_t)~s->fill, n); /* deliberately wrong */
}
