/* Preloaded by sim-arena-anywhere.sh: takes a page at the simulated OS's
 * arena hint before lode asks for it, so the arena lands elsewhere (as
 * under ASan, whose shadow lies there). */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_FIXED_NOREPLACE under -std=c11 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

__attribute__((constructor)) static void block_arena_hint(void) {
  void* want = (void*)(uintptr_t)0x100000000000ull;
  void* p = mmap(want, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != want) fprintf(stderr, "block_arena_hint: could not take the arena hint\n");
}
