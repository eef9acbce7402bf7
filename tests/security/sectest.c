/* Allocator security cases: one bad (or merely revealing) thing per process.
 *
 *   sectest --list           every case, one "NAME CLASS" line each
 *   sectest CASE SIZE        run one case with blocks of SIZE bytes
 *
 * The convention the harness (scripts/security.sh) reads:
 *   - a case that does something bad and is not stopped prints "NOT CAUGHT"
 *     on stdout and exits 0: missed;
 *   - a case that the allocator stops never gets there: it dies by a signal
 *     (abort, SIGSEGV on a guard page, ...) or exits nonzero from the
 *     allocator's error path: caught;
 *   - a property case (class "reuse" and "limits") checks a promise a
 *     hardened allocator makes; when it holds the case prints "HELD: why" and
 *     exits 3 (caught), when it does not it prints "NOT CAUGHT" (missed);
 *   - a case that could not set itself up prints "SETUP FAILED" and exits 4.
 *
 * Every allocator call and every memory function goes through a volatile
 * function pointer: the compiler can neither drop the bad call nor see that
 * it is bad, and a preloaded library's memcpy is the one called.  Bad
 * accesses go through volatile pointers for the same reason. */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void* (*volatile f_malloc)(size_t) = malloc;
static void (*volatile f_free)(void*) = free;
static void* (*volatile f_realloc)(void*, size_t) = realloc;
static void* (*volatile f_calloc)(size_t, size_t) = calloc;
static void* (*volatile f_memcpy)(void*, const void*, size_t) = memcpy;
static void* (*volatile f_memset)(void*, int, size_t) = memset;
static void* (*volatile f_aligned_alloc)(size_t, size_t) = aligned_alloc;
static int (*volatile f_posix_memalign)(void**, size_t, size_t) = posix_memalign;
static size_t (*volatile f_usable_size)(void*) = malloc_usable_size;

#define MIB ((size_t)1 << 20)
#define PATTERN 0xA5C3E10Fu

static void say(const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static _Noreturn void not_caught(void) {
  say("NOT CAUGHT\n");
  _exit(0);
}

static _Noreturn void held(const char* why) {
  say("HELD: ");
  say(why);
  say("\n");
  _exit(3);
}

static _Noreturn void setup_failed(const char* why) {
  say("SETUP FAILED: ");
  say(why);
  say("\n");
  _exit(4);
}

static char* must_malloc(size_t n) {
  char* p = f_malloc(n);
  if (p == NULL) setup_failed("malloc returned NULL");
  return p;
}

/* After the bad operation: the ordinary allocation traffic during which an
 * allocator that checks lazily (on reuse, on the next free) gets its chance. */
static void churn(size_t n) {
  void* held_blocks[48];
  for (int i = 0; i < 32; i++) held_blocks[i] = f_malloc(n);
  for (int i = 32; i < 40; i++) held_blocks[i] = f_malloc(16);
  for (int i = 40; i < 48; i++) held_blocks[i] = f_calloc(1, n * 2);
  for (int i = 47; i >= 0; i--) f_free(held_blocks[i]);
  for (int i = 0; i < 32; i++) held_blocks[i] = f_malloc(n);
  for (int i = 0; i < 32; i++) f_free(held_blocks[i]);
}

static void fill_pattern(char* p, size_t n) {
  volatile uint32_t* w = (volatile uint32_t*)(void*)p;
  for (size_t i = 0; i < n / 4; i++) w[i] = PATTERN;
}

/* Does any aligned 32-bit word of p[0..n) still hold the pattern? */
static int pattern_shows(const char* p, size_t n) {
  const volatile uint32_t* w = (const volatile uint32_t*)(const void*)p;
  for (size_t i = 0; i < n / 4; i++)
    if (w[i] == PATTERN) return 1;
  return 0;
}

/* A source for the memcpy cases, big enough for the largest copy. */
static char* source(size_t n) {
  char* s = must_malloc(n);
  f_memset(s, 0x41, n);
  return s;
}

/* ---- double free ------------------------------------------------------- */

static void df_plain(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  f_free(p);
  churn(n);
  not_caught();
}

/* Other allocations (of other sizes, so p itself is not handed out again)
 * between the two frees. */
static void df_delayed(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  void* others[24];
  for (int i = 0; i < 8; i++) others[i] = f_malloc(n * 2 + 16);
  for (int i = 8; i < 16; i++) others[i] = f_malloc(24);
  for (int i = 16; i < 24; i++) others[i] = f_malloc(1000);
  f_free(p);
  for (int i = 0; i < 24; i++) f_free(others[i]);
  churn(n);
  not_caught();
}

static void df_interleaved(size_t n) {
  char* a = must_malloc(n);
  char* b = must_malloc(n);
  f_free(a);
  f_free(b);
  f_free(a);
  churn(n);
  not_caught();
}

/* The freed block is probably handed out again as q; freeing p then frees q
 * (legal), and freeing q is the double free.  If q is another block, the
 * second free(p) is the double free. */
static void df_after_reuse(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  char* q = must_malloc(n);
  f_free(p);
  f_free(q);
  churn(n);
  not_caught();
}

static void df_realloc(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  char* q = f_realloc(p, n * 2);
  f_free(q);
  churn(n);
  not_caught();
}

/* ---- invalid free ------------------------------------------------------ */

static void if_stack(size_t n) {
  char buf[n];
  f_memset(buf, 0, n);
  f_free(buf);
  churn(n);
  not_caught();
}

static void if_alloca(size_t n) {
  char* p = alloca(n);
  f_memset(p, 0, n);
  f_free(p);
  churn(n);
  not_caught();
}

/* An aligned address 64 MiB past a real block: looks like a heap address. */
static void if_far(size_t n) {
  char* p = must_malloc(n);
  f_free(p + 64 * MIB);
  churn(n);
  not_caught();
}

static void if_before(size_t n) {
  char* p = must_malloc(n);
  f_free(p - 16);
  churn(n);
  not_caught();
}

static void if_after(size_t n) {
  char* p = must_malloc(n);
  f_free(p + n);
  churn(n);
  not_caught();
}

static void if_unaligned(size_t n) {
  char* p = must_malloc(n);
  f_free(p + 1);
  churn(n);
  not_caught();
}

/* Every unaligned address in the block's first 16 bytes: an allocator that
 * rounds a pointer down frees the block at the first and double-frees it
 * at the rest. */
static void if_unaligned_multi(size_t n) {
  char* p = must_malloc(n);
  for (size_t k = 1; k < 16; k++) f_free(p + k);
  churn(n);
  not_caught();
}

static _Alignas(64) char global_area[(256 << 10) + 64];

static void if_global(size_t n) {
  (void)n;
  f_free(global_area + 64);
  churn(n);
  not_caught();
}

/* Memory the program mapped itself, not the allocator's. */
static void if_mmap(size_t n) {
  size_t len = n + 2 * 4096;
  char* m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) setup_failed("mmap failed");
  f_free(m + 16);
  churn(n);
  not_caught();
}

/* realloc of a pointer 16 bytes into a live block. */
static void if_realloc_interior(size_t n) {
  char* p = must_malloc(n + 32);
  char* q = f_realloc(p + 16, n * 2 + 64);
  (void)q;
  churn(n);
  not_caught();
}

/* An over-aligned block freed twice, once by another thread: that thread
 * may not walk the owner's lists, and the first free's wipe took the
 * block's alignment tag (review, 2026-12-06: no "double free", no size). */
static char* must_aligned(size_t alignment, size_t n) {
  char* p = f_aligned_alloc(alignment, n);
  if (p == NULL) setup_failed("aligned_alloc returned NULL");
  return p;
}

static void* free_in_thread(void* p) {
  f_free(p);
  return NULL;
}

static void thread_free(void* p) {
  pthread_t t;
  if (pthread_create(&t, NULL, free_in_thread, p) != 0) setup_failed("pthread_create failed");
  pthread_join(t, NULL);
}

static void df_aligned_owner_other(size_t n) {
  char* p = must_aligned(65536, n);
  f_free(p);
  thread_free(p);
  churn(n);
  not_caught();
}

static void df_aligned_other_owner(size_t n) {
  char* p = must_aligned(65536, n);
  thread_free(p);
  f_free(p);
  churn(n);
  not_caught();
}

/* Freed by this thread, then (after other traffic) by another one: the
 * second free finds the block in no list of its own. */
static void df_other_thread(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  churn(n * 2 + 16);
  thread_free(p);
  churn(n);
  not_caught();
}

/* posix_memalign at a page's alignment, freed twice. */
static char* must_memalign(size_t alignment, size_t n) {
  void* p = NULL;
  if (f_posix_memalign(&p, alignment, n) != 0 || p == NULL) setup_failed("posix_memalign failed");
  return p;
}

static void df_memalign(size_t n) {
  char* p = must_memalign(4096, n);
  f_free(p);
  f_free(p);
  churn(n);
  not_caught();
}

/* ---- overflow and underflow -------------------------------------------- */

/* A one-byte corruption: 0x41, or 0x42 where the byte is 0x41 already.  A
 * write that leaves memory as it was is nothing any allocator can see, and
 * lode-secure's guard words and canaries are keyed at random: 1 byte in 256
 * held 0x41 (4,000 aligned blocks: 13), and those cases flaked. */
static void poke(volatile char* v, ptrdiff_t i) { v[i] = v[i] == 0x41 ? 0x42 : 0x41; }

static void write_over(size_t n, size_t k) {
  char* p = must_malloc(n);
  volatile char* v = p;
  for (size_t i = n; i < n + k; i++) poke(v, (ptrdiff_t)i);
  f_free(p);
  churn(n);
  not_caught();
}

static void copy_over(size_t n, size_t k) {
  char* s = source(n + k);
  char* p = must_malloc(n);
  f_memcpy(p, s, n + k);
  f_free(p);
  churn(n);
  not_caught();
}

static void write_under(size_t n, size_t k) {
  char* p = must_malloc(n);
  volatile char* v = p;
  for (size_t i = 1; i <= k; i++) poke(v, -(ptrdiff_t)i);
  f_free(p);
  churn(n);
  not_caught();
}

static void copy_under(size_t n, size_t k) {
  char* s = source(n + k);
  char* p = must_malloc(n);
  f_memcpy(p - k, s, k + n);
  f_free(p);
  churn(n);
  not_caught();
}

/* Blocks that start their page's area, with no block's trailer before
 * them: a large block (its span follows another's), one over-aligned to
 * 64 KiB, and a huge one placed at a 4 MiB-aligned offset (review,
 * 2026-12-06: one byte under any of them went unseen). */
static void under_1(char* p) {
  poke(p, -1);
  f_free(p);
}

static void uf_large_1_write(size_t n) {
  char* a = must_malloc(n + 65536);
  under_1(must_malloc(n + 65536)); /* (its span follows a's) */
  f_free(a);
  churn(n);
  not_caught();
}

/* The largest large sizes, which the guard word turns huge (they had none):
 * 2 MiB - 23, - 15 and - 8 bytes, by SIZE. */
static void uf_large_edge_1_write(size_t n) {
  size_t z = 2 * MIB - (n == 8 ? 23 : n == 4096 ? 15 : 8);
  char* a = must_malloc(n + 65536);
  under_1(must_malloc(z)); /* (its span follows a's, not a guard page) */
  f_free(a);
  churn(n);
  not_caught();
}

static void uf_aligned_1_write(size_t n) {
  under_1(must_aligned(65536, n));
  churn(n);
  not_caught();
}

static void uf_huge_aligned_1_write(size_t n) {
  under_1(must_aligned(4 * MIB, n));
  churn(n);
  not_caught();
}

/* A huge block (3 MiB + SIZE, *z) with one byte written `past` its end. */
static char* huge_written_past(size_t n, size_t past, size_t* z) {
  *z = 3 * MIB + n;
  char* p = must_malloc(*z);
  volatile char* v = p;
  v[*z + past] = 0x41;
  return p;
}

/* An indexed write that jumps the 64-byte canary of a huge block into its
 * slack, before the trailer (review, 2026-12-06: unseen). */
static void of_huge_slack(size_t n) {
  size_t z;
  char* p = huge_written_past(n, 64, &z);
  f_free(p);
  churn(n);
  not_caught();
}

/* One byte two pages past a huge block's end: past its last page, where
 * its trailer lies, into the room a realloc would grow it into. */
static void of_huge_room(size_t n) {
  size_t z;
  char* p = huge_written_past(n, 2 * 4096, &z);
  f_free(p);
  churn(n);
  not_caught();
}

/* One byte past the end at each size near a size-class edge, each in a
 * child process: caught only if every child is stopped.  SIZE picks the
 * range: 8 every size 1..160, 4096 sizes around 1, 4, 16 and 64 KiB, 262144
 * around 256 KiB, 1 MiB and 2 MiB. */
static int edge_child_caught(size_t z) {
  pid_t pid = fork();
  if (pid < 0) setup_failed("fork failed");
  if (pid == 0) {
    char* p = f_malloc(z);
    if (p == NULL) _exit(4);
    poke(p, (ptrdiff_t)z);
    f_free(p);
    churn(z < 4096 ? z : 4096);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) setup_failed("waitpid failed");
  if (WIFEXITED(st) && WEXITSTATUS(st) == 4) setup_failed("malloc returned NULL");
  return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void of_edges_1_write(size_t n) {
  static const size_t mid[] = {1024, 4096, 16384, 65536};
  static const size_t big[] = {256 << 10, MIB, 2 * MIB};
  const size_t* at = n == 8 ? NULL : n == 4096 ? mid : big;
  size_t count = n == 8 ? 1 : n == 4096 ? 4 : 3;
  for (size_t c = 0; c < count; c++) {
    size_t lo = at == NULL ? 1 : at[c] - 24, hi = at == NULL ? 160 : at[c] + 24;
    for (size_t z = lo; z <= hi; z++) {
      if (!edge_child_caught(z)) {
        char digits[24];
        int d = (int)sizeof digits - 1;
        digits[d] = '\0';
        do digits[--d] = (char)('0' + z % 10); while ((z /= 10) != 0);
        say("missed at size ");
        say(digits + d);
        say("\n");
        not_caught();
      }
    }
  }
  exit(1); /* every child was stopped: the parent itself did nothing bad */
}

/* One byte past what malloc_usable_size says may be used. */
static void of_usable_1_write(size_t n) {
  char* p = must_malloc(n);
  size_t u = f_usable_size(p);
  volatile char* v = p;
  for (size_t i = 0; i < u; i++) v[i] = 0x33; /* all legal */
  poke(v, (ptrdiff_t)u);
  f_free(p);
  churn(n);
  not_caught();
}

/* One byte past a posix_memalign block aligned to a page. */
static void of_memalign_1_write(size_t n) {
  char* p = must_memalign(4096, n);
  poke(p, (ptrdiff_t)n);
  f_free(p);
  churn(n);
  not_caught();
}

/* One byte under it. */
static void uf_memalign_1_write(size_t n) {
  char* p = must_memalign(4096, n);
  poke(p, -1);
  f_free(p);
  churn(n);
  not_caught();
}

/* An indexed write past a huge block's canary, then a realloc that grows
 * the block in place over the byte written. */
static void of_huge_slack_realloc(size_t n) {
  size_t z;
  char* p = huge_written_past(n, 64, &z);
  char* q = f_realloc(p, z + 4096);
  if (q == NULL) setup_failed("realloc returned NULL");
  f_free(q);
  churn(n);
  not_caught();
}

/* The same past a large block's canary (a block of SIZE + 64 KiB + 1000,
 * whose size class leaves slack past 64 canary bytes), then a realloc to
 * a size its block still holds. */
static void of_slack_realloc(size_t n) {
  size_t z = n + 65536 + 1000;
  char* p = must_malloc(z);
  volatile char* v = p;
  v[z + 64 + 16] = 0x41;
  char* q = f_realloc(p, z + 256);
  if (q == NULL) setup_failed("realloc returned NULL");
  f_free(q);
  churn(n);
  not_caught();
}

/* A huge block shrunk by realloc, then one byte written two pages past its
 * new end: in what the block gave up. */
static void of_huge_shrunk(size_t n) {
  size_t z = 12 * MIB + n, s = 3 * MIB + n;
  char* p = must_malloc(z);
  f_memset(p, 0x42, z);
  char* q = f_realloc(p, s);
  if (q == NULL) setup_failed("realloc returned NULL");
  volatile char* v = q;
  v[s + 2 * 4096] = 0x41;
  f_free(q);
  churn(n);
  not_caught();
}

static void of_1_write(size_t n) { write_over(n, 1); }
static void of_32_write(size_t n) { write_over(n, 32); }
static void of_1m_write(size_t n) { write_over(n, MIB); }
static void of_1_memcpy(size_t n) { copy_over(n, 1); }
static void of_32_memcpy(size_t n) { copy_over(n, 32); }
static void of_1m_memcpy(size_t n) { copy_over(n, MIB); }
static void uf_1_write(size_t n) { write_under(n, 1); }
static void uf_32_write(size_t n) { write_under(n, 32); }
static void uf_1m_write(size_t n) { write_under(n, MIB); }
static void uf_1_memcpy(size_t n) { copy_under(n, 1); }
static void uf_32_memcpy(size_t n) { copy_under(n, 32); }
static void uf_1m_memcpy(size_t n) { copy_under(n, MIB); }

/* ---- write after free -------------------------------------------------- */

static void waf_start(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  volatile char* v = p;
  for (size_t i = 0; i < (n < 16 ? n : 16); i++) v[i] = 0x41;
  churn(n);
  not_caught();
}

static void waf_end(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  volatile char* v = p;
  v[n - 1] = 0x41;
  churn(n);
  not_caught();
}

/* The block goes out again (as q), comes back, and only then the stale
 * pointer writes into it. */
static void waf_reuse(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  char* q = must_malloc(n);
  f_memset(q, 0x42, n);
  f_free(q);
  volatile char* v = p;
  v[n / 2] = 0x41;
  churn(n);
  not_caught();
}

/* A write after free, then callocs of the size: each must read as zero,
 * the written block's too if it comes back. */
static void waf_calloc(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  volatile char* v = p;
  v[n / 2] = 0x41;
  for (int i = 0; i < 64; i++) {
    char* c = f_calloc(1, n);
    if (c == NULL) setup_failed("calloc returned NULL");
    const volatile char* w = c;
    for (size_t j = 0; j < n; j++)
      if (w[j] != 0) not_caught();
  }
  churn(n);
  not_caught();
}

/* Freed by another thread, then written through the stale pointer. */
static void waf_remote(size_t n) {
  char* p = must_malloc(n);
  thread_free(p);
  volatile char* v = p;
  v[n / 2] = 0x41;
  churn(n);
  for (int i = 0; i < 4; i++) churn(n);
  not_caught();
}

/* ---- malloc(0) --------------------------------------------------------- */

static char* zero_block(void) {
  char* p = f_malloc(0);
  if (p == NULL) held("malloc(0) returned NULL");
  return p;
}

static void read_n(const char* p, size_t n) {
  const volatile char* v = p;
  unsigned sum = 0;
  for (size_t i = 0; i < n; i++) sum += (unsigned char)v[i];
  volatile unsigned sink = sum;
  (void)sink;
}

static void write_n(char* p, size_t n) {
  volatile char* v = p;
  for (size_t i = 0; i < n; i++) v[i] = 0x41;
}

static void m0_read(size_t n) {
  char* p = zero_block();
  read_n(p, n);
  f_free(p);
  not_caught();
}

static void m0_write(size_t n) {
  char* p = zero_block();
  write_n(p, n);
  f_free(p);
  churn(n);
  not_caught();
}

static void m0_read_freed(size_t n) {
  char* p = zero_block();
  f_free(p);
  read_n(p, n);
  not_caught();
}

static void m0_write_freed(size_t n) {
  char* p = zero_block();
  f_free(p);
  write_n(p, n);
  churn(n);
  for (int i = 0; i < 16; i++) f_free(f_malloc(0));
  not_caught();
}

/* ---- reuse (properties) ------------------------------------------------ */

static void reuse_malloc(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  char* q = must_malloc(n);
  if (q == p) not_caught();
  held("the next malloc did not return the block just freed");
}

static void reuse_soon(size_t n) {
  char* p = must_malloc(n);
  f_free(p);
  for (int i = 0; i < 16; i++)
    if (must_malloc(n) == p) not_caught();
  held("none of the next 16 mallocs returned the block just freed");
}

/* realloc moves the block (a neighbour stops it growing in place): is the
 * block it gave up the next one of that size? */
static char* moved(char* p, size_t n) {
  char* guard = must_malloc(n);
  f_memset(guard, 0, n);
  char* r = f_realloc(p, n * 16);
  if (r == NULL) setup_failed("realloc returned NULL");
  if (r == p) {
    say("realloc grew the block in place: nothing to show\n");
    not_caught();
  }
  return r;
}

static void reuse_realloc(size_t n) {
  char* p = must_malloc(n);
  moved(p, n);
  char* q = must_malloc(n);
  if (q == p) not_caught();
  held("the block realloc gave up was not the next one handed out");
}

/* A block freed by another thread: is it among the next 16 handed out? */
static void reuse_remote(size_t n) {
  char* p = must_malloc(n);
  thread_free(p);
  for (int i = 0; i < 16; i++)
    if (must_malloc(n) == p) not_caught();
  held("none of the next 16 mallocs returned the block another thread freed");
}

/* (double-free, here for moved()) A block a realloc moved away from, freed
 * again through the old pointer. */
static void df_realloc_moved(size_t n) {
  char* p = must_malloc(n);
  moved(p, n);
  f_free(p);
  churn(n);
  not_caught();
}

static void fresh_pattern(size_t n) {
  char* p = must_malloc(n);
  fill_pattern(p, n);
  f_free(p);
  char* q = must_malloc(n);
  if (pattern_shows(q, n)) not_caught();
  held("a new block shows none of the freed block's contents");
}

static void freed_pattern(size_t n) {
  char* p = must_malloc(n);
  fill_pattern(p, n);
  f_free(p);
  if (pattern_shows(p, n)) not_caught();
  held("the freed block no longer holds its contents");
}

static void realloc_pattern(size_t n) {
  char* p = must_malloc(n);
  fill_pattern(p, n);
  moved(p, n);
  if (pattern_shows(p, n)) not_caught();
  held("the block realloc gave up no longer holds its contents");
}

/* ---- limits ------------------------------------------------------------ */

static void huge_malloc(size_t n) {
  errno = 0;
  void* p = f_malloc(SIZE_MAX - n + 1);
  if (p == NULL && errno == ENOMEM) held("NULL with ENOMEM");
  if (p == NULL) say("NULL but errno is not ENOMEM\n");
  not_caught();
}

static void huge_calloc(size_t n) {
  errno = 0;
  void* p = f_calloc(SIZE_MAX / n + 1, n);
  if (p == NULL && errno == ENOMEM) held("NULL with ENOMEM");
  if (p == NULL) say("NULL but errno is not ENOMEM\n");
  not_caught();
}

/* A return instruction in a heap block, then a call to it. */
static void exec_heap(size_t n) {
  unsigned char* p = (unsigned char*)must_malloc(n);
#if defined(__x86_64__) || defined(__i386__)
  p[0] = 0xC3;
#elif defined(__aarch64__)
  const uint32_t ret = 0xD65F03C0u;
  f_memcpy(p, &ret, sizeof ret);
  __builtin___clear_cache((char*)p, (char*)p + 4);
#else
  setup_failed("no return instruction known for this architecture");
#endif
  void (*fn)(void);
  uintptr_t a = (uintptr_t)p;
  f_memcpy(&fn, &a, sizeof fn);
  fn();
  not_caught();
}

/* ---- the table --------------------------------------------------------- */

struct sec_case {
  const char* name;
  const char* cls;
  void (*run)(size_t);
};

static const struct sec_case cases[] = {
  {"df_plain", "double-free", df_plain},
  {"df_delayed", "double-free", df_delayed},
  {"df_interleaved", "double-free", df_interleaved},
  {"df_after_reuse", "double-free", df_after_reuse},
  {"df_realloc", "double-free", df_realloc},
  {"df_aligned_owner_other", "double-free", df_aligned_owner_other},
  {"df_aligned_other_owner", "double-free", df_aligned_other_owner},
  {"df_other_thread", "double-free", df_other_thread},
  {"df_memalign", "double-free", df_memalign},
  {"df_realloc_moved", "double-free", df_realloc_moved},
  {"if_stack", "invalid-free", if_stack},
  {"if_alloca", "invalid-free", if_alloca},
  {"if_far", "invalid-free", if_far},
  {"if_before", "invalid-free", if_before},
  {"if_after", "invalid-free", if_after},
  {"if_unaligned", "invalid-free", if_unaligned},
  {"if_unaligned_multi", "invalid-free", if_unaligned_multi},
  {"if_global", "invalid-free", if_global},
  {"if_mmap", "invalid-free", if_mmap},
  {"if_realloc_interior", "invalid-free", if_realloc_interior},
  {"of_1_write", "overflow", of_1_write},
  {"of_32_write", "overflow", of_32_write},
  {"of_1m_write", "overflow", of_1m_write},
  {"of_1_memcpy", "overflow", of_1_memcpy},
  {"of_32_memcpy", "overflow", of_32_memcpy},
  {"of_1m_memcpy", "overflow", of_1m_memcpy},
  {"of_huge_slack", "overflow", of_huge_slack},
  {"of_huge_room", "overflow", of_huge_room},
  {"of_edges_1_write", "overflow", of_edges_1_write},
  {"of_usable_1_write", "overflow", of_usable_1_write},
  {"of_memalign_1_write", "overflow", of_memalign_1_write},
  {"of_huge_slack_realloc", "overflow", of_huge_slack_realloc},
  {"of_slack_realloc", "overflow", of_slack_realloc},
  {"of_huge_shrunk", "overflow", of_huge_shrunk},
  {"uf_1_write", "underflow", uf_1_write},
  {"uf_32_write", "underflow", uf_32_write},
  {"uf_1m_write", "underflow", uf_1m_write},
  {"uf_1_memcpy", "underflow", uf_1_memcpy},
  {"uf_32_memcpy", "underflow", uf_32_memcpy},
  {"uf_1m_memcpy", "underflow", uf_1m_memcpy},
  {"uf_large_1_write", "underflow", uf_large_1_write},
  {"uf_large_edge_1_write", "underflow", uf_large_edge_1_write},
  {"uf_aligned_1_write", "underflow", uf_aligned_1_write},
  {"uf_huge_aligned_1_write", "underflow", uf_huge_aligned_1_write},
  {"uf_memalign_1_write", "underflow", uf_memalign_1_write},
  {"waf_start", "write-after-free", waf_start},
  {"waf_end", "write-after-free", waf_end},
  {"waf_reuse", "write-after-free", waf_reuse},
  {"waf_calloc", "write-after-free", waf_calloc},
  {"waf_remote", "write-after-free", waf_remote},
  {"m0_read", "malloc0", m0_read},
  {"m0_write", "malloc0", m0_write},
  {"m0_read_freed", "malloc0", m0_read_freed},
  {"m0_write_freed", "malloc0", m0_write_freed},
  {"reuse_malloc", "reuse", reuse_malloc},
  {"reuse_soon", "reuse", reuse_soon},
  {"reuse_realloc", "reuse", reuse_realloc},
  {"reuse_remote", "reuse", reuse_remote},
  {"fresh_pattern", "reuse", fresh_pattern},
  {"freed_pattern", "reuse", freed_pattern},
  {"realloc_pattern", "reuse", realloc_pattern},
  {"huge_malloc", "limits", huge_malloc},
  {"huge_calloc", "limits", huge_calloc},
  {"exec_heap", "limits", exec_heap},
};

int main(int argc, char** argv) {
  size_t ncases = sizeof(cases) / sizeof(cases[0]);
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < ncases; i++) {
      say(cases[i].name);
      say(" ");
      say(cases[i].cls);
      say("\n");
    }
    return 0;
  }
  if (argc != 3) {
    say("usage: sectest --list | sectest CASE SIZE\n");
    return 2;
  }
  char* end;
  unsigned long long size = strtoull(argv[2], &end, 10);
  if (*end != '\0' || size < 8 || size > (64ull << 20)) {
    say("sectest: SIZE must be a number from 8 to 64 MiB\n");
    return 2;
  }
  for (size_t i = 0; i < ncases; i++) {
    if (strcmp(argv[1], cases[i].name) == 0) {
      cases[i].run((size_t)size);
      not_caught();
    }
  }
  say("sectest: no such case\n");
  return 2;
}
