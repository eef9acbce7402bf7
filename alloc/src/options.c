/* Options: defaults, environment (read once at process start), run-time set.
 * The lowest layer: it reports a bad value with its own write (errors.c,
 * above it, reads options). */
#include "internal.h"

#include <stdlib.h>
#include <sched.h>
#include <unistd.h>

typedef struct option_desc_s {
  const char* env;
  long value;
} option_desc_t;

static option_desc_t options[LODE_OPTION_COUNT] = {
    [LODE_OPTION_PURGE_DELAY] = {"LODE_PURGE_DELAY", 10},
    [LODE_OPTION_PURGE_MODE] = {"LODE_PURGE_MODE", LODE_PURGE_DONTNEED},
    [LODE_OPTION_SHOW_STATS] = {"LODE_SHOW_STATS", 0},
    [LODE_OPTION_VERBOSE] = {"LODE_VERBOSE", 0},
    [LODE_OPTION_ON_ERROR] = {"LODE_ON_ERROR", LODE_ON_ERROR_ABORT},
    [LODE_OPTION_PURGE_BACKOFF] = {"LODE_PURGE_BACKOFF", 6},
    [LODE_OPTION_HUGE_OS_PAGES] = {"LODE_HUGE_OS_PAGES", LODE_HUGE_PAGES_AUTO},
    [LODE_OPTION_QUARANTINE] = {"LODE_QUARANTINE", 1},
};
static _Atomic(long) values[LODE_OPTION_COUNT];
static _Atomic(int) values_state; /* 0 unread, 1 reading, 2 ready */

/* strtol would also take leading spaces: an option's text is the number alone. */
static bool parse_long(const char* s, long* out) {
  if (!(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9'))) return false;
  char* end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

/* Named values accepted besides numbers. */
static bool parse_named(lode_option_t o, const char* s, long* out) {
  static const struct { lode_option_t o; const char* name; long v; } names[] = {
      {LODE_OPTION_PURGE_MODE, "dontneed", LODE_PURGE_DONTNEED},
      {LODE_OPTION_PURGE_MODE, "free", LODE_PURGE_FREE},
      {LODE_OPTION_PURGE_MODE, "decommit", LODE_PURGE_DECOMMIT},
      {LODE_OPTION_ON_ERROR, "abort", LODE_ON_ERROR_ABORT},
      {LODE_OPTION_ON_ERROR, "warn", LODE_ON_ERROR_WARN},
      {LODE_OPTION_ON_ERROR, "ignore", LODE_ON_ERROR_IGNORE},
      {LODE_OPTION_SHOW_STATS, "true", 1}, {LODE_OPTION_SHOW_STATS, "false", 0},
      {LODE_OPTION_VERBOSE, "true", 1}, {LODE_OPTION_VERBOSE, "false", 0},
      {LODE_OPTION_HUGE_OS_PAGES, "true", 1}, {LODE_OPTION_HUGE_OS_PAGES, "false", 0},
      {LODE_OPTION_HUGE_OS_PAGES, "auto", LODE_HUGE_PAGES_AUTO},
      {LODE_OPTION_QUARANTINE, "true", 1}, {LODE_OPTION_QUARANTINE, "false", 0},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (names[i].o == o && strcmp(names[i].name, s) == 0) {
      *out = names[i].v;
      return true;
    }
  }
  return false;
}

/* Every option has a range.  The purge delay takes any value a long holds:
 * the arithmetic on it saturates (purge_policy.c), so a huge one means
 * "practically never", as its user meant. */
static bool value_valid(lode_option_t o, long v) {
  switch (o) {
    case LODE_OPTION_PURGE_DELAY: return true;
    case LODE_OPTION_PURGE_MODE: return v >= LODE_PURGE_DONTNEED && v <= LODE_PURGE_DECOMMIT;
    case LODE_OPTION_SHOW_STATS:
    case LODE_OPTION_VERBOSE:
    case LODE_OPTION_QUARANTINE: return v == 0 || v == 1;
    case LODE_OPTION_HUGE_OS_PAGES: return v >= LODE_HUGE_PAGES_NO && v <= LODE_HUGE_PAGES_AUTO;
    case LODE_OPTION_ON_ERROR: return v >= LODE_ON_ERROR_ABORT && v <= LODE_ON_ERROR_IGNORE;
    case LODE_OPTION_PURGE_BACKOFF: return v >= 0 && v <= LODE_PURGE_BACKOFF_MAX;
    default: return false;
  }
}

static void say(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static bool parse_value(lode_option_t o, const char* s, long* out) {
  return (parse_named(o, s, out) || parse_long(s, out)) && value_valid(o, *out);
}

/* Inside the program's first allocation: errno is the program's (parse_long
 * clears it; C11 7.5: no library function sets it to zero). */
static void options_load(void) {
  int saved = errno;
  for (int i = 0; i < LODE_OPTION_COUNT; i++) {
    long v = options[i].value;
    /* secure_getenv: a set-user-ID program must not take the invoking
     * user's word (LODE_ON_ERROR=ignore would switch off its checks), as
     * glibc ignores its own malloc tunables there */
    const char* s = secure_getenv(options[i].env);
    if (s != NULL && *s != '\0') { /* empty: unset for one command (README) */
      long parsed;
      if (parse_value((lode_option_t)i, s, &parsed)) {
        v = parsed;
      } else {
        say("lode: ignoring invalid value of ");
        say(options[i].env);
        say("\n");
      }
    }
    atomic_store_explicit(&values[i], v, memory_order_relaxed);
  }
  errno = saved;
}

#ifdef LODE_TESTING
void lode_test_options_reload(void) { options_load(); }
#endif

void _lode_options_init(void) {
  int st = atomic_load_explicit(&values_state, memory_order_acquire);
  if (st == 2) return;
  st = 0;
  if (atomic_compare_exchange_strong_explicit(&values_state, &st, 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
    options_load();
    atomic_store_explicit(&values_state, 2, memory_order_release);
    return;
  }
  /* Another thread reads the environment: a few microseconds.  If it never
   * finishes (a fork child inherits the half-done state without the thread),
   * read it here: loading twice stores the same values. */
  for (unsigned spins = 0; atomic_load_explicit(&values_state, memory_order_acquire) != 2; spins++) {
    if (spins == (1u << 16)) {
      options_load();
      atomic_store_explicit(&values_state, 2, memory_order_release);
      return;
    }
    sched_yield();
  }
}

long _lode_option(lode_option_t o) {
  if (lode_unlikely(atomic_load_explicit(&values_state, memory_order_acquire) != 2)) _lode_options_init();
  return atomic_load_explicit(&values[o], memory_order_relaxed);
}

long lode_option_get(lode_option_t o) {
  if ((unsigned)o >= LODE_OPTION_COUNT) return 0;
  return _lode_option(o);
}

void lode_option_set(lode_option_t o, long value) {
  if ((unsigned)o >= LODE_OPTION_COUNT || !value_valid(o, value)) return;
  _lode_options_init();
  atomic_store_explicit(&values[o], value, memory_order_relaxed);
}

int lode_option_set_text(lode_option_t o, const char* text) {
  long v;
  int saved = errno;
  if ((unsigned)o >= LODE_OPTION_COUNT || text == NULL || !parse_value(o, text, &v)) {
    errno = EINVAL;
    return -1;
  }
  errno = saved; /* parse_long cleared it: a call that succeeds leaves it alone */
  _lode_options_init();
  atomic_store_explicit(&values[o], v, memory_order_relaxed);
  return 0;
}
