/* lode internal types, constants and invariants.  Every mechanism's file
 * includes only this header; the types live here so the checker can see them.
 * Declarations are grouped by file, in layer order (alloc/src/layers.txt):
 * a file calls only functions of the files above it in this header. */
#ifndef LODE_INTERNAL_H
#define LODE_INTERNAL_H

/* Inside lode a block address leads to its page metadata by arithmetic; the
 * malloc attribute would let the compiler assume no such alias exists. */
#define LODE_MALLOC_ATTR
#include "lode.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* lode's internal globals and functions are the library's own: hidden in
 * their declarations too, so code reaches a global with one RIP-relative
 * load instead of a GOT address and a load (the free fast path reads two). */
#pragma GCC visibility push(hidden)

#ifndef LODE_DEBUG
#define LODE_DEBUG 0
#endif
#if defined(LODE_SIM) && !defined(LODE_TESTING)
#error "LODE_SIM needs LODE_TESTING (CMake refuses the combination)"
#endif

#define lode_likely(x) __builtin_expect(!!(x), 1)
#define lode_unlikely(x) __builtin_expect(!!(x), 0)
#define lode_noinline __attribute__((noinline))
#define lode_unused __attribute__((unused))

/* Asserts graded by LODE_DEBUG: level 1 off the fast path, 2 on every
 * operation, 3 expensive walks.  Level 0 compiles them all away. */
void _lode_assert_fail(const char* expr, const char* file, int line);
#define lode_assert_level(lvl, x) \
  ((LODE_DEBUG >= (lvl) && !(x)) ? _lode_assert_fail(#x, __FILE__, __LINE__) : (void)0)
#define lode_assert(x) lode_assert_level(1, x)
#define lode_assert_internal(x) lode_assert_level(2, x)
#define lode_assert_expensive(x) lode_assert_level(3, x)

/* --- sizes ---------------------------------------------------------------- */
#define LODE_OS_PAGE_SIZE ((size_t)4096)
#define LODE_HUGE_OS_PAGE_SIZE ((size_t)2 << 20) /* a transparent huge page (x86-64, arm64 4K) */
#define LODE_SEGMENT_SHIFT 22 /* 4 MiB segments, aligned to their size */
#define LODE_SEGMENT_SIZE ((size_t)1 << LODE_SEGMENT_SHIFT)
#define LODE_SEGMENT_MASK (LODE_SEGMENT_SIZE - 1)
#define LODE_SMALL_PAGE_SHIFT 16  /* 64 KiB */
#define LODE_MEDIUM_PAGE_SHIFT 19 /* 512 KiB */
#define LODE_SMALL_PAGE_SIZE ((size_t)1 << LODE_SMALL_PAGE_SHIFT)
#define LODE_MEDIUM_PAGE_SIZE ((size_t)1 << LODE_MEDIUM_PAGE_SHIFT)
#define LODE_SMALL_PAGES_PER_SEGMENT (LODE_SEGMENT_SIZE / LODE_SMALL_PAGE_SIZE)
_Static_assert(LODE_SMALL_PAGES_PER_SEGMENT <= 64, "segment_cache.c keeps 64-bit masks of pages");
#define LODE_SMALL_OBJ_MAX (LODE_SMALL_PAGE_SIZE / 8)   /* >= 8 blocks a page */
#define LODE_MEDIUM_OBJ_MAX (LODE_MEDIUM_PAGE_SIZE / 8) /* 64 KiB */
#define LODE_LARGE_OBJ_MAX (LODE_SEGMENT_SIZE / 2)      /* 2 MiB; larger is huge */
#define LODE_HUGE_SLACK_MAX ((size_t)1 << 30)           /* huge blocks up to this reserve 2x */
#define LODE_MAX_ALIGN ((size_t)16)                     /* malloc's guarantee */
#define LODE_DIRECT_MAX ((size_t)1024)                  /* sizes served by pages_direct */
#define LODE_DIRECT_COUNT (LODE_DIRECT_MAX / 8 + 1)
/* Sizes beyond this cannot be served: it keeps size arithmetic far from overflow. */
#define LODE_MAX_ALLOC_SIZE (((size_t)1 << 46))
#define LODE_PURGE_BACKOFF_MAX 16 /* LODE_PURGE_BACKOFF's range: a delay may grow 2^16-fold */
/* The segment map covers the user address space of 4-level paging; lode
 * refuses (and unmaps) any reservation the kernel places beyond it. */
#define LODE_ADDRESS_BITS 47
#define LODE_ADDRESS_LIMIT ((uintptr_t)1 << LODE_ADDRESS_BITS)

/* Size classes: 8, then multiples of 16 up to 128, then four classes per
 * doubling (160, 192, 224, 256, 320, ...).  Every class above 8 is a multiple
 * of 16, so malloc's 16-byte alignment holds for every size >= 16. */
#define LODE_BIN_HUGE 66 /* single-block huge pages */
_Static_assert(LODE_BIN_HUGE <= 128, "heap.retired has a bit per bin below LODE_BIN_HUGE");
#define LODE_BIN_FULL 67 /* pages with no free block */
#define LODE_BIN_COUNT (LODE_BIN_FULL + 1)

static inline size_t lode_bin_of(size_t size) {
  if (size <= 8) return 1;
  if (size <= 128) return 1 + ((size + 15) >> 4);
  if (size > LODE_LARGE_OBJ_MAX) return LODE_BIN_HUGE;
  size_t w = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll(w); /* b >= 7 */
  return 10 + (size_t)(b - 7) * 4 + ((w >> (b - 2)) & 3);
}
static inline size_t lode_bin_size(size_t bin) {
  if (bin <= 1) return 8;
  if (bin <= 9) return (bin - 1) * 16;
  size_t b = 7 + (bin - 10) / 4, sub = (bin - 10) % 4;
  return ((size_t)1 << b) + (sub + 1) * ((size_t)1 << (b - 2));
}

static inline size_t lode_align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
static inline bool lode_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
/* Time arithmetic that saturates: an option may ask for "practically never". */
static inline int64_t lode_sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}
static inline int64_t lode_sat_shl(int64_t a, unsigned s) {
  if (a <= 0 || s == 0) return a;
  return s >= 63 || a > (INT64_MAX >> s) ? INT64_MAX : a << s;
}

/* --- blocks and pages ------------------------------------------------------ */
typedef struct lode_block_s {
  struct lode_block_s* next; /* encoded when LODE_SECURE */
} lode_block_t;
/* The first word of a block just handed out (see lode_page_pop). */
#define LODE_BLOCK_LIVE ((lode_block_t*)(uintptr_t)1)

/* LODE_SECURE: how a live block was allocated (its trailer says; canary.c),
 * so free, delete and delete[] each take only their own kind. */
typedef enum lode_alloc_kind_e {
  LODE_KIND_FREE = 0,
  LODE_KIND_MALLOC = 1,
  LODE_KIND_NEW = 2,
  LODE_KIND_NEW_ARRAY = 3
} lode_alloc_kind_t;
#ifdef LODE_SECURE
#define LODE_TRAILER_SIZE ((size_t)8)
#else
#define LODE_TRAILER_SIZE ((size_t)0)
#endif

typedef enum lode_page_kind_e {
  LODE_PAGE_SMALL = 0, /* 64 KiB pages, blocks <= 8 KiB */
  LODE_PAGE_MEDIUM,    /* 512 KiB pages, blocks <= 64 KiB */
  LODE_PAGE_LARGE,     /* spans of 64 KiB slices in a 4 MiB segment, blocks <= 2 MiB */
  LODE_PAGE_HUGE,      /* one block in a segment of its own size */
  LODE_PAGE_KINDS
} lode_page_kind_t;

/* Low two bits of page->thread_free: may a remote free use the heap's
 * delayed-free list?  Only pages in a heap's full queue use it, so the owner
 * learns that a full page has room again. */
typedef enum lode_delayed_e {
  LODE_DELAYED_NO = 0,      /* push on thread_free */
  LODE_DELAYED_USE = 1,     /* next remote free goes to heap->thread_delayed */
  LODE_DELAYED_FREEING = 2, /* a remote thread is pushing to the heap right now */
  LODE_DELAYED_NEVER = 3    /* heap is going away: always thread_free */
} lode_delayed_t;

/* page->flags bits; read by any thread (relaxed), written by the owner. */
#define LODE_PAGE_IN_FULL 0x01u
#define LODE_PAGE_HAS_ALIGNED 0x02u
#define LODE_PAGE_SPAN_TAIL 0x04u /* a large span's tail slice: no page of its own (free asks the head) */

typedef struct lode_heap_s lode_heap_t;
typedef struct lode_tld_s lode_tld_t;

/* LODE_SECURE's quarantine (quarantine.c): freed blocks wait here before
 * they go back on a free list, so the next malloc does not return the block
 * just freed, and a write after free has time to be seen. */
#define LODE_QUARANTINE_SLOTS 16
#define LODE_QUARANTINE_MIN_AGE 8              /* frees a block stays at least */
#define LODE_QUARANTINE_MAX_AGE 32             /* frees; a block stays < 48 */
#define LODE_QUARANTINE_BYTES ((size_t)4 << 20) /* bigger totals bypass it */
typedef struct lode_quarantine_s {
  void* block[LODE_QUARANTINE_SLOTS];
  size_t bytes_of[LODE_QUARANTINE_SLOTS];
  uint64_t pushed_at[LODE_QUARANTINE_SLOTS];
  uint64_t pushes;
  uint64_t rng;
  uint64_t seed; /* the thread's own, mixed with the clock at each (re)start */
  size_t bytes;
} lode_quarantine_t;

/* A page holds blocks of one size.  Invariants (owner's view, after collect):
 *   used + |free| + |local_free| == capacity <= reserved
 *   |thread_free| <= used  (remote frees count as used until merged)
 *   in_use == (heap != NULL) for every page but a huge page being freed
 *   on the purge queue => !in_use && is_committed && purge_expire != 0
 *   free_is_zero => every block on `free`, and the area beyond capacity,
 *     reads as zero but for the blocks' links */
typedef struct lode_page_s {
  /* first cache line: everything the malloc/free fast paths touch */
  lode_block_t* free;       /* allocate from here */
  lode_block_t* local_free; /* owner's frees, merged into free on demand */
  uint8_t* area;            /* start of the blocks */
  size_t block_size;
  uint64_t block_magic;     /* divisibility magic of block_size (interior-pointer check) */
  uint64_t carved;          /* capacity * block_size, kept by their setters (free's tests) */
  uint32_t used;            /* live blocks, including pending thread_free */
  uint32_t capacity;        /* blocks carved from the area so far */
  _Atomic(uint8_t) flags;   /* LODE_PAGE_* */
  _Atomic(uint8_t) in_use;  /* assigned to a heap; changed by the owner only (relaxed
                               stores), read by a remote free to refuse a freed page */
  uint8_t is_committed;     /* has (possibly dirty) memory since last purge */
  uint8_t retire_expire;    /* empty page kept a few generic mallocs */
  uint32_t reserved;        /* blocks that fit the area */
  /* the rest: slow paths (and remote frees: their CAS stays off the line the
   * owner's fast paths write) */
  _Atomic(uintptr_t) thread_free; /* remote frees | lode_delayed_t */
  _Atomic(lode_heap_t*) heap;
  /* Last block of free / local_free, valid while that list is non-empty:
   * the double-free test recognises a list's end block (its link is NULL,
   * as in many live blocks) without walking.  Lists only grow at their
   * head once non-empty, so a tail set when a list is (re)started holds. */
  lode_block_t* free_tail;
  lode_block_t* local_free_tail;
  size_t area_size;
  uint16_t index;           /* in its segment */
  uint8_t on_purge_queue;
  uint8_t bin;
  uint8_t retire_ticks;     /* generic mallocs an empty page stays as its bin's only one (0: never;
                               set with bin, so retiring reads one byte for four tests) */
  uint8_t span_back;        /* large kind: slices back to the span's head (0: a head or
                               a page of its own); a tail is in_use but is no page */
  uint8_t span_count;       /* large kind, a head in use: slices its span covers */
  uint8_t area_zero;        /* free page: its whole area reads as zero (fresh, or purged
                               in a mode that zeroes, and not committed since) */
  uint8_t free_is_zero;     /* page in use: see the invariant above (calloc skips the clear) */
  uint8_t claimed_zero;     /* LODE_SECURE: its area read as zero when it was claimed */
  uint8_t area_wiped;       /* LODE_SECURE, free page: committed, but every block was wiped and
                               scrubbed (_lode_page_scrub): its area reads as zero */
  uint32_t touched;         /* OS pages of the area carved since the last purge: a bound
                               on what it holds resident (a commit counts all of area_size) */
  struct lode_page_s* next; /* heap bin queue */
  struct lode_page_s* prev;
  struct lode_page_s* purge_next; /* thread purge queue */
  struct lode_page_s* purge_prev;
  int64_t purge_expire;     /* when queued: purge at or after this time (ms); in an abandoned
                               segment: the expiry it had when its owner exited, 0 if none */
  int64_t last_expire;      /* expiry it had when it last left the queue by purge */
  int64_t purged_at;        /* when last purged, -1 if by force, -2 never */
  uint64_t keys[2];         /* free-list encoding keys (LODE_SECURE) */
#ifdef LODE_TESTING
  uint64_t check_sig;       /* the checker's last full walk saw these lists (check.c) */
#endif
} __attribute__((aligned(64))) lode_page_t;

static inline void lode_page_set_in_use(lode_page_t* page, bool v) {
  atomic_store_explicit(&page->in_use, (uint8_t)v, memory_order_relaxed);
}

/* --- segments ------------------------------------------------------------- */
#define LODE_SEGMENT_COOKIE ((uint64_t)0x6c6f64655f736567ull)
/* Owner of segments whose thread did not survive a fork: no live thread has
 * this id, so nobody takes them for their own (they are the parent's). */
#define LODE_THREAD_ID_FORKED ((uintptr_t)1)

/* A segment is SEGMENT_SIZE-aligned, so masking a block's address finds it
 * (the segment map resolves the rare huge-alignment block that lies further
 * in).  Its header holds the page metadata. */
typedef struct lode_segment_s {
  uint64_t cookie;               /* LODE_SEGMENT_COOKIE ^ address */
  _Atomic(uintptr_t) thread_id;  /* owner thread; 0 while abandoned */
  lode_tld_t* tld;               /* owner's thread data (owner only) */
  size_t size;                   /* bytes mapped */
  size_t header_size;
  lode_page_kind_t kind;
  uint32_t page_shift;
  uint32_t page_count;
  uint32_t used;                 /* pages in use */
  uint32_t committed;            /* pages with is_committed */
  uint32_t abandoned_pages;      /* in-use pages at abandon time (A1) */
  int64_t abandoned_at;          /* clock at abandon: after a delay any reclaim takes it */
  bool is_abandoned;
  bool has_protected;            /* huge: a shrink decommitted (PROT_NONE) part of it */
  size_t advised;                /* huge: bytes from its start with MADV_HUGEPAGE (SIZE_MAX: unknown) */
  size_t held;                   /* huge: its warm tail past twice its size (_lode_segment_cache_hold) */
  bool guard_markers;            /* LODE_SECURE: its guard pages are page-table markers */
  uint32_t guard_protects;       /* LODE_SECURE: guard pages made by mprotect (os.c's budget) */
  struct lode_segment_s* next;   /* tld segment list, or abandoned list */
  struct lode_segment_s* prev;
  struct lode_segment_s* all_next; /* registry of every segment (checker) */
  struct lode_segment_s* all_prev;
#ifdef LODE_TESTING
  _Atomic(uint8_t) check_stale;  /* abandoned: changed since the checker last walked its pages */
#endif
  lode_page_t pages[1];          /* page_count of them */
} lode_segment_t;

/* An abandoned segment changes in place only by remote frees; every other
 * change is an abandon or a forced collect's put-back.  Each marks it, so
 * the checker's quick pass walks the pages of marked ones only (check.c). */
/* The OS pages of a huge block that a free by a thread not taking its
 * segment gives back (alloc.c free_remote): whole pages, not the trailer's.
 * Returns their bytes from *lo (A7 looks at the same ones). */
static inline size_t lode_huge_reset_range(const lode_page_t* page, const void* block, uint8_t** lo) {
  uint8_t* l = (uint8_t*)lode_align_up((uintptr_t)block, LODE_OS_PAGE_SIZE);
  uint8_t* h = (uint8_t*)(((uintptr_t)block + page->block_size - LODE_TRAILER_SIZE) & ~(LODE_OS_PAGE_SIZE - 1));
  *lo = l;
  return h > l ? (size_t)(h - l) : 0;
}

static inline void lode_segment_check_stale(lode_segment_t* seg) {
#ifdef LODE_TESTING
  atomic_store_explicit(&seg->check_stale, 1, memory_order_relaxed);
#else
  (void)seg;
#endif
}

/* --- heaps, queues and threads --------------------------------------------- */
typedef struct lode_page_queue_s {
  lode_page_t* first;
  lode_page_t* last;
  size_t block_size;
} lode_page_queue_t;

struct lode_heap_s {
  lode_tld_t* tld;               /* NULL only for the static empty heap */
  lode_page_t* pages_direct[LODE_DIRECT_COUNT];
  lode_page_queue_t pages[LODE_BIN_COUNT];
  _Atomic(lode_block_t*) thread_delayed; /* blocks freed remotely into full pages */
  size_t page_count;
  uint64_t retired[2];                  /* bit per bin (< LODE_BIN_HUGE) that may hold a retained empty page */
  size_t sweep_ticks;                    /* generic allocations since the last sweep */
  lode_heap_t* next;                     /* tld's heap list, the backing heap first */
  lode_heap_t* prev;                     /* (a delete unlinks in O(1): 100,000 heaps took 4.5 min) */
  bool is_backing;
#ifdef LODE_TESTING
  uint64_t check_bins[(LODE_BIN_COUNT + 63) / 64]; /* bins whose queue has pages: the checker's quick pass */
#endif
};

typedef struct lode_purge_queue_s {
  lode_page_t* first;
  lode_page_t* last;
  size_t count;
} lode_purge_queue_t;

typedef struct lode_segment_list_s {
  lode_segment_t* first; /* segments with a free page come first */
  lode_segment_t* last;
  size_t count;
} lode_segment_list_t;

/* What the last collect of this thread promised (P4). */
typedef struct lode_collect_mark_s {
  int kind;              /* 0 none, 1 non-forced, 2 forced */
  int64_t time;          /* clock at the end of that collect */
  uint64_t queue_pushes; /* tld->queue_pushes then: any later push voids the mark */
  uint64_t page_frees;   /* tld->page_frees then */
  uint64_t adoptions;    /* tld->adoptions then: a reclaimed segment brings new free pages */
  uint64_t warm_takes;   /* tld->warm_takes then: so does a cached segment's warm pages */
  uint64_t abandons;     /* _lode_abandoned_pushes() before a forced collect took the list: while
                            it is the same, no segment on it has a committed free page (P4) */
} lode_collect_mark_t;

struct lode_tld_s {
  uintptr_t thread_id;
  lode_heap_t* heaps;            /* backing heap first */
  lode_segment_list_t segments[LODE_PAGE_KINDS];
  lode_purge_queue_t purge;
  uint64_t queue_pushes;         /* pages ever pushed on the purge queue */
  uint64_t page_frees;           /* pages ever returned to their segment (or left committed by a failed claim) */
  uint64_t adoptions;            /* abandoned segments ever adopted */
  uint64_t warm_takes;           /* cached segments ever taken with committed free pages */
  uint64_t purge_refusals;       /* purges the OS refused (the pages stay committed) */
  uint32_t purge_ticks;          /* generic allocations, to pace clock reads */
  lode_collect_mark_t mark;
  lode_tld_t* next_free;         /* tld cache */
  lode_tld_t* live_next;         /* the threads whose exit has not run (thread.c) */
  lode_tld_t* live_prev;
#ifdef LODE_SECURE
  lode_quarantine_t quarantine;  /* this thread's recent frees of its own blocks */
#endif
  lode_heap_t heap_backing;      /* the thread's default heap */
};

#ifdef LODE_SECURE
#define lode_tld_quarantine(tld) (&(tld)->quarantine)
#else
#define lode_tld_quarantine(tld) ((void)(tld), (lode_quarantine_t*)NULL)
#endif

/* --- per-thread state ------------------------------------------------------- */
extern lode_heap_t _lode_heap_empty; /* tls.c: a thread's heap before its first malloc */
extern lode_page_t _lode_page_empty; /* tls.c: a page with no free block */

/* Every per-thread variable of lode, in one list.  The normal build makes
 * each a __thread variable; a LODE_SIM build makes them the fields of a
 * thread context that the simulator switches on one OS thread.  ctest
 * alloc.thread_locals fails when an object file of lode holds a thread-local
 * symbol this list does not name. */
#define LODE_THREAD_LOCALS(X)                                  \
  X(lode_heap_t*, heap_default, &_lode_heap_empty)             \
  X(char, thread_marker, 0)     /* its address: the thread id where no thread pointer */ \
  X(bool, in_process_init, false)                              \
  X(bool, thread_exited, false) /* lode's thread exit ran */   \
  X(size_t, check_violations, 0)                               \
  X(bool, os_fail_injected, false) /* the OS call failing now is an injected failure */

#ifdef LODE_SIM
#define LODE_CTX_FIELD(type, name, init) type name;
typedef struct lode_thread_ctx_s {
  LODE_THREAD_LOCALS(LODE_CTX_FIELD)
} lode_thread_ctx_t;
extern __thread lode_thread_ctx_t* _lode_ctx_current; /* NULL: this OS thread's own */
extern __thread lode_thread_ctx_t _lode_ctx_own;
static inline lode_thread_ctx_t* _lode_ctx(void) {
  lode_thread_ctx_t* c = _lode_ctx_current;
  return c != NULL ? c : &_lode_ctx_own;
}
#define LODE_TLS(name) (_lode_ctx()->name)
#else
#define LODE_TLS_EXTERN(type, name, init) extern __thread type _lode_tls_##name;
LODE_THREAD_LOCALS(LODE_TLS_EXTERN)
#define LODE_TLS(name) (_lode_tls_##name)
#endif

/* Unique among live threads: the thread pointer (each thread's own control
 * block), one %fs-relative operand on x86-64 where the address of a
 * thread-local byte costs a GOT load and an add on every free.  A LODE_SIM
 * build runs its threads on one OS thread: the address of the context's
 * byte tells them apart. */
#if !defined(LODE_SIM) && defined(__has_builtin)
#if __has_builtin(__builtin_thread_pointer)
#define LODE_THREAD_ID_IS_TP 1
#endif
#endif
static inline uintptr_t _lode_thread_id(void) {
#ifdef LODE_THREAD_ID_IS_TP
  return (uintptr_t)__builtin_thread_pointer();
#else
  return (uintptr_t)&LODE_TLS(thread_marker);
#endif
}
static inline lode_heap_t* _lode_heap_get_default(void) { return LODE_TLS(heap_default); }

/* --- segment and page lookup ------------------------------------------------ */
static inline lode_segment_t* _lode_ptr_segment(const void* p) {
  return (lode_segment_t*)((uintptr_t)p & ~(uintptr_t)LODE_SEGMENT_MASK);
}
/* p lies in the segment's first 4 MiB (its map chunk is the start), and
 * page_count << page_shift covers that (a huge segment's shift is 47): the
 * index needs no clamp. */
static inline lode_page_t* _lode_segment_page_of(lode_segment_t* seg, const void* p) {
  size_t idx = ((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift;
  lode_page_t* page = &seg->pages[idx];
  /* Only large segments have spans: other kinds never read span_back (it is
   * in the page's second cache line; kind shares a line with page_shift). */
  return seg->kind == LODE_PAGE_LARGE ? page - page->span_back : page;
}
/* The slice p lies in, a span's tail as itself (LODE_PAGE_SPAN_TAIL in its
 * flags says to ask _lode_segment_page_of): free's fast path, one test
 * fewer. */
static inline lode_page_t* _lode_segment_page_at(lode_segment_t* seg, const void* p) {
  lode_page_t* page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
  /* one register for the page: gcc would otherwise rebuild its address for
   * each field (segment + index * size + offset), two instructions each */
  __asm__("" : "+r"(page));
  return page;
}
static inline lode_segment_t* _lode_page_segment(const lode_page_t* page) {
  return _lode_ptr_segment(page);
}

/* Divisibility by block size without a division (offsets < 2^32). */
static inline uint64_t lode_div_magic(size_t d) { return UINT64_MAX / (uint64_t)d + 1; }
/* (n * magic <= magic - 1, written so the compiler compares with magic itself) */
static inline bool lode_is_multiple(uint64_t n, uint64_t magic) { return n * magic < magic; }

/* block_size and its magic change together: a stale magic made free() take
 * an interior pointer of a huge block realloc had grown for a block start
 * (review, 2026-12-06). */
static inline void lode_page_set_block_size(lode_page_t* page, size_t block_size) {
  page->block_size = block_size;
  page->block_magic = lode_div_magic(block_size);
  page->carved = (uint64_t)page->capacity * block_size;
}
/* How long an empty page stays as its bin's only page
 * (_lode_heap_page_retire): small blocks 64 generic mallocs, medium 4,
 * large and huge not at all.  The ticks are the heap's generic mallocs in
 * any bin: a thread that uses 30 small sizes by turns (xthread's consumers)
 * lost every bin's page to another size's refills at 16 (a third of its
 * page lives); a small page is at most 64 KiB, carved as far as used. */
static inline uint8_t lode_retire_ticks(size_t bin, size_t block_size) {
  return bin >= LODE_BIN_HUGE || block_size > LODE_MEDIUM_OBJ_MAX ? 0 : block_size <= LODE_SMALL_OBJ_MAX ? 64 : 4;
}
/* and capacity with the carved bytes (F1) */
static inline void lode_page_set_capacity(lode_page_t* page, uint32_t capacity) {
  page->capacity = capacity;
  page->carved = (uint64_t)capacity * page->block_size;
}

/* --- free-list links (encoded under LODE_SECURE) ----------------------------- */
static inline lode_block_t* lode_block_next(const lode_page_t* page, const lode_block_t* b) {
#ifdef LODE_SECURE
  uintptr_t x = (uintptr_t)b->next;
  x = (x - page->keys[1]);
  x = (x >> 17) | (x << 47);
  return (lode_block_t*)(x ^ page->keys[0]);
#else
  (void)page;
  return b->next;
#endif
}
static inline void lode_block_set_next(const lode_page_t* page, lode_block_t* b, const lode_block_t* next) {
#ifdef LODE_SECURE
  uintptr_t x = (uintptr_t)next ^ page->keys[0];
  x = (x << 17) | (x >> 47);
  b->next = (lode_block_t*)(x + page->keys[1]);
#else
  (void)page;
  b->next = (lode_block_t*)next;
#endif
}

/* The one way a block leaves a page's free list: pop it, count it live.
 * The caller has checked page->free != NULL. */
static inline lode_block_t* lode_page_pop(lode_page_t* page) {
  lode_block_t* block = page->free;
  page->free = lode_block_next(page, block);
  /* A live block must not look free: a stale link left in its first word
   * (a program that never writes there) sent every free of it through the
   * double-free walks -- 2.5x glibc's time on a glibc-thread-like loop.  Not
   * NULL either (a list's tail): a misaligned value no link can have. */
  block->next = LODE_BLOCK_LIVE;
  page->used++;
  lode_assert_internal(page->used <= page->capacity);
  return block;
}

static inline uintptr_t lode_tf_make(lode_block_t* b, lode_delayed_t d) { return (uintptr_t)b | (uintptr_t)d; }
static inline lode_block_t* lode_tf_block(uintptr_t tf) { return (lode_block_t*)(tf & ~(uintptr_t)3); }
static inline lode_delayed_t lode_tf_delayed(uintptr_t tf) { return (lode_delayed_t)(tf & 3); }

static inline bool lode_page_all_free(const lode_page_t* page) { return page->used == 0; }
static inline bool lode_page_immediate_available(const lode_page_t* page) { return page->free != NULL; }

/* --- test points (LODE_TESTING builds) ---------------------------------------- */
/* Named places inside lode where a test may stop the running thread (and
 * run others meanwhile), or learn that it waits for another thread.  A
 * shipped build has none of this.  Names: testing.h, lode_point_t. */
#include "testing.h" /* types; the functions exist only in LODE_TESTING builds */
#ifdef LODE_TESTING
extern _Atomic(lode_point_fn*) _lode_point_hook;
static inline void _lode_point(lode_point_t point, const void* obj) {
  lode_point_fn* fn = atomic_load_explicit(&_lode_point_hook, memory_order_acquire);
  if (lode_unlikely(fn != NULL)) fn(point, obj);
}
#define LODE_POINT(point, obj) _lode_point(point, obj)
#else
#define LODE_POINT(point, obj) ((void)0)
#endif

/* ============================================================================
 * Mechanisms, one group per file, lowest layer first.
 * ========================================================================== */

/* --- options.c ------------------------------------------------------------- */
void _lode_options_init(void);
long _lode_option(lode_option_t o);

/* --- stats.c ---------------------------------------------------------------- */
typedef struct lode_stats_atomic_s {
  _Atomic(size_t) segments_current, segments_peak, segments_abandoned, segments_abandoned_total,
      segments_reclaimed, pages_current, pages_peak, pages_queued, purges, commits, decommits,
      mmaps, munmaps, committed_current, committed_peak, reserved_current, os_failures,
      threads_current, protects, remaps;
} lode_stats_atomic_t;
extern lode_stats_atomic_t _lode_stats;
void _lode_stat_add(_Atomic(size_t)* counter, _Atomic(size_t)* peak, size_t n);
void _lode_stat_sub(_Atomic(size_t)* counter, size_t n);
#define lode_stat_inc(name) _lode_stat_add(&_lode_stats.name, NULL, 1)

/* --- secret.c (asked for by LODE_SECURE builds) ------------------------------ */
uint64_t _lode_secret(void);      /* the process's, drawn on first use; constant under LODE_SIM */
uint64_t _lode_mix64(uint64_t x); /* a bijective mixer: inputs that differ by one bit share no pattern */

/* --- clock.c ---------------------------------------------------------------- */
int64_t _lode_clock_now(void);
/* How far the clock may lag real time (ms; 0 for a test's clock): added to
 * expiries, which must not come early. */
int64_t _lode_clock_slack(void);
/* Changes whenever a test installs a clock: times of the old clock mean
 * nothing to the new one. */
uint32_t _lode_clock_epoch(void);

/* --- quarantine.c (LODE_SECURE): a container, it frees nothing itself ------------ */
/* Takes block (of `bytes`); returns in out[] the blocks that leave (0..2):
 * one the new block displaced at random, one that waited too long, or the
 * new block itself when the quarantine's byte budget has no room for it. */
size_t _lode_quarantine_push(lode_quarantine_t* q, void* block, size_t bytes, void* out[2]);
void _lode_quarantine_restart(lode_quarantine_t* q); /* empty: counts and random state start over */
void* _lode_quarantine_pop(lode_quarantine_t* q); /* any block, NULL when empty */
bool _lode_quarantine_holds(const lode_quarantine_t* q, const void* block);

/* --- errors.c --------------------------------------------------------------- */
void _lode_error_pointer(const char* func, const char* what, const void* p);
void _lode_verbose(const char* msg, const void* p, size_t n);
/* State lode cannot go on from: says so on stderr, whatever LODE_VERBOSE, and aborts. */
_Noreturn void _lode_fatal(const char* msg, const void* p, size_t n);
/* A block error: "lode: FUNC(): WHAT 0xPTR (block of N bytes)". */
#ifdef LODE_SECURE
void _lode_error_block(const char* func, const char* what, const void* p, size_t block_size);
#endif
/* Waiting for another thread: yields, and says once per process on stderr
 * when the wait is long (what, on which object).  Returns true when `wait`
 * has lasted beyond LODE_WAIT_LIMIT_MS: the caller decides what is safe. */
#define LODE_WAIT_LIMIT_MS 1000
typedef struct lode_wait_s {
  uint32_t spins;
  int64_t since; /* 0 until the first yield */
} lode_wait_t;
bool _lode_wait_step(lode_wait_t* w, const char* what, const void* obj);

/* --- purge_policy.c: what the purge delay means, in one place -------------- */
typedef enum lode_purge_when_e {
  LODE_PURGE_NOW,   /* delay 0: give the memory back at once */
  LODE_PURGE_LATER, /* delay > 0: at *expire */
  LODE_PURGE_NEVER  /* delay < 0: only a forced collect */
} lode_purge_when_t;
/* The decision for memory freed at `now`: every place that frees a page or
 * caches a segment asks this, and only this. */
lode_purge_when_t _lode_purge_decide(int64_t now, int64_t* expire);
/* The delay in force (the option, doubled while backed off); >= 1. */
long _lode_purge_delay(int64_t now);
/* Memory the timer gave back at `gone_at` is wanted again now (a span's
 * slices, once per claim, or a cached huge mapping): less than a delay
 * later, the delay backs off. */
void _lode_purge_note_comeback(int64_t gone_at);
/* Whether a purge in the current mode leaves memory that reads as zero. */

/* --- os_sim.c (LODE_SIM builds): the simulated OS behind os.c --------------- */
#ifdef LODE_SIM
bool _lode_os_sim_on(void);
void* _lode_os_sim_reserve(size_t size, size_t alignment);
void _lode_os_sim_release(void* p, size_t size);
void* _lode_os_sim_remap(void* p, size_t old_size, size_t new_size, size_t alignment);
bool _lode_os_sim_commit(void* p, size_t size);
void _lode_os_sim_purge(void* p, size_t size, bool zero);
void _lode_os_sim_reset(void* p, size_t size);
void _lode_os_sim_protect(void* p, size_t size, bool accessible);
bool _lode_os_sim_resident_map(const void* p, size_t size, unsigned char* vec);
bool _lode_os_sim_refused_this_input(void); /* an OS failure since lode_sim_os_new_input */
void _lode_os_sim_touch(void* p, size_t size);
void _lode_os_sim_copy(void* dst, const void* src, size_t n);
void _lode_os_sim_note_protected(void); /* a decommit protected pages (this input) */
bool _lode_os_sim_ever_protected(void);
#endif

/* --- os.c: every OS call goes through here (and through failure injection) -- */
/* Unmap [p, p + size) with its mprotect guards; `committed`: the bytes of it
 * still counted in committed_current (taken off when they are gone).  False
 * when the OS refused: its bytes dropped, it stays counted as reserved and
 * waits for _lode_os_release_retry (a later release, a forced collect). */
bool _lode_os_release(void* p, size_t size, size_t committed, uint32_t guard_protects);
bool _lode_os_release_retry(void); /* true: no refused unmap waits */
bool _lode_os_reuse(void* p, size_t size, bool has_protected, uint32_t guard_protects, bool markers,
                    bool keep_markers);
bool _lode_os_discard(void* p, size_t size); /* true: reads as zero now */
bool _lode_os_reset(void* p, size_t size); /* committed memory keeps its state, loses its bytes (true: it did) */
void* _lode_os_reserve_flex(size_t need, size_t want, size_t alignment, size_t* got);
bool _lode_os_address_space_limited(void); /* RLIMIT_AS is finite: reserve no room to grow */
bool _lode_os_commit(void* p, size_t size);
bool _lode_os_commit_protected(void* p, size_t size); /* a range _lode_os_decommit protected */
void _lode_os_commit_fresh(void* p, size_t size);      /* in a reservation just made: cannot fail */
bool _lode_os_decommit(void* p, size_t size); /* false: still committed and counted */
/* By LODE_PURGE_MODE.  False when the OS refused: still committed and counted.
 * *zero: it reads as zero now. */
bool _lode_os_purge(void* p, size_t size, size_t counted, bool* zero);
/* lode is about to write [p, p + size) of committed memory: free-list links
 * of new blocks, a segment header, a copy.  The simulated OS clears memory
 * there, not at commit, as the kernel faults in only what is written: a
 * commit of a 512 KiB page of which a program uses 8 KiB costs 8 KiB (the
 * fuzz harness touches what it writes in a block, lode_sim_os_touch).
 * Nothing outside LODE_SIM builds. */
#ifdef LODE_SIM
void _lode_os_touch(void* p, size_t size);
#else
static inline void _lode_os_touch(void* p, size_t size) {
  (void)p;
  (void)size;
}
#endif
/* realloc's copy between committed blocks: true when the simulated OS did it
 * (skipping what reads as zero on both sides), false when the caller copies. */
#ifdef LODE_SIM
bool _lode_os_copy(void* dst, const void* src, size_t n);
#else
static inline bool _lode_os_copy(void* dst, const void* src, size_t n) {
  (void)dst;
  (void)src;
  (void)n;
  return false;
}
#endif
bool _lode_os_resident_map(const void* p, size_t size, unsigned char* vec); /* mincore */
/* What each OS page of [p, p + size) holds (p page-aligned): in memory, nothing
 * (never written since its last discard: reads as zero), or data elsewhere
 * (swapped out).  False when the pagemap cannot be read (the pages it did not
 * answer for are left as they were; UNKNOWN is the caller's: not in memory,
 * what else the OS cannot say). */
enum { LODE_PAGE_ABSENT = 0, LODE_PAGE_PRESENT = 1, LODE_PAGE_SWAPPED = 2, LODE_PAGE_UNKNOWN = 3 };
bool _lode_os_page_states(const void* p, size_t size, unsigned char* vec);
bool _lode_os_overcommit_ok(size_t size); /* a mapping of size would pass the kernel's overcommit check */
void _lode_os_fork_prepare(void);
void _lode_os_fork_parent(void);
void _lode_os_fork_child(void); /* drops what describes the parent's pages */
int _lode_os_pagemap_fd(void);   /* -1: none open (tests) */
bool _lode_os_huge_pages_wanted(void);                 /* LODE_HUGE_OS_PAGES, "auto" resolved */
void _lode_os_advise_huge_pages(void* p, size_t size); /* LODE_HUGE_OS_PAGES */
void _lode_os_advise_small_pages(void* p, size_t size); /* undoes it */
void* _lode_os_remap(void* p, size_t old_size, size_t new_size, size_t alignment); /* mremap; NULL: cannot */
size_t _lode_os_resident(const void* p, size_t size);
void* _lode_os_alloc_meta(size_t size); /* lode's own tables; never injected */
void _lode_os_free_meta(void* p, size_t size);
void* _lode_os_alloc_map(size_t size); /* the segment map's: injected as LODE_OS_MAP */
bool _lode_os_fail_injected(unsigned op); /* an injected failure of op (lode_os_op_t) is due */
#ifdef LODE_SECURE
void* _lode_os_reserve_inaccessible(size_t size); /* NULL on failure */
typedef enum lode_guard_e { LODE_GUARD_NONE, LODE_GUARD_MARKER, LODE_GUARD_PROTECT } lode_guard_t;
lode_guard_t _lode_os_guard(void* p, size_t size); /* how it was made, if at all */
bool _lode_os_protect_room(void* p, size_t size); /* false: still accessible */
#endif

/* --- segment_map.c: which 4 MiB chunks belong to lode ----------------------- */
#define LODE_MAP_CHUNKS ((size_t)1 << (LODE_ADDRESS_BITS - LODE_SEGMENT_SHIFT))
#define LODE_CHUNK_START 1
extern _Atomic(_Atomic(uint8_t)*) _lode_map_base;
/* Chunks the map covers: 0 until it exists, then LODE_MAP_CHUNKS.  Stored
 * after the base (release), so one compare tests both "a map exists" and
 * "p lies below the limit". */
extern _Atomic(uintptr_t) _lode_map_limit;
/* p lies in the first chunk of a lode segment (the free fast path's test). */
static inline bool _lode_segment_map_is_start(const void* p) {
  uintptr_t c = (uintptr_t)p >> LODE_SEGMENT_SHIFT;
  if (lode_unlikely(c >= atomic_load_explicit(&_lode_map_limit, memory_order_acquire))) return false;
  _Atomic(uint8_t)* base = atomic_load_explicit(&_lode_map_base, memory_order_relaxed);
  return atomic_load_explicit(&base[c], memory_order_relaxed) == LODE_CHUNK_START;
}
bool _lode_segment_map_init(void);
/* [start, start + size) becomes (or stops being) a segment; false when the
 * range lies beyond the map (the caller must not use it). */
bool _lode_segment_map_add(const void* start, size_t size);
void _lode_segment_map_remove(const void* start, size_t size);
lode_segment_t* _lode_segment_map_lookup(const void* p); /* NULL if not lode's */

/* --- zero_alloc.c (LODE_SECURE): malloc(0) in memory that faults ------------------ */
/* Distinct pointers into a reserved, never accessible range; NULL when the
 * range is used up (the caller then hands out a one-byte block). */
void* _lode_zero_alloc(void);
bool _lode_zero_contains(const void* p);
bool _lode_zero_live(const void* p, const char* func); /* reported when freed or never handed out */
void _lode_zero_free(const void* p, const char* func); /* reports a pointer it did not hand out */

/* --- canary.c (LODE_SECURE): block trailers, canaries, wiping ----------------------- */
/* Raw memory functions for lode's own writes over blocks: a LODE_SECURE
 * liblode.so exports bounds-checked memset/memcpy, which lode's wipes (past
 * the requested end) must not go through. */
void _lode_raw_memset(void* p, int c, size_t n);
void _lode_raw_memcpy(void* d, const void* s, size_t n);
void _lode_raw_memmove(void* d, const void* s, size_t n);
/* The trailer of the block at `block` (its page's block size): false when it
 * is not a trailer of this address and page (overwritten, or never set). */
bool _lode_trailer_get(const lode_page_t* page, const uint8_t* block, size_t* end, lode_alloc_kind_t* kind);
void _lode_trailer_set(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind);
/* A block newly carved: wiped (unless the page says it is zero) and FREE. */
void _lode_block_carve(const lode_page_t* page, uint8_t* block, bool zero);
/* A block just popped: false when it is not as it was freed (trailer FREE,
 * all but its first word zero; `fresh`: the page says it is zero, only the
 * trailer is read).  Otherwise it becomes a live block of kind, zeroed, its
 * requested part [0, end) and a canary up to 64 bytes after it. */
bool _lode_block_handout(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind, bool fresh);
/* A reported block kept off every list: its trailer, if overwritten, made a
 * free one's, so the next block's checks do not report the same write. */
void _lode_block_retire(const lode_page_t* page, uint8_t* block);
bool _lode_block_padding_ok(const uint8_t* block, size_t d); /* [8, d - 8) reads zero */
/* A block handed out at d >= 16 (over-aligned, or alone in its page: no
 * trailer before it) has a sealed guard word at d - 8: an underflow shows. */
#define LODE_GUARD_WORD ((size_t)8)
void _lode_block_guard_set(const lode_page_t* page, uint8_t* block, size_t d);
bool _lode_block_guard_ok(const lode_page_t* page, const uint8_t* block, size_t d);
bool _lode_block_canary_ok(const lode_page_t* page, const uint8_t* block, size_t end);
bool _lode_block_slack_ok(const lode_page_t* page, const uint8_t* block, size_t end); /* past the canary: zero */
/* A block resized in place from old_end to end: what lay past its new canary
 * (up to old_end) is cleared, as _lode_block_slack_ok wants it. */
void _lode_block_slack_clear(const lode_page_t* page, uint8_t* block, size_t end, size_t old_end);
/* A live block being freed: wiped and marked FREE. */
void _lode_block_wipe(const lode_page_t* page, uint8_t* block, size_t end);
/* Zeroes whole OS pages [lo, hi): what is in memory written, the rest discarded. */
void _lode_wipe_pages(uint8_t* lo, uint8_t* hi);
void _lode_wipe_range(uint8_t* p, size_t n); /* any range: its whole OS pages as above */
/* Still as _lode_block_wipe left it (a block not yet on a free list)? */
bool _lode_block_is_wiped(const lode_page_t* page, const uint8_t* block);
/* _lode_block_is_wiped held: its handout need not read the body again (one
 * check per life; a write between the two goes unseen). */
void _lode_block_verified(const lode_page_t* page, uint8_t* block);
/* A huge block about to change its block size in place: its canary and
 * trailer go (unseal), and are set again at its new size (seal). */
void _lode_block_unseal(const lode_page_t* page, uint8_t* block, size_t end);
void _lode_block_seal(const lode_page_t* page, uint8_t* block, size_t end, lode_alloc_kind_t kind);
/* Change a live block's requested end in place (realloc). */
void _lode_block_resize(const lode_page_t* page, uint8_t* block, size_t old_end, size_t new_end, lode_alloc_kind_t kind);

/* --- segment_cache.c: released mappings kept for reuse ---------------------- */
typedef struct lode_segment_cache_info_s {
  void* base;
  size_t size;           /* bytes mapped */
  lode_page_kind_t kind; /* layout it had */
  uint64_t warm;         /* regular kinds: bit i = page i still committed;
                            huge: end offset of its committed block, 0 if none */
  uint64_t zero;         /* regular kinds: bit i = page i's area reads as zero */
  size_t resident;       /* bytes of it the OS holds in memory (mincore; as far as blocks
                            were carved when it cannot tell): what the cache bounds */
  bool has_protected;    /* part of it is PROT_NONE (a shrunk huge block's tail) */
  bool guard_markers;    /* LODE_SECURE guard pages of `kind`'s layout, as markers */
  uint32_t guard_protects; /* LODE_SECURE guard pages made by mprotect */
  /* Regular kinds: what _lode_segment_cache_measure asks the OS about.  Until
   * it has (exact false), resident is the carved bound. */
  bool exact;
  uint32_t header_size;  /* counted as resident */
  size_t measure_end;    /* the counted pages lie in [base, base + measure_end) */
  uint8_t counted[LODE_SEGMENT_SIZE / LODE_OS_PAGE_SIZE / 8]; /* OS pages committed and written */
} lode_segment_cache_info_t;
/* resident as the OS tells (one mincore), exact set; nothing when exact */
void _lode_segment_cache_measure(lode_segment_cache_info_t* info);
bool _lode_segment_cache_accepts(size_t size);
size_t _lode_segment_cache_room(void); /* resident bytes it takes before evicting (unlocked estimate) */
bool _lode_segment_cache_put(const lode_segment_cache_info_t* info, size_t committed);
bool _lode_segment_cache_take(lode_page_kind_t kind, size_t size, size_t grow_to, lode_segment_cache_info_t* info);
size_t _lode_segment_cache_hold(size_t want); /* warm tail a live huge block may keep past twice its size */
void _lode_segment_cache_unhold(size_t bytes);
bool _lode_segment_cache_due(int64_t now); /* an entry's expiry has come (read without the lock) */
bool _lode_segment_cache_expiring(void);   /* an entry will expire (not one kept until a forced collect) */
void _lode_segment_cache_collect(bool force);
void _lode_segment_cache_fork_prepare(void);
void _lode_segment_cache_fork_parent(void);
void _lode_segment_cache_fork_child(void);

/* --- segment.c: segments, their pages and spans; mechanisms only ------------ */
/* A free page of tld's segments of `kind` that can hold a block of bsize (a
 * run of free slices in large segments: *slices of them), unclaimed; NULL
 * when none.  Committed free pages come first: their memory is warm. */
lode_page_t* _lode_segment_page_find(lode_tld_t* tld, lode_page_kind_t kind, size_t bsize, uint32_t* slices);
/* seg has a free page that holds a block of bsize (a large segment: a run of
 * free slices; bsize 0: any free page). */
bool _lode_segment_fits(lode_segment_t* seg, size_t bsize);
/* A new segment of a regular kind for tld (from the cache or the OS), first
 * on its list; pages still committed from a cached life are free committed
 * pages the caller must schedule.  NULL when the OS refuses. */
lode_segment_t* _lode_segment_alloc(lode_tld_t* tld, lode_page_kind_t kind);
/* Claim a page found above (off every queue: the caller took it off its
 * purge queue): committed and in use.  False when a commit failed: the
 * slices are free again, some perhaps committed (the caller schedules them). */
bool _lode_segment_claim(lode_tld_t* tld, lode_page_t* page, uint32_t slices);
lode_page_t* _lode_segment_huge_alloc(lode_tld_t* tld, size_t size, size_t alignment, size_t* pbsize);
/* A page (a span's head) leaves use; returns its slices, 0 when it was huge
 * and its segment is gone. */
uint32_t _lode_segment_page_free(lode_page_t* page, lode_tld_t* tld, bool wiped);
/* Pages i and i+1 of seg lie side by side (guard pages between them count
 * as side by side): one OS call can purge both. */
bool _lode_segment_pages_touch(const lode_segment_t* seg, uint32_t i);
/* Pages lo..hi of seg (free, committed, off every queue) give their memory back. */
bool _lode_segment_purge_pages(lode_segment_t* seg, uint32_t lo, uint32_t hi, int64_t purged_at); /* false: refused, still committed */
/* Release a segment holding no live block and no queued page. */
void _lode_segment_release(lode_segment_t* seg, lode_tld_t* tld);
bool _lode_segment_try_release(lode_segment_t* seg, lode_tld_t* tld);
void _lode_segment_list_remove(lode_segment_list_t* list, lode_segment_t* seg);
void _lode_segment_list_push(lode_segment_list_t* list, lode_segment_t* seg, bool front);
void _lode_segment_update_position(lode_segment_t* seg, lode_tld_t* tld);
void _lode_segment_span_split(lode_segment_t* seg, lode_page_t* head);
uint32_t _lode_segment_span_room(const lode_page_t* head, size_t bsize); /* 0: no room */
bool _lode_segment_span_extend(lode_tld_t* tld, lode_page_t* head, uint32_t extra, bool* zero);
void _lode_segment_huge_shrink(lode_page_t* page, size_t new_size);
lode_page_t* _lode_segment_huge_remap(lode_tld_t* tld, lode_page_t* page, size_t new_size); /* NULL: stays */
/* The bytes a huge block of `size` commits (its block size): whole OS pages. */
size_t _lode_segment_huge_extent(const lode_page_t* page, size_t size);
bool _lode_segment_huge_grow(lode_page_t* page, size_t new_size);
/* Registry of all segments, for checks made while other threads are quiescent. */
void _lode_segments_lock(void);
void _lode_segments_unlock(void);
void _lode_segments_fork_child(void);
lode_segment_t* _lode_segments_all(void);

/* --- page.c: free lists and the delayed-free hand-shake --------------------- */
void _lode_page_init(lode_page_t* page, size_t block_size);
void _lode_page_regrow(lode_page_t* page, size_t block_size);
bool _lode_page_extend(lode_page_t* page);
void _lode_page_collect(lode_page_t* page, bool force);
/* A merge by the page's owner (its page search, a non-forced collect, an
 * adoption): LODE_SECURE puts fresh remote frees in its quarantine q, not on
 * the page's lists (page.c); q NULL: on the lists. */
#ifdef LODE_SECURE
void _lode_page_collect_owned(lode_page_t* page, lode_quarantine_t* q);
/* Fresh frees merged while no thread could take them in (at their owner's
 * exit, by a forced collect's walk of abandoned segments) lie on the page's
 * lists: its new owner moves them to q.  Returns how many. */
size_t _lode_page_quarantine_listed(lode_page_t* page, lode_quarantine_t* q);
/* A block another thread freed, taken in by its owner: true when it went
 * to q; out[0..*n): the blocks the push sent home, the caller's to free. */
bool _lode_page_quarantine_remote(lode_page_t* page, lode_block_t* block, lode_quarantine_t* q, void* out[2],
                                  size_t* n);
#else
#define _lode_page_collect_owned(page, q) ((void)(q), _lode_page_collect((page), false))
#define _lode_page_quarantine_listed(page, q) ((void)(page), (void)(q), (size_t)0)
#endif
bool _lode_page_accounting_ok(const lode_page_t* page); /* LODE_DEBUG 3 */
/* LODE_SECURE: a page whose every block went back wiped: their links and
 * trailers are cleared too.  True when its whole area now reads as zero. */
bool _lode_page_scrub(lode_page_t* page);
bool _lode_page_set_delayed(lode_page_t* page, lode_delayed_t d, bool override_never);
void _lode_page_free_remote(lode_page_t* page, lode_block_t* block);
lode_block_t* _lode_page_unalign(const lode_page_t* page, const void* p);
/* Whether p is a block of page handed out at an aligned offset (free's test). */
size_t _lode_page_aligned_offset(const lode_block_t* block); /* 0: no tag */
bool _lode_page_aligned_tag_ok(const lode_page_t* page, const lode_block_t* block, const void* p);
void _lode_page_aligned_tag_set(const lode_page_t* page, lode_block_t* block, const void* p);
/* In a fork child: pages whose remote free was in flight in a thread that
 * does not exist here stop waiting for it. */
void _lode_pages_forget_freeing(lode_segment_t* seg);

/* --- page_queue.c: a heap's page queues and direct table --------------------- */
void _lode_queue_push_front(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page);
void _lode_queue_push_back(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page);
void _lode_queue_remove(lode_heap_t* heap, lode_page_queue_t* q, lode_page_t* page);
void _lode_queue_to_full(lode_heap_t* heap, lode_page_t* page);
void _lode_queue_from_full(lode_heap_t* heap, lode_page_t* page);
lode_page_queue_t* _lode_page_queue_of(lode_heap_t* heap, const lode_page_t* page);
void _lode_heap_direct_update(lode_heap_t* heap, size_t bin);

/* --- purge_queue.c: free pages waiting for their memory to go back ---------- */
/* Slices page..page+slices-1 leave tld's queue before a claim (P3). */
void _lode_purge_queue_take(lode_tld_t* tld, lode_page_t* page, uint32_t slices);
/* The free page (a span's head with its slices) follows the purge policy:
 * purged now, queued (at `inherited` when non-zero: an adopted page keeps
 * the expiry it had), or left committed.  Returns true when that released
 * its segment. */
bool _lode_purge_schedule(lode_tld_t* tld, lode_page_t* page, uint32_t slices, int64_t inherited);
/* Every free committed page of seg that is on no queue, scheduled; true
 * when that released the segment. */
bool _lode_purge_schedule_segment(lode_tld_t* tld, lode_segment_t* seg);
void _lode_purge_queue_push_expiring(lode_tld_t* tld, lode_page_t* page, int64_t expire);
void _lode_purge_queue_remove(lode_tld_t* tld, lode_page_t* page);
size_t _lode_purge_queue_run(lode_tld_t* tld, bool force, int64_t now);
/* Purge `page` with its due neighbours (upto INT64_MAX: every free committed
 * one); returns pages purged, *released: the segment went too. */
size_t _lode_page_purge_run(lode_page_t* page, lode_tld_t* tld, int64_t upto, int64_t purged_at, bool* released);
/* Forced collect: every free committed page of tld's segments purged. */
void _lode_purge_all_free(lode_tld_t* tld);
/* Pages of seg leave tld's queue, keeping their expiry in purge_expire. */
void _lode_purge_queue_forget_segment(lode_tld_t* tld, lode_segment_t* seg);
/* Forced collect: segments of tld with no page in use go back whole. */
void _lode_purge_release_empty_segments(lode_tld_t* tld);
static inline bool _lode_purge_queue_due(const lode_tld_t* tld, int64_t now) {
  return tld->purge.first != NULL && tld->purge.first->purge_expire <= now;
}

/* --- abandoned.c: segments of exited threads --------------------------------- */
void _lode_segment_abandon(lode_segment_t* seg, lode_tld_t* tld);
bool _lode_abandoned_reclaim(lode_heap_t* heap, lode_page_kind_t kind, size_t max_segments);
/* As _lode_abandoned_reclaim, but a segment of `kind` ends the reclaim only
 * when a block of bsize fits in it (0: any free page). */
bool _lode_abandoned_reclaim_for(lode_heap_t* heap, lode_page_kind_t kind, size_t bsize, size_t max_segments);
/* Whether the list holds a segment (a relaxed look, without the lock). */
bool _lode_abandoned_waiting(void);
/* tld adopts the oldest abandoned segment if it has waited longer than a
 * reclaim of its kind would: its blocks freed since the exit merge, and a
 * segment with nothing live goes back. */
void _lode_abandoned_reclaim_stale(lode_tld_t* tld, int64_t now);
/* tld takes seg, an abandoned huge segment, off the list and adopts it,
 * unless someone has it: after a remote free emptied it (the adoption
 * releases it to the segment cache), or for a realloc of its live block. */
void _lode_abandoned_take_huge(lode_segment_t* seg, lode_tld_t* tld);
size_t _lode_abandoned_release_empty(lode_tld_t* tld);
uint64_t _lode_abandoned_pushes(void); /* segments ever put on the list by an abandon */
void _lode_abandoned_fork_prepare(void);
void _lode_abandoned_fork_parent(void);
void _lode_abandoned_fork_child(void);
/* In a fork child, its locks released: the FORKED segments whose state
 * checks out become abandoned ones (the rest stay FORKED); returns how many. */
size_t _lode_abandoned_fork_take(void);
/* check.c walks the list with other threads quiescent. */
lode_segment_t* _lode_abandoned_first(void);
size_t _lode_abandoned_count(void);
lode_segment_t* _lode_abandoned_last(void);
#ifdef LODE_SIM
lode_segment_t* _lode_abandoned_fitting(lode_page_kind_t kind, size_t bsize);
/* A6: how often a segment was mapped while another could hold the block
 * (heap.c), and the first one that could. */
size_t _lode_heap_fresh_errors(const void** first);
#endif

/* --- heap.c: heaps, the generic allocation path, collect, thread abandon ------ */
void _lode_heap_init(lode_heap_t* heap, lode_tld_t* tld, bool backing);
lode_heap_t* _lode_heap_new_in(lode_heap_t* backing);
void* _lode_heap_malloc_generic(lode_heap_t* heap, size_t size); /* heap->tld != NULL */
lode_page_t* _lode_heap_huge_page(lode_heap_t* heap, size_t size, size_t alignment);
void* _lode_heap_huge_remap(lode_heap_t* heap, lode_page_t* page, size_t newsize); /* NULL: it stays */
bool _lode_heap_large_grow(lode_heap_t* heap, lode_page_t* page, size_t newsize, bool* zero);
void _lode_heap_free_block(lode_page_t* page, lode_block_t* block); /* owner thread */
void _lode_heap_page_retire(lode_page_t* page);
void _lode_heap_collect_ex(lode_heap_t* heap, bool force);
/* LODE_SECURE: a block leaving the quarantine goes back to its page (after
 * the wipe check); the flush empties the thread's quarantine. */
void _lode_heap_quarantine_release(void* block);
void _lode_heap_quarantine_flush(lode_tld_t* tld);
/* Thread exit; false when a remote free in flight never finished (the tld
 * must then stay: see _lode_page_set_delayed). */
bool _lode_heap_abandon_all(lode_tld_t* tld);

/* --- thread.c: process and thread life cycle --------------------------------- */
lode_heap_t* _lode_thread_init(void); /* NULL on failure */
/* After the thread's exit ran (a later pthread key destructor allocates):
 * the thread data made for that goes back at once, no destructor will. */
void _lode_thread_exit_again(void);
void _lode_process_init(void);
bool _lode_process_is_initialized(void);
/* The thread data of the threads whose exit has not run, into out (at most
 * cap); returns how many there are.  The checker's A4. */
size_t _lode_thread_data_live(const lode_tld_t** out, size_t cap);

/* --- alloc.c: the allocation API ---------------------------------------------- */
void* _lode_heap_malloc_aligned(lode_heap_t* heap, size_t size, size_t alignment, bool zero);
#ifdef LODE_SECURE
/* The C++ operators (override.c) and the checked memory functions. */
void* _lode_alloc_kind(size_t size, size_t alignment, lode_alloc_kind_t kind);
/* size LODE_UNSIZED: free or an unsized delete (a sized delete may name 0) */
#define LODE_UNSIZED SIZE_MAX
void _lode_free_kind(void* p, lode_alloc_kind_t kind, size_t size, const char* func);
/* [p, p + n) is fine to access: not in a lode page area, or inside one live
 * block's requested part.  Otherwise reports it (as func) and returns false. */
bool _lode_range_ok(const void* p, size_t n, const char* func);
#endif

/* --- check.c: the invariant checker ---------------------------------------------- */
void _lode_check_report(const char* inv, const void* obj, const char* msg);

#pragma GCC visibility pop
#endif /* LODE_INTERNAL_H */
