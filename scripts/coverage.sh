#!/usr/bin/env bash
# `make coverage`: how much of alloc/src each suite runs.  Three sources:
#   ctest   the test command's tests (gcc --coverage tree, ctest -LE long)
#   corpus  corpus/ replayed alone, in both modes (the same tree's lode-replay)
#   fuzz    corpus/ replayed on real threads and the real OS, then corpus/
#           and a libFuzzer run of --fuzz-seconds in the simulated mode (clang
#           --coverage tree; gcov data through llvm-cov gcov): what the fuzz
#           harness reaches in its two modes
# Prints per source:
#   coverage <source> alloc/src: lines L% branches B%
#   coverage <source> alloc/src allocator: lines L% branches B%
# the second without test_hooks.c and test_points.c, the LODE_TESTING-only
# code that corrupts lode's state for the checker's own tests.
# writes an HTML report per source (OUT/<source>/index.html) and the
# functions of alloc/src that a source never enters (OUT/<source>/uncovered.txt).
#
#   scripts/coverage.sh [--fuzz-seconds N] [--out DIR] [--only ctest|corpus|fuzz]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_s=600 out=$root/build/coverage only=""
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 [--fuzz-seconds N (N >= 1)] [--out DIR] [--only ctest|corpus|fuzz]" >&"$((st ? 2 : 1))"
  exit "$st"
}
while [ $# -gt 0 ]; do
  case $1 in
    --fuzz-seconds) fuzz_s=${2:-}; shift 2 || usage ;;
    --out) out=${2:-}; shift 2 || usage ;;
    --only) only=${2:-}; shift 2 || usage ;;
    -h|--help) usage 0 ;;
    *) echo "coverage.sh: unknown argument $1" >&2; usage ;;
  esac
done
# libFuzzer takes -max_total_time=0 for no limit at all
[[ $fuzz_s =~ ^[0-9]+$ ]] && [ "$((10#$fuzz_s))" -gt 0 ] || usage
fuzz_s=$((10#$fuzz_s))
[ -n "$out" ] || usage
# absolute now: the steps below cd before their redirections
case $out in /*) ;; *) out=$PWD/$out ;; esac
[[ -z $only || $only =~ ^(ctest|corpus|fuzz)$ ]] || usage
command -v gcovr >/dev/null || { echo "coverage.sh: gcovr missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
status=0
# a child that handles Ctrl-C itself exits normally, and bash would go on
trap 'echo "coverage.sh: interrupted" >&2; exit 130' INT
trap 'echo "coverage.sh: terminated" >&2; exit 143' TERM

build() { # dir cc extra-cmake-args...
  local dir=$1 cc=$2; shift 2
  echo "coverage.sh: building $dir ($cc --coverage)"
  CC=$cc cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DLODE_DEBUG=1 -DLODE_TESTING=ON \
    -DCMAKE_C_FLAGS="--coverage -O0" -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage \
    "$@" >"$dir.configure.log" 2>&1 && cmake --build "$dir" -j2 >"$dir.build.log" 2>&1 ||
    { tail -20 "$dir.build.log" "$dir.configure.log" 2>/dev/null; echo "coverage.sh: build of $dir failed" >&2; exit 1; }
}

# report NAME OBJDIR [gcov-executable]: summary line, HTML, uncovered functions
report() {
  local name=$1 objdir=$2 gcov=${3:-gcov}
  mkdir -p "$out/$name"
  # only objdir is searched: the same source compiled with other flags elsewhere in the tree
  # (the library, the simulation) would not merge
  local args=(--root "$root" --filter "$root/alloc/src/" --gcov-executable "$gcov" "$objdir")
  gcovr "${args[@]}" --html-details "$out/$name/index.html" >/dev/null 2>&1
  gcovr "${args[@]}" --json "$out/$name/coverage.json" >/dev/null 2>&1
  local summary lines branches
  # (never -o /dev/null: a tool that replaces its output file would replace the device)
  summary=$(gcovr "${args[@]}" --print-summary -o "$out/$name/report.txt" 2>/dev/null)
  lines=$(sed -n 's/^lines: *\([0-9.]*%\).*/\1/p' <<<"$summary")
  branches=$(sed -n 's/^branches: *\([0-9.]*%\).*/\1/p' <<<"$summary")
  echo "coverage $name alloc/src: lines ${lines:-?} branches ${branches:-?}" | tee "$out/$name/summary.txt"
  summary=$(gcovr "${args[@]}" --exclude "$root/alloc/src/test_(hooks|points)\.c" --print-summary \
    -o "$out/$name/report-allocator.txt" 2>/dev/null)
  local alines abranches
  alines=$(sed -n 's/^lines: *\([0-9.]*%\).*/\1/p' <<<"$summary")
  abranches=$(sed -n 's/^branches: *\([0-9.]*%\).*/\1/p' <<<"$summary")
  echo "coverage $name alloc/src allocator: lines ${alines:-?} branches ${abranches:-?}" | tee -a "$out/$name/summary.txt"
  python3 - "$out/$name/coverage.json" >"$out/$name/uncovered.txt" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for f in data.get("files", []):
    for fn in f.get("functions", []):
        if fn.get("execution_count", 0) == 0:
            print(f"{f['file']}:{fn.get('lineno', '?')} {fn.get('name', '?')}")
PY
  [ -z "$lines" ] && status=1
}

reset_counters() { find "$1" -name '*.gcda' -delete; }

gcc_tree=$out/gcc
if [ -z "$only" ] || [ "$only" = ctest ] || [ "$only" = corpus ]; then
  build "$gcc_tree" gcc
fi
if [ -z "$only" ] || [ "$only" = ctest ]; then
  reset_counters "$gcc_tree"
  echo "coverage.sh: ctest -LE long in $gcc_tree"
  (cd "$gcc_tree" && ctest -LE long -j2 >"$out/ctest.log" 2>&1) || { echo "coverage.sh: ctest failed (see $out/ctest.log)"; status=1; }
  report ctest "$gcc_tree"
fi
if [ -z "$only" ] || [ "$only" = corpus ]; then
  reset_counters "$gcc_tree"
  for mode in sim real; do
    # in this process: a forked child ends with _exit, which writes no coverage data
    "$gcc_tree/fuzz/lode-replay" --no-fork --mode $mode "$root/corpus" >"$out/corpus-$mode.log" 2>&1 ||
      { echo "coverage.sh: corpus replay ($mode) failed"; status=1; }
  done
  report corpus "$gcc_tree/fuzz"
fi
if [ -z "$only" ] || [ "$only" = fuzz ]; then
  fuzz_tree=$out/fuzz
  command -v clang >/dev/null || { echo "coverage.sh: clang missing: no fuzz source"; exit 1; }
  build "$fuzz_tree" clang -DLODE_BUILD_TESTS=OFF -DLODE_BUILD_STRESS=OFF
  reset_counters "$fuzz_tree"
  work=$out/fuzz-work
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
  find "$root/corpus" -type f -name '*.bin' -exec cp {} "$work/corpus/" \;
  # the text inputs (hand-written seeds, the last campaign's queue, regressions) in binary form
  find "$root/corpus" -type f -name '*.ops' -print0 | while IFS= read -r -d '' f; do
    "$fuzz_tree/fuzz/lode-replay" --to-bin "$f" "$work/corpus/$(basename "$(dirname "$f")")-$(basename "${f%.ops}").bin" 2>/dev/null
  done
  echo "coverage.sh: corpus replay, real mode"
  "$fuzz_tree/fuzz/lode-replay" --no-fork --mode real "$root/corpus" >"$out/fuzz-real.log" 2>&1 ||
    { echo "coverage.sh: corpus replay (real, fuzz tree) failed"; status=1; }
  echo "coverage.sh: libFuzzer, simulated mode, ${fuzz_s}s"
  (cd "$work" && exec "$fuzz_tree/fuzz/lode-fuzz-libfuzzer" -max_total_time="$fuzz_s" -seed=1 -timeout=10 -rss_limit_mb=4096 \
     -dict="$root/fuzz/lode.dict" -artifact_prefix="$work/artifacts/" corpus >"$out/fuzz.log" 2>&1)
  rc=$?
  # a signal from outside (Ctrl-C, kill) is no finding: libFuzzer exits 72
  # ("run interrupted") or dies of it, and leaves no artifact
  if [ $rc -ne 0 ] && { [ $rc -eq 72 ] || [ $rc -gt 128 ]; } && [ -z "$(ls -A "$work/artifacts")" ]; then
    echo "coverage.sh: libFuzzer interrupted (exit $rc)" >&2; exit "$rc"
  elif [ $rc -ne 0 ]; then
    echo "coverage.sh: libFuzzer found a failure (exit $rc; see $out/fuzz.log, $work/artifacts)"; status=1
  fi
  grep -E 'DONE|exec/s' "$out/fuzz.log" | tail -1
  report fuzz "$fuzz_tree/fuzz" "llvm-cov gcov"
fi
echo "coverage.sh: reports under $out/<source>/index.html"
exit $status
