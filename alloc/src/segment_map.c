/* Segment map: one byte per 4 MiB chunk of the user address space says
 * whether lode mapped it.  It makes every free() able to tell lode's pointers
 * from foreign ones (stack, globals, another allocator) at the cost of one
 * load, and finds the segment of a huge block that lies past its first chunk.
 * It covers addresses below 2^47 (LODE_ADDRESS_LIMIT): os.c refuses
 * reservations beyond, and an address beyond is never lode's. */
#include "internal.h"

#define MAP_CHUNKS LODE_MAP_CHUNKS

enum { CHUNK_NONE = 0, CHUNK_START = LODE_CHUNK_START, CHUNK_CONT = 2 };

_Atomic(_Atomic(uint8_t)*) _lode_map_base; /* MAP_CHUNKS bytes, reserved lazily */
_Atomic(uintptr_t) _lode_map_limit;
#define map_base _lode_map_base
/* 0 none, 1 creating, 2 ready.  A reservation the OS refused leaves it 0:
 * the next allocation tries again (review, 2026-12-06: a "failed" state kept
 * for good made every later allocation fail with ENOMEM after the OS had
 * recovered). */
static _Atomic(int) map_state;

bool _lode_segment_map_init(void) {
  int st = atomic_load_explicit(&map_state, memory_order_acquire);
  if (st == 2) return true;
  st = 0;
  if (atomic_compare_exchange_strong_explicit(&map_state, &st, 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
    /* Only the pages covering used chunks are ever touched. */
    void* p = _lode_os_alloc_map(MAP_CHUNKS);
    if (p == NULL) {
      atomic_store_explicit(&map_state, 0, memory_order_release);
      return false;
    }
    atomic_store_explicit(&map_base, (_Atomic(uint8_t)*)p, memory_order_relaxed);
    atomic_store_explicit(&_lode_map_limit, MAP_CHUNKS, memory_order_release);
    atomic_store_explicit(&map_state, 2, memory_order_release);
    return true;
  }
  lode_wait_t w = {0, 0};
  while ((st = atomic_load_explicit(&map_state, memory_order_acquire)) == 1)
    _lode_wait_step(&w, "another thread creating the segment map", &map_state);
  return st == 2;
}

static size_t chunk_of(const void* p) { return (uintptr_t)p >> LODE_SEGMENT_SHIFT; }

static bool in_map(const void* start, size_t size) {
  uintptr_t a = (uintptr_t)start;
  return a < LODE_ADDRESS_LIMIT && size <= LODE_ADDRESS_LIMIT - a;
}

bool _lode_segment_map_add(const void* start, size_t size) {
  _Atomic(uint8_t)* segment_map = atomic_load_explicit(&map_base, memory_order_relaxed);
  if (segment_map == NULL || !in_map(start, size)) return false;
  size_t first = chunk_of(start), n = (size + LODE_SEGMENT_MASK) >> LODE_SEGMENT_SHIFT;
  for (size_t i = 1; i < n; i++) atomic_store_explicit(&segment_map[first + i], CHUNK_CONT, memory_order_relaxed);
  atomic_store_explicit(&segment_map[first], CHUNK_START, memory_order_release);
  return true;
}

void _lode_segment_map_remove(const void* start, size_t size) {
  _Atomic(uint8_t)* segment_map = atomic_load_explicit(&map_base, memory_order_relaxed);
  if (segment_map == NULL || !in_map(start, size)) return;
  size_t first = chunk_of(start), n = (size + LODE_SEGMENT_MASK) >> LODE_SEGMENT_SHIFT;
  atomic_store_explicit(&segment_map[first], CHUNK_NONE, memory_order_relaxed);
  for (size_t i = 1; i < n; i++) atomic_store_explicit(&segment_map[first + i], CHUNK_NONE, memory_order_relaxed);
}

lode_segment_t* _lode_segment_map_lookup(const void* p) {
  _Atomic(uint8_t)* segment_map = atomic_load_explicit(&map_base, memory_order_relaxed);
  size_t c = chunk_of(p);
  if (lode_unlikely(c >= MAP_CHUNKS || segment_map == NULL)) return NULL;
  uint8_t v = atomic_load_explicit(&segment_map[c], memory_order_relaxed);
  if (lode_likely(v == CHUNK_START)) return (lode_segment_t*)(c << LODE_SEGMENT_SHIFT);
  if (v != CHUNK_CONT) return NULL;
  while (c > 0 && atomic_load_explicit(&segment_map[c], memory_order_relaxed) == CHUNK_CONT) c--;
  if (atomic_load_explicit(&segment_map[c], memory_order_relaxed) != CHUNK_START) return NULL;
  return (lode_segment_t*)(c << LODE_SEGMENT_SHIFT);
}
