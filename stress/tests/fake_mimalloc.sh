#!/bin/sh
# fake_mimalloc.sh VARIANT SOURCE-DIR: configures and builds lode-stress
# against a fake mimalloc CMake package and checks what became of
# --target mimalloc.  Variants:
#   lacks-destroy  no mi_heap_destroy: the target is skipped, the build succeeds
#   broken-config  the package's library does not exist: skipped, build succeeds
#   v2             mi_heap_check_owned: enabled, built with it
#   v3             mi_heap_contains only (mimalloc 3.x): enabled, built with it
set -u
variant=$1 src=$2
cc=${CC:-cc}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
pkg=$work/prefix/lib/cmake/mimalloc inc=$work/prefix/include
mkdir -p "$pkg" "$inc"
destroy='static inline void mi_heap_destroy(mi_heap_t* h) { free(h); }'
owns=''
case $variant in
  lacks-destroy) destroy='' ;;
  broken-config) ;;
  v2) owns='static inline bool mi_heap_check_owned(mi_heap_t* h, const void* p) { (void)h; return p != 0; }' ;;
  v3) owns='static inline bool mi_heap_contains(const mi_heap_t* h, const void* p) { (void)h; return p != 0; }' ;;
  *) echo "usage: $0 lacks-destroy|broken-config|v2|v3 SOURCE-DIR" >&2; exit 2 ;;
esac
awk -v d="$destroy" -v o="$owns" '{ sub(/@DESTROY@/, d); sub(/@OWNS@/, o); print }' \
  "$src/stress/tests/fake-mimalloc/mimalloc.h.in" >"$inc/mimalloc.h"
if [ "$variant" = broken-config ]; then
  cat >"$pkg/mimalloc-config.cmake" <<CFG
add_library(mimalloc SHARED IMPORTED)
set_target_properties(mimalloc PROPERTIES IMPORTED_LOCATION "\${CMAKE_CURRENT_LIST_DIR}/../../libmimalloc-missing.so"
                      INTERFACE_INCLUDE_DIRECTORIES "$inc")
CFG
else
  cat >"$pkg/mimalloc-config.cmake" <<CFG
add_library(mimalloc INTERFACE IMPORTED)
set_target_properties(mimalloc PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$inc")
CFG
fi
echo 'set(PACKAGE_VERSION 9.9.9)' >"$pkg/mimalloc-config-version.cmake"
echo 'set(PACKAGE_VERSION_COMPATIBLE TRUE)' >>"$pkg/mimalloc-config-version.cmake"
CC=$cc cmake -S "$src" -B "$work/b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DLODE_BUILD_FUZZ=OFF -DLODE_BUILD_TESTS=OFF >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; echo "fake_mimalloc($variant): configure failed"; exit 1; }
grep 'lode-stress: --target mimalloc' "$work/configure.log"
cmake --build "$work/b" --target lode-stress -j2 >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log"; echo "fake_mimalloc($variant): the build broke"; exit 1; }
case $variant in
  lacks-destroy|broken-config)
    grep -q 'target mimalloc disabled: the mimalloc package in .* does not compile and link' "$work/configure.log" ||
      { echo "fake_mimalloc($variant): no message saying why the target is skipped"; exit 1; }
    [ ! -e "$work/b/stress/lode-stress-mimalloc" ] || { echo "fake_mimalloc($variant): the target was built"; exit 1; } ;;
  v2|v3)
    want=$([ "$variant" = v2 ] && echo mi_heap_check_owned || echo mi_heap_contains)
    grep -q "target mimalloc enabled .*heap ownership: $want" "$work/configure.log" ||
      { echo "fake_mimalloc($variant): expected the target enabled with $want"; exit 1; }
    [ -x "$work/b/stress/lode-stress-mimalloc" ] || { echo "fake_mimalloc($variant): target not built"; exit 1; } ;;
esac
echo "fake_mimalloc($variant): ok"
