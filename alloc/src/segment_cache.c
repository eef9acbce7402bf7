/* Segment cache: the mappings of released segments wait LODE_PURGE_DELAY ms
 * before they go back to the OS, so a program that frees and allocates huge
 * blocks (or whose threads come and go) does not pay an mmap, a page fault
 * per 4 KiB and an munmap every time.
 *
 * Warm memory is never lost track of: an entry remembers which of its pages
 * are still committed (resident); a segment of the same kind made from it
 * takes them over as committed free pages on its owner's purge queue, so the
 * usual expiry purges them if they stay unused.  A mapping reused for another
 * layout, or a huge block's warm tail beyond the new block, is purged first.
 *
 * Invariants (under the cache's lock):
 *   an entry is a whole mapping of a released segment: in no segment list, not
 *     in the segment map (free() of a pointer into it is reported), cookie 0;
 *   its committed bytes stay counted in committed_current and its size in
 *     reserved_current until it is taken (the new segment counts afresh) or
 *     unmapped;
 *   a segment of a regular kind only takes a mapping of exactly the segment
 *     size (the segment map and page lookup assume that size);
 *   delay 0 caches nothing; a forced collect unmaps every entry, so "everything
 *     freed + forced collect => committed memory back at baseline" (A5) holds;
 *   resident bytes of all entries (info.resident: in memory as the OS tells,
 *     not merely committed or carved), plus the warm tails live huge blocks
 *     hold past twice their size (cache_held), <= warm_max(): CACHE_MIN_WARM,
 *     or a half of the memory the program has committed if that is more (a
 *     program with 400 MiB of 20 MiB blocks replaces them faster than a
 *     48 MiB cache could serve, and may hold 100 MiB more for a delay).
 *
 * When a mapping goes back to the OS is the purge policy's decision
 * (purge_policy.c): now (not cached), later, or only when forced.  A regular
 * segment waits the purge delay as it stands, backed off or not: threads
 * that come and go often re-map segments just
 * after their entries expired, and the faults of fresh memory are what a
 * cache is for.  CACHE_MAX_WARM keeps that from growing the resident set
 * much.  A huge mapping waits the delay too, backed off at most
 * HUGE_BACKOFF_MAX times: one alone may hold up to CACHE_MAX_ENTRY of warm
 * memory.  A huge block asked for soon after an entry expired is a
 * comeback (the policy's back-off counts it, as a page recommitted early). */
#include "internal.h"

#include <pthread.h>

#define CACHE_SLOTS 64
#define CACHE_MAX_BYTES ((size_t)512 << 20)
#define CACHE_MAX_ENTRY (CACHE_MAX_BYTES / 4)
#define CACHE_MIN_WARM ((size_t)48 << 20)

#define HUGE_BACKOFF_MAX 3

typedef struct cache_entry_s {
  lode_segment_cache_info_t info;
  size_t committed; /* bytes still counted in committed_current */
  int64_t expire;   /* unmap at or after this time; INT64_MAX: only when forced */
} cache_entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry_t cache[CACHE_SLOTS]; /* guarded by cache_lock */
static size_t cache_count, cache_bytes, cache_warm;
static _Atomic(size_t) cache_warm_seen; /* cache_warm, for readers without the lock */
/* Warm bytes live huge blocks hold past twice their size (a reused mapping's
 * tail, see _lode_segment_cache_hold): counted with cache_warm against
 * warm_max().  Written under the lock. */
static _Atomic(size_t) cache_held;
static int64_t huge_expired_at = -1; /* when the timer last unmapped a huge entry */
/* The clock's epoch that time is of: a new clock (a test's, the fuzzer's
 * next input) starts without it, as the purge backoff does; a time kept
 * from the last input raised the backoff of the next one (review,
 * 2026-12-06: an input's purges differed when it ran after another). */
static uint32_t huge_expired_epoch;
/* Huge entries the timer unmapped that no miss has come back for: each comes
 * back once (every miss within a delay of the last expiry counted, and one
 * expired mapping and a burst of huge mallocs backed the delay off to its cap) */
static size_t huge_expired_waiting;
/* The earliest expiry of an entry (INT64_MAX: none), written under the lock
 * and read without it: a thread's allocations ask whether one is due. */
static _Atomic(int64_t) next_expire = INT64_MAX;

static void next_expire_update_locked(void) {
  int64_t e = INT64_MAX;
  for (size_t i = 0; i < cache_count; i++)
    if (cache[i].expire < e) e = cache[i].expire;
  atomic_store_explicit(&next_expire, e, memory_order_relaxed);
}

static size_t warm_max(void) {
  size_t committed = (size_t)atomic_load_explicit(&_lode_stats.committed_current, memory_order_relaxed);
  return committed / 2 > CACHE_MIN_WARM ? committed / 2 : CACHE_MIN_WARM;
}

void _lode_segment_cache_fork_prepare(void) { pthread_mutex_lock(&cache_lock); }
void _lode_segment_cache_fork_parent(void) { pthread_mutex_unlock(&cache_lock); }
void _lode_segment_cache_fork_child(void) { pthread_mutex_unlock(&cache_lock); }

static cache_entry_t remove_locked(size_t i) {
  cache_entry_t e = cache[i];
  cache[i] = cache[--cache_count];
  cache_bytes -= e.info.size;
  cache_warm -= e.info.resident;
  atomic_store_explicit(&cache_warm_seen, cache_warm, memory_order_relaxed);
  return e;
}

/* (An unmap the OS refuses is not lost: os.c drops its bytes and keeps it,
 * counted as reserved, until a retry succeeds.) */
static void entry_unmap(size_t i) {
  cache_entry_t e = remove_locked(i);
  _lode_os_release(e.info.base, e.info.size, e.committed, e.info.guard_protects);
}

static void expire_locked(int64_t now, bool all) {
  for (size_t i = 0; i < cache_count;) {
    if (all || cache[i].expire <= now) {
      if (!all && cache[i].info.kind == LODE_PAGE_HUGE) {
        if (huge_expired_epoch != _lode_clock_epoch()) huge_expired_waiting = 0;
        huge_expired_at = now;
        huge_expired_epoch = _lode_clock_epoch();
        huge_expired_waiting++;
      }
      entry_unmap(i);
    } else {
      i++;
    }
  }
  next_expire_update_locked();
}

static size_t oldest_locked(void) {
  size_t o = 0;
  for (size_t i = 1; i < cache_count; i++)
    if (cache[i].expire < cache[o].expire) o = i;
  return o;
}

/* Resident bytes the cache could take before it must evict, read without
 * the lock: an estimate, for whether measuring a mapping exactly matters. */
size_t _lode_segment_cache_room(void) {
  size_t bound = warm_max(), warm = atomic_load_explicit(&cache_warm_seen, memory_order_relaxed) +
                                   atomic_load_explicit(&cache_held, memory_order_relaxed);
  return warm < bound ? bound - warm : 0;
}

/* A huge block made from a warm mapping keeps its tail up to twice its own
 * size; past that it may keep as much of `want` as the warm bound has room
 * for, as if the tail stayed in the cache (a program that replaces blocks of
 * random sizes faults in again whatever a smaller block gave back).  Unlike
 * a cache entry it does not expire -- the block holds it until it is freed,
 * then gives it back (_lode_segment_cache_unhold) -- so the bound here is
 * half of what the program has committed, without the cache's 48 MiB floor:
 * a small program that freed one large buffer does not keep it for good.
 * Returns the bytes granted, whole OS pages. */
#ifdef LODE_TESTING
static _Atomic(size_t) hold_limit = SIZE_MAX;
void lode_test_huge_hold_limit(size_t bytes) { atomic_store_explicit(&hold_limit, bytes, memory_order_relaxed); }
#endif

size_t _lode_segment_cache_hold(size_t want) {
  pthread_mutex_lock(&cache_lock);
  size_t held = atomic_load_explicit(&cache_held, memory_order_relaxed);
  size_t bound = (size_t)atomic_load_explicit(&_lode_stats.committed_current, memory_order_relaxed) / 2;
  size_t used = cache_warm + held;
  size_t grant = used < bound ? bound - used : 0;
  if (grant > want) grant = want;
#ifdef LODE_TESTING
  size_t limit = atomic_load_explicit(&hold_limit, memory_order_relaxed);
  if (held + grant > limit) grant = limit > held ? limit - held : 0;
#endif
  grant &= ~(LODE_OS_PAGE_SIZE - 1);
  atomic_fetch_add_explicit(&cache_held, grant, memory_order_relaxed);
  pthread_mutex_unlock(&cache_lock);
  return grant;
}

void _lode_segment_cache_unhold(size_t bytes) {
  if (bytes == 0) return;
  pthread_mutex_lock(&cache_lock);
  lode_assert(atomic_load_explicit(&cache_held, memory_order_relaxed) >= bytes);
  atomic_fetch_sub_explicit(&cache_held, bytes, memory_order_relaxed);
  pthread_mutex_unlock(&cache_lock);
}

void _lode_segment_cache_measure(lode_segment_cache_info_t* info) {
  if (info->exact) return;
  info->exact = true;
  unsigned char vec[LODE_SEGMENT_SIZE / LODE_OS_PAGE_SIZE];
  if (!_lode_os_resident_map(info->base, info->measure_end, vec)) return; /* the bound stands */
  size_t r = info->header_size;
  for (size_t j = 0; j < info->measure_end / LODE_OS_PAGE_SIZE; j++)
    if (info->counted[j / 8] >> (j % 8) & 1) r += (size_t)(vec[j] & 1) * LODE_OS_PAGE_SIZE;
  info->resident = r;
}

/* Before the warm bound evicts anything: entries still counted by their
 * carved bound are measured (never more than the bound: the counted pages
 * are the bound's). */
static void measure_entries_locked(void) {
  for (size_t i = 0; i < cache_count; i++) {
    if (cache[i].info.exact) continue;
    size_t before = cache[i].info.resident;
    _lode_segment_cache_measure(&cache[i].info);
    cache_warm -= before - cache[i].info.resident;
  }
  atomic_store_explicit(&cache_warm_seen, cache_warm, memory_order_relaxed);
}

/* Whether a mapping of `size` bytes could be cached at all (asked before
 * measuring what it holds). */
bool _lode_segment_cache_accepts(size_t size) {
  int64_t expire;
  return _lode_purge_decide(_lode_clock_now(), &expire) != LODE_PURGE_NOW && size <= CACHE_MAX_ENTRY;
}

bool _lode_segment_cache_put(const lode_segment_cache_info_t* given, size_t committed) {
  int64_t now = _lode_clock_now(), expire = INT64_MAX;
  lode_purge_when_t when = _lode_purge_decide(now, &expire);
  size_t warm_bound = warm_max();
  lode_segment_cache_info_t in = *given, *info = &in;
  if (info->resident > warm_bound) _lode_segment_cache_measure(info);
  if (when == LODE_PURGE_NOW || info->size > CACHE_MAX_ENTRY || info->resident > warm_bound) return false;
  /* A huge mapping: one alone may hold CACHE_MAX_ENTRY; its back-off is capped. */
  if (when == LODE_PURGE_LATER && info->kind == LODE_PAGE_HUGE) {
    long base = _lode_option(LODE_OPTION_PURGE_DELAY), delay = _lode_purge_delay(now);
    int64_t cap = lode_sat_shl(base, HUGE_BACKOFF_MAX);
    expire = lode_sat_add(lode_sat_add(now, delay < cap ? delay : cap), _lode_clock_slack());
  }
  pthread_mutex_lock(&cache_lock);
  expire_locked(now, false);
  size_t held = atomic_load_explicit(&cache_held, memory_order_relaxed);
  if (cache_warm + held + info->resident > warm_bound) {
    _lode_segment_cache_measure(info);
    measure_entries_locked();
  }
  while (cache_count > 0 && (cache_count == CACHE_SLOTS || cache_bytes + info->size > CACHE_MAX_BYTES ||
                             cache_warm + held + info->resident > warm_bound))
    entry_unmap(oldest_locked());
  if (held + info->resident > warm_bound) { /* the live blocks' tails leave it no room */
    next_expire_update_locked();
    pthread_mutex_unlock(&cache_lock);
    return false;
  }
  cache[cache_count++] = (cache_entry_t){*info, committed, when == LODE_PURGE_NEVER ? INT64_MAX : expire};
  cache_bytes += info->size;
  cache_warm += info->resident;
  atomic_store_explicit(&cache_warm_seen, cache_warm, memory_order_relaxed);
  next_expire_update_locked();
  pthread_mutex_unlock(&cache_lock);
  return true;
}

/* A mapping for a segment of `kind` needing `size` bytes: exactly the segment
 * size for regular kinds (the same kind preferred: its warm pages carry
 * over).  For huge ones at least `size`: the one whose written memory covers
 * most of the new block (faults saved), then the smallest -- a larger warm
 * mapping serves a smaller block, which keeps what its bound allows of the
 * warm tail (segment.c).  grow_to (0: none) is the room a fresh huge mapping
 * would get: with it, a mapping of any size serves, and when none is large
 * enough the warmest is moved to a reservation of grow_to; without it (an
 * address-space limit, LODE_SECURE's guard markers) only mappings of at most
 * four times `size` serve, as they are.  (Replacing 5-25 MiB blocks in 20
 * slots, 2026-12-08: 150 thousand faults with the four-times rule and no move,
 * 124.5 thousand with both -- as many as a slot that keeps its own region.)
 * On success *info describes it; its header must be zeroed by the caller
 * (only fresh mappings are zero) and info->warm says what is still
 * committed.  A huge miss soon after a huge entry expired is a comeback
 * (once per entry). */
bool _lode_segment_cache_take(lode_page_kind_t kind, size_t size, size_t grow_to, lode_segment_cache_info_t* info) {
  int64_t now = _lode_clock_now();
  bool found = false;
  cache_entry_t e;
  pthread_mutex_lock(&cache_lock);
  expire_locked(now, false);
  size_t best = CACHE_SLOTS, grow = CACHE_SLOTS;
  for (size_t i = 0; i < cache_count; i++) {
    const lode_segment_cache_info_t* c = &cache[i].info;
    if (kind != LODE_PAGE_HUGE) {
      if (c->size != LODE_SEGMENT_SIZE || c->kind == LODE_PAGE_HUGE) continue;
      if (best == CACHE_SLOTS || (c->kind == kind && cache[best].info.kind != kind)) best = i;
    } else if (c->kind == LODE_PAGE_HUGE && c->size >= size && (c->size / 4 <= size || grow_to != 0)) {
      size_t serves = c->warm < size ? (size_t)c->warm : size, best_serves = 0;
      if (best != CACHE_SLOTS) best_serves = cache[best].info.warm < size ? (size_t)cache[best].info.warm : size;
      if (best == CACHE_SLOTS || serves > best_serves || (serves == best_serves && c->size < cache[best].info.size))
        best = i;
    } else if (c->kind == LODE_PAGE_HUGE && c->size < size && c->warm != 0) {
      if (grow == CACHE_SLOTS || c->warm > cache[grow].info.warm) grow = i;
    }
  }
  bool growing = best == CACHE_SLOTS && grow != CACHE_SLOTS && grow_to >= size;
  if (growing) best = grow;
  if (best != CACHE_SLOTS) {
    e = remove_locked(best);
    found = true;
    next_expire_update_locked();
  }
  int64_t expired_at = -1;
  if (!found && kind == LODE_PAGE_HUGE && huge_expired_waiting > 0 && huge_expired_epoch == _lode_clock_epoch()) {
    expired_at = huge_expired_at;
    huge_expired_waiting--;
  }
  pthread_mutex_unlock(&cache_lock);
  if (!found) {
    if (expired_at >= 0) _lode_purge_note_comeback(expired_at);
    return false;
  }
  *info = e.info;
  bool keep_markers = kind == info->kind;
  if (!_lode_os_reuse(info->base, info->size, info->has_protected, info->guard_protects, info->guard_markers,
                      keep_markers)) {
    _lode_os_release(info->base, info->size, e.committed, info->guard_protects);
    return false;
  }
  if (growing) {
    /* Too small for the block but warm: its pages move to a reservation of
     * grow_to (mremap: nothing copied or faulted in again), so only the rest
     * is fresh memory. */
    void* moved = _lode_os_remap(info->base, info->size, grow_to, LODE_SEGMENT_SIZE);
    if (moved == NULL) {
      _lode_os_release(info->base, info->size, e.committed, info->guard_protects);
      return false;
    }
    info->base = moved;
    info->size = lode_align_up(grow_to, LODE_OS_PAGE_SIZE);
  }
  _lode_stat_sub(&_lode_stats.committed_current, e.committed);
  info->guard_markers = info->guard_markers && keep_markers;
  info->guard_protects = 0;
  if (kind != info->kind) {
    /* Another page layout: the old warm pages cannot be tracked, nor which
     * pages read as zero.  Zero only when the discard happened: refused, the
     * old bytes are still there and calloc must clear them (review,
     * 2026-12-06: calloc handed them out). */
    bool zeroed = info->warm != 0 && _lode_os_discard(info->base, info->size);
    info->zero = zeroed ? ~(uint64_t)0 : 0;
    info->warm = 0;
  }
  info->kind = kind;
  info->has_protected = false;
  return true;
}

/* From a thread's allocations: without this, a program that stops
 * releasing and mapping segments (its huge blocks freed, its threads gone)
 * kept their mappings for good, unless it called collect. */
bool _lode_segment_cache_due(int64_t now) {
  return atomic_load_explicit(&next_expire, memory_order_relaxed) <= now;
}

bool _lode_segment_cache_expiring(void) {
  return atomic_load_explicit(&next_expire, memory_order_relaxed) != INT64_MAX;
}

void _lode_segment_cache_collect(bool force) {
  int64_t now = _lode_clock_now();
  pthread_mutex_lock(&cache_lock);
  expire_locked(now, force);
  pthread_mutex_unlock(&cache_lock);
  if (force) _lode_os_release_retry(); /* unmaps the OS refused before */
}
