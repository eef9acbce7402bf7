/* Process-wide statistics.  Counters change only on slow paths (page and
 * segment events), never on the malloc/free fast path. */
#include "internal.h"

#include <stdio.h>
#include <unistd.h>

lode_stats_atomic_t _lode_stats;

void _lode_stat_add(_Atomic(size_t)* counter, _Atomic(size_t)* peak, size_t n) {
  size_t now = atomic_fetch_add_explicit(counter, n, memory_order_relaxed) + n;
  if (peak != NULL) {
    size_t p = atomic_load_explicit(peak, memory_order_relaxed);
    while (now > p && !atomic_compare_exchange_weak_explicit(peak, &p, now, memory_order_relaxed,
                                                              memory_order_relaxed)) {
    }
  }
}

void _lode_stat_sub(_Atomic(size_t)* counter, size_t n) {
  atomic_fetch_sub_explicit(counter, n, memory_order_relaxed);
}

#define LOAD(f) atomic_load_explicit(&_lode_stats.f, memory_order_relaxed)

void lode_stats_get(lode_stats_t* out) {
  if (out == NULL) return;
  out->segments_current = LOAD(segments_current);
  out->segments_peak = LOAD(segments_peak);
  out->segments_abandoned = LOAD(segments_abandoned);
  out->segments_abandoned_total = LOAD(segments_abandoned_total);
  out->segments_reclaimed = LOAD(segments_reclaimed);
  out->pages_current = LOAD(pages_current);
  out->pages_peak = LOAD(pages_peak);
  out->pages_queued = LOAD(pages_queued);
  out->purges = LOAD(purges);
  out->commits = LOAD(commits);
  out->decommits = LOAD(decommits);
  out->mmaps = LOAD(mmaps);
  out->munmaps = LOAD(munmaps);
  out->committed_current = LOAD(committed_current);
  out->committed_peak = LOAD(committed_peak);
  out->reserved_current = LOAD(reserved_current);
  out->os_failures = LOAD(os_failures);
  out->threads_current = LOAD(threads_current);
  out->protects = LOAD(protects);
  out->remaps = LOAD(remaps);
}

/* snprintf into a stack buffer and write(2): printing must not allocate
 * through stdio buffers while lode may be the process malloc. */
void lode_stats_print(void) { lode_stats_print_fd(2); }

void lode_stats_print_fd(int fd) {
  lode_stats_t s;
  lode_stats_get(&s);
  char buf[1024];
  int n = snprintf(buf, sizeof(buf),
                   "lode stats:\n"
                   "  segments   current %zu  peak %zu  abandoned %zu  abandoned-total %zu  reclaimed %zu\n"
                   "  pages      in-use %zu  peak %zu  queued-for-purge %zu\n"
                   "  memory     committed %zu KiB  peak %zu KiB  reserved %zu KiB\n"
                   "  os calls   mmaps %zu  munmaps %zu  mremaps %zu  commits %zu  decommits %zu  purges %zu  mprotects %zu  failures %zu\n"
                   "  threads    %zu\n",
                   s.segments_current, s.segments_peak, s.segments_abandoned, s.segments_abandoned_total,
                   s.segments_reclaimed, s.pages_current, s.pages_peak, s.pages_queued,
                   s.committed_current / 1024, s.committed_peak / 1024, s.reserved_current / 1024,
                   s.mmaps, s.munmaps, s.remaps, s.commits, s.decommits, s.purges, s.protects, s.os_failures, s.threads_current);
  if (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    (void)w;
  }
}
