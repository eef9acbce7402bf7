/* Failure reports: what was running, the message, and the one command that
 * replays the input.  The crash handler only writes strings prepared before
 * (write(2) is async-signal-safe; printf is not). */
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What runs: set before every op, so only stored here (formatting it each
 * time would cost more than many ops); formatted when something fails. */
static const char* where_phase = "start";
static const fz_op_t* where_op;
static size_t where_index;
static char replay_text[600]; /* "lode-fuzz: replay with: ... FILE\n", built per input name */

static void write_str(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void build_replay(void) {
  const char* cmd = fz_cfg->replay_cmd ? fz_cfg->replay_cmd : "lode-replay -v";
  const char* mode = fz_cfg->mode == FZ_MODE_REAL ? " --mode real" : "";
  if (fz_cfg->input_name != NULL)
    snprintf(replay_text, sizeof(replay_text), "lode-fuzz: replay with: %s%s %s\n", cmd, mode, fz_cfg->input_name);
  else
    snprintf(replay_text, sizeof(replay_text),
             "lode-fuzz: replay the crashing input the engine saved with: %s%s <crash-file>\n", cmd, mode);
}

void fz_where(const char* phase, const fz_op_t* op, size_t index) {
  where_phase = phase;
  where_op = op;
  where_index = index;
}

void fz_replay_changed(void) { build_replay(); }

static void describe(char* buf, size_t cap) {
  if (where_op == NULL) {
    snprintf(buf, cap, "%s", where_phase);
    return;
  }
  char op[160];
  fz_format_op(where_op, op, sizeof(op));
  snprintf(buf, cap, "op #%zu (%s)", where_index + 1, op);
}

/* Async-signal-safe: digits by hand. */
static void write_num(size_t v) {
  char d[24];
  int n = 0;
  do d[n++] = (char)('0' + v % 10); while ((v /= 10) != 0 && n < 23);
  char r[24];
  for (int i = 0; i < n; i++) r[i] = d[n - 1 - i];
  r[n] = '\0';
  write_str(r);
}

void fz_fail(const char* fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fflush(stdout);
  char where[200];
  describe(where, sizeof(where));
  build_replay();
  fprintf(stderr, "lode-fuzz: FAILURE at %s (%s mode): %s\n", where, fz_mode_name(fz_cfg->mode), msg);
  fputs(replay_text, stderr);
  fflush(stderr);
  if (fz_cfg->fail_mode == FZ_FAIL_EXIT) _exit(1);
  abort();
}

static void crash_handler(int sig) {
  write_str("lode-fuzz: CRASH (signal ");
  write_num((size_t)sig);
  write_str(") at ");
  if (where_op != NULL) {
    write_str("op #");
    write_num(where_index + 1);
    write_str(" (");
    if (fz_ops[where_op->kind].where == FZ_ON_WORKER) {
      write_str("t");
      write_num(where_op->thread);
      write_str(" ");
    }
    write_str(fz_ops[where_op->kind].name);
    write_str(")");
  } else {
    write_str(where_phase);
  }
  write_str("\n");
  write_str(replay_text);
  signal(sig, SIG_DFL);
  raise(sig);
}

void fz_install_crash_report(void) {
  build_replay();
  signal(SIGSEGV, crash_handler);
  signal(SIGBUS, crash_handler);
  signal(SIGABRT, crash_handler);
  signal(SIGFPE, crash_handler);
}
