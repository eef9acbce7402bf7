/* Transfer slots: pointers handed between threads by atomic exchange.  The
 * receiver learns a block's size from the allocator's usable size, which the
 * pattern also encodes, so a slot holds nothing but the pointer. */
#include "stress.h"

#include <stdlib.h>

static _Atomic(void*)* slots;
static size_t nslots;

void transfer_init(size_t count) {
  if (slots == NULL || count > nslots) {
    free((void*)slots);
    slots = calloc(count, sizeof(*slots));
    if (slots == NULL) abort();
  }
  nslots = count;
  for (size_t i = 0; i < count; i++) atomic_store(&slots[i], NULL);
}

size_t transfer_count(void) { return nslots; }

void* transfer_swap(size_t slot, void* p) { return atomic_exchange(&slots[slot % nslots], p); }

bool transfer_put_if_empty(size_t slot, void* p) {
  void* expected = NULL;
  return atomic_compare_exchange_strong(&slots[slot % nslots], &expected, p);
}

void* transfer_take(size_t slot) { return atomic_exchange(&slots[slot % nslots], NULL); }
