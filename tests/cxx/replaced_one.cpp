// A program that replaces one replaceable form alone (legal C++: which one
// is the REPLACE_* macro it is built with), forwarding as the standard's
// defaults do.  Run with liblode.so preloaded: LODE_SECURE's operators must
// step aside for every form (they once did only when the basic new/delete
// were replaced, and new[] forwarding to ::operator new then reached
// lode's delete[] with a block lode had recorded as new's: abort).
#include <cstdio>
#include <cstdlib>
#include <new>

// (replacing one delete[] alone is the point: the other is the library's;
// a delete[] forwarding to ::operator delete is what the standard's does)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsized-deallocation"
#if __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#endif

static long calls;

#if defined(REPLACE_ARRAY_NEW)
#define REPLACED "operator new[](size_t)"
void* operator new[](std::size_t n) {
  ++calls;
  return ::operator new(n);
}
#elif defined(REPLACE_ARRAY_DELETE)
#define REPLACED "operator delete[](void*)"
void operator delete[](void* p) noexcept {
  ++calls;
  ::operator delete(p);
}
#elif defined(REPLACE_SIZED_ARRAY_DELETE)
#define REPLACED "operator delete[](void*, size_t)"
void operator delete[](void* p, std::size_t) noexcept {
  ++calls;
  ::operator delete(p);
}
#elif defined(REPLACE_ALIGNED_ARRAY_NEW)
#define REPLACED "operator new[](size_t, align_val_t)"
void* operator new[](std::size_t n, std::align_val_t al) {
  ++calls;
  return ::operator new(n, al);
}
#elif defined(REPLACE_NOTHROW_ARRAY_NEW)
#define REPLACED "operator new[](size_t, nothrow_t)"
void* operator new[](std::size_t n, const std::nothrow_t& nt) noexcept {
  ++calls;
  return ::operator new(n, nt);
}
#else
#error "build with one REPLACE_* macro"
#endif

#ifdef CXX_EARLY
// early.cpp: a library whose constructor used new[] before lode's ran
extern "C" long cxx_early_news(void);
#endif

// through volatile pointers: the compiler may not pair or elide them
static void* (*volatile new_array)(std::size_t) = operator new[];
static void* (*volatile new_array_aligned)(std::size_t, std::align_val_t) = operator new[];
static void* (*volatile new_array_nothrow)(std::size_t, const std::nothrow_t&) noexcept = operator new[];
static void (*volatile delete_array)(void*) noexcept = operator delete[];
static void (*volatile delete_array_sized)(void*, std::size_t) noexcept = operator delete[];
static void (*volatile delete_array_aligned)(void*, std::align_val_t) noexcept = operator delete[];
static void* (*volatile new_plain)(std::size_t) = operator new;
static void (*volatile delete_plain)(void*) noexcept = operator delete;

int main() {
  delete_array(new_array(100));
  delete_array_sized(new_array(24), 24);
  delete_array_aligned(new_array_aligned(64, std::align_val_t{64}), std::align_val_t{64});
  delete_array(new_array_nothrow(40, std::nothrow));
  delete_plain(new_plain(16));
  int* a = new int[10];
  a[0] = 1;
  delete[] a;
#ifdef CXX_EARLY
  if (cxx_early_news() != 1) return std::fprintf(stderr, "replaced-one: the early library's constructor did not run\n"), 1;
#endif
  if (calls == 0) return std::fprintf(stderr, "replaced-one: the program's %s was never called\n", REPLACED), 1;
  std::printf("replaced-one: %s alone, called %ld times\n", REPLACED, calls);
  return 0;
}
