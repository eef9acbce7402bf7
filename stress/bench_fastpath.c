/* lode-bench-fastpath: the cost of a same-thread malloc/free pair, per size,
 * through the process's malloc (LD_PRELOAD picks the allocator), so every
 * allocator is called the same way (PLT, no inlining).
 *
 *   lode-bench-fastpath [--pairs N] [--sizes a,b,..] [--pattern pair|batch|remote] [--only SIZE]
 *
 * pair:  p = malloc(n); free(p)  -- the block comes straight back
 * batch: 64 mallocs, then their 64 frees (LIFO) -- a free list walked each way
 * remote: a second thread mallocs 1024 blocks, this one frees them -- the
 *         free of a block another thread owns (only the frees are timed and
 *         counted, in remote_frees(); the owner takes them back later) 
 * Prints "size ns_per_pair" per size.  For instruction counts,
 * scripts/bench-fastpath.sh runs `--only SIZE` (one pass, no warm-up, no
 * timing) under callgrind counting only inside measure(), with N and 2N
 * pairs: the difference over N is a pair as a program pays it (the PLT
 * jumps and the loop's few instructions included, the same for every
 * allocator). */
#include <errno.h>
#include <pthread.h>
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

/* --- remote: frees of blocks another thread allocated --------------------- */
#define RBATCH 1024
static void* rps[RBATCH];
static pthread_barrier_t rbar;
static size_t rsize;
static long rchunks;

static void* remote_owner(void* arg) {
  (void)arg;
  for (long c = 0; c < rchunks; c++) {
    for (int k = 0; k < RBATCH; k++) rps[k] = malloc(rsize);
    pthread_barrier_wait(&rbar); /* the chunk is ready */
    pthread_barrier_wait(&rbar); /* and freed */
  }
  return NULL;
}

__attribute__((noinline)) static void remote_frees(void** ps, int n) {
  for (int k = 0; k < n; k++) free(ps[k]);
}

/* ns spent in the frees of `frees` (rounded up to whole chunks) blocks */
static double measure_remote(size_t size, long frees) {
  rsize = size;
  rchunks = (frees + RBATCH - 1) / RBATCH;
  pthread_t t;
  if (pthread_barrier_init(&rbar, NULL, 2) != 0 || pthread_create(&t, NULL, remote_owner, NULL) != 0) {
    fprintf(stderr, "lode-bench-fastpath: cannot start the owner thread\n");
    exit(1);
  }
  double ns = 0;
  for (long c = 0; c < rchunks; c++) {
    pthread_barrier_wait(&rbar);
    double t0 = now_ns();
    remote_frees(rps, RBATCH);
    ns += now_ns() - t0;
    pthread_barrier_wait(&rbar);
  }
  pthread_join(t, NULL);
  pthread_barrier_destroy(&rbar);
  return ns;
}

static void usage(const char* why) {
  fprintf(stderr,
          "lode-bench-fastpath: %s\n"
          "usage: lode-bench-fastpath [--pairs N] [--sizes a,b,..] [--pattern pair|batch|remote] [--only SIZE]\n",
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
  int batch = 0, remote = 0;
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
      if (v == NULL || (strcmp(v, "pair") != 0 && strcmp(v, "batch") != 0 && strcmp(v, "remote") != 0))
        usage("bad value for --pattern");
      batch = strcmp(v, "batch") == 0;
      remote = strcmp(v, "remote") == 0;
      i++;
    } else {
      usage("unknown option");
    }
  }
  if (batch) pairs = (pairs + BATCH - 1) / BATCH * BATCH;
  if (only >= 0) { /* one size, one pass: for callgrind */
    if (only == 0) usage("bad value for --only");
    if (remote) measure_remote((size_t)only, pairs);
    else measure((size_t)only, pairs, batch);
    return 0;
  }
  char* save = NULL;
  for (char* t = strtok_r(sizes_text, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
    long size = parse_pos(t, "--sizes");
    if (size == 0) usage("bad value for --sizes");
    if (remote) {
      long frees = (pairs + RBATCH - 1) / RBATCH * RBATCH;
      measure_remote((size_t)size, frees / 10 + 1); /* warm */
      double ns = measure_remote((size_t)size, frees);
      printf("%ld %.2f\n", size, frees ? ns / (double)frees : 0.0);
      continue;
    }
    measure((size_t)size, pairs / 10 + 1, batch); /* warm: pages, size classes */
    double t0 = now_ns();
    measure((size_t)size, pairs, batch);
    double t1 = now_ns();
    printf("%ld %.2f\n", size, pairs ? (t1 - t0) / (double)pairs : 0.0);
  }
  return 0;
}
