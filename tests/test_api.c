/* The allocation API's contract: malloc(0), calloc overflow, realloc,
 * errno on failure, bad alignments, and injected OS failures. */
#include "internal.h"
#include "test.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void malloc_zero_unique(void) {
  void* a = lode_malloc(0);
  void* b = lode_malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  lode_free(a);
  lode_free(b);
  lode_free(NULL);
  CHECK_EQ(lode_usable_size(NULL), 0);
}

static void calloc_zeroes_and_overflow(void) {
  for (int round = 0; round < 3; round++) {
    unsigned char* p = lode_malloc(5000);
    memset(p, 0xff, 5000);
    lode_free(p);
    unsigned char* q = lode_calloc(100, 50);
    size_t nz = 0;
    for (int i = 0; i < 5000; i++) nz += q[i] != 0;
    CHECK_EQ(nz, 0);
    lode_free(q);
  }
  errno = 0;
  CHECK(lode_calloc(SIZE_MAX / 2, 3) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(lode_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(lode_reallocarray(NULL, SIZE_MAX, 2) == NULL);
  CHECK_EQ(errno, ENOMEM);
}

static void huge_requests_fail_cleanly(void) {
  size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2, (size_t)1 << 50};
  for (size_t i = 0; i < 4; i++) {
    errno = 0;
    CHECK(lode_malloc(sizes[i]) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(lode_aligned_alloc(64, sizes[i]) == NULL);
    CHECK_EQ(errno, ENOMEM);
  }
  void* keep = lode_malloc(10);
  errno = 0;
  CHECK(lode_realloc(keep, SIZE_MAX) == NULL);
  CHECK_EQ(errno, ENOMEM);
  lode_free(keep); /* still valid after the failed realloc */
}

static void bad_alignment(void) {
  void* p = (void*)0x1;
  CHECK_EQ(lode_posix_memalign(&p, 0, 10), EINVAL);
  CHECK_EQ(lode_posix_memalign(&p, 24, 10), EINVAL);
  CHECK_EQ(lode_posix_memalign(&p, 4, 10), EINVAL); /* not a multiple of sizeof(void*) */
  CHECK(p == (void*)0x1);                           /* untouched on failure */
  errno = 0;
  CHECK(lode_aligned_alloc(3, 10) == NULL);
  CHECK_EQ(errno, EINVAL);
  errno = 0;
  CHECK(lode_aligned_alloc(0, 10) == NULL);
  CHECK_EQ(errno, EINVAL);
  CHECK_EQ(lode_posix_memalign(&p, (size_t)1 << 62, 10), ENOMEM);
}

static void realloc_semantics(void) {
  unsigned char* p = lode_realloc(NULL, 100);
  for (int i = 0; i < 100; i++) p[i] = (unsigned char)i;
  size_t sizes[] = {200, 50, 5000, 70000, 3u << 20, 12u << 20, 5u << 20, 40, 100};
  size_t keep = 40;
  for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    p = lode_realloc(p, sizes[k]);
    CHECK(p != NULL);
    CHECK(lode_usable_size(p) >= sizes[k]);
    size_t bad = 0;
    for (size_t i = 0; i < keep; i++) bad += p[i] != (unsigned char)i;
    CHECK_EQ(bad, 0);
    memset(p + keep, 0x5a, sizes[k] - keep); /* the whole new size is writable */
  }
  lode_free(p);
  /* realloc to 0 frees and returns a fresh minimal block */
  void* q = lode_malloc(64);
  void* r = lode_realloc(q, 0);
  CHECK(r != NULL);
  lode_free(r);
}

static void huge_shrink_updates_usable_size(void) {
  unsigned char* p = lode_malloc(16u << 20);
  CHECK(p != NULL);
  memset(p, 1, 16u << 20);
  unsigned char* q = lode_realloc(p, 3u << 20);
  CHECK(q == p);                               /* in place */
  CHECK(lode_usable_size(q) < (4u << 20));     /* the decommitted tail is not usable */
  memset(q, 2, lode_usable_size(q));           /* all of the reported size is */
  q = lode_realloc(q, 15u << 20);              /* grows back in place */
  CHECK(q == p);
  memset(q, 3, 15u << 20);
  lode_free(q);
}

static void os_failure_injection(void) {
  lode_collect(true);
  void* live[64];
  int n = 0;
  lode_test_fail_os(1000000);
  errno = 0;
  void* p = lode_malloc(8u << 20); /* needs a fresh mapping */
  CHECK(p == NULL);
  CHECK_EQ(errno, ENOMEM);
  for (size_t s = 16; s < 100000 && n < 64; s *= 3) {
    errno = 0;
    void* x = lode_malloc(s);
    if (x == NULL) CHECK_EQ(errno, ENOMEM);
    else live[n++] = x;
  }
  CHECK_EQ(lode_check_thread(), 0);
  CHECK(lode_test_fail_os(0) > 0);
  p = lode_malloc(8u << 20);
  CHECK(p != NULL);
  lode_free(p);
  for (int i = 0; i < n; i++) lode_free(live[i]);
  lode_stats_t st;
  lode_stats_get(&st);
  CHECK(st.os_failures > 0);
  CHECK_EQ(lode_check_thread(), 0);
}

/* The segment map covers addresses below 2^47 (LODE_ADDRESS_LIMIT): a
 * kernel with 5-level paging can map above that when asked with a high
 * hint.  Nothing may index the map beyond its end: a range at or across the
 * limit is refused (os.c then gives the mapping back), and a pointer there
 * is not lode's. */
static void segment_map_bounds(void) {
  CHECK(!_lode_segment_map_add((void*)LODE_ADDRESS_LIMIT, LODE_SEGMENT_SIZE));
  CHECK(!_lode_segment_map_add((void*)(LODE_ADDRESS_LIMIT - LODE_SEGMENT_SIZE), 2 * LODE_SEGMENT_SIZE));
  CHECK(!_lode_segment_map_add((void*)(UINTPTR_MAX & ~(uintptr_t)LODE_SEGMENT_MASK), LODE_SEGMENT_SIZE));
  _lode_segment_map_remove((void*)LODE_ADDRESS_LIMIT, LODE_SEGMENT_SIZE); /* no write either */
  void* high[] = {(void*)LODE_ADDRESS_LIMIT, (void*)(LODE_ADDRESS_LIMIT + 4096), (void*)(uintptr_t)-4096};
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_IGNORE);
  for (size_t i = 0; i < sizeof(high) / sizeof(high[0]); i++) {
    CHECK(_lode_segment_map_lookup(high[i]) == NULL);
    CHECK(!_lode_segment_map_is_start(high[i]));
    CHECK_EQ(lode_usable_size(high[i]), 0);
    lode_free(high[i]); /* reported (ignored here), nothing touched */
    errno = 0;
    CHECK(lode_realloc(high[i], 10) == NULL && errno == EINVAL);
  }
  lode_option_set(LODE_OPTION_ON_ERROR, LODE_ON_ERROR_ABORT);
  /* the last chunk below the limit still works */
  CHECK(_lode_segment_map_add((void*)(LODE_ADDRESS_LIMIT - LODE_SEGMENT_SIZE), LODE_SEGMENT_SIZE));
  CHECK(_lode_segment_map_lookup((void*)(LODE_ADDRESS_LIMIT - 100)) != NULL);
  _lode_segment_map_remove((void*)(LODE_ADDRESS_LIMIT - LODE_SEGMENT_SIZE), LODE_SEGMENT_SIZE);
  CHECK(_lode_segment_map_lookup((void*)(LODE_ADDRESS_LIMIT - 100)) == NULL);
}

/* calloc does not clear memory lode knows to be zero: blocks of a page
 * fresh from the OS, or purged in a mode that zeroes (DONTNEED, decommit);
 * a page purged with MADV_FREE may keep its bytes, and a page whose blocks
 * were freed and reused holds old bytes: those are cleared. */
static int all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

static lode_page_t* page_of(void* p) { return _lode_segment_page_of(_lode_ptr_segment(p), p); }

static void calloc_skips_known_zero(void) {
  enum { N = 40, SIZE = 1000 };
  long modes[] = {LODE_PURGE_DONTNEED, LODE_PURGE_FREE, LODE_PURGE_DECOMMIT};
  for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
    lode_option_set(LODE_OPTION_PURGE_MODE, modes[m]);
    lode_option_set(LODE_OPTION_PURGE_DELAY, 0); /* purged as soon as a page is free */
    void* keep = lode_malloc(SIZE);              /* keeps the segment */
    /* dirty a whole page, then let it go: purged at once */
    lode_heap_t* h = lode_heap_new();
    unsigned char* d[N];
    for (int i = 0; i < N; i++) d[i] = lode_heap_malloc(h, SIZE), memset(d[i], 0xab, SIZE);
    lode_page_t* page = page_of(d[0]);
    lode_heap_destroy(h);
    CHECK(!page->is_committed);
    CHECK_EQ(page->area_zero, modes[m] != LODE_PURGE_FREE);
    /* taken again: zero in every mode, known zero where the mode says so */
    h = lode_heap_new();
    for (int i = 0; i < N; i++) {
      unsigned char* c = lode_heap_calloc(h, 1, SIZE);
      CHECK(all_zero(c, SIZE));
#ifdef LODE_SECURE
      /* the destroy wiped its blocks: known zero whatever the purge kept */
      if (page_of(c) == page && i == 0) CHECK(page->free_is_zero);
#else
      if (page_of(c) == page && i == 0) CHECK_EQ(page->free_is_zero, modes[m] != LODE_PURGE_FREE);
#endif
    }
    /* freed blocks back in the list: not zero any more, cleared on calloc */
    unsigned char* a = lode_heap_malloc(h, SIZE);
    memset(a, 0xcd, SIZE);
    lode_free(a);
    for (int i = 0; i < 2 * N; i++) {
      unsigned char* c = lode_heap_calloc(h, 1, SIZE);
      CHECK(all_zero(c, SIZE));
      if (c == a) CHECK(!page_of(c)->free_is_zero);
    }
    lode_heap_destroy(h);
    /* a warm page (delay: not purged) holds old bytes */
    lode_option_set(LODE_OPTION_PURGE_DELAY, 100000);
    h = lode_heap_new();
    for (int i = 0; i < N; i++) d[i] = lode_heap_malloc(h, SIZE), memset(d[i], 0xef, SIZE);
    page = page_of(d[0]);
    lode_heap_destroy(h);
    CHECK(page->is_committed && !page->area_zero);
    h = lode_heap_new();
    for (int i = 0; i < N; i++) {
      unsigned char* c = lode_heap_calloc(h, 1, SIZE);
      CHECK(all_zero(c, SIZE));
#ifdef LODE_SECURE
      if (page_of(c) == page) CHECK(page->free_is_zero); /* the destroy wiped its blocks: vouched zero */
#else
      if (page_of(c) == page) CHECK(!page->free_is_zero);
#endif
    }
    lode_heap_destroy(h);
    lode_free(keep);
    lode_collect(true);
  }
  /* a huge block fresh from the OS is known zero; calloc of one is cheap */
  unsigned char* big = lode_calloc(1, 5u << 20);
  CHECK(big != NULL && page_of(big)->free_is_zero);
  CHECK(all_zero(big, 5u << 20));
  lode_free(big);
  lode_option_set(LODE_OPTION_PURGE_MODE, LODE_PURGE_DONTNEED);
  lode_option_set(LODE_OPTION_PURGE_DELAY, 10);
  CHECK_EQ(lode_check_thread(), 0);
}

/* The environment's text form, set at run time: numbers whole and within a
 * long, the names of the option's own values; anything else refused with
 * EINVAL and the option unchanged. */
static void option_set_text(void) {
  long delay = lode_option_get(LODE_OPTION_PURGE_DELAY);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_DELAY, "9223372036854775807"), 0);
  CHECK(lode_option_get(LODE_OPTION_PURGE_DELAY) == 9223372036854775807L);
  static const char* const bad[] = {"9223372036854775808", "", " 5", "5 ", "0x10", "-", "free", NULL};
  for (int i = 0; bad[i] != NULL; i++) {
    errno = 0;
    CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_DELAY, bad[i]), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK(lode_option_get(LODE_OPTION_PURGE_DELAY) == 9223372036854775807L);
  }
  CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_MODE, "decommit"), 0);
  CHECK_EQ(lode_option_get(LODE_OPTION_PURGE_MODE), LODE_PURGE_DECOMMIT);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_MODE, "3"), -1);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_MODE, "+0"), 0);
  CHECK_EQ(lode_option_get(LODE_OPTION_PURGE_MODE), LODE_PURGE_DONTNEED);
  long huge = lode_option_get(LODE_OPTION_HUGE_OS_PAGES);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_HUGE_OS_PAGES, "false"), 0);
  CHECK_EQ(lode_option_get(LODE_OPTION_HUGE_OS_PAGES), LODE_HUGE_PAGES_NO);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_HUGE_OS_PAGES, "auto"), 0);
  CHECK_EQ(lode_option_get(LODE_OPTION_HUGE_OS_PAGES), LODE_HUGE_PAGES_AUTO);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_HUGE_OS_PAGES, "3"), -1);
  CHECK_EQ(lode_option_get(LODE_OPTION_HUGE_OS_PAGES), LODE_HUGE_PAGES_AUTO);
  lode_option_set(LODE_OPTION_HUGE_OS_PAGES, huge);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_COUNT, "1"), -1);
  CHECK_EQ(lode_option_set_text(LODE_OPTION_PURGE_MODE, NULL), -1);
  lode_option_set(LODE_OPTION_PURGE_DELAY, delay);
}

static void stats_print_fd(void) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  void* p = lode_malloc(100);
  lode_stats_t st;
  lode_stats_get(&st);
  lode_stats_print_fd(fds[1]);
  close(fds[1]);
  char text[2048] = {0};
  ssize_t n = read(fds[0], text, sizeof(text) - 1);
  close(fds[0]);
  CHECK(n > 0);
  char want[64];
  snprintf(want, sizeof(want), "threads    %zu\n", st.threads_current);
  CHECK(strstr(text, "lode stats:\n") == text);
  CHECK(strstr(text, want) != NULL);
  lode_free(p);
}

/* The first allocation reads the LODE_* variables inside the program's
 * malloc: a numeric one made errno 0 (review, 2026-12-06; C11 7.5: no
 * library function sets errno to zero). */
static void options_keep_errno(void) {
  long before = lode_option_get(LODE_OPTION_PURGE_DELAY);
  CHECK_EQ(setenv("LODE_PURGE_DELAY", "5", 1), 0);
  errno = EAGAIN;
  lode_test_options_reload();
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(lode_option_get(LODE_OPTION_PURGE_DELAY), 5);
  CHECK_EQ(setenv("LODE_PURGE_DELAY", "99999999999999999999", 1), 0); /* ERANGE inside */
  errno = EAGAIN;
  lode_test_options_reload();
  CHECK_EQ(errno, EAGAIN);
  unsetenv("LODE_PURGE_DELAY");
  lode_test_options_reload();
  lode_option_set(LODE_OPTION_PURGE_DELAY, before);
}

/* A set-user-ID program (AT_SECURE) ignores the invoking user's LODE_*
 * variables, as glibc ignores its malloc tunables there: LODE_ON_ERROR=ignore
 * turned off a privileged program's abort on a double free (LODE_SECURE's
 * every check), LODE_VERBOSE had it write its addresses for that user to
 * read.  The child is this program, copied set-user-ID nobody and run as
 * root: only root can make one, and a nosuid or noexec /tmp skips. */
#define SETUID_CHILD "--setuid-child"
static int setuid_child(void) {
  if (getauxval(AT_SECURE) == 0) return 97;
  return lode_option_get(LODE_OPTION_ON_ERROR) == LODE_ON_ERROR_ABORT && lode_option_get(LODE_OPTION_VERBOSE) == 0 &&
                 lode_option_get(LODE_OPTION_PURGE_DELAY) == 10
             ? 0
             : 1;
}

static void options_ignored_when_setuid(void) {
  if (geteuid() != 0) {
    printf("skip (only root makes a set-user-ID copy) ");
    return;
  }
  char path[] = "/tmp/lode-test-setuid-XXXXXX";
  int out = mkstemp(path), in = open("/proc/self/exe", O_RDONLY);
  CHECK(out >= 0 && in >= 0);
  if (out < 0 || in < 0) return;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) CHECK_EQ(write(out, buf, (size_t)n), n);
  close(in);
  CHECK_EQ(fchown(out, 65534, (gid_t)-1), 0);
  CHECK_EQ(fchmod(out, 04755), 0);
  close(out); /* before the exec: a file open for writing is busy */
  pid_t pid = fork();
  if (pid == 0) {
    setenv("LODE_ON_ERROR", "ignore", 1);
    setenv("LODE_VERBOSE", "1", 1);
    setenv("LODE_PURGE_DELAY", "-1", 1);
    execl(path, path, SETUID_CHILD, (char*)NULL);
    _exit(98);
  }
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  unlink(path);
  CHECK(WIFEXITED(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) >= 97) {
    printf("skip (%s) ", WEXITSTATUS(status) == 97 ? "no set-user-ID on /tmp" : "no exec from /tmp");
    return;
  }
  CHECK_EQ(WEXITSTATUS(status), 0);
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], SETUID_CHILD) == 0) _exit(setuid_child()); /* no exit handlers as nobody */
  RUN(option_set_text);
  RUN(options_keep_errno);
  RUN(options_ignored_when_setuid);
  RUN(stats_print_fd);
  RUN(malloc_zero_unique);
  RUN(segment_map_bounds);
  RUN(calloc_skips_known_zero);
  RUN(calloc_zeroes_and_overflow);
  RUN(huge_requests_fail_cleanly);
  RUN(bad_alignment);
  RUN(realloc_semantics);
  RUN(huge_shrink_updates_usable_size);
  RUN(os_failure_injection);
  return test_done();
}
