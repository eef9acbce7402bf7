/* The process secret that LODE_SECURE's free-list keys, canaries and
 * quarantine draws are mixed from (other builds never ask for it).  Without
 * it they were functions of a page's address and the clock, which an
 * attacker can read or guess; with it, knowing both predicts nothing.
 * Drawn once, on first use: a page claimed before lode's process init
 * finished needs one too. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef GRND_NONBLOCK
#define GRND_NONBLOCK 1 /* the kernel's value; a C library may lack the header */
#endif

static _Atomic(uint64_t) secret; /* 0: not drawn yet */

uint64_t _lode_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

#ifndef LODE_SIM
static bool read_exact(int fd, void* buf, size_t n) {
  uint8_t* p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= (size_t)r;
  }
  return true;
}
#endif

static uint64_t draw(void) {
#ifdef LODE_SIM
  return 0x6c6f64652d73696dull; /* a simulated run replays: its secret is a constant */
#else
  uint64_t x = 0;
#ifdef SYS_getrandom
  /* the system call, not the C library's wrapper: that one is a
   * cancellation point, and a malloc must not be */
  if (syscall(SYS_getrandom, &x, sizeof(x), GRND_NONBLOCK) == (long)sizeof(x) && x != 0) return x;
#endif
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    bool ok = read_exact(fd, &x, sizeof(x));
    close(fd);
    if (ok && x != 0) return x;
  }
  /* no entropy source (a sandbox without either): what address-space
   * randomisation and the time give, weak but not the page address alone */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  x = _lode_mix64((uint64_t)(uintptr_t)&x ^ (uint64_t)(uintptr_t)&secret ^ (uint64_t)getpid() << 32);
  return _lode_mix64(x ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30) | 1;
#endif
}

uint64_t _lode_secret(void) {
  uint64_t s = atomic_load_explicit(&secret, memory_order_relaxed);
  if (lode_likely(s != 0)) return s;
  /* a malloc that succeeds leaves errno as it was, and is no cancellation
   * point (open and read are) */
  int saved = errno, cancel;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
  uint64_t fresh = draw();
  pthread_setcancelstate(cancel, NULL);
  errno = saved;
  /* threads drawing at once all take the first one stored */
  if (!atomic_compare_exchange_strong_explicit(&secret, &s, fresh, memory_order_relaxed, memory_order_relaxed))
    return s;
  return fresh;
}

#ifdef LODE_TESTING
void lode_test_set_secret(uint64_t s) { atomic_store_explicit(&secret, s, memory_order_relaxed); }
#endif
