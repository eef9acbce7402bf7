// The C++ runtime's promises, kept with liblode.so preloaded:
//   handler: out of memory, new calls the new_handler until it is cleared,
//     then throws std::bad_alloc; a nothrow new calls it the same way and
//     returns NULL where new would throw (a throwing handler included);
//   zero-new-free, zero-new-delete-array, zero-malloc-delete: a zero-size
//     block keeps its kind (LODE_SECURE reports each mismatch: abort).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static int calls;
static void three_times() {
  if (++calls >= 3) std::set_new_handler(nullptr);
}

static void* (*volatile new_plain)(std::size_t) = operator new;
static void* (*volatile new_nothrow)(std::size_t, const std::nothrow_t&) noexcept = operator new;
static void* (*volatile new_array_aligned_nothrow)(std::size_t, std::align_val_t,
                                                   const std::nothrow_t&) noexcept = operator new[];
static void* (*volatile new_array)(std::size_t) = operator new[];
static void (*volatile delete_array)(void*) noexcept = operator delete[];
static void (*volatile delete_plain)(void*) noexcept = operator delete;
static void* (*volatile c_malloc)(std::size_t) = std::malloc;
static void (*volatile c_free)(void*) = std::free;

static int handler() {
  const std::size_t huge = (std::size_t)1 << 62;
  int bad = 0;
  calls = 0;
  std::set_new_handler(three_times);
  try {
    void* p = new_plain(huge);
    std::fprintf(stderr, "new(2^62) returned %p\n", p);
    bad = 1;
  } catch (const std::bad_alloc&) {
    if (calls != 3) std::fprintf(stderr, "new: %d handler calls, want 3\n", calls), bad = 1;
  }
  calls = 0;
  std::set_new_handler(three_times);
  void* p = new_nothrow(huge, std::nothrow);
  if (p != nullptr || calls != 3) std::fprintf(stderr, "nothrow new: %p, %d handler calls, want NULL and 3\n", p, calls), bad = 1;
  calls = 0;
  std::set_new_handler(three_times);
  p = new_array_aligned_nothrow(huge, std::align_val_t{64}, std::nothrow);
  if (p != nullptr || calls != 3)
    std::fprintf(stderr, "nothrow aligned new[]: %p, %d handler calls, want NULL and 3\n", p, calls), bad = 1;
  std::set_new_handler([] { throw std::bad_alloc(); });
  p = new_nothrow(huge, std::nothrow); // the handler's exception stays inside
  if (p != nullptr) std::fprintf(stderr, "nothrow new with a throwing handler: %p\n", p), bad = 1;
  std::set_new_handler(nullptr);
  std::printf("handler: %s\n", bad ? "FAILED" : "new, nothrow new and aligned nothrow new[] as the standard says");
  return bad;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (!std::strcmp(mode, "handler")) return handler();
  if (!std::strcmp(mode, "zero-new-free")) c_free(new_array(0));
  else if (!std::strcmp(mode, "zero-new-delete-array")) delete_array(new_plain(0));
  else if (!std::strcmp(mode, "zero-malloc-delete")) delete_plain(c_malloc(0));
  else return std::fprintf(stderr, "usage: cxx-runtime handler|zero-new-free|zero-new-delete-array|zero-malloc-delete\n"), 2;
  std::printf("NOT CAUGHT\n");
  return 0;
}
