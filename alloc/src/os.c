/* OS layer: every mmap/munmap/madvise/mprotect of lode goes through here, so
 * tests can inject failures (lode_test_fail_os), statistics stay exact, and a
 * LODE_SIM build can answer from its simulated OS (os_sim.c) instead. */
#include "internal.h"

#include <pthread.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL /* Linux 6.13; the C library may not name them yet */
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

/* Failure injection: the next os_fail_pending calls of the operations in
 * os_fail_ops fail, after os_fail_skip of them went through. */
static _Atomic(long) os_fail_pending; /* injected failures still to deliver */
static _Atomic(long) os_fail_skip;    /* calls let through before them */
static _Atomic(unsigned) os_fail_ops = LODE_OS_CLASSIC; /* which operations they hit */
static _Atomic(bool) os_ever_protected; /* purge mode decommit protected pages: commit must unprotect */
static _Atomic(bool) os_ever_guarded;   /* LODE_SIM: a guard page exists: a reused mapping must unprotect */

#ifdef LODE_TESTING
long lode_test_fail_os_ops(unsigned ops, long skip, long count) {
  atomic_store_explicit(&os_fail_ops, ops, memory_order_relaxed);
  atomic_store_explicit(&os_fail_skip, skip < 0 ? 0 : skip, memory_order_relaxed);
  return atomic_exchange_explicit(&os_fail_pending, count < 0 ? 0 : count, memory_order_relaxed);
}

long lode_test_fail_os(long count) { return lode_test_fail_os_ops(LODE_OS_CLASSIC, 0, count); }

long lode_test_fail_os_after(long skip, long count) { return lode_test_fail_os_ops(LODE_OS_CLASSIC, skip, count); }
#endif

#ifdef LODE_SIM
#define SIM_ON() lode_unlikely(_lode_os_sim_on())
#else
#define SIM_ON() false
#endif

/* Every failure is counted and reported once, by the caller that meets it;
 * an injected one (fail_due) says so, whatever the caller calls it (the
 * fuzzer counts those lines against the statistic). */
static void os_failed(const char* what, void* p, size_t size) {
  lode_stat_inc(os_failures);
  if (LODE_TLS(os_fail_injected)) {
    LODE_TLS(os_fail_injected) = false;
    what = "injected OS failure";
    p = NULL;
    size = 0;
  }
  _lode_verbose(what, p, size);
}

/* Consume one injected failure of `op` if any is pending (errno ENOMEM, as
 * the kernel's); the caller reports it as it reports the OS's. */
static bool fail_due(unsigned op) {
  long n = atomic_load_explicit(&os_fail_pending, memory_order_relaxed);
  if (n <= 0 || (atomic_load_explicit(&os_fail_ops, memory_order_relaxed) & op) == 0) return false;
  long k = atomic_load_explicit(&os_fail_skip, memory_order_relaxed);
  while (k > 0)
    if (atomic_compare_exchange_weak_explicit(&os_fail_skip, &k, k - 1, memory_order_relaxed, memory_order_relaxed))
      return false;
  while (n > 0) {
    if (atomic_compare_exchange_weak_explicit(&os_fail_pending, &n, n - 1, memory_order_relaxed,
                                              memory_order_relaxed)) {
      errno = ENOMEM;
      LODE_TLS(os_fail_injected) = true;
      return true;
    }
  }
  return false;
}

/* The same for a caller that reports nothing itself: counted and reported
 * as a failure of the OS is. */
bool _lode_os_fail_injected(unsigned op) {
  if (!fail_due(op)) return false;
  os_failed("injected", NULL, 0);
  return true;
}

static int os_mprotect(void* p, size_t size, int prot) {
  if (fail_due(LODE_OS_PROTECT)) return -1;
  lode_stat_inc(protects);
  return mprotect(p, size, prot);
}

/* The mprotect of a decommit or of a protected range's commit.  The
 * simulated OS protects nothing (its poison check stands for the fault),
 * but the call stays one the kernel may refuse: injection fails it in both
 * modes, or fail-os protect would fail commits only on real threads. */
static int os_protect_range(void* p, size_t size, int prot) {
  if (SIM_ON()) return fail_due(LODE_OS_PROTECT) ? -1 : 0;
  return os_mprotect(p, size, prot);
}

/* madvise that injection can fail as `op`. */
static int os_madvise(void* p, size_t size, int advice, unsigned op) {
  if (fail_due(op)) return -1;
  return madvise(p, size, advice);
}

/* Drop the bytes of [p, p + size): it stays mapped and reads as zero.
 * False when the OS refused (the bytes are where they were). */
static bool os_drop(void* p, size_t size, unsigned op) {
  if (fail_due(op)) return false;
#ifdef LODE_SIM
  if (SIM_ON()) {
    _lode_os_sim_purge(p, size, true);
    return true;
  }
#endif
  return madvise(p, size, MADV_DONTNEED) == 0;
}

/* A mapping at a hint (NULL: anywhere); NULL when that failed. */
static void* os_mmap_at(void* hint, size_t size) {
  void* p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  lode_stat_inc(mmaps);
  return p;
}

static void* os_mmap(size_t size) {
  void* p = os_mmap_at(NULL, size);
  if (p == NULL) os_failed("mmap failed", NULL, size);
  return p;
}

/* --- unmaps the OS refused ------------------------------------------------
 * munmap can fail: one that splits a mapping past vm.max_map_count is
 * ENOMEM.  Such a range is not forgotten: its bytes are dropped (madvise
 * splits nothing), it stays counted in reserved_current, and it waits on
 * this list for a later release or a forced collect to unmap it (review,
 * 2026-12-06: the mapping leaked while the statistics said released).
 * Invariant: reserved_current counts every range lode mapped and has not
 * unmapped, the ones waiting here included; committed_current counts the
 * bytes of one of them until they are dropped.  A range that finds the list
 * full stays mapped and counted for good (reported, never silent). */
#define UNMAP_RETRY_SLOTS 64
typedef struct unmap_retry_s {
  void* p;
  size_t size;
  size_t committed;        /* bytes still counted in committed_current (not dropped) */
  uint32_t guard_protects; /* its LODE_SECURE mprotect guards, still alive */
} unmap_retry_t;
static unmap_retry_t unmap_retry[UNMAP_RETRY_SLOTS]; /* guarded by unmap_retry_lock */
static pthread_mutex_t unmap_retry_lock = PTHREAD_MUTEX_INITIALIZER; /* held over fork (thread.c) */
static _Atomic(size_t) unmap_retry_count; /* read without the lock: anything waiting? */

static void guards_gone(uint32_t protects);

/* The OS call alone: true when [p, p + size) is unmapped.  `counted`: a
 * release of memory lode used (statistic munmaps), not a reservation's slack. */
static bool os_unmap(void* p, size_t size, bool counted) {
  if (!fail_due(LODE_OS_RELEASE)) {
#ifdef LODE_SIM
    if (SIM_ON()) {
      _lode_os_sim_release(p, size);
      return true;
    }
#endif
    if (munmap(p, size) == 0) {
      if (counted) lode_stat_inc(munmaps);
      return true;
    }
  }
  os_failed("munmap failed", p, size);
  return false;
}

static bool unmap_retry_push(const unmap_retry_t* r) {
  pthread_mutex_lock(&unmap_retry_lock);
  size_t n = atomic_load_explicit(&unmap_retry_count, memory_order_relaxed);
  bool room = n < UNMAP_RETRY_SLOTS;
  if (room) {
    unmap_retry[n] = *r;
    atomic_store_explicit(&unmap_retry_count, n + 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&unmap_retry_lock);
  return room;
}

/* A counted range (reserved_current holds size, committed_current holds
 * `committed` of it) goes back to the OS, or, refused, waits to. */
static bool os_release_range(void* p, size_t size, size_t committed, uint32_t guard_protects) {
  if (size == 0) return true;
  if (os_unmap(p, size, true)) {
    guards_gone(guard_protects);
    _lode_stat_sub(&_lode_stats.committed_current, committed);
    _lode_stat_sub(&_lode_stats.reserved_current, size);
    return true;
  }
  /* its memory at least goes now; its address space when a retry succeeds */
  if (committed != 0) {
    if (os_drop(p, size, LODE_OS_DISCARD)) {
      _lode_stat_sub(&_lode_stats.committed_current, committed);
      committed = 0;
    } else {
      os_failed("madvise(drop of an unmap refused) failed", p, size);
    }
  }
  unmap_retry_t r = {p, size, committed, guard_protects};
  if (!unmap_retry_push(&r)) os_failed("munmap failed, retry list full: range stays mapped", p, size);
  return false;
}

/* A range lode mapped and never counted (a misaligned reservation or its
 * slack, an overcommit probe): refused, it is counted from now on, as
 * reserved.  `stat`: counted in munmaps (not the slack). */
static void os_munmap_uncounted(void* p, size_t size, bool stat) {
  if (size == 0 || os_unmap(p, size, stat)) return;
  _lode_stat_add(&_lode_stats.reserved_current, NULL, size);
  unmap_retry_t r = {p, size, 0, 0};
  if (!unmap_retry_push(&r)) os_failed("munmap failed, retry list full: range stays mapped", p, size);
}

/* Unmap what waits on the list; a thread that finds it busy leaves it to
 * the next.  True when nothing waits any more. */
bool _lode_os_release_retry(void) {
  if (atomic_load_explicit(&unmap_retry_count, memory_order_relaxed) == 0) return true;
  if (pthread_mutex_trylock(&unmap_retry_lock) != 0) return false;
  size_t n = atomic_load_explicit(&unmap_retry_count, memory_order_relaxed);
  for (size_t i = 0; i < n;) {
    unmap_retry_t* r = &unmap_retry[i];
    if (os_unmap(r->p, r->size, true)) {
      guards_gone(r->guard_protects);
      _lode_stat_sub(&_lode_stats.committed_current, r->committed);
      _lode_stat_sub(&_lode_stats.reserved_current, r->size);
      unmap_retry[i] = unmap_retry[--n];
    } else {
      i++;
    }
  }
  atomic_store_explicit(&unmap_retry_count, n, memory_order_relaxed);
  pthread_mutex_unlock(&unmap_retry_lock);
  return n == 0;
}

/* Would the kernel's overcommit policy let a private writable mapping of
 * `size` through?  Reservations are MAP_NORESERVE (address space for growth
 * must not count), which skips the heuristic check (vm.overcommit_memory 0)
 * that refuses a single mapping larger than memory and swap: malloc of
 * 16 TiB succeeded and the program was killed when it used it, where glibc's
 * returns NULL (review, 2026-12-06).  A huge block asks first, with a probe
 * mapping of its size that is never touched (two system calls, from 256 MiB
 * on).  Under strict overcommit (2) NORESERVE is ignored: the reservation is
 * the check. */
#define OVERCOMMIT_PROBE_MIN ((size_t)256 << 20)
bool _lode_os_overcommit_ok(size_t size) {
  if (size < OVERCOMMIT_PROBE_MIN || SIM_ON()) return true;
  void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    os_failed("mmap (overcommit check) failed", NULL, size);
    return false;
  }
  os_munmap_uncounted(p, size, false); /* (a probe: munmap was never counted) */
  return true;
}

/* Where the next aligned reservation is tried: just below the last one (the
 * kernel hands out mappings top-down, so the range there is usually free).
 * Without it most segments took five calls (mmap, munmap, mmap of size +
 * alignment, two munmaps of the slack); with it, one.  Only a hint: the
 * kernel never replaces a mapping for it, and a miss falls back. */
static _Atomic(uintptr_t) os_hint;

/* Reserve `size` bytes aligned to `alignment` (a power of two >= OS page). The
 * memory is readable and writable; Linux commits it on first touch. */
static void* reserve_aligned(size_t size, size_t alignment) {
  size = lode_align_up(size, LODE_OS_PAGE_SIZE);
#ifdef LODE_SIM
  if (SIM_ON()) {
    void* q = _lode_os_sim_reserve(size, alignment);
    if (q != NULL) _lode_stat_add(&_lode_stats.reserved_current, NULL, size);
    return q;
  }
#endif
  uintptr_t h = atomic_load_explicit(&os_hint, memory_order_relaxed);
  uint8_t* p = NULL;
  if (h > size + alignment) {
    uintptr_t want = (h - size) & ~(uintptr_t)(alignment - 1);
    p = os_mmap_at((void*)want, size);
    if (p != NULL && ((uintptr_t)p & (alignment - 1)) != 0) {
      os_munmap_uncounted(p, size, true);
      p = NULL;
    }
  }
  /* Else the exact size: mappings often come out aligned already. */
  if (p == NULL) p = os_mmap(size);
  if (p == NULL) return NULL;
  if (((uintptr_t)p & (alignment - 1)) != 0) {
    os_munmap_uncounted(p, size, true);
    size_t over = size + alignment;
    if (over < size) return NULL;
    p = os_mmap(over);
    if (p == NULL) return NULL;
    uint8_t* aligned = (uint8_t*)lode_align_up((uintptr_t)p, alignment);
    size_t pre = (size_t)(aligned - p);
    size_t post = over - pre - size;
    /* Unmapping the slack is not counted as a release of memory we used. */
    os_munmap_uncounted(p, pre, false);
    os_munmap_uncounted(aligned + size, post, false);
    p = aligned;
  }
  /* A kernel with 5-level paging may place a mapping above what the segment
   * map covers (when asked with a high hint): lode cannot use it. */
  if ((uintptr_t)p + size > LODE_ADDRESS_LIMIT || (uintptr_t)p + size < (uintptr_t)p) {
    os_munmap_uncounted(p, size, true);
    os_failed("mmap beyond the segment map", p, size);
    return NULL;
  }
  atomic_store_explicit(&os_hint, (uintptr_t)p, memory_order_relaxed);
  _lode_stat_add(&_lode_stats.reserved_current, NULL, size);
  return p;
}

/* A process under an address-space limit (ulimit -v): there address space
 * is what runs out, and room for a huge block to grow in place halved what
 * fits (review, 2026-12-06: 3 MiB blocks under 1 GB, 118 where glibc gets
 * 332).  The limit may change at run time: asked each time (a huge block's
 * reservation is a syscall anyway). */
static bool address_space_limited(void) {
#ifdef LODE_SIM
  if (SIM_ON()) return false; /* the simulated arena has no such limit */
#endif
  struct rlimit rl;
  return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

/* (for a huge block's move, which reserves room as a new block does) */
bool _lode_os_address_space_limited(void) { return address_space_limited(); }

/* Reserve `want` bytes, or at least `need` when address space is short (one
 * OS call as far as failure injection goes).  *got: the size reserved. */
void* _lode_os_reserve_flex(size_t need, size_t want, size_t alignment, size_t* got) {
  if (_lode_os_fail_injected(LODE_OS_RESERVE)) return NULL;
  void* p = NULL;
  if (want > need && !address_space_limited() && (p = reserve_aligned(want, alignment)) != NULL) {
    *got = lode_align_up(want, LODE_OS_PAGE_SIZE);
    return p;
  }
  *got = lode_align_up(need, LODE_OS_PAGE_SIZE);
  return reserve_aligned(need, alignment);
}

/* LODE_SECURE's mprotect guards alive (see _lode_os_guard): a mapping with
 * `protects` of them is unmapped, or made accessible whole again. */
static _Atomic(long) os_guard_protects;

static void guards_gone(uint32_t protects) {
  if (protects != 0) atomic_fetch_sub_explicit(&os_guard_protects, (long)protects, memory_order_relaxed);
}

bool _lode_os_release(void* p, size_t size, size_t committed, uint32_t guard_protects) {
  _lode_os_release_retry(); /* ranges refused before: the OS may take them now */
  return os_release_range(p, lode_align_up(size, LODE_OS_PAGE_SIZE), committed, guard_protects);
}

#ifdef MREMAP_FIXED
#ifdef LODE_TESTING
static _Atomic(size_t) remap_limit;
static _Atomic(long) remap_fail_at;

void lode_test_remap_pieces(size_t limit, long fail_at) {
  atomic_store_explicit(&remap_limit, limit, memory_order_relaxed);
  atomic_store_explicit(&remap_fail_at, fail_at, memory_order_relaxed);
}
#endif

/* One mremap.  LODE_TESTING: a call longer than the limit fails with EFAULT,
 * as a kernel before 6.17 refuses a range over more than one mapping; the
 * fail_at-th call within it fails with ENOMEM. */
static bool remap_piece(uint8_t* from, size_t n, uint8_t* to) {
#ifdef LODE_TESTING
  size_t limit = atomic_load_explicit(&remap_limit, memory_order_relaxed);
  if (limit != 0 && n > limit) {
    errno = EFAULT;
    return false;
  }
  if (atomic_load_explicit(&remap_fail_at, memory_order_relaxed) > 0 &&
      atomic_fetch_sub_explicit(&remap_fail_at, 1, memory_order_relaxed) == 1) {
    errno = ENOMEM;
    return false;
  }
#endif
  return mremap(from, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED;
}

/* Moves [from, from + n) to `to`.  Before Linux 6.17 one mremap moves
 * within one mapping only (EFAULT across more), and a huge segment is
 * several: its huge-page advice splits it, and an earlier move leaves the
 * moved part and its new room apart.  Such a range is halved until each
 * piece lies in one mapping: a few calls for lode's few splits.  *done:
 * bytes moved from the start; on false the caller moves them back. */
static bool remap_range(uint8_t* from, size_t n, uint8_t* to, size_t* done) {
  if (remap_piece(from, n, to)) {
    *done += n;
    return true;
  }
  if (errno != EFAULT || n <= LODE_OS_PAGE_SIZE) return false;
  size_t half = lode_align_up(n / 2, LODE_OS_PAGE_SIZE);
  return remap_range(from, half, to, done) && remap_range(from + half, n - half, to + half, done);
}
#endif

/* Move a whole mapping [p, p + old_size) to a new reservation of new_size
 * bytes aligned to `alignment`: its pages go along (mremap moves page
 * tables: nothing is copied or faulted in again), the rest of the new range
 * is fresh.  NULL when it cannot; the old mapping is then untouched. */
void* _lode_os_remap(void* p, size_t old_size, size_t new_size, size_t alignment) {
  if (_lode_os_fail_injected(LODE_OS_REMAP)) return NULL;
  old_size = lode_align_up(old_size, LODE_OS_PAGE_SIZE);
  new_size = lode_align_up(new_size, LODE_OS_PAGE_SIZE);
  if (new_size < old_size) return NULL;
#ifdef LODE_SIM
  if (SIM_ON()) {
    void* q = _lode_os_sim_remap(p, old_size, new_size, alignment);
    if (q != NULL) _lode_stat_add(&_lode_stats.reserved_current, NULL, new_size - old_size);
    return q;
  }
#endif
#ifdef MREMAP_FIXED
  uint8_t* q = reserve_aligned(new_size, alignment);
  if (q == NULL) return NULL;
  /* The moved pages replace the start of the new reservation. */
  size_t done = 0;
  if (!remap_range(p, old_size, q, &done)) {
    int err = errno;
    size_t back = 0;
    if (done != 0 && !remap_range(q, done, p, &back))
      _lode_fatal("mremap: a huge block moved in part could not be moved back", p, done);
    errno = err;
    os_failed("mremap failed", p, old_size);
    _lode_os_release(q, new_size, 0, 0);
    return NULL;
  }
  lode_stat_inc(remaps);
  _lode_stat_sub(&_lode_stats.reserved_current, old_size);
  return q;
#else
  (void)p;
  (void)alignment;
  return NULL;
#endif
}

/* Commit makes a range usable again after a purge.  Only purge mode decommit
 * protects purged pages, so otherwise commit is bookkeeping plus the failure
 * injection point (a real commit can fail under memory pressure).  A range
 * that _lode_os_decommit protected outside that mode (a shrunk huge block's
 * tail) is committed with unprotect = true by the one who knows it. */
static bool os_commit(void* p, size_t size, bool unprotect) {
  if (_lode_os_fail_injected(LODE_OS_COMMIT)) return false;
  if (unprotect && os_protect_range(p, size, PROT_READ | PROT_WRITE) != 0) {
    os_failed("mprotect(commit) failed", p, size);
    return false;
  }
#ifdef LODE_SIM
  if (SIM_ON()) _lode_os_sim_commit(p, size);
#endif
  lode_stat_inc(commits);
  _lode_stat_add(&_lode_stats.committed_current, &_lode_stats.committed_peak, size);
  return true;
}

/* Purge mode decommit protected pages: every commit must unprotect.  The
 * simulated OS keeps its own flag, which a new input clears as a new
 * process starts with none (os_sim.c: the call goes down, not up). */
static bool ever_protected(void) {
#ifdef LODE_SIM
  if (SIM_ON()) return _lode_os_sim_ever_protected();
#endif
  return atomic_load_explicit(&os_ever_protected, memory_order_relaxed);
}

static void note_protected(void) {
#ifdef LODE_SIM
  if (SIM_ON()) {
    _lode_os_sim_note_protected();
    return;
  }
#endif
  atomic_store_explicit(&os_ever_protected, true, memory_order_relaxed);
}

bool _lode_os_commit(void* p, size_t size) { return os_commit(p, size, ever_protected()); }

bool _lode_os_commit_protected(void* p, size_t size) { return os_commit(p, size, true); }

/* Commit part of a range reserved a moment ago (it is accessible: nothing to
 * unprotect, no OS call, so nothing that can fail). */
void _lode_os_commit_fresh(void* p, size_t size) {
#ifdef LODE_SIM
  if (SIM_ON()) _lode_os_sim_commit(p, size);
#else
  (void)p;
#endif
  lode_stat_inc(commits);
  _lode_stat_add(&_lode_stats.committed_current, &_lode_stats.committed_peak, size);
}

/* A cached mapping used again: ranges a decommit or guard page made
 * inaccessible become usable (the caller commits what it uses).  Guard
 * markers stay when `keep_markers` (the same layout puts them back). */
bool _lode_os_reuse(void* p, size_t size, bool has_protected, uint32_t guard_protects, bool markers,
                    bool keep_markers) {
  if (markers && !keep_markers && !SIM_ON() && os_madvise(p, size, MADV_GUARD_REMOVE, LODE_OS_PROTECT) != 0) {
    os_failed("madvise(guard remove) failed", p, size);
    return false;
  }
  if (!has_protected && guard_protects == 0 && !ever_protected() &&
      !(SIM_ON() && atomic_load_explicit(&os_ever_guarded, memory_order_relaxed)))
    return true;
  if (os_mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
    os_failed("mprotect(reuse) failed", p, size);
    return false;
  }
  guards_gone(guard_protects);
#ifdef LODE_SIM
  if (SIM_ON()) _lode_os_sim_protect(p, size, true);
#endif
  return true;
}

/* Drop the contents of an uncounted range (a cached mapping's memory that
 * nothing tracks any more); it stays usable.  True when it reads as zero
 * now: refused, it holds its old bytes (a caller that takes it for zero
 * would hand them to calloc). */
bool _lode_os_discard(void* p, size_t size) {
  if (size == 0) return true;
  if (os_drop(p, size, LODE_OS_DISCARD)) return true;
  os_failed("madvise(discard) failed", p, size);
  return false;
}

/* Drop the contents of committed memory that stays committed and usable
 * (reads as zero at its next touch): a huge block freed by a thread that
 * does not own it, whose owner may not look at its frees for a long time. */
bool _lode_os_reset(void* p, size_t size) {
  if (size == 0) return true;
  if (fail_due(LODE_OS_RESET)) {
    os_failed("madvise(reset) failed", p, size); /* (reported as injected) */
    return false;
  }
#ifdef LODE_SIM
  if (SIM_ON()) {
    _lode_os_sim_reset(p, size);
    return true;
  }
#endif
  if (madvise(p, size, MADV_DONTNEED) == 0) return true;
  os_failed("madvise(reset) failed", p, size);
  return false;
}

/* LODE_HUGE_OS_PAGES=auto (the default): huge pages unless this kernel
 * reports its free memory to a hypervisor (a virtio balloon with free page
 * reporting, feature bit 5).  Free 2 MiB frames then go back to the host,
 * and a huge page's first fault takes exactly such a frame, which the host
 * must fault in again under the guest's page clearing; 4 KiB faults mostly
 * take frames never reported.  Measured on such a VM (2026-12-07/08): 88 %
 * of a slow run in clear_page_erms; malloc-large's shape 1.27-1.37 s in
 * three of four runs with huge pages, 0.83-0.91 s without, 0.57 s with them
 * right after another huge-page user.  Read once (open/getdents/read: no
 * allocation), at the first huge block. */
static const char* os_balloon_dir = "/sys/bus/virtio/drivers/virtio_balloon";
static _Atomic(int) os_reporting; /* 0 not read, 1 no, 2 yes */

#ifdef LODE_TESTING
void lode_test_balloon_dir(const char* dir) {
  os_balloon_dir = dir != NULL ? dir : "/sys/bus/virtio/drivers/virtio_balloon";
  atomic_store_explicit(&os_reporting, 0, memory_order_relaxed);
}
#endif

/* dir/name/features: one '0' or '1' per feature bit, bit 0 first */
static bool balloon_reports(int dir, const char* name) {
  char path[96];
  size_t n = strlen(name);
  if (n > sizeof(path) - sizeof("/features")) return false;
  memcpy(path, name, n);
  memcpy(path + n, "/features", sizeof("/features"));
  int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char bits[8];
  ssize_t r = read(fd, bits, sizeof bits);
  close(fd);
  return r > 5 && bits[5] == '1';
}

static bool free_page_reporting(void) {
  int st = atomic_load_explicit(&os_reporting, memory_order_relaxed);
  if (st != 0) return st == 2;
  int saved = errno; /* inside the program's malloc: a missing driver is no error of its */
  bool yes = false;
  int dir = open(os_balloon_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    _Alignas(8) char buf[1024];
    long n;
    /* struct linux_dirent64: u64 inode, s64 offset, u16 length, u8 type, name */
    while (!yes && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
      for (long off = 0; off + 19 < n && !yes;) {
        unsigned short len;
        memcpy(&len, buf + off + 16, sizeof len);
        if (len == 0) break;
        if (strncmp(buf + off + 19, "virtio", 6) == 0) yes = balloon_reports(dir, buf + off + 19);
        off += len;
      }
    }
    close(dir);
  }
  atomic_store_explicit(&os_reporting, yes ? 2 : 1, memory_order_relaxed);
  errno = saved;
  return yes;
}

bool _lode_os_huge_pages_wanted(void) {
  long v = _lode_option(LODE_OPTION_HUGE_OS_PAGES);
  if (v != LODE_HUGE_PAGES_AUTO) return v != LODE_HUGE_PAGES_NO;
  if (SIM_ON()) return true; /* a replay is the same on every machine */
  return !free_page_reporting();
}

/* [p, p + size) will be written whole soon (a huge block): transparent huge
 * pages where the kernel leaves them to madvise turn 512 faults into one
 * (a 25 MiB block: 6,400 faults, each a trap into a VM's kernel, against
 * 281).  Only the 2 MiB units inside the range are advised; the cost is
 * resident memory in 2 MiB steps, hence LODE_HUGE_OS_PAGES=0. */
void _lode_os_advise_huge_pages(void* p, size_t size) {
#ifdef MADV_HUGEPAGE
  if (!_lode_os_huge_pages_wanted()) return;
#ifdef LODE_SIM
  if (SIM_ON()) return;
#endif
  const size_t huge = LODE_HUGE_OS_PAGE_SIZE;
  uintptr_t a = lode_align_up((uintptr_t)p, huge), b = ((uintptr_t)p + size) & ~(uintptr_t)(huge - 1);
  if (b > a) (void)madvise((void*)a, b - a, MADV_HUGEPAGE); /* advice: failure changes nothing */
#else
  (void)p;
  (void)size;
#endif
}

/* The advice taken back from [p, p + size) (whole OS pages): memory there
 * is faulted in 4 KiB at a time again. */
void _lode_os_advise_small_pages(void* p, size_t size) {
#ifdef MADV_NOHUGEPAGE
#ifdef LODE_SIM
  if (SIM_ON()) return;
#endif
  if (size != 0) (void)madvise(p, size, MADV_NOHUGEPAGE); /* advice: failure changes nothing */
#else
  (void)p;
  (void)size;
#endif
}

/* Which OS pages of [p, p + size) are in memory: vec[i] & 1 for page i
 * (p page-aligned).  False when the OS cannot tell. */
bool _lode_os_resident_map(const void* p, size_t size, unsigned char* vec) {
#ifdef LODE_SIM
  if (SIM_ON()) return _lode_os_sim_resident_map(p, size, vec);
#endif
  return mincore((void*)(uintptr_t)p, size, vec) == 0;
}

/* --- what a page holds: /proc/self/pagemap ------------------------------------
 * mincore cannot tell a page never written since its last discard (it reads
 * as zero) from one swapped out (it holds data): a LODE_SECURE wipe had to
 * discard every page not in memory, and a discard in a process whose
 * threads discard at the same time flushes every CPU's TLB (15 us a call
 * with 4 threads here, against 2 us for a pagemap read).  The pagemap tells
 * them apart.  Its descriptor is kept, packed with its file's identity in
 * one word, fd << 48 | dev << 32 | inode, and checked with fstat before each
 * read: a program may close it and get the number back for another file.  A
 * fork's child drops it (it shows the parent's pages), and so does a process
 * whose id is not the one that opened it: a child made without the fork
 * handlers (_Fork, a raw clone) read its parent's pages, and a page it had
 * written since was taken for never written, left alone by the wipe. */
#define PAGEMAP_NONE ((uint64_t)0)
#define PAGEMAP_UNAVAILABLE UINT64_MAX
#define PAGEMAP_PRESENT ((uint64_t)1 << 63)
#define PAGEMAP_SWAPPED ((uint64_t)1 << 62)
static _Atomic(uint64_t) pagemap_id;
static _Atomic(pid_t) pagemap_pid; /* the process that opened it */

static uint64_t pagemap_pack(int fd, const struct stat* st) {
  if (fd <= 0 || fd > 0xffff || st->st_dev > 0xffff || st->st_ino > 0xffffffffu) return PAGEMAP_NONE;
  return (uint64_t)fd << 48 | (uint64_t)st->st_dev << 32 | (uint64_t)st->st_ino;
}

/* The descriptor packed in id, if it still is that file. */
static int pagemap_check(uint64_t id) {
  struct stat st;
  int fd = (int)(id >> 48);
  return fstat(fd, &st) == 0 && pagemap_pack(fd, &st) == id ? fd : -1;
}

static int pagemap_open(void) {
  for (int tries = 0; tries < 2; tries++) {
    uint64_t id = atomic_load_explicit(&pagemap_id, memory_order_acquire);
    if (id == PAGEMAP_UNAVAILABLE) return -1;
    if (id != PAGEMAP_NONE) {
      int fd = pagemap_check(id);
      if (fd >= 0 && atomic_load_explicit(&pagemap_pid, memory_order_relaxed) == getpid()) return fd;
      /* another file's number now (not ours to close), or the parent's
       * pagemap in a child (ours: inherited) */
      if (atomic_compare_exchange_strong_explicit(&pagemap_id, &id, PAGEMAP_NONE, memory_order_acq_rel,
                                                  memory_order_acquire) &&
          fd >= 0)
        close(fd);
      continue;
    }
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint64_t mine = fd >= 0 && fstat(fd, &st) == 0 ? pagemap_pack(fd, &st) : PAGEMAP_NONE;
    if (mine == PAGEMAP_NONE) {
      if (fd >= 0) close(fd);
      atomic_store_explicit(&pagemap_id, PAGEMAP_UNAVAILABLE, memory_order_release);
      return -1;
    }
    atomic_store_explicit(&pagemap_pid, getpid(), memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(&pagemap_id, &id, mine, memory_order_acq_rel, memory_order_acquire))
      return fd;
    close(fd); /* another thread's is published */
  }
  return -1;
}

void _lode_os_fork_prepare(void) { pthread_mutex_lock(&unmap_retry_lock); }
void _lode_os_fork_parent(void) { pthread_mutex_unlock(&unmap_retry_lock); }

void _lode_os_fork_child(void) {
  pthread_mutex_unlock(&unmap_retry_lock);
  uint64_t id = atomic_load_explicit(&pagemap_id, memory_order_relaxed);
  if (id == PAGEMAP_NONE || id == PAGEMAP_UNAVAILABLE) return;
  int fd = pagemap_check(id);
  if (fd >= 0) close(fd);
  atomic_store_explicit(&pagemap_id, PAGEMAP_NONE, memory_order_relaxed);
}

int _lode_os_pagemap_fd(void) {
  uint64_t id = atomic_load_explicit(&pagemap_id, memory_order_acquire);
  return id == PAGEMAP_NONE || id == PAGEMAP_UNAVAILABLE ? -1 : (int)(id >> 48);
}

bool _lode_os_page_states(const void* p, size_t size, unsigned char* vec) {
  size_t pages = (size + LODE_OS_PAGE_SIZE - 1) / LODE_OS_PAGE_SIZE;
  /* a LODE_SECURE free asks here, and free leaves errno alone: the check of
   * a descriptor the program closed (EBADF), an open at its descriptor limit
   * (EMFILE) or without /proc set it */
  int saved = errno;
  int fd = SIM_ON() ? -1 : pagemap_open();
  errno = saved;
  if (fd >= 0) {
    enum { BATCH = 256 };
    uint64_t e[BATCH];
    size_t i = 0;
    for (; i < pages; i += BATCH) {
      size_t n = pages - i < BATCH ? pages - i : BATCH;
      off_t at = (off_t)(((uintptr_t)p / LODE_OS_PAGE_SIZE + i) * sizeof(uint64_t));
      if (pread(fd, e, n * sizeof(uint64_t), at) != (ssize_t)(n * sizeof(uint64_t))) {
        errno = saved;
        break;
      }
      for (size_t j = 0; j < n; j++)
        vec[i + j] = (e[j] & PAGEMAP_PRESENT)   ? LODE_PAGE_PRESENT
                     : (e[j] & PAGEMAP_SWAPPED) ? LODE_PAGE_SWAPPED
                                                : LODE_PAGE_ABSENT;
    }
    if (i >= pages) return true;
  }
  return false;
}

/* Bytes of [p, p + size) in memory; all of them when the OS cannot tell. */
size_t _lode_os_resident(const void* p, size_t size) {
  enum { CHUNK = 1024 };
  unsigned char vec[CHUNK];
  size_t resident = 0;
  for (size_t off = 0; off < size; off += CHUNK * LODE_OS_PAGE_SIZE) {
    size_t n = size - off < CHUNK * LODE_OS_PAGE_SIZE ? size - off : CHUNK * LODE_OS_PAGE_SIZE;
    if (!_lode_os_resident_map((const uint8_t*)p + off, n, vec)) return size;
    for (size_t i = 0; i < lode_align_up(n, LODE_OS_PAGE_SIZE) / LODE_OS_PAGE_SIZE; i++)
      resident += (vec[i] & 1) * LODE_OS_PAGE_SIZE;
  }
  return resident < size ? resident : size;
}

/* Decommit: give the memory back and make any access fault, whatever the
 * purge mode.  The caller remembers the range is protected: setting
 * os_ever_protected here would make every later commit of the process an
 * mprotect (a syscall that takes the address-space lock for writing).
 * False when the OS kept the memory: it stays committed, counted and
 * accessible.  An mprotect refused after the memory went costs only the
 * fault: the range reads as zero, and a commit unprotects it anyway. */
static bool os_decommit(void* p, size_t size, size_t counted) {
  if (!os_drop(p, size, LODE_OS_PURGE)) {
    os_failed("decommit failed", p, size);
    return false;
  }
  if (os_protect_range(p, size, PROT_NONE) != 0) os_failed("mprotect(decommit) failed", p, size);
  lode_stat_inc(decommits);
  _lode_stat_sub(&_lode_stats.committed_current, counted);
  return true;
}

bool _lode_os_decommit(void* p, size_t size) { return os_decommit(p, size, size); }

/* Purge: return the memory of an unused range to the OS, as the option says.
 * The range stays reserved; _lode_os_commit must precede its next use.
 * `counted`: the committed bytes it held, less than size when the range
 * spans LODE_SECURE guard pages (never committed, PROT_NONE: madvise and
 * mprotect leave them as they are).  True when the range reads as zero now:
 * the mode is read once, here, since another thread may change it, and a
 * discard the OS refused leaves the bytes where they were. */
bool _lode_os_purge(void* p, size_t size, size_t counted, bool* zero) {
  long mode = _lode_option(LODE_OPTION_PURGE_MODE);
  *zero = false;
  if (mode == LODE_PURGE_DECOMMIT) {
    /* the simulated OS too: its commits then go through the mprotect's
     * injection point, as the kernel's */
    note_protected();
    if (!os_decommit(p, size, counted)) return false;
    lode_stat_inc(purges);
    *zero = true;
    return true;
  }
  bool ok, dropped;
#ifdef LODE_SIM
  if (SIM_ON()) {
    ok = !fail_due(LODE_OS_PURGE);
    if (ok) _lode_os_sim_purge(p, size, mode != LODE_PURGE_FREE);
    dropped = ok && mode != LODE_PURGE_FREE;
    /* as the kernel path below: a refused MADV_FREE is asked again as
     * MADV_DONTNEED, so one refusal leaves the range purged and zero */
    if (!ok && mode == LODE_PURGE_FREE) {
      ok = dropped = !fail_due(LODE_OS_PURGE);
      if (ok) _lode_os_sim_purge(p, size, true);
    }
  } else
#endif
  {
    int advice = MADV_DONTNEED;
#ifdef MADV_FREE
    if (mode == LODE_PURGE_FREE) advice = MADV_FREE;
#endif
    ok = os_madvise(p, size, advice, LODE_OS_PURGE) == 0;
    dropped = ok && advice == MADV_DONTNEED;
    if (!ok && advice != MADV_DONTNEED) ok = dropped = os_madvise(p, size, MADV_DONTNEED, LODE_OS_PURGE) == 0;
  }
  if (!ok) {
    os_failed("madvise(purge) failed", p, size);
    return false; /* still committed: counted as such */
  }
  lode_stat_inc(purges);
  _lode_stat_sub(&_lode_stats.committed_current, counted);
  *zero = dropped;
  return true;
}

#ifdef LODE_SIM
void _lode_os_touch(void* p, size_t size) {
  if (SIM_ON() && size > 0) _lode_os_sim_touch(p, size);
}

bool _lode_os_copy(void* dst, const void* src, size_t n) {
  if (!SIM_ON()) return false;
  _lode_os_sim_copy(dst, src, n);
  return true;
}
#endif

/* lode's own tables (thread data, the segment map): never fails on purpose
 * (a thread must be able to tear down), not counted as segment memory, and
 * reserved without swap space (the map touches only the pages it uses). */
void* _lode_os_alloc_meta(size_t size) {
  void* p = mmap(NULL, lode_align_up(size, LODE_OS_PAGE_SIZE), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* The segment map's reservation: meta, but its failure is an allocation's
 * (ENOMEM, retried by the next one), so it can be injected. */
void* _lode_os_alloc_map(size_t size) {
  if (_lode_os_fail_injected(LODE_OS_MAP)) return NULL;
  void* p = _lode_os_alloc_meta(size);
  if (p == NULL) os_failed("mmap (segment map) failed", NULL, size);
  return p;
}

#ifdef LODE_SECURE
/* Address space no access will ever be allowed to (LODE_SECURE's malloc(0)
 * range): no memory behind it, no swap reserved. */
void* _lode_os_reserve_inaccessible(size_t size) {
  void* p = mmap(NULL, lode_align_up(size, LODE_OS_PAGE_SIZE), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
#endif

void _lode_os_free_meta(void* p, size_t size) {
  munmap(p, lode_align_up(size, LODE_OS_PAGE_SIZE));
}

/* Guard page: inaccessible for the life of its page (LODE_SECURE: after
 * every small and medium page area and every segment header).  Linux 6.13+
 * keeps a guard as a marker in the page table (MADV_GUARD_INSTALL): the
 * mapping stays one VMA.  Older kernels need mprotect, which splits it in
 * three, and a process may have only vm.max_map_count (65530) mappings: the
 * guards of ~500 small segments (2 GiB) would take them all, and the
 * program's own mmap and pthread_create would fail.  So mprotect guards may
 * take a quarter of those mappings (each guard adds two); past that, pages go
 * unguarded (their blocks' trailers still catch an overflow at free).  A
 * default build makes no guards: none of this is in it. */
#ifdef LODE_SECURE
static _Atomic(int) os_guard_markers; /* 0 not tried, 1 the kernel has them, -1 it refused */
static _Atomic(long) os_guard_budget; /* 0: not read yet */

#ifdef LODE_TESTING
void lode_test_guard_markers(bool on) { atomic_store_explicit(&os_guard_markers, on ? 0 : -1, memory_order_relaxed); }
long lode_test_guard_protects(void) { return atomic_load_explicit(&os_guard_protects, memory_order_relaxed); }
#endif

/* read(2), not stdio: stdio would allocate */
static long guard_protect_budget(void) {
  long b = atomic_load_explicit(&os_guard_budget, memory_order_relaxed);
  if (b != 0) return b;
  long max = 65530;
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[32];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    long v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    if (v > 0) max = v;
  }
  b = max / 8 > 1 ? max / 8 : 1; /* each guard adds two mappings */
  atomic_store_explicit(&os_guard_budget, b, memory_order_relaxed);
  return b;
}

lode_guard_t _lode_os_guard(void* p, size_t size) {
#ifdef LODE_SIM
  if (SIM_ON()) {
    atomic_store_explicit(&os_ever_guarded, true, memory_order_relaxed);
    if (os_mprotect(p, size, PROT_NONE) != 0) os_failed("mprotect(guard) failed", p, size);
    _lode_os_sim_protect(p, size, false);
    return LODE_GUARD_NONE; /* the simulated OS undoes it at release */
  }
#endif
  if (atomic_load_explicit(&os_guard_markers, memory_order_relaxed) >= 0) {
    if (madvise(p, size, MADV_GUARD_INSTALL) == 0) {
      atomic_store_explicit(&os_guard_markers, 1, memory_order_relaxed);
      return LODE_GUARD_MARKER;
    }
    if (errno != EINVAL) {
      os_failed("madvise(guard) failed", p, size);
      return LODE_GUARD_NONE;
    }
    atomic_store_explicit(&os_guard_markers, -1, memory_order_relaxed);
  }
  if (atomic_fetch_add_explicit(&os_guard_protects, 1, memory_order_relaxed) >= guard_protect_budget()) {
    atomic_fetch_sub_explicit(&os_guard_protects, 1, memory_order_relaxed);
    return LODE_GUARD_NONE;
  }
  if (os_mprotect(p, size, PROT_NONE) != 0) {
    atomic_fetch_sub_explicit(&os_guard_protects, 1, memory_order_relaxed);
    os_failed("mprotect(guard) failed", p, size);
    return LODE_GUARD_NONE;
  }
  return LODE_GUARD_PROTECT;
}

/* A huge block's room to grow, reserved and never committed, made
 * inaccessible until a realloc commits into it (_lode_os_commit_protected):
 * a linear overflow past the block's last page faults there instead of
 * running on unseen up to the reservation's end.  One mprotect that meets
 * the end guard: the mapping gets no more VMAs than its guard gave it.
 * False (refused, or the simulated OS, which protects nothing): the room
 * stays accessible, as in a default build. */
bool _lode_os_protect_room(void* p, size_t size) {
  if (SIM_ON()) return false;
  if (os_mprotect(p, size, PROT_NONE) != 0) {
    os_failed("mprotect(room to grow) failed", p, size);
    return false;
  }
  return true;
}
#endif /* LODE_SECURE */

