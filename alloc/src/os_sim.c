/* The simulated OS of LODE_SIM builds (enabled by lode_sim_os_enable before
 * lode's first allocation).  os.c asks it instead of the kernel.
 *
 * Why: a fuzz input that maps, faults in and gives back a few MiB spends most
 * of its time in the kernel (page faults, mmap, munmap, madvise), and the
 * next input does it all again.  Here one address range is reserved once per
 * process, at a fixed address where it can be, and recycled: reservations are
 * carved from it first fit (so the same input gets the same addresses), and
 * its memory stays resident.  What the kernel would do to the contents is
 * done in memory, page (4 KiB) by page, from a state kept for each:
 *
 *   ZERO    reads as zero, not committed (fresh)
 *   STALE   not committed, holds bytes of an earlier life (released or
 *           discarded): it must read as zero once lode uses it again
 *   POISON  purged (DONTNEED, or MADV_FREE that the "kernel" dropped): filled
 *           with a pattern of its address, checked when committed again --
 *           a write into purged memory is an error (invariant O1)
 *   KEPT    purged with MADV_FREE and kept: its bytes survive a re-commit
 *   CZERO   committed, reads as zero, not yet handed out
 *   PENDING committed, logically zero, but holds old bytes: cleared when lode
 *           hands it out (_lode_os_touch), not at commit -- a program that
 *           uses 8 KiB of a 512 KiB page costs 8 KiB of clearing
 *   USED    committed and handed out (or kept): holds anything
 *   GUARD   a guard page (PROT_NONE for real): never touched here
 *
 * Semantics kept from the kernel: memory from a reservation reads as zero;
 * a purge in DONTNEED (or decommit) mode reads back as zero; MADV_FREE keeps
 * or drops the bytes (a seeded choice per purge, so both happen); residency
 * (mincore) is "handed out since committed", as the kernel's is "written".
 * Lode commits before it touches memory (purge mode decommit makes that a
 * rule: a stray access faults) and carves blocks before it hands them out,
 * which is what lets the contents be fixed up then. */
#include "internal.h"

#ifdef LODE_SIM
#include <pthread.h>
#include <sys/mman.h>

#define ARENA_SIZE ((size_t)64 << 30)
#define ARENA_HINT ((uintptr_t)0x100000000000ull) /* 16 TiB, inside the segment map */
#define RANGES_MAX 4096
#define PAGE LODE_OS_PAGE_SIZE

enum { PS_ZERO = 0, PS_STALE, PS_POISON, PS_KEPT, PS_CZERO, PS_PENDING, PS_USED, PS_GUARD };

typedef struct range_s {
  size_t start, len; /* offsets in the arena */
} range_t;

static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(bool) sim_on;
static uint8_t* arena;
static uint8_t* state; /* one byte per arena page */
static range_t free_ranges[RANGES_MAX]; /* sorted by start, coalesced */
static size_t free_count;
static uint64_t purge_seq;
static lode_sim_os_stats_t st;

bool _lode_os_sim_on(void) { return atomic_load_explicit(&sim_on, memory_order_relaxed); }

bool lode_sim_available(void) { return true; }

bool lode_sim_os_enable(bool on) {
  pthread_mutex_lock(&sim_lock);
  bool ok = true;
  if (on && arena == NULL) {
    if (atomic_load_explicit(&_lode_stats.mmaps, memory_order_relaxed) != 0) {
      ok = false; /* too late: segments of the real OS exist */
    } else {
      void* a = mmap((void*)ARENA_HINT, ARENA_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
      if (a == MAP_FAILED) /* taken: anywhere aligned (addresses then differ between processes) */
        a = mmap(NULL, ARENA_SIZE + LODE_SEGMENT_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      void* t = mmap(NULL, ARENA_SIZE / PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
      if (a == MAP_FAILED || t == MAP_FAILED) {
        ok = false;
      } else {
        arena = (uint8_t*)lode_align_up((uintptr_t)a, LODE_SEGMENT_SIZE);
        state = t;
        free_ranges[0] = (range_t){0, ARENA_SIZE};
        free_count = 1;
      }
    }
  }
  if (ok) atomic_store_explicit(&sim_on, on && arena != NULL, memory_order_relaxed);
  pthread_mutex_unlock(&sim_lock);
  return ok;
}

static size_t failures_at_input; /* lode's OS failures when this input began */

static _Atomic(bool) sim_protected; /* a decommit protected pages since this input began */
void _lode_os_sim_note_protected(void) { atomic_store_explicit(&sim_protected, true, memory_order_relaxed); }
bool _lode_os_sim_ever_protected(void) { return atomic_load_explicit(&sim_protected, memory_order_relaxed); }

void lode_sim_os_new_input(void) {
  pthread_mutex_lock(&sim_lock);
  purge_seq = 0;
  atomic_store_explicit(&sim_protected, false, memory_order_relaxed); /* a new process protected nothing */
  failures_at_input = atomic_load_explicit(&_lode_stats.os_failures, memory_order_relaxed);
  pthread_mutex_unlock(&sim_lock);
}

bool _lode_os_sim_refused_this_input(void) {
  pthread_mutex_lock(&sim_lock);
  bool refused = atomic_load_explicit(&_lode_stats.os_failures, memory_order_relaxed) != failures_at_input;
  pthread_mutex_unlock(&sim_lock);
  return refused;
}

void lode_sim_os_stats(lode_sim_os_stats_t* out) {
  pthread_mutex_lock(&sim_lock);
  *out = st;
  pthread_mutex_unlock(&sim_lock);
}

/* --- address ranges ------------------------------------------------------------ */
static void ranges_insert(size_t at, range_t r) {
  memmove(&free_ranges[at + 1], &free_ranges[at], (free_count - at) * sizeof(range_t));
  free_ranges[at] = r;
  free_count++;
}

static void ranges_remove(size_t at) {
  memmove(&free_ranges[at], &free_ranges[at + 1], (free_count - at - 1) * sizeof(range_t));
  free_count--;
}

static void check_poison(uint8_t* page);

void* _lode_os_sim_reserve(size_t size, size_t alignment) {
  if (alignment < PAGE) alignment = PAGE;
  void* p = NULL;
  pthread_mutex_lock(&sim_lock);
  for (size_t i = 0; i < free_count; i++) {
    range_t r = free_ranges[i];
    size_t a = lode_align_up((uintptr_t)arena + r.start, alignment) - (uintptr_t)arena;
    if (a < r.start || a - r.start > r.len || r.len - (a - r.start) < size) continue;
    ranges_remove(i);
    size_t end = r.start + r.len;
    if (a + size < end) ranges_insert(i, (range_t){a + size, end - a - size});
    if (a > r.start && free_count < RANGES_MAX) ranges_insert(i, (range_t){r.start, a - r.start});
    p = arena + a;
    /* A new reservation is fresh memory, as the kernel's: a page poisoned
     * before its release is checked now (a write after the release) and
     * forgotten, or a later input's first write would count against it. */
    /* memchr: the C library's scan, which a fuzzing compiler does not
     * instrument (a byte loop here was 4 % of an AFL++ execution) */
    uint8_t *k = state + a / PAGE, *end_k = state + (a + size) / PAGE;
    while (k < end_k && (k = memchr(k, PS_POISON, (size_t)(end_k - k))) != NULL) {
      check_poison(arena + (size_t)(k - state) * PAGE);
      *k++ = PS_STALE;
    }
    st.reserves++;
    if (a + size > st.arena_high) st.arena_high = a + size;
    break;
  }
  pthread_mutex_unlock(&sim_lock);
  return p;
}

/* --- page contents ----------------------------------------------------------------- */
static uint64_t pattern_of(const uint8_t* page) { return ((uintptr_t)page >> 12) * 0x9e3779b97f4a7c15ull | 1; }

static void fill(uint8_t* page) {
  uint64_t v = pattern_of(page);
  uint64_t* w = (uint64_t*)(void*)page;
  for (size_t i = 0; i < PAGE / 8; i++) w[i] = v;
  st.poisoned_bytes += PAGE;
}

static void check_poison(uint8_t* page) {
  uint64_t v = pattern_of(page);
  const uint64_t* w = (const uint64_t*)(const void*)page;
  uint64_t diff = 0;
  for (size_t i = 0; i < PAGE / 8; i++) diff |= w[i] ^ v;
  if (lode_likely(diff == 0)) return;
  for (size_t i = 0; i < PAGE / 8; i++) {
    if (w[i] != v) {
      if (st.poison_errors++ == 0) st.first_error = page + i * 8;
      return;
    }
  }
}

static uint64_t mix_bits(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t page_index(const void* p) { return (size_t)((const uint8_t*)p - arena) / PAGE; }

void _lode_os_sim_release(void* p, size_t size) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = size / PAGE;
  /* Scans by memchr and a table, not a switch per page: a fuzzing compiler
   * counts every branch taken, and this loop was 6 % of an AFL++ execution (replay of 100 queue inputs). */
  uint8_t *s0 = &state[first], *s1 = s0 + n;
  for (uint8_t* g = s0; g < s1 && (g = memchr(g, PS_GUARD, (size_t)(s1 - g))) != NULL; g++)
    mprotect(arena + (size_t)(g - state) * PAGE, PAGE, PROT_READ | PROT_WRITE); /* a later reservation uses it */
  /* the last look at a purged page in this life: a write into it while purged */
  for (uint8_t* q = s0; q < s1 && (q = memchr(q, PS_POISON, (size_t)(s1 - q))) != NULL; q++)
    check_poison(arena + (size_t)(q - state) * PAGE);
  static const uint8_t released[PS_GUARD + 1] = {
      [PS_ZERO] = PS_ZERO,   [PS_STALE] = PS_STALE,   [PS_KEPT] = PS_STALE, [PS_CZERO] = PS_ZERO,
      [PS_PENDING] = PS_STALE, [PS_USED] = PS_STALE, [PS_GUARD] = PS_STALE,
      [PS_POISON] = PS_POISON, /* stays: a write after the release is found when it is reserved again */
  }; /* committed pages are cleared when next handed out */
  uint8_t* t = s0;
  for (; t + 8 <= s1; t += 8) /* one basic block per 8 pages */
    for (int j = 0; j < 8; j++) t[j] = released[t[j]];
  for (; t < s1; t++) *t = released[*t];
  size_t start = (size_t)((uint8_t*)p - arena), at = 0;
  while (at < free_count && free_ranges[at].start < start) at++;
  range_t r = {start, size};
  if (at > 0 && free_ranges[at - 1].start + free_ranges[at - 1].len == start) {
    at--;
    r.start = free_ranges[at].start;
    r.len += free_ranges[at].len;
    ranges_remove(at);
  }
  if (at < free_count && r.start + r.len == free_ranges[at].start) {
    r.len += free_ranges[at].len;
    ranges_remove(at);
  }
  if (free_count < RANGES_MAX) ranges_insert(at, r); /* else the range is lost to the arena */
  st.releases++;
  pthread_mutex_unlock(&sim_lock);
}

/* mremap: [p, p + old_size) moves to the start of a fresh range of new_size
 * -- bytes and page states go along, as the kernel moves page tables; a
 * poisoned page is checked where it was and poisoned again where it goes
 * (the pattern is of the address).  NULL when it holds a guard page. */
void* _lode_os_sim_remap(void* p, size_t old_size, size_t new_size, size_t alignment) {
  size_t first = page_index(p), n = old_size / PAGE;
  for (size_t i = 0; i < n; i++)
    if (state[first + i] == PS_GUARD) return NULL;
  uint8_t* q = _lode_os_sim_reserve(new_size, alignment);
  if (q == NULL) return NULL;
  pthread_mutex_lock(&sim_lock);
  size_t to = page_index(q);
  for (size_t i = 0; i < n; i++) {
    uint8_t *s = &state[first + i], *d = &state[to + i], *src = arena + (first + i) * PAGE, *dst = q + i * PAGE;
    switch (*s) {
      case PS_POISON:
        check_poison(src);
        fill(dst);
        break;
      case PS_ZERO: /* reads as zero: the bytes there may be another life's */
        *d = PS_STALE;
        continue;
      case PS_CZERO: *d = PS_PENDING; continue;
      default: memcpy(dst, src, PAGE); break;
    }
    *d = *s;
  }
  pthread_mutex_unlock(&sim_lock);
  _lode_os_sim_release(p, old_size);
  return q;
}

bool _lode_os_sim_commit(void* p, size_t size) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = lode_align_up(size, PAGE) / PAGE;
  for (size_t i = 0; i < n; i++) {
    uint8_t* s = &state[first + i];
    switch (*s) {
      case PS_POISON:
        check_poison(arena + (first + i) * PAGE);
        *s = PS_PENDING;
        break;
      case PS_STALE: *s = PS_PENDING; break;
      case PS_ZERO: *s = PS_CZERO; break;
      case PS_KEPT: *s = PS_USED; break;
      default: break; /* committed stays, a GUARD is left alone */
    }
  }
  st.commits++;
  pthread_mutex_unlock(&sim_lock);
  return true;
}

static void touch_page(size_t i) {
  uint8_t* s = &state[i];
  if (*s == PS_PENDING) {
    memset(arena + i * PAGE, 0, PAGE);
    st.zeroed_bytes += PAGE;
    *s = PS_USED;
  } else if (*s == PS_CZERO) {
    *s = PS_USED;
  }
}

void _lode_os_sim_touch(void* p, size_t size) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), end = lode_align_up((size_t)((uint8_t*)p + size - arena), PAGE) / PAGE;
  for (size_t i = first; i < end; i++) touch_page(i);
  pthread_mutex_unlock(&sim_lock);
}

static bool reads_zero(uint8_t s) { return s == PS_CZERO || s == PS_PENDING; }

/* realloc's copy, piece by piece within a page on both sides.  Zeros onto a
 * page that reads as zero cost nothing (a large block is mostly pages the
 * program never wrote: copying them, and clearing both sides first, was a
 * quarter of a fuzz run); reading a page does not fault it in, as reading
 * fresh memory maps the kernel's zero page. */
void _lode_os_sim_copy(void* dst, const void* src, size_t n) {
  pthread_mutex_lock(&sim_lock);
  uint8_t* d = dst;
  const uint8_t* s = src;
  while (n > 0) {
    size_t k = PAGE - ((uintptr_t)d & (PAGE - 1)), ks = PAGE - ((uintptr_t)s & (PAGE - 1));
    if (ks < k) k = ks;
    if (n < k) k = n;
    bool from_zero = reads_zero(state[page_index(s)]);
    if (!from_zero || !reads_zero(state[page_index(d)])) {
      touch_page(page_index(d));
      if (from_zero) memset(d, 0, k);
      else memcpy(d, s, k);
    }
    d += k;
    s += k;
    n -= k;
  }
  pthread_mutex_unlock(&sim_lock);
}

/* The program (the fuzz harness) writes or reads [p, p + size) of a block:
 * as the kernel faults a page in at first access, clear what is pending. */
void lode_sim_os_touch(const void* p, size_t size) {
  const uint8_t* b = p;
  if (!_lode_os_sim_on() || size == 0 || b < arena || b >= arena + ARENA_SIZE || size > ARENA_SIZE) return;
  if (b + size > arena + ARENA_SIZE) size = (size_t)(arena + ARENA_SIZE - b);
  _lode_os_sim_touch((void*)(uintptr_t)b, size); /* the "kernel" writes, not the caller */
}

void _lode_os_sim_purge(void* p, size_t size, bool zero) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = lode_align_up(size, PAGE) / PAGE;
  /* MADV_FREE: the kernel may or may not take the pages; a seeded coin, of
   * the address as if the arena lay at its hint: where that was taken (under
   * ASan its shadow lies there) the arena lands anywhere, and the coins of
   * the real address made a sanitized fuzzer's failures not replay (review,
   * 2026-12-06: a mutant's crash 9 runs in 10, never in lode-replay). */
  uintptr_t at = (uintptr_t)((uint8_t*)p - arena) + ARENA_HINT;
  bool drop = zero || (mix_bits(++purge_seq ^ at) & 1);
  if (!drop) st.purges_kept++;
  for (size_t i = 0; i < n; i++) {
    uint8_t* s = &state[first + i];
    if (*s == PS_CZERO) *s = PS_ZERO;
    else if (*s == PS_PENDING) *s = PS_STALE;
    /* USED memory goes; memory an earlier MADV_FREE kept goes too when
     * this purge zeroes (it must read zero afterwards) */
    if (*s != PS_USED && !(*s == PS_KEPT && zero)) continue;
    if (!drop) *s = PS_KEPT;
    else {
      fill(arena + (first + i) * PAGE);
      *s = PS_POISON;
    }
  }
  st.purges++;
  pthread_mutex_unlock(&sim_lock);
}

/* A reset (MADV_DONTNEED on memory lode keeps committed): what was written
 * reads as zero at its next touch, and is no longer resident. */
void _lode_os_sim_reset(void* p, size_t size) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = lode_align_up(size, PAGE) / PAGE;
  for (size_t i = 0; i < n; i++)
    if (state[first + i] == PS_USED) state[first + i] = PS_PENDING;
  pthread_mutex_unlock(&sim_lock);
}

void _lode_os_sim_protect(void* p, size_t size, bool accessible) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = lode_align_up(size, PAGE) / PAGE;
  for (size_t i = 0; i < n; i++) {
    uint8_t* s = &state[first + i];
    if (!accessible) *s = PS_GUARD;
    else if (*s == PS_GUARD) *s = PS_STALE;
  }
  pthread_mutex_unlock(&sim_lock);
}

bool _lode_os_sim_resident_map(const void* p, size_t size, unsigned char* vec) {
  pthread_mutex_lock(&sim_lock);
  size_t first = page_index(p), n = lode_align_up(size, PAGE) / PAGE;
  for (size_t i = 0; i < n; i++) vec[i] = state[first + i] == PS_USED || state[first + i] == PS_KEPT;
  pthread_mutex_unlock(&sim_lock);
  return true;
}

#else
#include "testing.h"
#ifdef LODE_TESTING
bool lode_sim_available(void) { return false; }
#endif
#endif /* LODE_SIM */
