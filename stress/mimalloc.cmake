# `lode-stress --target mimalloc`: links a mimalloc CMake package found by
# find_package (CMAKE_PREFIX_PATH or the system).  mimalloc's API moved
# between 1.x, 2.x and 3.x (3.x dropped mi_heap_check_owned for
# mi_heap_contains), so what the package offers is found by compiling and
# linking small programs against it, never guessed from its version.  A
# package that lacks what the target needs, or whose library does not link,
# is reported here and skipped: the optional target never breaks the build.
include(CheckCSourceCompiles)
include(CMakePushCheckState)

set(LODE_STRESS_MIMALLOC FALSE)
set(LODE_STRESS_MIMALLOC_DEFS "")
find_package(mimalloc CONFIG QUIET)
if(NOT mimalloc_FOUND OR NOT TARGET mimalloc)
  message(STATUS "lode-stress: --target mimalloc disabled: no mimalloc CMake package found")
  return()
endif()
if(LODE_SANITIZE STREQUAL "thread")
  message(STATUS "lode-stress: --target mimalloc disabled in a TSan tree (mimalloc is not built with TSan)")
  return()
endif()

# Cache keys per package: a reconfigure against another prefix checks again.
string(MD5 _mi_key "${mimalloc_DIR};${mimalloc_VERSION};${CMAKE_C_COMPILER}")
string(SUBSTRING "${_mi_key}" 0 12 _mi_key)
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_LIBRARIES mimalloc)
set(CMAKE_REQUIRED_QUIET TRUE)
set(CMAKE_REQUIRED_FLAGS "-Werror=implicit-function-declaration")
check_c_source_compiles([=[
#include <mimalloc.h>
#include <stdbool.h>
int main(void) {
  void* p = mi_malloc(16);
  p = mi_realloc(p, 32);
  size_t n = mi_usable_size(p);
  mi_free(p);
  mi_free(mi_malloc_aligned(64, 64));
  mi_heap_t* h = mi_heap_new();
  void* q = mi_heap_malloc(h, 8);
  (void)q;
  mi_heap_delete(h);
  h = mi_heap_new();
  mi_heap_destroy(h);
  mi_collect(true);
  return n > 0 ? 0 : 1;
}]=] LODE_MI_${_mi_key}_CORE)
check_c_source_compiles([=[
#include <mimalloc.h>
int main(void) { mi_heap_t* h = mi_heap_new(); void* p = mi_heap_malloc(h, 8); return mi_heap_check_owned(h, p) ? 0 : 1; }
]=] LODE_MI_${_mi_key}_CHECK_OWNED)
check_c_source_compiles([=[
#include <mimalloc.h>
int main(void) { mi_heap_t* h = mi_heap_new(); void* p = mi_heap_malloc(h, 8); return mi_heap_contains(h, p) ? 0 : 1; }
]=] LODE_MI_${_mi_key}_CONTAINS)
cmake_pop_check_state()

if(NOT LODE_MI_${_mi_key}_CORE)
  message(STATUS "lode-stress: --target mimalloc disabled: the mimalloc package in ${mimalloc_DIR} does not "
                 "compile and link a program using mi_malloc/realloc/malloc_aligned/usable_size/collect and "
                 "mi_heap_new/malloc/delete/destroy (see CMakeFiles/CMakeError.log or CMakeConfigureLog.yaml)")
  return()
endif()
set(LODE_STRESS_MIMALLOC TRUE)
if(LODE_MI_${_mi_key}_CONTAINS)
  list(APPEND LODE_STRESS_MIMALLOC_DEFS STRESS_MI_HEAP_CONTAINS=1)
  set(_mi_owns "mi_heap_contains")
elseif(LODE_MI_${_mi_key}_CHECK_OWNED)
  list(APPEND LODE_STRESS_MIMALLOC_DEFS STRESS_MI_HEAP_CHECK_OWNED=1)
  set(_mi_owns "mi_heap_check_owned")
else()
  set(_mi_owns "none (the heaps workload's ownership check is skipped)")
endif()
message(STATUS "lode-stress: --target mimalloc enabled (mimalloc ${mimalloc_VERSION} from ${mimalloc_DIR}; "
               "heap ownership: ${_mi_owns})")
