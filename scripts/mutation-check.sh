#!/usr/bin/env bash
# Seeded-bug kill table: applies each patch in scripts/mutants/ to a scratch
# copy of the tree, rebuilds it, and runs the suites in order of cost until
# one fails -- or, with --matrix, runs every suite on every mutant and prints
# mutant x suite, so the power of each suite shows apart from the others.
# The unmodified tree goes through every suite first: a suite that fails on
# it would score false kills, so the run stops there.
#
#   scripts/mutation-check.sh [--matrix] [--only REGEX] [--keep] [--stress-seconds N] [--fuzz-seconds N]
#     (--only: the mutants whose name matches, e.g. 08 or '^(2[5-9]|3[0-7])-')
#   scripts/mutation-check.sh --used-by-first  # first kill, the used-by suites before unit
#   scripts/mutation-check.sh --check-patches   # only: does every patch still apply? (ctest mutants.apply)
#
# Suites: unit (ctest unit, preload and robust labels), stress (lode-stress,
# every workload), corpus (lode-replay of corpus/, simulated threads and OS),
# real (the same corpus on real threads and the real OS), libfuzzer (a short
# run of the simulation build from the corpus), tsan (unit tests and a stress
# run under ThreadSanitizer), secure (the unit, robust and security tests of a LODE_SECURE tree,
# built only when a mutant gets that far).  "used-by" is what allocator
# developers run themselves: every suite but unit and secure.
#
# One scratch tree serves every mutant: the patch is applied, the three build
# trees (Debug gcc, libFuzzer clang, TSan clang) rebuild what it touched, the
# patched files are put back afterwards.
#
# Exit: 0 every mutant killed, 1 a survivor, a broken mutant or a dirty
# baseline, 2 usage.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
only="" keep=0 matrix=0 used_first=0 stress_s=${STRESS_S:-15} fuzz_s=${FUZZ_S:-20}
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  { echo "usage: $0 [--matrix | --used-by-first] [--only REGEX] [--keep] [--stress-seconds N] [--fuzz-seconds N]"
    echo "       $0 --check-patches"; } >&"$((st ? 2 : 1))"
  exit "$st"
}
# A patch that no longer applies is a mutant nobody kills any more; the
# code moves under them, so this runs with the tests, not only here.
check_patches() {
  local bad=0 n=0 p
  for p in "$root"/scripts/mutants/*.patch; do
    n=$((n + 1))
    if ! (cd "$root" && git apply --check "$p" 2>/dev/null); then
      echo "mutants: $(basename "$p") no longer applies (remake it against the current code)"; bad=$((bad + 1))
    fi
  done
  echo "mutants: $((n - bad)) of $n patches apply"
  [ $bad -eq 0 ]
}
while [ $# -gt 0 ]; do
  case $1 in
    --matrix) matrix=1; shift ;;
    --used-by-first) used_first=1; shift ;;
    --check-patches) check_patches; exit ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --stress-seconds) [ $# -ge 2 ] || usage; stress_s=$2; shift 2 ;;
    --fuzz-seconds) [ $# -ge 2 ] || usage; fuzz_s=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ $stress_s =~ ^[0-9]+$ && $fuzz_s =~ ^[0-9]+$ ]] || usage
# a regex that names no mutant would still cost the whole baseline, then score 0 of 0
if [ -n "$only" ]; then
  n_only=0
  for patch in "$root"/scripts/mutants/*.patch; do
    [[ $(basename "$patch" .patch) =~ $only ]] && n_only=$((n_only + 1))
  done
  [ $n_only -gt 0 ] || { echo "mutation-check.sh: --only '$only' matches no mutant in scripts/mutants/" >&2; exit 2; }
fi

work=$(mktemp -d /tmp/lode-mutants.XXXXXX)
[ $keep -eq 1 ] || trap 'rm -rf "$work"' EXIT
logdir=$root/build/mutants
mkdir -p "$logdir"
jobs=2
tree=$work/tree
seed=20261125

copy_tree() { # dest
  mkdir -p "$1"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$1")
}

configure() { # dir cc type extra-cmake-args...
  local dir=$1 cc=$2 type=$3; shift 3
  mkdir -p "$dir"
  CC=$cc cmake -S "$tree" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DLODE_TESTING=ON "$@" >"$dir/configure.log" 2>&1
}
have_clang() { command -v clang >/dev/null; }
configure_all() {
  configure "$tree/build/dbg" gcc Debug -DLODE_DEBUG=2 -DLODE_BUILD_FUZZ=ON || return 1
  if have_clang; then
    configure "$tree/build/fuzz" clang Debug -DLODE_DEBUG=1 -DLODE_BUILD_STRESS=OFF -DLODE_BUILD_TESTS=OFF || return 1
    configure "$tree/build/tsan" clang Debug -DLODE_DEBUG=1 -DLODE_SANITIZE=thread -DLODE_BUILD_FUZZ=OFF || return 1
  fi
}
# build_all -> the name of the build tree that failed, or nothing
build_all() {
  local d
  for d in dbg fuzz tsan; do
    [ -f "$tree/build/$d/CMakeCache.txt" ] || continue
    cmake --build "$tree/build/$d" -j$jobs >"$tree/build/$d/build.log" 2>&1 || { echo "$d"; return; }
  done
}

# Each suite runs in the scratch tree and returns 0 (passed), 77 (tool not
# built here: no verdict) or anything else (failed: a kill).
suite_unit() {
  (cd "$tree/build/dbg" && ctest -L 'unit|preload|robust' -j2 --stop-on-failure --output-on-failure --timeout 120 >"$1" 2>&1)
}
suite_stress() {
  local bin=$tree/build/dbg/stress/lode-stress
  [ -x "$bin" ] || return 77
  "$bin" --seconds "$stress_s" --seed $seed --threads 4 >"$1" 2>&1
}
suite_corpus() {
  local bin=$tree/build/dbg/fuzz/lode-replay
  [ -x "$bin" ] || return 77
  "$bin" --mode sim "$tree/corpus" >"$1" 2>&1
}
suite_real() {
  local bin=$tree/build/dbg/fuzz/lode-replay
  [ -x "$bin" ] || return 77
  "$bin" --mode real "$tree/corpus" >"$1" 2>&1
}
suite_libfuzzer() {
  local bin=$tree/build/fuzz/fuzz/lode-fuzz-libfuzzer
  [ -x "$bin" ] || return 77
  # New inputs go to a scratch directory, never into the tree's corpus.
  rm -rf "$tree/build/fuzz/new-inputs" "$tree/build/fuzz/seeds" && mkdir -p "$tree/build/fuzz/new-inputs" "$tree/build/fuzz/seeds"
  cp "$tree"/corpus/bin/*.bin "$tree/build/fuzz/seeds/"
  local f r=$tree/build/dbg/fuzz/lode-replay
  for f in "$tree"/corpus/*.ops "$tree"/corpus/afl/*.ops; do
    [ -f "$f" ] && [ -x "$r" ] && "$r" --to-bin "$f" "$tree/build/fuzz/seeds/$(basename "${f%.ops}").bin" 2>/dev/null
  done
  # -error_exitcode: libFuzzer reports a crash with 77 by default, which here means "not built"
  (cd "$tree/build/fuzz" && timeout $((fuzz_s + 60)) "$bin" -max_total_time="$fuzz_s" -seed=1 \
     -timeout=10 -error_exitcode=1 new-inputs seeds >"$1" 2>&1)
}
# LODE_SECURE's own unit tests, in a tree built when a mutant first gets
# here (most are killed before: no build for them).
suite_secure() {
  local dir=$tree/build/secure
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    configure "$dir" gcc Debug -DLODE_DEBUG=1 -DLODE_SECURE=ON -DLODE_BUILD_FUZZ=OFF -DLODE_BUILD_STRESS=OFF || return 1
  fi
  cmake --build "$dir" -j$jobs >"$1" 2>&1 || return 1
  # its unit, robust and security tests: the hardened build's checks are
  # what the last two label (a secure-only bug class is killed there)
  (cd "$dir" && ctest -L 'unit|robust|security' -j2 --stop-on-failure --output-on-failure --timeout 300 >>"$1" 2>&1)
}
suite_tsan() {
  local dir=$tree/build/tsan
  [ -f "$dir/CMakeCache.txt" ] || return 77
  (export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
   cd "$dir" && ctest -L 'unit|robust' --stop-on-failure --timeout 300 >"$1" 2>&1) || return 1
  if [ -x "$dir/stress/lode-stress" ]; then
    TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
      "$dir/stress/lode-stress" --seconds "$stress_s" --seed $seed --threads 4 >>"$1" 2>&1 || return 1
  fi
}
suites=(unit stress corpus real libfuzzer tsan secure)
used_by=(stress corpus real libfuzzer tsan)
# The question "do the suites developers run kill it?" at a fraction of the
# matrix's cost: a mutant killed in the first five lines is a used-by kill.
[ $used_first -eq 1 ] && suites=("${used_by[@]}" unit secure)

# run_suites TAG: one line per suite run, "suite rc seconds"; stops at the
# first kill unless --matrix.
run_suites() {
  local tag=$1 s s0 rc
  for s in "${suites[@]}"; do
    s0=$(date +%s)
    "suite_$s" "$logdir/$tag.$s.log"; rc=$?
    echo "$s $rc $(( $(date +%s) - s0 ))"
    [ $matrix -eq 0 ] && [ $rc -ne 0 ] && [ $rc -ne 77 ] && return
  done
}

echo "== baseline: the unmodified tree must pass every suite =="
copy_tree "$tree"
configure_all || { echo "baseline does not configure; see $tree/build/*/configure.log"; exit 1; }
bad=$(build_all)
[ -z "$bad" ] || { echo "baseline does not build its $bad tree (log: $tree/build/$bad/build.log)"; exit 1; }
while read -r s rc secs; do
  case $rc in
    0) echo "    $s: passed (${secs}s)" ;;
    77) echo "    $s: not built here (no verdict from it)" ;;
    *) echo "baseline FAILS suite '$s' (log: $logdir/baseline.$s.log): no mutant can be scored"
       grep -E -m20 'FAIL|Failed|failed|ERROR|replay' "$logdir/baseline.$s.log"
       exit 1 ;;
  esac
done < <(matrix=1 run_suites baseline)

table=$logdir/table.txt
if [ $matrix -eq 1 ]; then
  printf '%-46s' mutant >"$table"
  for s in "${suites[@]}"; do printf ' %-9s' "$s" >>"$table"; done
  printf ' %s\n' used-by >>"$table"
else
  printf '%-46s %-7s %-10s %s\n' mutant killed suite time-to-kill >"$table"
fi
declare -A kills=()
total=0 survivors=0 broken=0 used_kills=0
for patch in "$root"/scripts/mutants/*.patch; do
  name=$(basename "$patch" .patch)
  [ -n "$only" ] && [[ ! $name =~ $only ]] && continue
  echo "== $name =="
  files=$(grep -E '^\+\+\+ b/' "$patch" | sed -E 's|^\+\+\+ b/||; s|\t.*||')
  mkdir -p "$work/orig"
  for f in $files; do cp --parents "$tree/$f" "$work/orig/" 2>/dev/null; done
  restore() {
    for f in $files; do cp "$work/orig/$tree/$f" "$tree/$f" 2>/dev/null; touch "$tree/$f"; done
    rm -rf "$work/orig"
  }
  if ! (cd "$tree" && patch -p1 -s --no-backup-if-mismatch <"$patch" >/dev/null 2>&1); then
    restore
    printf '%-46s %s\n' "$name" "BROKEN: patch does not apply" >>"$table"
    broken=$((broken + 1)); continue
  fi
  bad=$(build_all)
  if [ -n "$bad" ]; then
    cp "$tree/build/$bad/build.log" "$logdir/$name.build.log"
    restore
    printf '%-46s %s\n' "$name" "BROKEN: does not build ($bad tree, log $logdir/$name.build.log)" >>"$table"
    broken=$((broken + 1)); continue
  fi
  total=$((total + 1))
  killed_by="" used=0 row=$(printf '%-46s' "$name")
  while read -r s rc secs; do
    case $rc in
      0) cell=. ;;
      77) cell=- ;;
      *) cell="K${secs}s"; kills[$s]=$(( ${kills[$s]:-0} + 1 ))
         [ -z "$killed_by" ] && killed_by="$s $secs"
         [[ " ${used_by[*]} " == *" $s "* ]] && used=1 ;;
    esac
    echo "    $s: $([ "$cell" = . ] && echo survived || echo "$cell")"
    row+=$(printf ' %-9s' "$cell")
  done < <(run_suites "$name")
  restore
  [ $used -eq 1 ] && used_kills=$((used_kills + 1))
  [ -z "$killed_by" ] && survivors=$((survivors + 1))
  if [ $matrix -eq 1 ]; then
    printf '%s %s\n' "$row" "$([ $used -eq 1 ] && echo yes || echo no)" >>"$table"
  elif [ -z "$killed_by" ]; then
    printf '%-46s %-7s %-10s %s\n' "$name" no - - >>"$table"
  else
    read -r ks kt <<<"$killed_by"
    printf '%-46s %-7s %-10s %ss\n' "$name" yes "$ks" "$kt" >>"$table"
  fi
done
if [ $matrix -eq 1 ] && [ $total -gt 0 ]; then
  printf '%-46s' "killed (of $total)" >>"$table"
  for s in "${suites[@]}"; do printf ' %-9s' "${kills[$s]:-0}" >>"$table"; done
  printf ' %s (%d%%)\n' "$used_kills" $((100 * used_kills / total)) >>"$table"
  echo "K: killed, with the suite's time; .: survived; -: suite not built" >>"$table"
fi
echo
cat "$table"
echo "killed $((total - survivors)) of $total scored mutants; $broken broken; logs: $logdir"
[ $matrix -eq 1 ] || [ $used_first -eq 0 ] ||
  echo "used-by suites killed $(awk '$2 == "yes" && $3 != "unit" && $3 != "secure"' "$table" | wc -l) of $total"
[ $survivors -eq 0 ] && [ $broken -eq 0 ]
