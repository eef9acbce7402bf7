/* Error reporting without allocating: messages go straight to fd 2.  Also
 * the one way lode waits for another thread (_lode_wait_step). */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef LODE_TESTING
/* The fuzz harness reads every message back, to check what it names. */
static _Atomic(int) message_fd = 2;
void lode_test_set_message_fd(int fd) { atomic_store_explicit(&message_fd, fd, memory_order_relaxed); }
#define MESSAGE_FD atomic_load_explicit(&message_fd, memory_order_relaxed)
#else
#define MESSAGE_FD 2
#endif

static void write_all(const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(MESSAGE_FD, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

#ifdef LODE_TESTING
/* The fuzz harness takes messages in memory: a pipe was two system calls a
 * message, a tenth of a random input's simulated run.  Not the last words
 * before an abort, which nothing would read. */
static _Atomic(lode_message_sink_fn*) message_sink;
void lode_test_set_message_sink(lode_message_sink_fn* fn) {
  atomic_store_explicit(&message_sink, fn, memory_order_release);
}
#endif

/* A message lode goes on after, whole in one call. */
static void emit(const char* s, size_t n) {
#ifdef LODE_TESTING
  lode_message_sink_fn* sink = atomic_load_explicit(&message_sink, memory_order_acquire);
  if (sink != NULL) {
    sink(s, n);
    return;
  }
#endif
  write_all(s, n);
}

static void write_hex(char* buf, size_t* pos, uintptr_t x) {
  static const char digits[] = "0123456789abcdef";
  char tmp[2 * sizeof(uintptr_t)];
  size_t n = 0;
  do {
    tmp[n++] = digits[x & 15];
    x >>= 4;
  } while (x != 0);
  buf[(*pos)++] = '0';
  buf[(*pos)++] = 'x';
  while (n > 0) buf[(*pos)++] = tmp[--n];
}

static size_t append(char* buf, size_t pos, size_t cap, const char* s) {
  while (*s && pos + 1 < cap) buf[pos++] = *s++;
  return pos;
}

#ifdef LODE_TESTING
static _Atomic(lode_error_hook_fn*) error_hook;
void lode_test_set_error_hook(lode_error_hook_fn* fn) { atomic_store_explicit(&error_hook, fn, memory_order_release); }
#endif

#ifdef LODE_SECURE /* only the hardened build's checks know the block */
static void write_dec(char* buf, size_t* pos, size_t x) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + x % 10);
    x /= 10;
  } while (x != 0);
  while (n > 0) buf[(*pos)++] = tmp[--n];
}
#endif

/* "lode: free(): invalid pointer 0x1234" then abort, warn or ignore; with a
 * block size, " (block of N bytes)" after the address. */
static void error_report(const char* func, const char* what, const void* p, size_t block_size) {
#ifdef LODE_TESTING
  lode_error_hook_fn* hook = atomic_load_explicit(&error_hook, memory_order_acquire);
  if (hook != NULL) hook(func, what, p);
#endif
  long mode = _lode_option(LODE_OPTION_ON_ERROR);
  if (mode == LODE_ON_ERROR_IGNORE) return;
  char buf[256];
  size_t cap = sizeof(buf) - 64; /* room for the address, the size and the newline */
  size_t pos = append(buf, 0, cap, "lode: ");
  pos = append(buf, pos, cap, func);
  pos = append(buf, pos, cap, "(): ");
  pos = append(buf, pos, cap, what);
  buf[pos++] = ' ';
  write_hex(buf, &pos, (uintptr_t)p);
#ifdef LODE_SECURE
  if (block_size != 0) {
    pos = append(buf, pos, sizeof(buf) - 24, " (block of ");
    write_dec(buf, &pos, block_size);
    pos = append(buf, pos, sizeof(buf) - 2, " bytes)");
  }
#else
  (void)block_size;
#endif
  buf[pos++] = '\n';
  if (mode == LODE_ON_ERROR_ABORT) {
    write_all(buf, pos);
    abort();
  }
  emit(buf, pos);
}

void _lode_error_pointer(const char* func, const char* what, const void* p) { error_report(func, what, p, 0); }

#ifdef LODE_SECURE
void _lode_error_block(const char* func, const char* what, const void* p, size_t block_size) {
  error_report(func, what, p, block_size);
}
#endif

static void say(const char* msg, const void* p, size_t n, bool dying);

void _lode_verbose(const char* msg, const void* p, size_t n) {
  if (_lode_option(LODE_OPTION_VERBOSE)) say(msg, p, n, false);
}

void _lode_fatal(const char* msg, const void* p, size_t n) {
  say(msg, p, n, true);
  abort();
}

static void say(const char* msg, const void* p, size_t n, bool dying) {
  char buf[200];
  size_t pos = append(buf, 0, sizeof(buf) - 48, "lode: ");
  pos = append(buf, pos, sizeof(buf) - 48, msg);
  buf[pos++] = ' ';
  write_hex(buf, &pos, (uintptr_t)p);
  buf[pos++] = ' ';
  write_hex(buf, &pos, (uintptr_t)n);
  buf[pos++] = '\n';
  if (dying) write_all(buf, pos);
  else emit(buf, pos);
}

void _lode_assert_fail(const char* expr, const char* file, int line) {
  char buf[512];
  size_t pos = append(buf, 0, sizeof(buf) - 40, "lode: assertion failed: ");
  pos = append(buf, pos, sizeof(buf) - 40, expr);
  pos = append(buf, pos, sizeof(buf) - 40, " at ");
  pos = append(buf, pos, sizeof(buf) - 40, file);
  pos = append(buf, pos, sizeof(buf) - 40, ":");
  char num[16];
  size_t n = 0;
  unsigned u = (unsigned)line;
  do { num[n++] = (char)('0' + u % 10); u /= 10; } while (u && n < sizeof(num));
  while (n > 0) buf[pos++] = num[--n];
  buf[pos++] = '\n';
  write_all(buf, pos);
  abort();
}

/* Real time, not lode's clock: a test's virtual clock stands still while a
 * thread waits. */
static int64_t wait_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Atomic(bool) wait_reported;

bool _lode_wait_step(lode_wait_t* w, const char* what, const void* obj) {
  w->spins++;
  sched_yield();
  if ((w->spins & 63) != 1) return false; /* the clock every 64 yields */
  int64_t now = wait_now_ms();
  if (w->since == 0) w->since = now;
  if (now - w->since < LODE_WAIT_LIMIT_MS) return false;
  if (!atomic_exchange_explicit(&wait_reported, true, memory_order_relaxed) &&
      _lode_option(LODE_OPTION_ON_ERROR) != LODE_ON_ERROR_IGNORE) {
    char buf[256];
    size_t pos = append(buf, 0, sizeof(buf) - 24, "lode: waited over 1 s for ");
    pos = append(buf, pos, sizeof(buf) - 24, what);
    buf[pos++] = ' ';
    write_hex(buf, &pos, (uintptr_t)obj);
    pos = append(buf, pos, sizeof(buf), "; going on without it (reported once)\n");
    emit(buf, pos);
  }
  return true;
}
