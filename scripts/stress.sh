#!/usr/bin/env bash
# Builds lode and lode-stress in one of three flavours and runs every stress
# workload for STRESS_SECONDS in total (default 60); prints the per-workload
# table; exits non-zero on any violation, pattern mismatch, fatal signal or
# sanitizer report.
#
#   scripts/stress.sh release|tsan|asan
#
#   release  gcc, Release, LODE_DEBUG=1                 -> build/stress-release
#   tsan     clang, Debug, LODE_SANITIZE=thread, LODE_DEBUG=1  -> build/stress-tsan
#   asan     clang, Debug, LODE_SANITIZE=address (ASan+UBSan), LODE_DEBUG=1 -> build/stress-asan
#
# Environment: STRESS_SECONDS (60), STRESS_THREADS (release: 2 x cores;
# sanitizers: 4), STRESS_SEED (random, printed), STRESS_BUILD_DIR (override
# the build directory), STRESS_ARGS (extra lode-stress options).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 release|tsan|asan   (env: STRESS_SECONDS STRESS_THREADS STRESS_SEED STRESS_BUILD_DIR STRESS_ARGS)" >&"$((st ? 2 : 1))"
  exit "$st"
}
[ $# -eq 1 ] || usage
case $1 in -h|--help) usage 0 ;; esac
flavour=$1
seconds=${STRESS_SECONDS:-60}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "stress.sh: STRESS_SECONDS must be a positive integer" >&2; usage; }

case $flavour in
  release) cc=gcc;   type=Release; extra=(-DLODE_DEBUG=1); threads_default= ;;
  tsan)    cc=clang; type=Debug;   extra=(-DLODE_DEBUG=1 -DLODE_SANITIZE=thread); threads_default=4 ;;
  asan)    cc=clang; type=Debug;   extra=(-DLODE_DEBUG=1 -DLODE_SANITIZE=address); threads_default=4 ;;
  *) usage ;;
esac
command -v "$cc" >/dev/null || { echo "stress.sh: $cc not found (run scripts/setup.sh)" >&2; exit 1; }
dir=${STRESS_BUILD_DIR:-$root/build/stress-$flavour}
mkdir -p "$dir"
echo "stress.sh: building $flavour ($cc $type ${extra[*]}) in $dir"
if ! CC=$cc cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=$type "${extra[@]}" \
      -DLODE_BUILD_TESTS=OFF -DLODE_BUILD_FUZZ=OFF >"$dir/configure.log" 2>&1; then
  tail -20 "$dir/configure.log"; echo "stress.sh: configure failed" >&2; exit 1
fi
if ! cmake --build "$dir" -j2 --target lode-stress >"$dir/build.log" 2>&1; then
  tail -30 "$dir/build.log"; echo "stress.sh: build failed" >&2; exit 1
fi

export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="halt_on_error=1 abort_on_error=0 detect_leaks=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"

args=(--seconds "$seconds")
threads=${STRESS_THREADS:-$threads_default}
[ -n "$threads" ] && args+=(--threads "$threads")
[ -n "${STRESS_SEED:-}" ] && args+=(--seed "$STRESS_SEED")
# shellcheck disable=SC2206
[ -n "${STRESS_ARGS:-}" ] && args+=($STRESS_ARGS)
log=$dir/stress.log
echo "stress.sh: $dir/stress/lode-stress ${args[*]}   (log: $log)"
start=$(date +%s)
"$dir/stress/lode-stress" "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
end=$(date +%s)
if grep -q "WARNING: ThreadSanitizer\|ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$log"; then
  echo "stress.sh: sanitizer report in $log" >&2
  [ $rc -eq 0 ] && rc=1
fi
if [ $rc -eq 0 ]; then
  echo "stress.sh: $flavour PASS in $((end - start)) s"
else
  echo "stress.sh: $flavour FAIL (exit $rc) after $((end - start)) s; see $log and the replay line above" >&2
fi
exit $rc
