/* lode-bench-fastpath: the cost of a same-thread malloc/free pair, per size,
 * through the process's malloc (LD_PRELOAD picks the allocator), so every
 * allocator is called the same way (PLT, no inlining).
 *
 *   lode-bench-fastpath [--pairs N] [--sizes a,b,..] [--pattern pair|batch] [--only SIZE]
 *
 * pair:  p = malloc(n); free(p)  -- the block comes straight back
 * batch: 64 mallocs, then their 64 frees (LIFO) -- a free list walked each way
 * Prints "size ns_per_pair" per size.  For instruction counts,
 * scripts/bench-fastpath.sh runs `--only SIZE` (one pass, no warm-up, no
 * timing) under callgrind counting only inside measure(), with N and 2N
 * pairs: the difference over N is a pair as a program pays it (the PLT
 * jumps and the loop's few instructions included, the same for every
 * allocator). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64

/* The compiler must neither drop a malloc/free pair nor hoist it. */
static void* volatile sink;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

__attribute__((noinline)) static void measure(size_t size, long pairs, int batch) {
  if (!batch) {
    for (long i = 0; i < pairs; i++) {
      void* p = malloc(size);
      sink = p;
      free(p);
    }
    return;
  }
  void* ps[BATCH];
  for (long i = 0; i < pairs; i += BATCH) {
    for (int k = 0; k < BATCH; k++) ps[k] = malloc(size);
    sink = ps[BATCH - 1];
    for (int k = BATCH - 1; k >= 0; k--) free(ps[k]);
  }
}

static void usage(const char* why) {
  fprintf(stderr,
          "lode-bench-fastpath: %s\n"
          "usage: lode-bench-fastpath [--pairs N] [--sizes a,b,..] [--pattern pair|batch] [--only SIZE]\n",
          why);
  exit(2);
}

static long parse_pos(const char* s, const char* flag) {
  char* end;
  errno = 0;
  long v = s ? strtol(s, &end, 10) : -1;
  if (s == NULL || errno || *end || v < 0) {
    char why[80];
    snprintf(why, sizeof(why), "bad value for %s", flag);
    usage(why);
  }
  return v;
}

int main(int argc, char** argv) {
  long pairs = 20000000;
  int batch = 0;
  long only = -1;
  char sizes_text[256] = "8,16,32,48,64,128,256,512,1024";
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--pairs") == 0) pairs = parse_pos(v, a), i++;
    else if (strcmp(a, "--only") == 0) only = parse_pos(v, a), i++;
    else if (strcmp(a, "--sizes") == 0) {
      if (v == NULL || strlen(v) >= sizeof(sizes_text)) usage("bad value for --sizes");
      snprintf(sizes_text, sizeof(sizes_text), "%s", v);
      i++;
    } else if (strcmp(a, "--pattern") == 0) {
      if (v == NULL || (strcmp(v, "pair") != 0 && strcmp(v, "batch") != 0)) usage("bad value for --pattern");
      batch = strcmp(v, "batch") == 0;
      i++;
    } else {
      usage("unknown option");
    }
  }
  if (batch) pairs = (pairs + BATCH - 1) / BATCH * BATCH;
  if (only >= 0) { /* one size, one pass: for callgrind */
    if (only == 0) usage("bad value for --only");
    measure((size_t)only, pairs, batch);
    return 0;
  }
  char* save = NULL;
  for (char* t = strtok_r(sizes_text, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
    long size = parse_pos(t, "--sizes");
    if (size == 0) usage("bad value for --sizes");
    measure((size_t)size, pairs / 10 + 1, batch); /* warm: pages, size classes */
    double t0 = now_ns();
    measure((size_t)size, pairs, batch);
    double t1 = now_ns();
    printf("%ld %.2f\n", size, pairs ? (t1 - t0) / (double)pairs : 0.0);
  }
  return 0;
}
