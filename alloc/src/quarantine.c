/* LODE_SECURE: the quarantine of a thread's recent frees.
 *
 * A freed block waits in one of 16 slots before its page gets it back.  A
 * new block displaces the occupant of a random slot (one that came in over
 * 8 frees ago), so which block comes back next cannot be predicted from the
 * order of frees, and none comes back before 8 more frees; and a cursor that
 * visits one slot per free sends home any block that waited 32 frees or
 * more, so none stays longer than 48 frees (its wipe is checked when it
 * leaves: heap.c).  Blocks that would take the quarantine past its byte
 * budget pass straight through.  This file only keeps the slots: the caller
 * frees what leaves. */
#include "internal.h"

#ifdef LODE_SECURE

static uint64_t next_random(lode_quarantine_t* q) {
  if (q->rng == 0) q->rng = _lode_mix64(_lode_secret() ^ q->seed ^ (uint64_t)_lode_clock_now() * 0x9e3779b97f4a7c15ull) | 1;
  uint64_t x = q->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  q->rng = x;
  return x;
}

static void* take(lode_quarantine_t* q, size_t i) {
  void* b = q->block[i];
  q->bytes -= q->bytes_of[i];
  q->block[i] = NULL;
  q->bytes_of[i] = 0;
  return b;
}

static void put(lode_quarantine_t* q, size_t i, void* block, size_t bytes) {
  q->block[i] = block;
  q->bytes_of[i] = bytes;
  q->pushed_at[i] = q->pushes;
  q->bytes += bytes;
}

size_t _lode_quarantine_push(lode_quarantine_t* q, void* block, size_t bytes, void* out[2]) {
  size_t n = 0;
  q->pushes++;
  size_t c = (size_t)(q->pushes % LODE_QUARANTINE_SLOTS);
  if (q->block[c] != NULL && q->pushes - q->pushed_at[c] >= LODE_QUARANTINE_MAX_AGE) out[n++] = take(q, c);
  if (q->bytes + bytes > LODE_QUARANTINE_BYTES) {
    out[n++] = block;
    return n;
  }
  /* a random slot, but not one whose block came in during the last 8 frees:
   * a block stays at least that long */
  size_t j = (size_t)(next_random(q) % LODE_QUARANTINE_SLOTS);
  for (size_t k = 0; k < LODE_QUARANTINE_SLOTS && q->block[j] != NULL && q->pushes - q->pushed_at[j] <= LODE_QUARANTINE_MIN_AGE;
       k++)
    j = (j + 1) % LODE_QUARANTINE_SLOTS;
  if (q->block[j] != NULL) {
    if (n == 0) {
      out[n++] = take(q, j);
    } else {
      /* one block left already: take a free slot if there is one */
      for (size_t k = 0; k < LODE_QUARANTINE_SLOTS && q->block[j] != NULL; k++) j = (j + 1) % LODE_QUARANTINE_SLOTS;
      if (q->block[j] != NULL) out[n++] = take(q, j);
    }
  }
  put(q, j, block, bytes);
  return n;
}

/* Emptied by a forced collect: its counts and random state start over, so
 * what follows does not depend on the frees before (the fuzzer replays an
 * input in a process of its own as it ran after others; the next push
 * seeds from the clock). */
void _lode_quarantine_restart(lode_quarantine_t* q) {
  /* (the caller flushed it: nothing in it is lost) */
  uint64_t seed = q->seed;
  memset(q, 0, sizeof(*q));
  q->seed = seed;
}

void* _lode_quarantine_pop(lode_quarantine_t* q) {
  for (size_t i = 0; i < LODE_QUARANTINE_SLOTS; i++)
    if (q->block[i] != NULL) return take(q, i);
  return NULL;
}

bool _lode_quarantine_holds(const lode_quarantine_t* q, const void* block) {
  for (size_t i = 0; i < LODE_QUARANTINE_SLOTS; i++)
    if (q->block[i] == block) return true;
  return false;
}

#else
typedef int lode_quarantine_unused_t; /* a translation unit may not be empty */
#endif
