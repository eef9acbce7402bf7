#!/usr/bin/env bash
# Seeded-bug kill table: applies each patch in scripts/mutants/ to a scratch
# copy of the tree, builds it, and runs the suites in order of cost until one
# fails.  The unmodified tree goes through the same suites first: a suite that
# fails on it would score false kills, so the run stops there.
#
#   scripts/mutation-check.sh [--only NAME] [--keep] [--stress-seconds N] [--fuzz-seconds N]
#
# Exit: 0 every mutant killed, 1 a survivor, a broken mutant or a dirty
# baseline, 2 usage.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
only="" keep=0 stress_s=${STRESS_S:-15} fuzz_s=${FUZZ_S:-20}
usage() { echo "usage: $0 [--only NAME] [--keep] [--stress-seconds N] [--fuzz-seconds N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    --stress-seconds) stress_s=${2:?}; shift 2 ;;
    --fuzz-seconds) fuzz_s=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ $stress_s =~ ^[0-9]+$ && $fuzz_s =~ ^[0-9]+$ ]] || usage

work=$(mktemp -d /tmp/lode-mutants.XXXXXX)
[ $keep -eq 1 ] || trap 'rm -rf "$work"' EXIT
logdir=$root/build/mutants
mkdir -p "$logdir"
jobs=2

copy_tree() { # dest
  mkdir -p "$1"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$1")
}

build() { # src dir cc type extra-cmake-args...
  local src=$1 dir=$2 cc=$3 type=$4; shift 4
  mkdir -p "$dir"
  CC=$cc cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DLODE_TESTING=ON "$@" >"$dir/configure.log" 2>&1 &&
    cmake --build "$dir" -j$jobs >"$dir/build.log" 2>&1
}

# Each suite: name and the command run in the mutant's tree.  A suite whose
# tool is missing from this tree reports "skip" (exit 77), which is no kill.
# Unit tests first (declared first, so ctest starts them first); the first
# failure ends the suite, so its time is the time to kill.
suite_unit() {
  (cd "$1/build/dbg" && ctest -L 'unit|preload|robust' -j2 --stop-on-failure --timeout 120 >"$2" 2>&1)
}
suite_stress() {
  local bin=$1/build/dbg/stress/lode-stress
  [ -x "$bin" ] || return 77
  "$bin" --seconds "$stress_s" --seed 20261125 --threads 4 >"$2" 2>&1
}
suite_corpus() {
  local bin=$1/build/dbg/fuzz/lode-replay
  [ -x "$bin" ] || return 77
  "$bin" "$1/corpus" >"$2" 2>&1
}
# build_<suite>: the suite's own tree, built only when a mutant gets that far
# (most die in the cheaper suites) and not counted in its time to kill.
build_libfuzzer() {
  command -v clang >/dev/null || return 0
  build "$1" "$1/build/fuzz" clang Debug -DLODE_DEBUG=1 -DLODE_BUILD_STRESS=OFF -DLODE_BUILD_TESTS=OFF
}
suite_libfuzzer() {
  [ -x "$1/build/fuzz/fuzz/lode-fuzz-libfuzzer" ] || return 77
  # New inputs go to a scratch directory, not into the tree's corpus.
  mkdir -p "$1/build/fuzz/new-inputs"
  (cd "$1/build/fuzz" && timeout $((fuzz_s + 60)) ./fuzz/lode-fuzz-libfuzzer -max_total_time="$fuzz_s" -seed=1 \
     -timeout=10 new-inputs "$1/corpus" >"$2" 2>&1)
}
build_tsan() {
  command -v clang >/dev/null || return 0
  build "$1" "$1/build/tsan" clang Debug -DLODE_DEBUG=1 -DLODE_SANITIZE=thread -DLODE_BUILD_FUZZ=OFF
}
suite_tsan() {
  local dir=$1/build/tsan
  [ -d "$dir" ] && command -v clang >/dev/null || return 77
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
  (cd "$dir" && ctest -L unit --timeout 300 >"$2" 2>&1) || return 1
  if [ -x "$dir/stress/lode-stress" ]; then
    "$dir/stress/lode-stress" --seconds "$stress_s" --seed 20261125 --threads 4 >>"$2" 2>&1 || return 1
  fi
}
suites=(unit stress corpus libfuzzer tsan)

prepare() { # tree: builds what the cheap suites need (the costly ones build their own)
  build "$1" "$1/build/dbg" gcc Debug -DLODE_DEBUG=2 -DLODE_BUILD_FUZZ=ON
}

# run_suites TREE TAG -> prints "suite seconds" of the first failing suite, or "- -"
run_suites() {
  local tree=$1 tag=$2 t0 rc
  t0=$(date +%s)
  for s in "${suites[@]}"; do
    local log=$logdir/$tag.$s.log
    if declare -F "build_$s" >/dev/null && ! "build_$s" "$tree"; then echo "!build-$s 0"; return; fi
    local s0=$(date +%s)
    "suite_$s" "$tree" "$log"; rc=$?
    local dt=$(( $(date +%s) - s0 ))
    if [ $rc -eq 77 ]; then echo "    $s: skipped (not built)" >&2; continue; fi
    if [ $rc -ne 0 ]; then echo "$s $dt"; return; fi
    echo "    $s: passed (${dt}s)" >&2
  done
  echo "- -"
}

echo "== baseline: the unmodified tree must pass every suite =="
base=$work/base
copy_tree "$base"
prepare "$base" || { echo "baseline does not build; see $base/build/dbg/build.log"; exit 1; }
read -r bsuite _ < <(run_suites "$base" baseline)
if [[ $bsuite == '!build-'* ]]; then
  echo "baseline does not build its ${bsuite#!build-} tree (log: $base/build/*/build.log)"
  exit 1
elif [ "$bsuite" != "-" ]; then
  echo "baseline FAILS suite '$bsuite' (log: $logdir/baseline.$bsuite.log): no mutant can be scored"
  exit 1
fi

printf '\n%-44s %-7s %-10s %s\n' mutant killed suite time-to-kill >"$logdir/table.txt"
survivors=0 broken=0
for patch in "$root"/scripts/mutants/*.patch; do
  name=$(basename "$patch" .patch)
  [ -n "$only" ] && [[ $name != *"$only"* ]] && continue
  echo "== $name =="
  tree=$work/$name
  copy_tree "$tree"
  if ! (cd "$tree" && patch -p1 -s --no-backup-if-mismatch <"$patch" >/dev/null 2>&1); then
    printf '%-44s %-7s %-10s %s\n' "$name" BROKEN "-" "patch does not apply" >>"$logdir/table.txt"
    broken=$((broken + 1)); rm -rf "$tree"; continue
  fi
  if ! prepare "$tree"; then
    printf '%-44s %-7s %-10s %s\n' "$name" BROKEN "-" "does not build" >>"$logdir/table.txt"
    broken=$((broken + 1)); rm -rf "$tree"; continue
  fi
  read -r suite secs < <(run_suites "$tree" "$name")
  if [[ $suite == '!build-'* ]]; then
    printf '%-44s %-7s %-10s %s\n' "$name" BROKEN "-" "does not build (${suite#!build-} tree)" >>"$logdir/table.txt"
    broken=$((broken + 1))
  elif [ "$suite" = "-" ]; then
    printf '%-44s %-7s %-10s %s\n' "$name" no "-" "-" >>"$logdir/table.txt"
    survivors=$((survivors + 1))
  else
    printf '%-44s %-7s %-10s %ss\n' "$name" yes "$suite" "$secs" >>"$logdir/table.txt"
  fi
  [ $keep -eq 1 ] || rm -rf "$tree"
done
cat "$logdir/table.txt"
echo
echo "logs: $logdir"
[ $survivors -eq 0 ] && [ $broken -eq 0 ]
