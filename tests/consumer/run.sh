#!/usr/bin/env bash
# Build a small downstream project against the INSTALLED lode package:
# CMake find_package(lode) with gcc and clang, shared and static, and a plain
# pkg-config compile with both (static through `pkg-config --static`), all
# with -Wall -Wextra -Werror; run each result.
# Usage: run.sh <lode build directory>
set -euo pipefail

build=${1:?usage: run.sh <lode build directory>}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lode-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail=0
note() { printf '%s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }

# Install the current tree into a temporary prefix.
cmake --build "$build" --target lode lode-static -j2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
libdir=$(dirname "$(find "$prefix" -name lode.pc | head -n1)")/..
libdir=$(cd "$libdir" && pwd)
for f in include/lode.h; do [ -f "$prefix/$f" ] || bad "not installed: $f"; done
for f in liblode.so liblode.a cmake/lode/lodeConfig.cmake cmake/lode/lodeConfigVersion.cmake \
         cmake/lode/lodeTargets.cmake pkgconfig/lode.pc; do
  [ -e "$libdir/$f" ] || bad "not installed: $libdir/$f"
done
# Nothing but include dirs and Threads may travel to consumers: no compile
# options (a C++-only flag there is what broke mimalloc detection).
if grep -q 'INTERFACE_COMPILE_OPTIONS\|INTERFACE_COMPILE_DEFINITIONS' "$libdir"/cmake/lode/lodeTargets*.cmake; then
  bad "the exported targets carry compile options or definitions"
fi

compilers=(gcc)
if command -v clang >/dev/null 2>&1; then compilers+=(clang); else note "SKIP: clang not installed (clang combos)"; fi

for cc in "${compilers[@]}"; do
  for kind in shared static; do
    dir=$work/cmake-$cc-$kind
    static=OFF; [ "$kind" = static ] && static=ON
    if ! CC=$cc cmake -S "$here" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=$static \
           -DCMAKE_BUILD_TYPE=Release >"$dir.log" 2>&1 ||
       ! cmake --build "$dir" >>"$dir.log" 2>&1; then
      cat "$dir.log"; bad "cmake consumer $cc $kind: configure/build"; continue
    fi
    if grep -i 'warning' "$dir.log"; then bad "cmake consumer $cc $kind: warnings"; fi
    if [ "$kind" = static ]; then
      if readelf -d "$dir/consumer" | grep 'liblode' >/dev/null; then bad "cmake consumer $cc static: depends on liblode.so"; fi
    else
      readelf -d "$dir/consumer" | grep 'liblode.so' >/dev/null || bad "cmake consumer $cc shared: no liblode.so in NEEDED"
    fi
    out=$(LD_LIBRARY_PATH="$libdir" "$dir/consumer" 2>&1) || { echo "$out"; bad "cmake consumer $cc $kind: run"; continue; }
    note "cmake      $cc $kind: $out"
  done
done

# pkg-config: the .pc file is found through PKG_CONFIG_PATH only.
if command -v pkg-config >/dev/null 2>&1; then
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  cflags=$(pkg-config --cflags lode)
  libs=$(pkg-config --libs lode)
  # Static: --static adds Libs.private; liblode.a is named explicitly,
  # since -llode picks the .so when both are installed.
  slibs=$(pkg-config --static --libs lode | sed 's/-llode\b/-l:liblode.a/')
  for cc in "${compilers[@]}"; do
    for kind in shared static; do
      exe=$work/pc-$cc-$kind
      if [ "$kind" = shared ]; then
        # shellcheck disable=SC2086
        $cc -std=c11 -Wall -Wextra -Werror -Wl,--fatal-warnings $cflags "$here/main.c" -o "$exe" $libs \
          >"$exe.log" 2>&1 || { cat "$exe.log"; bad "pkg-config $cc shared: build"; continue; }
      else
        # shellcheck disable=SC2086
        $cc -std=c11 -Wall -Wextra -Werror -Wl,--fatal-warnings -DCONSUMER_STATIC=1 $cflags "$here/main.c" \
          -o "$exe" $slibs >"$exe.log" 2>&1 || { cat "$exe.log"; bad "pkg-config $cc static: build"; continue; }
        if readelf -d "$exe" | grep 'liblode' >/dev/null; then bad "pkg-config $cc static: depends on liblode.so"; fi
      fi
      [ -s "$exe.log" ] && { cat "$exe.log"; bad "pkg-config $cc $kind: compiler output"; }
      out=$(LD_LIBRARY_PATH="$libdir" "$exe" 2>&1) || { echo "$out"; bad "pkg-config $cc $kind: run"; continue; }
      note "pkg-config $cc $kind: $out"
    done
  done
else
  note "SKIP: pkg-config not installed (pkg-config combos)"
fi

exit $fail
