// A C++ plugin a C program loads with dlopen: the C++ runtime arrives after
// liblode.so.  Its out-of-memory new must still throw std::bad_alloc to
// the plugin's catch (lode once looked for the runtime only when it was
// itself loaded, and aborted).
#include <cstddef>
#include <new>

static int calls;
static void* (*volatile new_plain)(std::size_t) = operator new;

extern "C" int plugin_run(void) {
  calls = 0;
  std::set_new_handler([] {
    if (++calls >= 1) std::set_new_handler(nullptr);
  });
  try {
    (void)new_plain((std::size_t)1 << 62);
  } catch (const std::bad_alloc&) {
    return calls == 1 ? 0 : 2;
  }
  return 1;
}
