/* Test points (LODE_TESTING builds): the hook that LODE_POINT calls at named
 * places inside lode, and the points' names.  Below every file that has a
 * point. */
#include "internal.h"

#ifdef LODE_TESTING
_Atomic(lode_point_fn*) _lode_point_hook;

void lode_test_set_point_hook(lode_point_fn* fn) { atomic_store_explicit(&_lode_point_hook, fn, memory_order_release); }

static const char* const point_names[LODE_POINT_COUNT] = {
    [LODE_POINT_REMOTE_FREEING] = "remote-freeing",     [LODE_POINT_ABANDON_UNLISTED] = "abandon-unlisted",
    [LODE_POINT_RECLAIM_POPPED] = "reclaim-popped",     [LODE_POINT_RECLAIM_ADOPTING] = "reclaim-adopting",
    [LODE_POINT_COLLECT_DETACHED] = "collect-detached", [LODE_POINT_WAIT_FREEING] = "wait-freeing",
    [LODE_POINT_CLAIM_FAILED] = "claim-failed",         [LODE_POINT_REMOTE_PUSHING] = "remote-pushing",
    [LODE_POINT_PURGING] = "purging",                   [LODE_POINT_HUGE_MAPPED] = "huge-mapped",
};

const char* lode_test_point_name(lode_point_t point) {
  return (unsigned)point < LODE_POINT_COUNT ? point_names[point] : "?";
}

int lode_test_point_lookup(const char* name) {
  for (int i = 0; i < LODE_POINT_COUNT; i++)
    if (name != NULL && strcmp(name, point_names[i]) == 0) return i;
  return -1;
}

#endif
