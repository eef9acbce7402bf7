/* Helpers of the robustness tests: run a scenario in a forked child with its
 * stderr captured through a pipe, check how it ended, and check that the
 * parent's own heap still works afterwards. */
#ifndef LODE_ROBUST_H
#define LODE_ROBUST_H

/* internal.h first: it includes lode.h with its own attribute settings. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"

#define SKIP_CODE 77

/* Hide a pointer or size from the optimiser, so that free(&local) or
 * malloc(SIZE_MAX) reach the allocator and draw no compile-time warning. */
/* The process's mapped size (for tests that set RLIMIT_AS above it). */
static inline size_t vm_bytes(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static inline void* launder(const void* p) {
  void* q = (void*)(uintptr_t)p;
  __asm__ volatile("" : "+r"(q));
  return q;
}
static inline size_t launder_size(size_t n) {
  __asm__ volatile("" : "+r"(n));
  return n;
}

typedef struct child_result_s {
  int status;      /* from waitpid */
  char err[16384]; /* captured stderr, NUL-terminated */
  size_t errlen;
} child_result_t;

static inline void child_read_all(int fd, child_result_t* r) {
  r->errlen = 0;
  for (;;) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t room = sizeof(r->err) - 1 - r->errlen;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(r->err + r->errlen, buf, take);
    r->errlen += take;
  }
  r->err[r->errlen] = '\0';
}

/* Forks; the child (stderr on a pipe the parent reads into r) runs
 * body(arg), which must not return; the parent waits for it. */
static inline void spawn_child(void (*body)(void*), void* arg, child_result_t* r) {
  int fds[2];
  fflush(stdout);
  fflush(stderr);
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(2);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    close(fds[1]);
    alarm(250); /* a hang ends as SIGALRM before ctest's 300 s limit; a slow, loaded machine does not */
    body(arg);
    _exit(127);
  }
  close(fds[1]);
  child_read_all(fds[0], r);
  close(fds[0]);
  while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
  }
}

typedef struct child_fn_s {
  void (*fn)(void*);
  void* arg;
} child_fn_t;

static inline void child_run_fn(void* p) {
  const child_fn_t* c = p;
  test_failures = 0; /* the child's own verdict, not the parent's so far */
  c->fn(c->arg);
  fflush(stdout);
  _exit(test_failures ? 1 : 0);
}

/* fn runs in a child whose stderr is the pipe; returning from fn exits 0. */
static inline void run_child(void (*fn)(void*), void* arg, child_result_t* r) {
  child_fn_t c = {fn, arg};
  spawn_child(child_run_fn, &c, r);
}

typedef struct child_exec_s {
  const char* argv0;
  const char* scenario;
  const char* on_error;
} child_exec_t;

static inline void child_exec(void* p) {
  const child_exec_t* c = p;
  if (c->on_error != NULL)
    setenv("LODE_ON_ERROR", c->on_error, 1);
  else
    unsetenv("LODE_ON_ERROR");
  execl(c->argv0, c->argv0, c->scenario, (char*)NULL);
}

/* Re-run this program (argv0) with `scenario` as its argument and the
 * variable LODE_ON_ERROR set to on_error (NULL: unset). */
static inline void run_exec(const char* argv0, const char* scenario, const char* on_error,
                            child_result_t* r) {
  child_exec_t c = {argv0, scenario, on_error};
  spawn_child(child_exec, &c, r);
}

static inline int child_signal(const child_result_t* r) {
  return WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
}
static inline int child_exit(const child_result_t* r) {
  return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

static inline void child_dump(const char* what, const child_result_t* r) {
  fprintf(stderr, "  [%s] status: %s %d; stderr: <<%s>>\n", what,
          WIFSIGNALED(r->status) ? "signal" : "exit",
          WIFSIGNALED(r->status) ? WTERMSIG(r->status) : child_exit(r), r->err);
}

/* The exact line lode prints for a bad pointer. */
static inline void error_line(char* out, size_t cap, const char* func, const char* what, const void* p) {
  snprintf(out, cap, "lode: %s(): %s 0x%lx\n", func, what, (unsigned long)(uintptr_t)p);
}

/* Expectation helpers: the child died of SIGABRT / exited 0, and its stderr
 * is exactly `expect` (NULL: empty). */
#define EXPECT_CHILD(r, sig, code, expect)                                         \
  do {                                                                             \
    int _bad = 0;                                                                  \
    const char* _e = (expect);                                                     \
    if ((sig) != 0) {                                                              \
      CHECK_EQ(child_signal(r), (sig));                                            \
      _bad |= child_signal(r) != (sig);                                            \
    } else {                                                                       \
      CHECK_EQ(child_exit(r), (code));                                             \
      _bad |= child_exit(r) != (code);                                             \
    }                                                                              \
    CHECK(strcmp((r)->err, _e ? _e : "") == 0);                                    \
    _bad |= strcmp((r)->err, _e ? _e : "") != 0;                                   \
    if (_bad) {                                                                    \
      fprintf(stderr, "  expected stderr: <<%s>>\n", _e ? _e : "");               \
      child_dump("got", r);                                                        \
    }                                                                              \
  } while (0)

/* The parent's heap: blocks with known contents that outlive every child. */
#define KEEP_COUNT 64
static void* keep_blocks[KEEP_COUNT];

static inline size_t keep_size(int i) { return (size_t)(8 + 37 * i) % 3000 + 1; }

static inline void keep_fill(void) {
  for (int i = 0; i < KEEP_COUNT; i++) {
    keep_blocks[i] = malloc(keep_size(i));
    if (keep_blocks[i] == NULL) {
      fprintf(stderr, "keep_fill: out of memory\n");
      exit(2);
    }
    memset(keep_blocks[i], 0x40 + i, keep_size(i));
  }
}

/* Verify the kept blocks, then allocate, write, verify and free a batch:
 * the parent's heap is intact after a child did something bad. */
static inline void parent_heap_ok(void) {
  for (int i = 0; i < KEEP_COUNT; i++) {
    const unsigned char* b = keep_blocks[i];
    size_t n = keep_size(i);
    int same = 1;
    for (size_t j = 0; j < n; j++) same &= b[j] == (unsigned char)(0x40 + i);
    CHECK(same);
  }
  void* fresh[200];
  for (int i = 0; i < 200; i++) {
    size_t n = (size_t)(i * 97) % 5000 + 1;
    fresh[i] = malloc(n);
    CHECK(fresh[i] != NULL);
    if (fresh[i] != NULL) memset(fresh[i], i & 0xff, n);
  }
  for (int i = 0; i < 200; i++) {
    const unsigned char* b = fresh[i];
    if (b != NULL) CHECK(b[0] == (unsigned char)(i & 0xff));
    free(fresh[i]);
  }
  CHECK_EQ(lode_check_thread(), 0);
}

static inline void keep_release(void) {
  for (int i = 0; i < KEEP_COUNT; i++) free(keep_blocks[i]);
}

/* Is the process malloc lode's?  Not under a sanitizer runtime, which
 * intercepts malloc/free before the overrides of liblode.so. */
static inline int malloc_is_lode(void) {
  void* p = malloc(24);
  int mine = p != NULL && lode_heap_owns(lode_heap_get_default(), p);
  free(p);
  return mine;
}

#endif
