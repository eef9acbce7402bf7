/* The shadow model: what the harness knows about every live slot (pointer,
 * requested and usable size, fill byte, heap of origin).  A block is filled
 * over its whole usable size when it is handed out, and verified over all of
 * it on free, before a heap destroy and at the end, and over the preserved
 * prefix on realloc: lode must never write into a live block, and a write past
 * a block's end lands either in its own slack or in a neighbour, both checked.
 * New blocks are checked against every live one for overlap. */
#include "harness.h"

#include <lode.h>
#include <string.h>

static fz_slot_t slots[FZ_SLOTS];
static size_t live_bytes;

void fz_shadow_reset(void) {
  memset(slots, 0, sizeof(slots));
  live_bytes = 0;
}

fz_slot_t* fz_slot(unsigned i) { return &slots[i % FZ_SLOTS]; }

size_t fz_shadow_live_bytes(void) { return live_bytes; }

uint8_t fz_fill_byte(unsigned seq, unsigned slot) {
  uint8_t b = (uint8_t)(seq * 37u + slot * 11u + 0x5a);
  return b == 0 ? 0xa5 : b; /* never zero: calloc's zeros must be told apart */
}

/* First offset in [0, n) whose byte differs from c, or n. */
static size_t first_mismatch(const uint8_t* p, size_t n, uint8_t c) {
  uint64_t pattern = 0x0101010101010101ull * c;
  size_t i = 0;
  while (i < n && ((uintptr_t)(p + i) & 7) != 0) {
    if (p[i] != c) return i;
    i++;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != pattern) break;
  }
  for (; i < n; i++)
    if (p[i] != c) return i;
  return n;
}

void fz_shadow_add(unsigned slot, void* ptr, size_t size, size_t align, int heap, bool zeroed, unsigned seq) {
  uint8_t* p = ptr;
  fz_slot_t* s = &slots[slot];
  if (s->live) fz_fail("harness bug: slot s%u allocated while live", slot);
  size_t usable = lode_usable_size(p);
  if (usable < size)
    fz_fail("shadow: s%u = %p has usable size %zu < requested %zu", slot, (void*)p, usable, size);
  size_t want = align;
  if (want == 0) { /* malloc's guarantee: 16, or the size's own power of two below it */
    want = 16;
    while (want > 8 && want / 2 >= size && want > 1) want /= 2;
    if (want < 8) want = 8;
  }
  if (((uintptr_t)p & (want - 1)) != 0)
    fz_fail("shadow: s%u = %p is not aligned to %zu (size %zu)", slot, (void*)p, want, size);
  for (unsigned i = 0; i < FZ_SLOTS; i++) {
    const fz_slot_t* o = &slots[i];
    if (!o->live) continue;
    if (p < o->p + (o->usable ? o->usable : 1) && o->p < p + (usable ? usable : 1))
      fz_fail("shadow: new block s%u = [%p, +%zu) overlaps live s%u = [%p, +%zu)", slot, (void*)p, usable, i,
              (void*)o->p, o->usable);
  }
  if (zeroed) {
    size_t bad = first_mismatch(p, size, 0);
    if (bad != size)
      fz_fail("shadow: calloc block s%u = %p not zero at offset %zu (0x%02x)", slot, (void*)p, bad, p[bad]);
  }
  s->p = p;
  s->size = size;
  s->usable = usable;
  s->fill = fz_fill_byte(seq, slot);
  s->heap = (int8_t)heap;
  s->live = true;
  memset(p, s->fill, usable);
  live_bytes += size;
}

void fz_shadow_verify(unsigned slot, size_t prefix, const char* when) {
  const fz_slot_t* s = &slots[slot];
  if (!s->live) return;
  size_t n = prefix < s->usable ? prefix : s->usable;
  size_t bad = first_mismatch(s->p, n, s->fill);
  if (bad != n)
    fz_fail("shadow: s%u = %p (size %zu, usable %zu, fill 0x%02x) corrupted at offset %zu (0x%02x), found %s",
            slot, (void*)s->p, s->size, s->usable, s->fill, bad, s->p[bad], when);
}

void fz_shadow_drop(unsigned slot) {
  fz_slot_t* s = &slots[slot];
  if (s->live) live_bytes -= s->size;
  memset(s, 0, sizeof(*s));
}
