/* liblode.so only: lode becomes the process malloc (LD_PRELOAD or linking).
 * Every libc allocation entry point maps onto the lode API. */
/* the checked memcpy/memmove/memset below replace the C library's names */
#undef _FORTIFY_SOURCE
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#define LODE_EXPORT __attribute__((visibility("default")))

/* glibc's realloc(p, 0) frees p and returns NULL, and programs written for
 * it free that way: lode_realloc's fresh minimal block leaked there (review,
 * 2026-12-06: 7.9 MiB per million calls).  The drop-in does as glibc. */
static void* glibc_realloc(void* p, size_t size) {
  if (size == 0 && p != NULL) {
    lode_free(p);
    return NULL;
  }
  return lode_realloc(p, size);
}
static void* glibc_reallocarray(void* p, size_t n, size_t size) {
  if ((n == 0 || size == 0) && p != NULL) return glibc_realloc(p, 0);
  return lode_reallocarray(p, n, size);
}
/* glibc's memalign and aligned_alloc (up to 2.37) take any alignment: 0 or
 * one below a pointer's is malloc's, another that is not a power of two is
 * rounded up to one; past SIZE_MAX / 2 + 1 it is EINVAL.  lode_aligned_alloc
 * refuses all of them with EINVAL, and programs that work on glibc failed
 * (review, 2026-12-06: memalign(24, n)). */
static void* glibc_memalign(size_t alignment, size_t size) {
  if (alignment <= sizeof(void*)) return lode_malloc(size);
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  size_t a = lode_is_pow2(alignment) ? alignment : (size_t)1 << (64 - __builtin_clzll(alignment));
  return lode_aligned_alloc(a, size);
}

/* malloc and free: aliases of lode_malloc and lode_free (alloc.c) */
LODE_EXPORT void* calloc(size_t n, size_t size) { return lode_calloc(n, size); }
LODE_EXPORT void* realloc(void* p, size_t size) { return glibc_realloc(p, size); }
LODE_EXPORT void* reallocarray(void* p, size_t n, size_t size) { return glibc_reallocarray(p, n, size); }
LODE_EXPORT size_t malloc_usable_size(void* p);
LODE_EXPORT size_t malloc_usable_size(void* p) { return lode_usable_size(p); }
LODE_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  return lode_posix_memalign(out, alignment, size);
}
LODE_EXPORT void* aligned_alloc(size_t alignment, size_t size) { return glibc_memalign(alignment, size); }
LODE_EXPORT void* memalign(size_t alignment, size_t size);
LODE_EXPORT void* memalign(size_t alignment, size_t size) { return glibc_memalign(alignment, size); }
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
LODE_EXPORT void* __libc_realloc(void* p, size_t size) { return glibc_realloc(p, size); }
LODE_EXPORT void* __libc_memalign(size_t alignment, size_t size);
LODE_EXPORT void* __libc_memalign(size_t alignment, size_t size) { return glibc_memalign(alignment, size); }
LODE_EXPORT void* __libc_valloc(size_t size);
LODE_EXPORT void* __libc_valloc(size_t size) { return valloc(size); }
LODE_EXPORT void* __libc_pvalloc(size_t size);
LODE_EXPORT void* __libc_pvalloc(size_t size) { return pvalloc(size); }
LODE_EXPORT void* __libc_reallocarray(void* p, size_t n, size_t size);
LODE_EXPORT void* __libc_reallocarray(void* p, size_t n, size_t size) { return glibc_reallocarray(p, n, size); }
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
 * throwing one (this file's) and catches.
 *
 * A program may replace any of the replaceable forms (the standard lets it
 * replace one alone, e.g. new[] forwarding to ::operator new): once one is
 * not lode's, the kinds lode would record no longer match the deletes the
 * program pairs them with.  lode then steps aside for them all: each form
 * goes to the runtime's (the blocks are the program's, their kinds are not
 * lode's to check), and the runtime's forms end in the program's.
 *
 * dl* calls reset the calling thread's dlerror() state, which cannot be
 * saved and restored, so no path a correct program hits commonly calls
 * them: who owns the operators, and the runtime's forms, are settled once
 * by the library constructor (cxx_decide).  The runtime a program loads
 * later (a C program's dlopen of a C++ plugin) is searched for on the
 * first out-of-memory new that needs it (cxx_runtime), then kept. */
#include <link.h>

_Static_assert(sizeof(size_t) == 8, "the mangled names below are for a 64-bit size_t");

typedef void (*lode_new_handler_t)(void);

/* Every replaceable form lode defines: X(mangled name, is a nothrow new) */
#define CXX_FORMS(X)                                                                                            \
  X(_Znwm, 0)                                                                                                   \
  X(_Znam, 0)                                                                                                   \
  X(_ZnwmRKSt9nothrow_t, 1)                                                                                     \
  X(_ZnamRKSt9nothrow_t, 1)                                                                                     \
  X(_ZnwmSt11align_val_t, 0)                                                                                    \
  X(_ZnamSt11align_val_t, 0)                                                                                    \
  X(_ZnwmSt11align_val_tRKSt9nothrow_t, 1)                                                                      \
  X(_ZnamSt11align_val_tRKSt9nothrow_t, 1)                                                                      \
  X(_ZdlPv, 0)                                                                                                  \
  X(_ZdaPv, 0)                                                                                                  \
  X(_ZdlPvm, 0)                                                                                                 \
  X(_ZdaPvm, 0)                                                                                                 \
  X(_ZdlPvRKSt9nothrow_t, 0)                                                                                    \
  X(_ZdaPvRKSt9nothrow_t, 0)                                                                                    \
  X(_ZdlPvSt11align_val_t, 0)                                                                                   \
  X(_ZdaPvSt11align_val_t, 0)                                                                                   \
  X(_ZdlPvmSt11align_val_t, 0)                                                                                  \
  X(_ZdaPvmSt11align_val_t, 0)                                                                                  \
  X(_ZdlPvSt11align_val_tRKSt9nothrow_t, 0)                                                                     \
  X(_ZdaPvSt11align_val_tRKSt9nothrow_t, 0)

#define CXX_INDEX(name, nothrow) CXX_##name,
enum { CXX_FORMS(CXX_INDEX) CXX_FORM_COUNT };
#undef CXX_INDEX

/* The C++ runtime lode's operators call: its new_handler getter, its
 * throw of std::bad_alloc, its nothrow news (NULL in the other slots). */
typedef struct cxx_runtime_s {
  lode_new_handler_t (*get_new_handler)(void);
  void (*throw_bad_alloc)(void);
  void* form[CXX_FORM_COUNT];
} cxx_runtime_t;

/* 0: not decided yet; 1: the operators are lode's; 2: the program replaced one. */
static _Atomic(int) cxx_owner;
/* when replaced: the runtime's form of each name (the one after lode's) */
static _Atomic(uintptr_t) cxx_next[CXX_FORM_COUNT];
/* 0: no runtime known; 1: being stored; 2: cxx_rt holds it for good */
static _Atomic(int) cxx_rt_state;
static cxx_runtime_t cxx_rt;

static void cxx_decide(void);

static inline bool cxx_replaced(void) {
  int o = atomic_load_explicit(&cxx_owner, memory_order_acquire);
  if (lode_unlikely(o == 0)) {
    cxx_decide();
    o = atomic_load_explicit(&cxx_owner, memory_order_acquire);
  }
  return o == 2;
}

/* The function lode caches may sit in a library that dlclose could unmap
 * (the runtime of a plugin the program unloads): mark its object
 * RTLD_NODELETE so that the cached pointer stays good. */
static void cxx_pin(void* f) {
  Dl_info info;
  struct link_map* lm = NULL;
  if (f == NULL || dladdr1(f, &info, (void**)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL) return;
  if (lm->l_prev == NULL) return; /* the program itself */
  void* h = dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  if (h != NULL) dlclose(h); /* NODELETE stays; NOLOAD took a reference */
}

static const char* const cxx_names[CXX_FORM_COUNT] = {
#define CXX_NAME(name, nothrow) #name,
    CXX_FORMS(CXX_NAME)
#undef CXX_NAME
};
static const bool cxx_is_nothrow_new[CXX_FORM_COUNT] = {
#define CXX_NOTHROW(name, nothrow) nothrow,
    CXX_FORMS(CXX_NOTHROW)
#undef CXX_NOTHROW
};
static void* cxx_own(int form);

/* The runtime whose new_handler getter and throw `scope` finds, its nothrow
 * news from `forms` (a form that is lode's own would call itself: none). */
static bool cxx_resolve(cxx_runtime_t* rt, void* scope, void* forms) {
  *rt = (cxx_runtime_t){0};
  rt->get_new_handler = (lode_new_handler_t(*)(void))dlsym(scope, "_ZSt15get_new_handlerv");
  rt->throw_bad_alloc = (void (*)(void))dlsym(scope, "_ZSt17__throw_bad_allocv");
  if (rt->get_new_handler == NULL || rt->throw_bad_alloc == NULL) return false;
  cxx_pin((void*)rt->get_new_handler);
  cxx_pin((void*)rt->throw_bad_alloc);
  for (int i = 0; i < CXX_FORM_COUNT; i++) {
    if (!cxx_is_nothrow_new[i]) continue;
    void* f = dlsym(forms, cxx_names[i]);
    rt->form[i] = f != cxx_own(i) ? f : NULL;
    cxx_pin(rt->form[i]);
  }
  return true;
}

/* Names of loaded objects, gathered by dl_iterate_phdr a bufferful at a
 * time: dlopen may not be called from its callback (the loader's locks
 * would be taken in the opposite order of a concurrent dlopen). */
typedef struct cxx_objects_s {
  size_t skip, seen, next; /* objects to pass over; seen so far; where the next pass starts */
  bool full;
  int count;
  size_t used;
  size_t at[32];
  char buf[8192];
} cxx_objects_t;

static int cxx_object(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size;
  cxx_objects_t* o = arg;
  if (o->seen++ < o->skip) return 0;
  const char* s = info->dlpi_name;
  size_t len = s != NULL ? strlen(s) + 1 : 1;
  if (len > 1 && len <= sizeof o->buf) { /* the program and the vdso have no name */
    if (o->count == (int)(sizeof o->at / sizeof o->at[0]) || o->used + len > sizeof o->buf) {
      o->full = true;
      return 1;
    }
    o->at[o->count++] = o->used;
    for (size_t i = 0; i < len; i++) o->buf[o->used + i] = s[i];
    o->used += len;
  }
  o->next = o->seen;
  return 0;
}

/* A runtime in a local scope, where neither the process's symbols nor those
 * after lode's reach it (a C program's dlopen(RTLD_LOCAL) of a C++ plugin:
 * libstdc++, or libc++ with libc++abi): the first loaded object whose own
 * scope has one. */
static bool cxx_search(cxx_runtime_t* rt) {
  cxx_objects_t o;
  o.next = 0;
  do {
    o.skip = o.next;
    o.seen = o.next = o.used = 0;
    o.count = 0;
    o.full = false;
    dl_iterate_phdr(cxx_object, &o);
    for (int i = 0; i < o.count; i++) {
      void* h = dlopen(o.buf + o.at[i], RTLD_LAZY | RTLD_NOLOAD);
      if (h == NULL) continue;
      bool found = cxx_resolve(rt, h, h); /* what it needs, it pinned */
      dlclose(h);
      if (found) return true;
    }
  } while (o.full && o.next > o.skip);
  return false;
}

static void cxx_keep(const cxx_runtime_t* rt) {
  int expect = 0;
  if (atomic_compare_exchange_strong_explicit(&cxx_rt_state, &expect, 1, memory_order_relaxed, memory_order_relaxed)) {
    cxx_rt = *rt;
    atomic_store_explicit(&cxx_rt_state, 2, memory_order_release);
  }
}

/* The C++ runtime into *rt: the one kept, or searched for now.  The search
 * calls dl* (and so clears a pending dlerror()): it runs only out of memory,
 * in a process whose runtime the constructor did not find (loaded later, or
 * none at all), and once found the runtime is kept. */
static bool cxx_runtime(cxx_runtime_t* rt) {
  if (atomic_load_explicit(&cxx_rt_state, memory_order_acquire) == 2) {
    *rt = cxx_rt;
    return true;
  }
  bool found = cxx_resolve(rt, RTLD_DEFAULT, RTLD_NEXT) || cxx_search(rt);
  (void)dlerror(); /* the search's failed lookups are no one's to read */
  if (found) cxx_keep(rt);
  return found;
}

/* Who owns the operators, decided once: by the library constructor below
 * (all DT_NEEDED objects, a replacing program among them, are loaded by
 * then), or by the first operator called before it (another library's
 * constructor).  That one calls dlsym too, but no program can have a
 * dlerror() pending before the constructors have run (a library constructor
 * that reads back its own failed dlopen around a new is the one case that
 * would see it cleared).  The global runtime (a C++ program's) is kept
 * here, so that its out-of-memory new calls no dl*. */
static void cxx_decide(void) {
  bool mine = true;
  for (int i = 0; i < CXX_FORM_COUNT; i++)
    if (dlsym(RTLD_DEFAULT, cxx_names[i]) != cxx_own(i)) mine = false;
  if (!mine) {
    for (int i = 0; i < CXX_FORM_COUNT; i++) {
      void* f = dlsym(RTLD_NEXT, cxx_names[i]);
      if (f == cxx_own(i)) f = NULL;
      cxx_pin(f);
      atomic_store_explicit(&cxx_next[i], (uintptr_t)f, memory_order_relaxed);
    }
  }
  cxx_runtime_t rt;
  if (cxx_resolve(&rt, RTLD_DEFAULT, RTLD_NEXT)) cxx_keep(&rt);
  (void)dlerror(); /* a C program's main finds no error of lode's lookups pending */
  atomic_store_explicit(&cxx_owner, mine ? 1 : 2, memory_order_release);
}

__attribute__((constructor)) static void cxx_init(void) {
  if (atomic_load_explicit(&cxx_owner, memory_order_acquire) == 0) cxx_decide();
}

static void* cxx_new(size_t size, size_t alignment, lode_alloc_kind_t kind) {
  cxx_runtime_t rt;
  bool have = false;
  for (;;) {
    void* p = _lode_alloc_kind(size, alignment, kind);
    if (p != NULL) return p;
    if (!have && !(have = cxx_runtime(&rt))) break;
    lode_new_handler_t handler = rt.get_new_handler();
    if (handler == NULL) break;
    handler();
  }
  if (have) rt.throw_bad_alloc();
  _lode_error_pointer(kind == LODE_KIND_NEW ? "operator new" : "operator new[]", "out of memory, and no C++ runtime to throw", NULL);
  abort();
}

/* The runtime's form of the same name, for a program that replaced one: NULL when there is none. */
#define CXX_NEXT(ret, params, name) \
  ret(*next_fn) params = (ret(*) params)atomic_load_explicit(&cxx_next[CXX_##name], memory_order_relaxed)

#define NEW_FN(name, kind, params, args, size, align)                                     \
  LODE_EXPORT void* name params;                                                          \
  LODE_EXPORT void* name params {                                                         \
    if (lode_unlikely(cxx_replaced())) {                                                  \
      CXX_NEXT(void*, params, name);                                                      \
      if (next_fn != NULL) return next_fn args;                                           \
    }                                                                                     \
    return cxx_new(size, align, kind);                                                    \
  }
/* nothrow: out of memory, the runtime's nothrow form runs the handlers (it
 * calls the throwing form above and catches); without a runtime, NULL */
#define NEW_NOTHROW_FN(name, kind, params, args, size, align)                             \
  LODE_EXPORT void* name params;                                                          \
  LODE_EXPORT void* name params {                                                         \
    if (lode_likely(!cxx_replaced())) {                                                   \
      void* p = _lode_alloc_kind(size, align, kind);                                      \
      if (p != NULL) return p;                                                            \
      cxx_runtime_t rt;                                                                   \
      void* (*rt_fn) params = NULL;                                                       \
      if (cxx_runtime(&rt)) rt_fn = (void* (*)params)rt.form[CXX_##name];                 \
      return rt_fn != NULL ? rt_fn args : NULL;                                           \
    }                                                                                     \
    CXX_NEXT(void*, params, name);                                                        \
    if (next_fn != NULL) return next_fn args;                                             \
    return _lode_alloc_kind(size, align, kind);                                           \
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
      CXX_NEXT(void, params, name);                       \
      if (next_fn != NULL) {                              \
        next_fn args;                                     \
        return;                                           \
      }                                                   \
    }                                                     \
    _lode_free_kind(p, kind, size, func);                 \
  }
DELETE_FN(_ZdlPv, LODE_KIND_NEW, "operator delete", (void* p), (p), LODE_UNSIZED)
DELETE_FN(_ZdaPv, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p), (p), LODE_UNSIZED)
DELETE_FN(_ZdlPvm, LODE_KIND_NEW, "operator delete", (void* p, size_t n), (p, n), n)
DELETE_FN(_ZdaPvm, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t n), (p, n), n)
DELETE_FN(_ZdlPvRKSt9nothrow_t, LODE_KIND_NEW, "operator delete", (void* p, const void* nt), (p, nt),
          ((void)nt, LODE_UNSIZED))
DELETE_FN(_ZdaPvRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, const void* nt), (p, nt),
          ((void)nt, LODE_UNSIZED))
DELETE_FN(_ZdlPvSt11align_val_t, LODE_KIND_NEW, "operator delete", (void* p, size_t al), (p, al),
          ((void)al, LODE_UNSIZED))
DELETE_FN(_ZdaPvSt11align_val_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t al), (p, al),
          ((void)al, LODE_UNSIZED))
DELETE_FN(_ZdlPvmSt11align_val_t, LODE_KIND_NEW, "operator delete", (void* p, size_t n, size_t al), (p, n, al),
          ((void)al, n))
DELETE_FN(_ZdaPvmSt11align_val_t, LODE_KIND_NEW_ARRAY, "operator delete[]", (void* p, size_t n, size_t al),
          (p, n, al), ((void)al, n))
DELETE_FN(_ZdlPvSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW, "operator delete", (void* p, size_t al, const void* nt),
          (p, al, nt), ((void)al, (void)nt, LODE_UNSIZED))
DELETE_FN(_ZdaPvSt11align_val_tRKSt9nothrow_t, LODE_KIND_NEW_ARRAY, "operator delete[]",
          (void* p, size_t al, const void* nt), (p, al, nt), ((void)al, (void)nt, LODE_UNSIZED))

/* lode's own definition of each form, to tell a replacement from it */
static void* cxx_own(int form) {
#define CXX_OWN(name, nothrow) (void*)name,
  static void* const own[CXX_FORM_COUNT] = {CXX_FORMS(CXX_OWN)};
#undef CXX_OWN
  return own[form];
}

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
