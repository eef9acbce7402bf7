// C++ allocation cases: a block given out by one kind of allocation function
// and given back through another kind, or with the wrong size.  Same
// convention as sectest.c: "NOT CAUGHT" and exit 0 when the mismatch went
// through, death or a nonzero exit when the allocator stopped it.
//
//   sectest-cxx --list | sectest-cxx CASE SIZE
//
// The operators are called through volatile function pointers, so neither
// the compiler's new/delete pairing rules nor its warnings see the mismatch,
// and a preloaded library's operators are the ones called.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unistd.h>

namespace {

void* (*volatile op_new)(std::size_t) = static_cast<void* (*)(std::size_t)>(&::operator new);
void* (*volatile op_new_array)(std::size_t) = static_cast<void* (*)(std::size_t)>(&::operator new[]);
void (*volatile op_delete)(void*) noexcept = static_cast<void (*)(void*) noexcept>(&::operator delete);
void (*volatile op_delete_array)(void*) noexcept = static_cast<void (*)(void*) noexcept>(&::operator delete[]);
void (*volatile op_delete_sized)(void*, std::size_t) noexcept =
    static_cast<void (*)(void*, std::size_t) noexcept>(&::operator delete);
void (*volatile op_delete_array_sized)(void*, std::size_t) noexcept =
    static_cast<void (*)(void*, std::size_t) noexcept>(&::operator delete[]);
void* (*volatile c_malloc)(std::size_t) = std::malloc;
void (*volatile c_free)(void*) = std::free;

void say(const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void not_caught() {
  say("NOT CAUGHT\n");
  _exit(0);
}

void* touched(void* p, std::size_t n) {
  if (p == nullptr) {
    say("SETUP FAILED: allocation returned NULL\n");
    _exit(4);
  }
  std::memset(p, 0x41, n);
  return p;
}

// Ordinary traffic after the mismatch, for allocators that check later.
void churn(std::size_t n) {
  void* held[32];
  for (auto& h : held) h = op_new(n);
  for (auto& h : held) op_delete(h);
}

void delete_of_new_array(std::size_t n) {
  op_delete(touched(op_new_array(n), n));
  churn(n);
  not_caught();
}

void delete_array_of_new(std::size_t n) {
  op_delete_array(touched(op_new(n), n));
  churn(n);
  not_caught();
}

void sized_delete_wrong(std::size_t n) {
  op_delete_sized(touched(op_new(n), n), n * 4 + 64);
  churn(n);
  not_caught();
}

void sized_delete_array_wrong(std::size_t n) {
  op_delete_array_sized(touched(op_new_array(n), n), n * 4 + 64);
  churn(n);
  not_caught();
}

// A sized delete naming 0: 0 once stood for "unsized" (review, 2026-12-06).
void sized_delete_zero(std::size_t n) {
  op_delete_sized(touched(op_new(n), n), 0);
  churn(n);
  not_caught();
}

void sized_delete_array_zero(std::size_t n) {
  op_delete_array_sized(touched(op_new_array(n), n), 0);
  churn(n);
  not_caught();
}

void free_of_new(std::size_t n) {
  c_free(touched(op_new(n), n));
  churn(n);
  not_caught();
}

void delete_of_malloc(std::size_t n) {
  op_delete(touched(c_malloc(n), n));
  churn(n);
  not_caught();
}

struct sec_case {
  const char* name;
  void (*run)(std::size_t);
};

const sec_case cases[] = {
    {"cxx_delete_new_array", delete_of_new_array},
    {"cxx_delete_array_new", delete_array_of_new},
    {"cxx_sized_delete_wrong", sized_delete_wrong},
    {"cxx_sized_delete_array_wrong", sized_delete_array_wrong},
    {"cxx_sized_delete_zero", sized_delete_zero},
    {"cxx_sized_delete_array_zero", sized_delete_array_zero},
    {"cxx_free_new", free_of_new},
    {"cxx_delete_malloc", delete_of_malloc},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& c : cases) {
      say(c.name);
      say(" c++\n");
    }
    return 0;
  }
  if (argc != 3) {
    say("usage: sectest-cxx --list | sectest-cxx CASE SIZE\n");
    return 2;
  }
  char* end;
  unsigned long long size = std::strtoull(argv[2], &end, 10);
  if (*end != '\0' || size < 8 || size > (64ull << 20)) {
    say("sectest-cxx: SIZE must be a number from 8 to 64 MiB\n");
    return 2;
  }
  for (const auto& c : cases) {
    if (std::strcmp(argv[1], c.name) == 0) {
      c.run(static_cast<std::size_t>(size));
      not_caught();
    }
  }
  say("sectest-cxx: no such case\n");
  return 2;
}
