// A C++ plugin a C program loads with dlopen: the C++ runtime arrives after
// liblode.so, in the plugin's local scope.  Its out-of-memory new must still
// call the new_handler and throw std::bad_alloc to the plugin's catch, and
// its nothrow new call the handler and return NULL (lode once looked for the
// runtime only when it was itself loaded, and aborted; then only for
// libstdc++: this file is also built against LLVM libc++, see
// CMakeLists.txt).
#include <cstddef>
#include <new>

static int calls;
static void* (*volatile new_plain)(std::size_t) = operator new;
static void* (*volatile new_nothrow)(std::size_t, const std::nothrow_t&) noexcept = operator new;

static void once() {
  if (++calls >= 1) std::set_new_handler(nullptr);
}

// 0: both as the standard says; 1: new did not throw; 2: its handler
// calls; 3: nothrow new returned a block; 4: its handler calls
extern "C" int plugin_run(void) {
  const std::size_t huge = (std::size_t)1 << 62;
  calls = 0;
  std::set_new_handler(once);
  try {
    (void)new_plain(huge);
    return 1;
  } catch (const std::bad_alloc&) {
    if (calls != 1) return 2;
  }
  calls = 0;
  std::set_new_handler(once);
  if (new_nothrow(huge, std::nothrow) != nullptr) return 3;
  return calls == 1 ? 0 : 4;
}
