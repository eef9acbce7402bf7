/* Downstream consumer of the installed lode package.  Shared build
 * (liblode.so): malloc/free are lode's.  Static build (liblode.a): only the
 * lode_* API is lode's, malloc stays the C library's. */
#include <lode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define EXPECT(c)                                             \
  do {                                                        \
    if (!(c)) {                                               \
      fprintf(stderr, "consumer: failed: %s (line %d)\n", #c, __LINE__); \
      failures++;                                             \
    }                                                         \
  } while (0)

int main(void) {
  EXPECT(LODE_VERSION_MAJOR == 0 && LODE_VERSION_MINOR >= 1);

  char* s = lode_malloc(64);
  EXPECT(s != NULL && lode_usable_size(s) >= 64);
  strcpy(s, "lode");
  s = lode_realloc(s, 100000);
  EXPECT(s != NULL && strcmp(s, "lode") == 0);
  lode_free(s);

  lode_heap_t* heap = lode_heap_new();
  EXPECT(heap != NULL);
  void* blocks[1000];
  for (int i = 0; i < 1000; i++) {
    blocks[i] = lode_heap_malloc(heap, (size_t)(i % 300) + 1);
    EXPECT(blocks[i] != NULL && lode_heap_owns(heap, blocks[i]));
  }
  EXPECT(!lode_heap_owns(lode_heap_get_default(), blocks[0]));
  lode_heap_destroy(heap); /* frees them all */
  lode_collect(true);

  /* Is malloc lode's?  It must be with liblode.so, must not with liblode.a. */
  void* m = malloc(48);
  int mine = lode_heap_owns(lode_heap_get_default(), m);
  free(m);
#ifdef CONSUMER_STATIC
  EXPECT(!mine);
#else
  EXPECT(mine);
  void* z = calloc(10, 10);
  EXPECT(z != NULL && lode_usable_size(z) >= 100);
  free(z);
#endif

  lode_stats_t st;
  lode_stats_get(&st);
  EXPECT(st.segments_peak >= 1);
  EXPECT(lode_check_thread() == 0);
  printf("consumer (%s): %s\n",
#ifdef CONSUMER_STATIC
         "static",
#else
         "shared",
#endif
         failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
