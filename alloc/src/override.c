/* liblode.so only: lode becomes the process malloc (LD_PRELOAD or linking).
 * Every libc allocation entry point maps onto the lode API. */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

#define LODE_EXPORT __attribute__((visibility("default")))

LODE_EXPORT void* malloc(size_t size) { return lode_malloc(size); }
LODE_EXPORT void free(void* p) { lode_free(p); }
LODE_EXPORT void* calloc(size_t n, size_t size) { return lode_calloc(n, size); }
LODE_EXPORT void* realloc(void* p, size_t size) { return lode_realloc(p, size); }
LODE_EXPORT void* reallocarray(void* p, size_t n, size_t size) { return lode_reallocarray(p, n, size); }
LODE_EXPORT size_t malloc_usable_size(void* p);
LODE_EXPORT size_t malloc_usable_size(void* p) { return lode_usable_size(p); }
LODE_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  return lode_posix_memalign(out, alignment, size);
}
LODE_EXPORT void* aligned_alloc(size_t alignment, size_t size) { return lode_aligned_alloc(alignment, size); }
LODE_EXPORT void* memalign(size_t alignment, size_t size);
LODE_EXPORT void* memalign(size_t alignment, size_t size) { return lode_aligned_alloc(alignment, size); }
LODE_EXPORT void* valloc(size_t size);
LODE_EXPORT void* valloc(size_t size) { return lode_aligned_alloc(LODE_OS_PAGE_SIZE, size); }
LODE_EXPORT void* pvalloc(size_t size);
LODE_EXPORT void* pvalloc(size_t size) {
  size_t rounded = lode_align_up(size ? size : 1, LODE_OS_PAGE_SIZE);
  if (rounded < size) {
    errno = ENOMEM;
    return NULL;
  }
  return lode_aligned_alloc(LODE_OS_PAGE_SIZE, rounded);
}
/* glibc's malloc_trim: programs call it to give free memory back.  Here a
 * forced collect of the calling thread (its queued and free pages, the
 * process's empty abandoned segments, the segment cache); other threads'
 * free pages wait for their own collect or purge delay.  pad (glibc: heap
 * top to leave alone) has no meaning for lode.  1 when memory went back. */
LODE_EXPORT int malloc_trim(size_t pad);
LODE_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  lode_stats_t before, after;
  lode_stats_get(&before);
  lode_collect(true);
  lode_stats_get(&after);
  return after.committed_current < before.committed_current || after.reserved_current < before.reserved_current;
}
/* glibc-internal names some programs and libraries call directly. */
LODE_EXPORT void* __libc_malloc(size_t size);
LODE_EXPORT void* __libc_malloc(size_t size) { return lode_malloc(size); }
LODE_EXPORT void __libc_free(void* p);
LODE_EXPORT void __libc_free(void* p) { lode_free(p); }
LODE_EXPORT void* __libc_calloc(size_t n, size_t size);
LODE_EXPORT void* __libc_calloc(size_t n, size_t size) { return lode_calloc(n, size); }
LODE_EXPORT void* __libc_realloc(void* p, size_t size);
LODE_EXPORT void* __libc_realloc(void* p, size_t size) { return lode_realloc(p, size); }
LODE_EXPORT void* __libc_memalign(size_t alignment, size_t size);
LODE_EXPORT void* __libc_memalign(size_t alignment, size_t size) { return lode_aligned_alloc(alignment, size); }
