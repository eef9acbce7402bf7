/* Segment cache: the mappings of released segments wait LODE_PURGE_DELAY ms
 * before they go back to the OS, so a program that frees and allocates huge
 * blocks (or empties and refills whole segments) in a loop does not pay an
 * mmap, a page fault per 4 KiB and an munmap every time.
 *
 * Invariants (under the segment registry lock):
 *   an entry is a whole mapping of a released segment: in no segment list, not
 *     in the segment map (so free() of a pointer into it is reported), cookie 0;
 *   its committed bytes stay counted in committed_current and its size in
 *     reserved_current until it is taken (the new segment counts afresh) or
 *     unmapped;
 *   delay 0 caches nothing; a forced collect unmaps every entry, so "everything
 *     freed + forced collect => committed memory back at baseline" (A5) holds. */
#include "internal.h"

#define CACHE_SLOTS 16
#define CACHE_MAX_BYTES ((size_t)256 << 20)
#define CACHE_MAX_ENTRY (CACHE_MAX_BYTES / 4)

typedef struct cache_entry_s {
  void* base;
  size_t size;      /* bytes mapped (a multiple of the OS page) */
  size_t committed; /* bytes still counted in committed_current */
  int64_t expire;   /* unmap at or after this time; INT64_MAX: only when forced */
} cache_entry_t;

static cache_entry_t cache[CACHE_SLOTS]; /* guarded by the registry lock */
static size_t cache_count, cache_bytes;

static void entry_unmap(size_t i) {
  cache_entry_t e = cache[i];
  cache[i] = cache[--cache_count];
  cache_bytes -= e.size;
  _lode_stat_sub(&_lode_stats.committed_current, e.committed);
  _lode_os_release(e.base, e.size);
}

static void expire_locked(int64_t now, bool all) {
  for (size_t i = 0; i < cache_count;) {
    if (all || cache[i].expire <= now) entry_unmap(i);
    else i++;
  }
}

static size_t oldest_locked(void) {
  size_t o = 0;
  for (size_t i = 1; i < cache_count; i++)
    if (cache[i].expire < cache[o].expire) o = i;
  return o;
}

bool _lode_segment_cache_put(void* base, size_t size, size_t committed) {
  long delay = _lode_option(LODE_OPTION_PURGE_DELAY);
  if (delay == 0 || size > CACHE_MAX_ENTRY) return false;
  int64_t now = _lode_clock_now();
  _lode_segments_lock();
  expire_locked(now, false);
  while (cache_count > 0 && (cache_count == CACHE_SLOTS || cache_bytes + size > CACHE_MAX_BYTES))
    entry_unmap(oldest_locked());
  cache[cache_count++] = (cache_entry_t){base, size, committed, delay < 0 ? INT64_MAX : now + delay};
  cache_bytes += size;
  _lode_segments_unlock();
  return true;
}

/* A cached mapping of at least `size` bytes (and at most a quarter more, so a
 * small request does not pin a big mapping), aligned to the segment size.
 * Its header must be zeroed by the caller: only fresh mappings are zero. */
void* _lode_segment_cache_take(size_t size, size_t* mapped) {
  int64_t now = _lode_clock_now();
  void* base = NULL;
  _lode_segments_lock();
  expire_locked(now, false);
  size_t best = CACHE_SLOTS;
  for (size_t i = 0; i < cache_count; i++) {
    size_t s = cache[i].size;
    if (s >= size && s - size <= size && (best == CACHE_SLOTS || s < cache[best].size)) best = i;
  }
  if (best != CACHE_SLOTS) {
    cache_entry_t e = cache[best];
    cache[best] = cache[--cache_count];
    cache_bytes -= e.size;
    _lode_stat_sub(&_lode_stats.committed_current, e.committed);
    base = e.base;
    *mapped = e.size;
  }
  _lode_segments_unlock();
  if (base != NULL && !_lode_os_reuse(base, *mapped)) {
    _lode_os_release(base, *mapped);
    base = NULL;
  }
  return base;
}

void _lode_segment_cache_collect(bool force) {
  int64_t now = _lode_clock_now();
  _lode_segments_lock();
  expire_locked(now, force);
  _lode_segments_unlock();
}
