/* The shadow model: what the harness knows about every live slot (pointer,
 * requested and usable size, fill byte, heap of origin).  A block is filled
 * over its usable size when it is handed out, and verified on free, before a
 * heap destroy and at the end, and over the preserved prefix on realloc: lode
 * must never write into a live block, and a write past a block's end lands
 * either in its own slack or in a neighbour, both checked.  New blocks are
 * checked against every live one for overlap.
 *
 * Blocks up to FZ_FULL_FILL (every small block) are filled whole.  Larger
 * ones are sampled: their first and last FZ_EDGE bytes, and FZ_STAMP bytes at
 * every FZ_STAMP_EVERY-aligned address between.  Filling every byte of a
 * 4 MiB block faulted in 1,024 pages, and page faults were most of a fuzz
 * run's time (a fault costs about 10 us on these VMs).  The samples still see
 * what lode can do to a medium, large or huge block: a purge or decommit of
 * its page covers the block's start (the head), a huge block's shrunk tail
 * borders the last page kept (the tail), lode's own writes land at block
 * starts, a window overwritten in the middle holds a stamp once it is longer
 * than FZ_STAMP_EVERY, and memory handed out as zeroed but stale still holds
 * earlier samples at the same addresses (stamps are address-aligned).  What
 * it gives up: a wrong write shorter than the stamp interval that lands
 * between samples of a large block.  ctest fuzz.oracle_scribble_* keep the
 * samples honest. */
#include "harness.h"
#include "testing.h"

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

/* The sampled ranges of a block filled at base over n bytes, as offsets:
 * calls fn on each range clipped to [0, limit); stops when fn returns false. */
typedef bool (*range_fn)(size_t off, size_t len, void* ctx);
static bool for_each_sample(uintptr_t base, size_t n, size_t limit, range_fn fn, void* ctx) {
  if (limit > n) limit = n;
  if (n <= FZ_FULL_FILL) return limit == 0 || fn(0, limit, ctx);
  if (!fn(0, limit < FZ_EDGE ? limit : FZ_EDGE, ctx)) return false;
  size_t tail = n - FZ_EDGE;
  size_t off = ((base + FZ_EDGE + FZ_STAMP_EVERY - 1) & ~(uintptr_t)(FZ_STAMP_EVERY - 1)) - base;
  for (; off + FZ_STAMP <= tail && off < limit; off += FZ_STAMP_EVERY) {
    size_t len = limit - off < FZ_STAMP ? limit - off : FZ_STAMP;
    if (!fn(off, len, ctx)) return false;
  }
  if (tail < limit) return fn(tail, limit - tail, ctx);
  return true;
}

/* First offset in [0, n) whose byte differs from c, or n.  The common case,
 * no difference, is one memcmp of the range against itself shifted by a byte
 * (equal iff every byte is p[0]): the C library's, which no fuzzing compiler
 * instruments.  A byte loop here, with an edge counter per step, was a fifth
 * of an AFL++ execution. */
static size_t first_mismatch(const uint8_t* p, size_t n, uint8_t c) {
  if (n == 0 || (p[0] == c && (n == 1 || memcmp(p, p + 1, n - 1) == 0))) return n;
  size_t i = 0;
  while (i < n && p[i] == c) i++;
  return i;
}

typedef struct {
  const uint8_t* p;
  uint8_t c;
  size_t bad; /* first mismatching offset, SIZE_MAX while none */
} check_ctx_t;

static bool check_range(size_t off, size_t len, void* ctx) {
  check_ctx_t* k = ctx;
  lode_sim_os_touch(k->p + off, len);
  size_t i = first_mismatch(k->p + off, len, k->c);
  if (i == len) return true;
  k->bad = off + i;
  return false;
}

static bool fill_range(size_t off, size_t len, void* ctx) {
  fz_slot_t* s = ctx;
  lode_sim_os_touch(s->p + off, len);
  memset(s->p + off, s->fill, len);
  return true;
}

void fz_shadow_add(unsigned slot, void* ptr, size_t size, size_t align, int heap, bool zeroed, unsigned seq) {
  uint8_t* p = ptr;
  fz_slot_t* s = &slots[slot];
  if (s->live) fz_fail("harness bug: slot s%u allocated while live", slot);
  bool busy = s->busy;
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
    check_ctx_t z = {.p = p, .c = 0, .bad = SIZE_MAX};
    for_each_sample((uintptr_t)p, size, size, check_range, &z);
    if (z.bad != SIZE_MAX)
      fz_fail("shadow: calloc block s%u = %p not zero at offset %zu (0x%02x)", slot, (void*)p, z.bad, p[z.bad]);
  }
  s->p = p;
  s->size = size;
  s->usable = usable;
  s->fill = fz_fill_byte(seq, slot);
  s->heap = (int8_t)heap;
  s->live = true;
  s->fill_base = (uintptr_t)p;
  s->fill_len = usable;
  s->busy = busy;
  for_each_sample((uintptr_t)p, usable, usable, fill_range, s);
  live_bytes += size;
}

void fz_shadow_verify(unsigned slot, size_t prefix, const char* when) {
  const fz_slot_t* s = &slots[slot];
  if (!s->live) return;
  size_t n = prefix < s->usable ? prefix : s->usable;
  /* Sampled where it was filled: after a realloc moved it, at the old offsets. */
  check_ctx_t k = {.p = s->p, .c = s->fill, .bad = SIZE_MAX};
  for_each_sample(s->fill_base, s->fill_len, n, check_range, &k);
  size_t bad = k.bad;
  if (bad != SIZE_MAX)
    fz_fail("shadow: s%u = %p (size %zu, usable %zu, fill 0x%02x) corrupted at offset %zu (0x%02x), found %s",
            slot, (void*)s->p, s->size, s->usable, s->fill, bad, s->p[bad], when);
}

void fz_shadow_drop(unsigned slot) {
  fz_slot_t* s = &slots[slot];
  if (s->live) live_bytes -= s->size;
  bool busy = s->busy;
  memset(s, 0, sizeof(*s));
  s->busy = busy;
}

void fz_shadow_verify_all(const char* when) {
  for (unsigned i = 0; i < FZ_SLOTS; i++)
    if (!slots[i].busy) fz_shadow_verify(i, SIZE_MAX, when);
}
