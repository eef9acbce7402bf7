/* liblode.so only: lode becomes the process malloc (LD_PRELOAD or linking).
 * Every libc allocation entry point maps onto the lode API. */
/* the checked memcpy/memmove/memset below replace the C library's names */
#undef _FORTIFY_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#define LODE_EXPORT __attribute__((visibility("default")))

/* malloc and free: aliases of lode_malloc and lode_free (alloc.c) */
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
LODE_EXPORT void* __libc_valloc(size_t size);
LODE_EXPORT void* __libc_valloc(size_t size) { return valloc(size); }
LODE_EXPORT void* __libc_pvalloc(size_t size);
LODE_EXPORT void* __libc_pvalloc(size_t size) { return pvalloc(size); }
LODE_EXPORT void* __libc_reallocarray(void* p, size_t n, size_t size);
LODE_EXPORT void* __libc_reallocarray(void* p, size_t n, size_t size) { return lode_reallocarray(p, n, size); }
/* Removed from glibc's headers in 2.26, kept for binaries older than that. */
LODE_EXPORT void cfree(void* p);
LODE_EXPORT void cfree(void* p) { lode_free(p); }

#ifdef LODE_SECURE
/* --- LODE_SECURE: C++ operators, so that each delete checks its kind ------------ */
/* new, new[] and their deletes (sized, aligned, nothrow) as the Itanium C++
 * ABI names them on a 64-bit target.  A block from new may only go to delete,
 * one from new[] only to delete[], one from malloc only to free; a sized
 * delete must name the size that was asked for.  Out of memory, new calls
 * the program's new_handler while there is one and then throws
 * std::bad_alloc; a nothrow new asks the C++ runtime's, which calls the
 * throwing one (this file's) and catches.  The runtime is looked up when
 * needed: it may be loaded after lode (dlopen of a C++ plugin).
 *
 * A program may replace the basic operators (new(size_t), delete(void*),
 * their aligned pair): the other forms must then end in its own, as the
 * standard says and the runtime's forms do.  lode steps aside for them all:
 * each form goes to the runtime's (the blocks are the program's, and their
 * kinds are not lode's to check). */
_Static_assert(sizeof(size_t) == 8, "the mangled names below are for a 64-bit size_t");

typedef void (*lode_new_handler_t)(void);

/* The C++ runtime's `name`.  It may sit in a local scope, where neither
 * the process's symbols nor those after lode's reach it: a C program's
 * dlopen(RTLD_LOCAL) of a C++ plugin brings it along. */
static void* cxx_runtime(const char* name, void* first) {
  void* f = dlsym(first, name);
  if (f != NULL) return f;
  void* h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (h == NULL) return NULL;
  f = dlsym(h, name);
  dlclose(h); /* NOLOAD took a reference */
  return f;
}

/* The C++ runtime's own definition of `name` (one after lode's), found
 * once into *slot; not remembered while there is none (it may come). */
static void* cxx_next(_Atomic(uintptr_t)* slot, const char* name) {
  uintptr_t v = atomic_load_explicit(slot, memory_order_relaxed);
  if (v == 0) {
    v = (uintptr_t)cxx_runtime(name, RTLD_NEXT);
    atomic_store_explicit(slot, v, memory_order_relaxed);
  }
  return (void*)v;
}

LODE_EXPORT void* _Znwm(size_t n);
LODE_EXPORT void _ZdlPv(void* p);
LODE_EXPORT void* _ZnwmSt11align_val_t(size_t n, size_t al);
LODE_EXPORT void _ZdlPvSt11align_val_t(void* p, size_t al);

/* 1: the basic operators are lode's; 2: the program replaced one of them. */
static _Atomic(int) cxx_owner;

static bool cxx_replaced(void) {
  int o = atomic_load_explicit(&cxx_owner, memory_order_relaxed);
  if (lode_likely(o != 0)) return o == 2;
  bool mine = dlsym(RTLD_DEFAULT, "_Znwm") == (void*)_Znwm && dlsym(RTLD_DEFAULT, "_ZdlPv") == (void*)_ZdlPv &&
              dlsym(RTLD_DEFAULT, "_ZnwmSt11align_val_t") == (void*)_ZnwmSt11align_val_t &&
              dlsym(RTLD_DEFAULT, "_ZdlPvSt11align_val_t") == (void*)_ZdlPvSt11align_val_t;
  atomic_store_explicit(&cxx_owner, mine ? 1 : 2, memory_order_relaxed);
  return !mine;
}

static void* cxx_new(size_t size, size_t alignment, lode_alloc_kind_t kind) {
  for (;;) {
    void* p = _lode_alloc_kind(size, alignment, kind);
    if (p != NULL) return p;
    lode_new_handler_t (*get)(void) = (lode_new_handler_t(*)(void))cxx_runtime("_ZSt15get_new_handlerv", RTLD_DEFAULT);
    lode_new_handler_t handler = get != NULL ? get() : NULL;
    if (handler == NULL) break;
    handler();
  }
  void (*throw_bad_alloc)(void) = (void (*)(void))cxx_runtime("_ZSt17__throw_bad_allocv", RTLD_DEFAULT);
  if (throw_bad_alloc != NULL) throw_bad_alloc();
  _lode_error_pointer(kind == LODE_KIND_NEW ? "operator new" : "operator new[]", "out of memory, and no C++ runtime to throw", NULL);
  abort();
}

/* The C++ runtime's form of the same name: NULL when there is none. */
#define CXX_NEXT(ret, params, name)    \
  static _Atomic(uintptr_t) next_slot; \
  ret(*next_fn) params = (ret(*) params)cxx_next(&next_slot, #name)

#define NEW_FN(name, kind, params, args, size, align)                                     \
  LODE_EXPORT void* name params;                                                          \
  LODE_EXPORT void* name params {                                                         \
    if (lode_unlikely(cxx_replaced())) {                                                  \
      CXX_NEXT(void*, params, name);                                                   \
      if (next_fn != NULL) return next_fn args;                                           \
    }                                                                                     \
    return cxx_new(size, align, kind);                                                    \
  }
/* nothrow: out of memory, the runtime's nothrow form runs the handlers (it
 * calls the throwing form above and catches); without a runtime, NULL */
#define NEW_NOTHROW_FN(name, kind, params, args, size, align)                             \
  LODE_EXPORT void* name params;                                                          \
  LODE_EXPORT void* name params {                                                         \
    bool replaced = cxx_replaced();                                                       \
    if (lode_likely(!replaced)) {                                                         \
      void* p = _lode_alloc_kind(size, align, kind);                                      \
      if (p != NULL) return p;                                                            \
    }                                                                                     \
    CXX_NEXT(void*, params, name);                                                        \
    if (next_fn != NULL) return next_fn args;                                             \
    return replaced ? _lode_alloc_kind(size, align, kind) : NULL;                         \
  }
NEW_FN(_Znwm, LODE_KIND_NEW, (size_t n), (n), n, 0)
NEW_FN(_Znam, LODE_KIND_NEW_ARRAY, (size_t n), (n), n, 0)
NEW_NOTHROW_FN(_ZnwmRKSt9nothrow_t, LODE_KIND_NEW, (size_t n, const void* nt), (n, nt), n, 0)
NEW_NOTHROW_FN(_ZnamRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, (size_t n, const void* nt), (n, nt), n, 0)
NEW_FN(_ZnwmSt11align_val_t, LODE_KIND_NEW, (size_t n, size_t al), (n, al), n, al)
NEW_FN(_ZnamSt11align_val_t, LODE_KIND_NEW_ARRAY, (size_t n, size_t al), (n, al), n, al)
NEW_NOTHROW_FN(_ZnwmSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW, (size_t n, size_t al, const void* nt), (n, al, nt), n,
               al)
NEW_NOTHROW_FN(_ZnamSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, (size_t n, size_t al, const void* nt),
               (n, al, nt), n, al)

#define DELETE_FN(name, kind, func, params, args, size)   \
  LODE_EXPORT void name params;                           \
  LODE_EXPORT void name params {                          \
    if (lode_unlikely(cxx_replaced())) {                  \
      CXX_NEXT(void, params, name);                    \
      if (next_fn != NULL) {                              \
        next_fn args;                                     \
        return;                                           \
      }                                                   \
    }                                                     \
    _lode_free_kind(p, kind, size, func);                 \
  }
DELETE_FN(_ZdlPv, LODE_KIND_NEW, "operator delete", (void* p), (p), 0)
DELETE_FN(_ZdaPv, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p), (p), 0)
DELETE_FN(_ZdlPvm, LODE_KIND_NEW, "operator delete", (void* p, size_t n), (p, n), n)
DELETE_FN(_ZdaPvm, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t n), (p, n), n)
DELETE_FN(_ZdlPvRKSt9nothrow_t, LODE_KIND_NEW, "operator delete", (void* p, const void* nt), (p, nt), ((void)nt, 0))
DELETE_FN(_ZdaPvRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, const void* nt), (p, nt),
          ((void)nt, 0))
DELETE_FN(_ZdlPvSt11align_val_t, LODE_KIND_NEW, "operator delete", (void* p, size_t al), (p, al), ((void)al, 0))
DELETE_FN(_ZdaPvSt11align_val_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t al), (p, al),
          ((void)al, 0))
DELETE_FN(_ZdlPvmSt11align_val_t, LODE_KIND_NEW, "operator delete", (void* p, size_t n, size_t al), (p, n, al),
          ((void)al, n))
DELETE_FN(_ZdaPvmSt11align_val_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t n, size_t al),
          (p, n, al), ((void)al, n))
DELETE_FN(_ZdlPvSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW, "operator delete", (void* p, size_t al, const void* nt),
          (p, al, nt), ((void)al, (void)nt, 0))
DELETE_FN(_ZdaPvSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, "operator delete[]",
          (void* p, size_t al, const void* nt), (p, al, nt), ((void)al, (void)nt, 0))

#ifdef LODE_CHECKED_MEMFUNCS
/* --- LODE_SECURE: bounds-checked memcpy, memmove, memset ------------------------ */
/* A range that starts in a lode block must end inside what was asked for
 * of it, and a block that is not allocated may not be touched at all.
 * Ranges elsewhere (stack, globals, other mappings) are not checked.  After
 * a report that does not abort (LODE_ON_ERROR), the call does what it was
 * asked: the checks report, the C library copies. */
LODE_EXPORT void* memcpy(void* restrict d, const void* restrict s, size_t n) {
  if (n != 0) {
    _lode_range_ok(d, n, "memcpy");
    _lode_range_ok(s, n, "memcpy");
  }
  _lode_raw_memcpy(d, s, n);
  return d;
}

LODE_EXPORT void* memmove(void* d, const void* s, size_t n) {
  if (n != 0) {
    _lode_range_ok(d, n, "memmove");
    _lode_range_ok(s, n, "memmove");
  }
  _lode_raw_memmove(d, s, n);
  return d;
}

LODE_EXPORT void* memset(void* d, int c, size_t n) {
  if (n != 0) _lode_range_ok(d, n, "memset");
  _lode_raw_memset(d, c, n);
  return d;
}
#endif
#endif
