// A dlerror() pending across the program's first operator new, delete,
// nothrow new and out-of-memory new (caught): POSIX keeps it until
// dlerror() is called, and nothing here calls dl*.  Run with liblode.so
// preloaded: LODE_SECURE's operators once looked up who owns them (dlsym,
// which clears the error) on the first call.  Built twice: with lode's
// operators, and with REPLACE_BASIC, the program's own new and delete (lode
// steps aside: the runtime's forms it forwards to were looked up on each
// form's first call).
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <new>

#ifdef REPLACE_BASIC
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsized-deallocation"
#endif
void* operator new(std::size_t n) {
  void* p = std::malloc(n != 0 ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
#endif

static void* (*volatile new_plain)(std::size_t) = operator new;
static void* (*volatile new_nothrow)(std::size_t, const std::nothrow_t&) noexcept = operator new;
static void* (*volatile new_array)(std::size_t) = operator new[];
static void (*volatile delete_plain)(void*) noexcept = operator delete;
static void (*volatile delete_array)(void*) noexcept = operator delete[];

int main() {
  void* h = dlopen("liblode-test-does-not-exist.so", RTLD_NOW);
  delete_plain(new_plain(8));
  delete_array(new_array(8));
  delete_plain(new_nothrow(8, std::nothrow));
  bool caught = false;
  try {
    (void)new_plain((std::size_t)1 << 62);
  } catch (const std::bad_alloc&) {
    caught = true;
  }
  void* none = new_nothrow((std::size_t)1 << 62, std::nothrow);
  const char* e = dlerror();
  if (h != nullptr || e == nullptr || !caught || none != nullptr) {
    std::fprintf(stderr, "dlerror: dlopen %p, then dlerror() %s (bad_alloc %s, nothrow %p)\n", h,
                 e != nullptr ? e : "NULL: the pending error was lost", caught ? "caught" : "NOT thrown", none);
    return 1;
  }
  std::printf("dlerror: still pending after new, delete, nothrow new, out of memory: %s\n", e);
  return 0;
}
