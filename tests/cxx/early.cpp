// A library whose constructor calls new[] and delete[].  With liblode.so
// preloaded, the loader runs it before lode's own constructor (a preloaded
// library is initialized after the program's libraries), so lode's
// operators must settle then who owns them.
#include <cstddef>
#include <new>

static long news;
static void* (*volatile new_array)(std::size_t) = operator new[];
static void (*volatile delete_array)(void*) noexcept = operator delete[];

__attribute__((constructor)) static void early() {
  delete_array(new_array(32));
  ++news;
}

extern "C" long cxx_early_news(void) { return news; }
