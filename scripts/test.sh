#!/usr/bin/env bash
# `make test`: builds lode, its tests and suites with gcc and with clang
# (Debug with asserts at level 2, Release with level 1; shared and static
# libraries in both), and a LODE_SECURE Debug tree with the expensive
# asserts (LODE_DEBUG=3; guard pages, encoded and shuffled free lists), and
# runs ctest in each tree.
#
#   scripts/test.sh   (no arguments; env JOBS, default 2)
set -euo pipefail
usage() { # status: --help gets stdout, anything else stderr
  echo "usage: $0   (no arguments; env JOBS: parallel jobs, default 2)" >&"$(($1 ? 2 : 1))"
  exit "$1"
}
# an argument is a mistake (a flag meant elsewhere): say so before an hour of builds
case ${1-} in -h|--help) [ $# -eq 1 ] && usage 0 ;; esac
[ $# -eq 0 ] || usage 2
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
status=0

build() { # dir cc cmake-args...
  local dir=$1 cc=$2; shift 2
  CC=$cc cmake -S . -B "$dir" -DLODE_TESTING=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

echo "== clang, Release, LODE_DEBUG=1: every test =="
build build/test-clang clang -DCMAKE_BUILD_TYPE=Release -DLODE_DEBUG=1
(cd build/test-clang && ctest --output-on-failure -j"$jobs") || status=1

echo "== gcc, Debug, LODE_DEBUG=2: every test but the long fuzz runs =="
build build/test-gcc gcc -DCMAKE_BUILD_TYPE=Debug -DLODE_DEBUG=2
(cd build/test-gcc && ctest --output-on-failure -j"$jobs" -LE long) || status=1

echo "== gcc, Debug, LODE_DEBUG=3 (expensive asserts), LODE_SECURE: every test but the long ones =="
build build/test-secure gcc -DCMAKE_BUILD_TYPE=Debug -DLODE_DEBUG=3 -DLODE_SECURE=ON
(cd build/test-secure && ctest --output-on-failure -j"$jobs" -LE long) || status=1

exit $status
