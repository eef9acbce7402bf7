/* LODE_SECURE: what a block carries so that misuse shows.
 *
 * Every block ends in an 8-byte trailer: the end of the part the program
 * asked for (an offset from the block start), how the block was allocated
 * (malloc, new, new[]) or FREE, between a fixed first and last byte; all of
 * it XORed with a hash of the trailer's address and its page's key.  A write
 * over either end byte -- one byte past a block whose request fills it, one
 * byte before the next block -- always breaks it, whatever it writes; a
 * trailer copied elsewhere does not decode.  Between the requested end and
 * the trailer lie up to 64 canary bytes.  Everything else of a block that is
 * not in use reads as zero (it is wiped when freed), so a write after free
 * shows when the block leaves the quarantine (which then marks it checked:
 * FREE with an extent of 0), or is handed out again.
 *
 * The trailer is read and written with relaxed atomics: a free checks the
 * trailer of the block before its own, which another thread may be freeing. */
#include "internal.h"

#ifdef LODE_SECURE

#define TRAILER_FIXED 0x5a000000000000a5ull
#define TRAILER_FIXED_MASK 0xff000000000000ffull
#define TRAILER_END_BITS 46 /* LODE_MAX_ALLOC_SIZE is 2^46 */
#define CANARY_BYTE 0xdb
#define CANARY_MAX ((size_t)64)

_Static_assert(((size_t)1 << TRAILER_END_BITS) >= LODE_MAX_ALLOC_SIZE, "a trailer holds any requested end");

/* The C library's own functions: the names memset/memcpy may be liblode.so's
 * checked ones (override.c), which stop at a block's requested end.  A call
 * through a volatile pointer is not turned back into a call of the name. */
#ifdef LODE_CHECKED_MEMFUNCS
extern void* __memset_chk(void* d, int c, size_t n, size_t dn);
extern void* __memcpy_chk(void* d, const void* s, size_t n, size_t dn);
extern void* __memmove_chk(void* d, const void* s, size_t n, size_t dn);
static void* (*volatile libc_memset)(void*, int, size_t, size_t) = __memset_chk;
static void* (*volatile libc_memcpy)(void*, const void*, size_t, size_t) = __memcpy_chk;
static void* (*volatile libc_memmove)(void*, const void*, size_t, size_t) = __memmove_chk;
void _lode_raw_memset(void* p, int c, size_t n) { libc_memset(p, c, n, n); }
void _lode_raw_memcpy(void* d, const void* s, size_t n) { libc_memcpy(d, s, n, n); }
void _lode_raw_memmove(void* d, const void* s, size_t n) { libc_memmove(d, s, n, n); }
#else
void _lode_raw_memset(void* p, int c, size_t n) { memset(p, c, n); }
void _lode_raw_memcpy(void* d, const void* s, size_t n) { memcpy(d, s, n); }
void _lode_raw_memmove(void* d, const void* s, size_t n) { memmove(d, s, n); }
#endif

/* One multiply: a trailer costs its block a few hashes per malloc and free.
 * Detection does not rest on it (the fixed bytes do); it only makes a
 * trailer that decodes at one address garbage at any other. */
static uint64_t trailer_hash(const lode_page_t* page, const void* at) {
  uint64_t x = ((uint64_t)(uintptr_t)at ^ page->keys[0]) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

static uint64_t* trailer_at(const lode_page_t* page, const uint8_t* block) {
  return (uint64_t*)(uintptr_t)(block + page->block_size - LODE_TRAILER_SIZE);
}

bool _lode_trailer_get(const lode_page_t* page, const uint8_t* block, size_t* end, lode_alloc_kind_t* kind) {
  uint64_t* t = trailer_at(page, block);
  uint64_t v = __atomic_load_n(t, __ATOMIC_RELAXED) ^ trailer_hash(page, t);
  if ((v & TRAILER_FIXED_MASK) != TRAILER_FIXED) return false;
  *end = (size_t)((v >> 8) & (((uint64_t)1 << TRAILER_END_BITS) - 1));
  *kind = (lode_alloc_kind_t)((v >> 54) & 3);
  /* a free block's end: how far its wipe went (the rest was zero already) */
  return *end <= page->block_size - LODE_TRAILER_SIZE && (*kind == LODE_KIND_FREE || *end != 0);
}

void _lode_trailer_set(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind) {
  uint64_t* t = trailer_at(page, block);
  /* a simulated OS must know the page written: one committed and never
   * touched would otherwise go back as holding nothing, the trailer in it
   * (a huge block's, grown in place, found in a later segment's slack) */
  _lode_os_touch(t, LODE_TRAILER_SIZE);
  uint64_t v = TRAILER_FIXED | (uint64_t)end << 8 | (uint64_t)kind << 54;
  __atomic_store_n(t, v ^ trailer_hash(page, t), __ATOMIC_RELAXED);
}

static size_t canary_len(const lode_page_t* page, size_t end) {
  size_t room = page->block_size - LODE_TRAILER_SIZE - end;
  return room < CANARY_MAX ? room : CANARY_MAX;
}

bool _lode_block_canary_ok(const lode_page_t* page, const uint8_t* block, size_t end) {
  size_t n = canary_len(page, end), i = 0;
  const uint64_t eight = 0x0101010101010101ull * CANARY_BYTE;
  uint64_t diff = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, block + end + i, 8); /* unaligned: a single load */
    diff |= w ^ eight;
  }
  for (; i < n; i++) diff |= (uint64_t)(block[end + i] ^ CANARY_BYTE);
  return diff == 0;
}

/* From this size on, a wipe asks the OS which of the block's whole pages
 * are in memory: those are cleared, the others given back (they read as zero
 * then, swapped out or never touched).  A program that used a few bytes of a
 * 512 KiB block must not get all of it faulted in by its free, nor its every
 * free cost a TLB shootdown (a discard of pages it did write). */
#define WIPE_BY_RESIDENCY_MIN ((size_t)64 << 10)
#define WIPE_RUN_PAGES (LODE_LARGE_OBJ_MAX / LODE_OS_PAGE_SIZE)
#ifdef LODE_SIM
#define WIPE_BY_RESIDENCY(n) false /* the simulated OS takes a discard for a purge: memory not to be written */
#else
#define WIPE_BY_RESIDENCY(n) ((n) >= WIPE_BY_RESIDENCY_MIN)
#endif

/* The whole OS pages of [block, block + n): [*lo, *hi). */
static void whole_pages(uint8_t* block, size_t n, uint8_t** lo, uint8_t** hi) {
  *lo = (uint8_t*)lode_align_up((uintptr_t)block, LODE_OS_PAGE_SIZE);
  *hi = (uint8_t*)((uintptr_t)(block + n) & ~(LODE_OS_PAGE_SIZE - 1));
}

static bool words_are_zero(const uint64_t* w, size_t from, size_t to) {
  /* four independent ORs a step: one accumulator chains every load to the last */
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = from;
  for (; i + 4 <= to; i += 4) {
    a0 |= w[i];
    a1 |= w[i + 1];
    a2 |= w[i + 2];
    a3 |= w[i + 3];
  }
  for (; i < to; i++) a0 |= w[i];
  return (a0 | a1 | a2 | a3) == 0;
}

/* Words [from, to) of a block read as zero.  From a wipe-by-residency size
 * (`bytes`) on, a page not in memory is not read: a read would map the OS's
 * zero page there, and the block's next write fault in a copy of it (and
 * flush the TLB of every CPU).  A write after free into a page since
 * swapped out goes unseen. */
static bool words_zero(const uint8_t* block, size_t from, size_t to, size_t bytes) {
  (void)bytes; /* (a simulated OS reads no residency) */
  const uint64_t* w = (const uint64_t*)(const void*)block;
  if (from >= to) return true;
  if (!WIPE_BY_RESIDENCY(bytes)) return words_are_zero(w, from, to);
  uint8_t *lo, *hi;
  whole_pages((uint8_t*)(uintptr_t)block + from * 8, (to - from) * 8, &lo, &hi);
  size_t first = (size_t)(lo - block) / 8, last = (size_t)(hi - block) / 8;
  if (lo >= hi) return words_are_zero(w, from, to);
  if (!words_are_zero(w, from, first) || !words_are_zero(w, last, to)) return false;
  unsigned char vec[WIPE_RUN_PAGES];
  size_t pages = (size_t)(hi - lo) / LODE_OS_PAGE_SIZE;
  bool known = pages <= WIPE_RUN_PAGES && _lode_os_resident_map(lo, (size_t)(hi - lo), vec);
  const size_t per_page = LODE_OS_PAGE_SIZE / 8;
  for (size_t i = 0; i < pages; i++)
    if ((!known || (vec[i] & 1)) && !words_are_zero(w, first + i * per_page, first + (i + 1) * per_page)) return false;
  return true;
}

/* The body of a block not in use, as far as its last wipe went (`extent`):
 * all but its first word (the free-list link). */
static bool body_is_zero(const uint8_t* block, size_t extent) {
  return words_zero(block, 1, (extent + 7) / 8, extent);
}

#ifndef LODE_SIM
/* mincore first: one call answers for a block all in memory.  Only pages
 * it finds out of memory are asked about again (the pagemap), to learn which
 * of them hold nothing (left alone) rather than data (discarded); where the
 * pagemap cannot be read they stay UNKNOWN. */
static bool wipe_states(uint8_t* lo, size_t pages, unsigned char* vec) {
  if (!_lode_os_resident_map(lo, pages * LODE_OS_PAGE_SIZE, vec)) return false;
  size_t first = pages, last = 0;
  for (size_t i = 0; i < pages; i++) {
    vec[i] = (vec[i] & 1) ? LODE_PAGE_PRESENT : LODE_PAGE_UNKNOWN;
    if (vec[i] == LODE_PAGE_UNKNOWN) {
      if (first == pages) first = i;
      last = i;
    }
  }
  if (first < pages)
    (void)_lode_os_page_states(lo + first * LODE_OS_PAGE_SIZE, (last + 1 - first) * LODE_OS_PAGE_SIZE, vec + first);
  return true;
}

enum { WIPE_NOTHING, WIPE_WRITE, WIPE_DISCARD };
static int wipe_action(unsigned char state) {
  return state == LODE_PAGE_PRESENT ? WIPE_WRITE : state == LODE_PAGE_ABSENT ? WIPE_NOTHING : WIPE_DISCARD;
}
#endif

/* Clears [lo, hi) (whole OS pages): what is in memory is written, what is
 * elsewhere (swapped out, or not known to be nothing) is discarded, and a
 * page that holds nothing is left alone. */
void _lode_wipe_pages(uint8_t* lo, uint8_t* hi) {
#ifdef LODE_SIM
  _lode_os_touch(lo, (size_t)(hi - lo)); /* a simulated discard is a purge */
  _lode_raw_memset(lo, 0, (size_t)(hi - lo));
#else
  unsigned char vec[WIPE_RUN_PAGES];
  for (; lo < hi; lo += WIPE_RUN_PAGES * LODE_OS_PAGE_SIZE) {
    size_t len = (size_t)(hi - lo) < WIPE_RUN_PAGES * LODE_OS_PAGE_SIZE ? (size_t)(hi - lo)
                                                                        : WIPE_RUN_PAGES * LODE_OS_PAGE_SIZE;
    size_t pages = len / LODE_OS_PAGE_SIZE;
    /* a discard the OS refused leaves the bytes: they are written over */
    if (!wipe_states(lo, pages, vec)) {
      if (!_lode_os_discard(lo, len)) _lode_raw_memset(lo, 0, len);
      continue;
    }
    for (size_t i = 0; i < pages;) {
      size_t j = i;
      int act = wipe_action(vec[i]);
      while (j < pages && wipe_action(vec[j]) == act) j++;
      uint8_t* a = lo + i * LODE_OS_PAGE_SIZE;
      if (act == WIPE_WRITE) _lode_raw_memset(a, 0, (j - i) * LODE_OS_PAGE_SIZE);
      else if (act == WIPE_DISCARD && !_lode_os_discard(a, (j - i) * LODE_OS_PAGE_SIZE))
        _lode_raw_memset(a, 0, (j - i) * LODE_OS_PAGE_SIZE);
      i = j;
    }
  }
#endif
}

void _lode_wipe_range(uint8_t* p, size_t n) {
  uint8_t *lo, *hi;
  whole_pages(p, n, &lo, &hi);
  if (lo >= hi) lo = hi = p + n;
  _lode_os_touch(p, (size_t)(lo - p));
  _lode_raw_memset(p, 0, (size_t)(lo - p));
  _lode_wipe_pages(lo, hi);
  _lode_os_touch(hi, (size_t)(p + n - hi));
  _lode_raw_memset(hi, 0, (size_t)(p + n - hi));
}

void _lode_block_carve(const lode_page_t* page, uint8_t* block, bool zero) {
  if (!zero) _lode_raw_memset(block + 8, 0, page->block_size - LODE_TRAILER_SIZE - 8);
  _lode_trailer_set(page, block, 0, LODE_KIND_FREE);
}

/* A block lode reported and keeps off every list for good: the next
 * block's checks read its trailer, and one left overwritten blamed that
 * block for the same write at each of them (it could never be freed or
 * sized); made whole, as a free one's, a second free is a double free. */
void _lode_block_retire(const lode_page_t* page, uint8_t* block) {
  size_t e;
  lode_alloc_kind_t k;
  if (!_lode_trailer_get(page, block, &e, &k)) _lode_trailer_set(page, block, 0, LODE_KIND_FREE);
}

bool _lode_block_handout(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind, bool fresh) {
  size_t e;
  lode_alloc_kind_t k;
  if (!_lode_trailer_get(page, block, &e, &k)) {
    _lode_block_retire(page, block);
    return false;
  }
  if (k != LODE_KIND_FREE) return false;
  /* huge blocks are never handed out twice (and may be large to read) */
  bool huge = _lode_page_segment(page)->kind == LODE_PAGE_HUGE;
  if (!fresh && !huge) {
    _lode_os_touch(block, e); /* a simulated OS clears what lode never wrote */
    if (!body_is_zero(block, e)) return false;
  }
  *(uint64_t*)(void*)block = 0; /* lode_page_pop's mark */
  _lode_os_touch(block + end, canary_len(page, end));
  _lode_raw_memset(block + end, CANARY_BYTE, canary_len(page, end));
  _lode_trailer_set(page, block, end, kind);
  return true;
}

void _lode_block_unseal(const lode_page_t* page, uint8_t* block, size_t end) {
  _lode_raw_memset(block + end, 0, canary_len(page, end));
  __atomic_store_n(trailer_at(page, block), 0, __ATOMIC_RELAXED);
}

void _lode_block_seal(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind) {
  _lode_os_touch(block + end, canary_len(page, end));
  _lode_raw_memset(block + end, CANARY_BYTE, canary_len(page, end));
  _lode_trailer_set(page, block, end, kind);
}


/* Between the canary and the trailer a live block reads as zero: it did
 * when handed out (the wipe and carve cleared it, the handout checked it),
 * and nothing writes there but an overflow that jumped the canary (an
 * indexed write).  The free checks it: the wipe stops at the canary, and
 * what lay there would reach the block's next user, calloc's too.  Below
 * 64 KiB only the 64 bytes after the canary and the 64 before the trailer
 * are read, lines the canary and trailer checks just brought in: all of it
 * cost the secure rptest a fifth of its time, and faulted in the zero page
 * under every untouched page of a slack (16x mimalloc's faults on mixed).
 * From 64 KiB on, what the OS has in memory is read. */
#define SLACK_EDGE ((size_t)64)

static bool bytes_zero(const uint8_t* block, size_t from, size_t to) {
  for (; from < to && (from & 7) != 0; from++)
    if (block[from] != 0) return false;
  return from >= to || words_zero(block, from / 8, to / 8, to - from);
}

/* Before an over-aligned block's pointer lies padding (after the tag in its
 * first word): zero since the handout checked it, and only an underflow
 * writes there.  (Its neighbour's trailer lies further back.)  Its last word
 * is the guard word, checked on its own. */
bool _lode_block_padding_ok(const uint8_t* block, size_t d) {
  if (d <= 2 * LODE_GUARD_WORD) return true;
  _lode_os_touch((uint8_t*)(uintptr_t)block + 8, d - 16); /* a simulated OS clears what lode never wrote */
  return bytes_zero(block, 8, d - LODE_GUARD_WORD);
}

/* The word just before a pointer handed out at an offset d >= 16: sealed as
 * a trailer is (a hash of its address and the page's key), so an underflow
 * of one byte shows whatever it writes.  A block that starts its page's area
 * gets one (secure_place): no block's trailer lies before it. */
#define GUARD_FIXED 0x4c6f6465477561ull

void _lode_block_guard_set(const lode_page_t* page, uint8_t* block, size_t d) {
  if (d < 2 * LODE_GUARD_WORD) return;
  uint64_t* g = (uint64_t*)(void*)(block + d - LODE_GUARD_WORD);
  _lode_os_touch(g, LODE_GUARD_WORD);
  __atomic_store_n(g, GUARD_FIXED ^ trailer_hash(page, g), __ATOMIC_RELAXED);
}

bool _lode_block_guard_ok(const lode_page_t* page, const uint8_t* block, size_t d) {
  if (d < 2 * LODE_GUARD_WORD) return true;
  uint64_t* g = (uint64_t*)(uintptr_t)(block + d - LODE_GUARD_WORD);
  return __atomic_load_n(g, __ATOMIC_RELAXED) == (GUARD_FIXED ^ trailer_hash(page, g));
}

bool _lode_block_slack_ok(const lode_page_t* page, const uint8_t* block, size_t end) {
  size_t from = end + canary_len(page, end), to = page->block_size - LODE_TRAILER_SIZE;
  if (from >= to) return true;
  _lode_os_touch((uint8_t*)(uintptr_t)block + from, to - from); /* a simulated OS clears what lode never wrote */
  if (WIPE_BY_RESIDENCY(to - from) || to - from <= 2 * SLACK_EDGE) return bytes_zero(block, from, to);
  return bytes_zero(block, from, from + SLACK_EDGE) && bytes_zero(block, to - SLACK_EDGE, to);
}

void _lode_block_slack_clear(const lode_page_t* page, uint8_t* block, size_t end, size_t old_end) {
  size_t from = end + canary_len(page, end), to = page->block_size - LODE_TRAILER_SIZE;
  if (old_end < to) to = old_end;
  if (from < to) _lode_wipe_range(block + from, to - from);
}

void _lode_block_wipe(const lode_page_t* page, uint8_t* block, size_t end) {
  /* past end + canary the block is still zero: only an overflow that broke
   * the canary could have written there, and the free stopped at that */
  size_t n = end + canary_len(page, end);
  if (WIPE_BY_RESIDENCY(n)) {
    _lode_wipe_range(block, n);
  } else {
    _lode_raw_memset(block, 0, n);
  }
  _lode_trailer_set(page, block, n, LODE_KIND_FREE);
}

bool _lode_block_is_wiped(const lode_page_t* page, const uint8_t* block) {
  size_t e;
  lode_alloc_kind_t k;
  /* no link yet: the first word is the wipe's too (all of an 8-byte request) */
  if (*(const uint64_t*)(const void*)block != 0 || !_lode_trailer_get(page, block, &e, &k) || k != LODE_KIND_FREE)
    return false;
  _lode_os_touch((void*)(uintptr_t)block, e);
  return body_is_zero(block, e);
}

void _lode_block_verified(const lode_page_t* page, uint8_t* block) {
  _lode_trailer_set(page, block, 0, LODE_KIND_FREE);
}

void _lode_block_resize(const lode_page_t* page, uint8_t* block, size_t old_end, size_t new_end,
                        lode_alloc_kind_t kind) {
  _lode_os_touch(block + new_end, canary_len(page, new_end));
  size_t lo = old_end < new_end ? old_end : new_end;
  size_t hi = old_end + canary_len(page, old_end);
  _lode_raw_memset(block + lo, 0, hi - lo);
  _lode_raw_memset(block + new_end, CANARY_BYTE, canary_len(page, new_end));
  _lode_trailer_set(page, block, new_end, kind);
}

#else
typedef int lode_canary_unused_t; /* a translation unit may not be empty */
#endif
