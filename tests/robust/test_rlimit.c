/* Out of address space for real: a child lowers RLIMIT_AS to its current
 * size + 256 MiB and allocates until NULL, for small, large and huge blocks.
 * Each time: errno is ENOMEM, the process keeps working (small requests
 * succeed or fail cleanly), and after freeing everything and a forced
 * collect, as many blocks fit again (the memory was returned and reused). */
#include "robust.h"

#include <sys/resource.h>

#ifdef ROBUST_SANITIZER
int main(void) {
  printf("SKIP: a sanitizer runtime reserves terabytes of shadow memory; RLIMIT_AS cannot apply\n");
  return SKIP_CODE;
}
#else

/* Blocks are chained through their first word: no array to allocate. */
static size_t fill(size_t size, void** head, int* err) {
  size_t n = 0;
  *head = NULL;
  for (;;) {
    errno = 0;
    void** b = malloc(size);
    if (b == NULL) {
      *err = errno;
      return n;
    }
    ((volatile char*)b)[size - 1] = 1; /* touch the end: really usable */
    *b = *head;
    *head = b;
    n++;
  }
}

static void release(void* head) {
  while (head != NULL) {
    void* next = *(void**)head;
    free(head);
    head = next;
  }
}

static void child_rlimit(void* arg) {
  (void)arg;
  lode_option_set(LODE_OPTION_PURGE_DELAY, 0);
  struct rlimit rl;
  size_t limit = vm_bytes() + ((size_t)256 << 20);
  rl.rlim_cur = rl.rlim_max = limit;
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    fprintf(stderr, "setrlimit failed\n");
    _exit(2);
  }
  static const size_t sizes[] = {400, 3000, 100000, (size_t)1 << 20, (size_t)5 << 20};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t size = sizes[i];
    void* head;
    int err = 0;
    size_t n1 = fill(size, &head, &err);
    CHECK_EQ(err, ENOMEM);
    CHECK(n1 * size >= ((size_t)64 << 20)); /* a good part of the 256 MiB */
    /* huge blocks: no room reserved to grow in place under a limit (it
     * halved what fit: 21 blocks of 5 MiB, where the limit leaves 51) */
    if (size > LODE_LARGE_OBJ_MAX) CHECK(n1 * size >= ((size_t)192 << 20));
    /* still working: a small request either succeeds or fails cleanly */
    for (int k = 0; k < 100; k++) {
      errno = 0;
      void* s = malloc(16);
      if (s == NULL) CHECK_EQ(errno, ENOMEM);
      free(s);
    }
    CHECK_EQ(lode_check_thread(), 0);
    release(head);
    lode_collect(true);
    lode_stats_t st;
    lode_stats_get(&st);
    size_t n2 = fill(size, &head, &err);
    CHECK_EQ(err, ENOMEM);
    /* the same room again, give or take a segment's worth */
    size_t slack = ((size_t)8 << 20) / size + 2;
    CHECK(n2 + slack >= n1);
    printf("  size %7zu: %zu blocks, then %zu after free + collect (committed after collect: %zu KiB)\n",
           size, n1, n2, st.committed_current >> 10);
    if (n2 + slack < n1) fprintf(stderr, "size %zu: %zu blocks, then only %zu\n", size, n1, n2);
    release(head);
    lode_collect(true);
  }
  CHECK_EQ(lode_check_thread(), 0);
  CHECK_EQ(lode_check_process(), 0);
  fflush(stdout);
}

int main(void) {
  if (!malloc_is_lode()) {
    printf("SKIP: malloc is not lode's\n");
    return SKIP_CODE;
  }
  keep_fill();
  child_result_t r;
  run_child(child_rlimit, NULL, &r);
  CHECK_EQ(child_exit(&r), 0);
  if (child_exit(&r) != 0 || r.errlen) child_dump("rlimit child", &r);
  parent_heap_ok();
  keep_release();
  return test_done();
}
#endif
