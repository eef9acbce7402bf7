/* The simulated scheduler (the default): the threads of an input are lode's
 * simulated thread contexts (LODE_SIM: lode_sim_thread_switch), all on this
 * one OS thread, against lode's simulated OS.  Switching thread costs a few
 * stores instead of a futex hand-off, and nothing about an input depends on
 * the kernel's scheduling: the same input runs the same way every time.
 *
 * A job runs on this thread's stack, unless its thread was told to park at a
 * test point: then it runs on a coroutine of its own, so that it can stop
 * inside lode while the next ops run, and go on later.  On x86-64 a switch
 * is a few instructions (fz_switch below); elsewhere ucontext, whose calls
 * each change the signal mask with a system call.  A thread
 * that waits inside lode for a parked one resumes it from there (harness.c's
 * point hook), as a real thread would by running on. */
#include "harness.h"

#include <errno.h>
#include <lode.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "testing.h"

#ifdef LODE_SIM
#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#ifdef FZ_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define CORO_STACK ((size_t)1 << 20)

#if defined(__x86_64__)
/* fz_switch(&save_sp, to_sp): pushes the callee-saved registers, saves the
 * stack pointer, takes the other stack's and pops its registers: the other
 * side returns from its own fz_switch (or enters coro_entry, the first
 * time: coro_prepare lays out that stack so). */
void fz_switch(void** save_sp, void* to_sp);
__asm__(".text\n"
        ".globl fz_switch\n"
        ".type fz_switch, @function\n"
        "fz_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size fz_switch, .-fz_switch\n");
typedef void* coro_ctx_t; /* its saved stack pointer */
#else
typedef ucontext_t coro_ctx_t;
#endif

typedef struct {
  bool alive, parked;
  coro_ctx_t ctx;   /* the coroutine */
  coro_ctx_t* back; /* where it goes when it parks or ends */
  const void* back_stack; /* and that side's stack (ASan must be told) */
  size_t back_size;
  bool on_coro;     /* its current job runs on its coroutine */
  uint8_t* stack;
  fz_job_fn job;
  const fz_op_t* op;
} sim_thread_t;

static sim_thread_t th[FZ_THREADS];
static unsigned cur = FZ_MAIN;
bool fz_park_pending(unsigned thread);

/* The stack the running code is on: a coroutine's, or the OS thread's. */
static const void* main_stack;
static size_t main_stack_size;

static void current_stack(const void** bottom, size_t* size) {
  if (cur < FZ_THREADS && th[cur].on_coro) {
    *bottom = th[cur].stack;
    *size = CORO_STACK;
  } else {
    *bottom = main_stack;
    *size = main_stack_size;
  }
}

/* errno is each thread's own: a thread that parked inside lode finds its
 * own when it goes on, not what the ops run meanwhile left (the harness
 * checks that a free leaves it alone). */
static int thread_errno[FZ_THREADS + 1];

static void enter(unsigned t) {
  thread_errno[cur] = errno;
  errno = thread_errno[t];
  cur = t;
  int id = t == FZ_MAIN ? -1 : (int)t;
  lode_sim_thread_switch(id);
  if (lode_sim_thread_current() != id) fz_fail("lode runs as simulated thread %d, not %d", lode_sim_thread_current(), id);
}

/* Coroutine switches, told to ASan (it keeps a shadow of each stack). */
static void coro_swap(coro_ctx_t* from, coro_ctx_t* to, const void* to_stack, size_t to_size) {
#ifdef FZ_ASAN
  void* fake = NULL;
  __sanitizer_start_switch_fiber(&fake, to_stack, to_size);
#else
  (void)to_stack;
  (void)to_size;
#endif
#if defined(__x86_64__)
  fz_switch(from, *to);
#else
  swapcontext(from, to);
#endif
#ifdef FZ_ASAN
  __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

static unsigned coro_starting; /* a new coroutine's thread */

static void coro_main(void) {
  unsigned t = coro_starting;
#ifdef FZ_ASAN
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
  th[t].job(th[t].op);
  th[t].job = NULL;
  th[t].on_coro = false;
#ifdef FZ_ASAN
  __sanitizer_start_switch_fiber(NULL, th[t].back_stack, th[t].back_size); /* this stack is done with */
#endif
#if defined(__x86_64__)
  void* dead;
  fz_switch(&dead, *th[t].back);
#else
  setcontext(th[t].back);
#endif
  abort(); /* never resumed */
}

/* t's coroutine, ready to enter coro_main on its own stack. */
static void coro_prepare(unsigned t) {
#if defined(__x86_64__)
  /* Six registers, then coro_main as the return address, then a slot that
   * leaves the stack as a call would (rsp % 16 == 8 at entry). */
  void** sp = (void**)(void*)(th[t].stack + CORO_STACK) - 8;
  for (int i = 0; i < 6; i++) sp[i] = NULL;
  sp[6] = (void*)(uintptr_t)coro_main;
  sp[7] = NULL;
  th[t].ctx = sp;
#else
  getcontext(&th[t].ctx);
  th[t].ctx.uc_stack.ss_sp = th[t].stack;
  th[t].ctx.uc_stack.ss_size = CORO_STACK;
  th[t].ctx.uc_link = NULL;
  makecontext(&th[t].ctx, coro_main, 0);
#endif
  coro_starting = t;
}

/* Into t's coroutine until it parks or ends; the caller's thread after. */
static void switch_into(unsigned t) {
  coro_ctx_t here;
  unsigned prev = cur;
  th[t].back = &here;
  current_stack(&th[t].back_stack, &th[t].back_size);
  th[t].parked = false;
  th[t].on_coro = true;
  enter(t);
  coro_swap(&here, &th[t].ctx, th[t].stack, CORO_STACK);
  enter(prev);
}

static void s_resume(unsigned t) {
  if (th[t].parked) switch_into(t);
}

static void s_run(unsigned t, fz_job_fn job, const fz_op_t* op) {
  while (th[t].parked) s_resume(t); /* its earlier op ends first (it may park again on the way) */
  if (!th[t].alive) thread_errno[t] = 0; /* a new thread */
  th[t].alive = true;
  if (!fz_park_pending(t)) {
    unsigned prev = cur;
    enter(t);
    job(op);
    enter(prev);
    return;
  }
  th[t].job = job;
  th[t].op = op;
  coro_prepare(t);
  switch_into(t);
}

static void s_park(void) {
  unsigned t = cur;
  th[t].parked = true;
  coro_swap(&th[t].ctx, th[t].back, th[t].back_stack, th[t].back_size);
}

/* lode's real thread exit, at once, on the simulated thread. */
static void s_exit_current(bool explicit_exit) {
  (void)explicit_exit;
  lode_sim_thread_exit((int)cur);
  th[cur].alive = false;
}

/* No more destructor rounds: the context is dropped as it is. */
static void s_end_current(void) {
  lode_sim_thread_end((int)cur);
  th[cur].alive = false;
}

static bool s_init(void) {
  pthread_attr_t attr;
  void* bottom = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &bottom, &size);
    pthread_attr_destroy(&attr);
  }
  main_stack = bottom;
  main_stack_size = size;
  for (unsigned t = 0; t < FZ_THREADS; t++) {
    void* s = mmap(NULL, CORO_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED) return false;
    th[t].stack = s;
  }
  return true;
}

static bool s_alive(unsigned t) { return th[t].alive; }
static bool s_parked(unsigned t) { return th[t].parked; }
static unsigned s_current(void) { return cur; }
static void s_end_input(void) { enter(FZ_MAIN); }

const fz_sched_t fz_sched_sim = {"sim", s_init, s_run, s_alive, s_parked, s_park,
                                 s_resume, s_exit_current, s_current, s_end_input, s_end_current};
#else
static bool no_sim(void) {
  fprintf(stderr, "lode-fuzz: this build has no simulation (configure with -DLODE_SIM=ON)\n");
  return false;
}
const fz_sched_t fz_sched_sim = {"sim", no_sim, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
#endif
