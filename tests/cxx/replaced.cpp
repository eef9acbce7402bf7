// A program that replaces only the basic operator new and delete (legal
// C++): every other form -- sized, array, nothrow -- must end in them, as
// the standard's defaults do.  Run with liblode.so preloaded: LODE_SECURE's
// own operators must step aside (they once sent sized delete and nothrow
// new to lode's checks, which aborted a correct program).
#include <cstdio>
#include <cstdlib>
#include <new>

// (a program may replace the unsized delete alone: the sized one is the
// library's, and must forward to it -- which is what this checks)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wsized-deallocation"
#endif

static long news, deletes;

void* operator new(std::size_t n) {
  void* p = std::malloc(n != 0 ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  ++news;
  return p;
}
void operator delete(void* p) noexcept {
  if (p != nullptr) ++deletes;
  std::free(p);
}

struct Node {
  long v[4];
};

// through volatile pointers: the compiler may not pair or elide them
static void* (*volatile new_nothrow)(std::size_t, const std::nothrow_t&) noexcept = operator new;
static void* (*volatile new_array)(std::size_t) = operator new[];
static void (*volatile delete_sized)(void*, std::size_t) noexcept = operator delete;
static void (*volatile delete_array)(void*) noexcept = operator delete[];
static void (*volatile delete_array_sized)(void*, std::size_t) noexcept = operator delete[];

int main() {
  int bad = 0;
  Node* n = new Node;
  delete n; // sized delete with -fsized-deallocation
  void* a = new_nothrow(40, std::nothrow);
  delete_sized(a, 40);
  void* b = new_array(100);
  delete_array(b);
  void* c = new_array(24);
  delete_array_sized(c, 24);
  if (news != 4 || deletes != 4) {
    std::fprintf(stderr, "replaced: the program's operators saw %ld news and %ld deletes, want 4 and 4\n", news, deletes);
    bad = 1;
  }
  std::printf("replaced: %ld news, %ld deletes through the program's operators\n", news, deletes);
  return bad;
}
