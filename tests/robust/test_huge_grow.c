/* A huge block grows in place under an address-space limit: a child lowers
 * RLIMIT_AS to its size + 1000 MiB, allocates 600 MiB, shrinks it to 300
 * and grows it to 500 MiB -- within its own reservation, so it needs no
 * address space.  The overcommit probe mapped the whole new size once more
 * to ask, and the limit refused that (review, 2026-12-06). */
#include "robust.h"

#include <sys/resource.h>

#ifdef ROBUST_SANITIZER
int main(void) {
  printf("SKIP: a sanitizer runtime reserves terabytes of shadow memory; RLIMIT_AS cannot apply\n");
  return SKIP_CODE;
}
#else

static void child_grow(void* arg) {
  (void)arg;
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
  rl.rlim_cur = vm_bytes() + ((size_t)1000 << 20); /* room for the block, not for it twice */
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    fprintf(stderr, "setrlimit failed\n");
    _exit(2);
  }
  unsigned char* p = lode_malloc((size_t)600 << 20);
  CHECK(p != NULL);
  if (p == NULL) return;
  memset(p, 1, 1 << 20);
  unsigned char* q = lode_realloc(p, (size_t)300 << 20); /* shrinks in place */
  CHECK(q == p);
  errno = 0;
  unsigned char* r = lode_realloc(q, (size_t)500 << 20); /* fits the 600 MiB reservation */
  if (r == NULL) fprintf(stderr, "grow 300 -> 500 MiB failed: errno %d\n", errno);
  CHECK(r == q);
  if (r == NULL) return;
  r[((size_t)500 << 20) - 1] = 2; /* usable to its end */
  CHECK(r[0] == 1);
  lode_free(r);
  CHECK_EQ(lode_check_thread(), 0);
  fflush(stdout);
}

int main(void) {
  child_result_t r;
  run_child(child_grow, NULL, &r);
  CHECK_EQ(child_exit(&r), 0);
  if (child_exit(&r) != 0 || r.errlen) child_dump("huge grow child", &r);
  return test_done();
}
#endif
