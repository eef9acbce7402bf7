#!/usr/bin/env bash
# Long ThreadSanitizer run: builds lode-stress with clang -fsanitize=thread
# (Debug, LODE_DEBUG=1), runs the unit tests once under it (races a fixed
# interleaving shows at once: a remote free reading its segment after the
# free, unit.remote_free), then runs lode-stress again and again for
# --minutes M (default 30), cycling through the workloads and fresh seeds.  Each run's log is kept
# under build/tsan-nightly/<timestamp>/run-NNN.log; a summary at the end lists
# runs per workload and every failure with its replay line.  Exit 1 on any
# TSan report or violation, on a run that hangs past its time (killed), or
# when no run happened; 2 on bad usage.
#
#   scripts/tsan-nightly.sh [--minutes M] [--run-seconds S] [--threads N] [--seed S]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=30 run_seconds=60 threads=4 seed0=""
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 [--minutes M] [--run-seconds S] [--threads N] [--seed S]" >&"$((st ? 2 : 1))"
  exit "$st"
}
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=${2:-}; shift 2 || usage ;;
    --run-seconds) run_seconds=${2:-}; shift 2 || usage ;;
    --threads) threads=${2:-}; shift 2 || usage ;;
    --seed) seed0=${2:-}; shift 2 || usage ;;
    -h|--help) usage 0 ;;
    *) echo "tsan-nightly.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ && $minutes -gt 0 && $run_seconds =~ ^[0-9]+$ && $run_seconds -gt 0 &&
   $threads =~ ^[0-9]+$ && $threads -gt 0 ]] || usage
[ -z "$seed0" ] || [[ $seed0 =~ ^[0-9]{1,18}$ ]] || usage
# decimal, whatever the leading zeros (bash arithmetic reads 09 as octal)
minutes=$((10#$minutes)) run_seconds=$((10#$run_seconds)) threads=$((10#$threads))
[ -z "$seed0" ] || seed0=$((10#$seed0))

dir=$root/build/tsan-nightly
build=$dir/build
logs=$dir/$(date +%Y%m%d-%H%M%S)
mkdir -p "$build" "$logs"
echo "tsan-nightly: building in $build"
if ! CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DLODE_DEBUG=1 -DLODE_SANITIZE=thread \
      -DLODE_TESTING=ON -DLODE_BUILD_TESTS=ON -DLODE_BUILD_FUZZ=OFF >"$logs/configure.log" 2>&1 ||
   ! cmake --build "$build" -j2 >"$logs/build.log" 2>&1; then
  tail -30 "$logs/build.log" "$logs/configure.log" 2>/dev/null
  echo "tsan-nightly: build failed" >&2
  exit 1
fi
bin=$build/stress/lode-stress
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

workloads=(mixed collect churn heaps xthread large all)
declare -A runs=() fails=()
failures=()
deadline=$(( $(date +%s) + minutes * 60 ))
child=""
on_signal() { # exit-status: stop the current run too, at once
  trap '' INT TERM
  [ -z "$child" ] || { kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child"; wait "$child"; } 2>/dev/null
  echo "tsan-nightly: interrupted" >&2
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
n=0
# The unit tests first (not timed against --minutes): each is a fixed
# scenario, some of them races TSan sees whatever the timing.
printf 'tsan-nightly: unit and robust tests under TSan ... '
(cd "$build" && ctest -L 'unit|robust' --timeout 600 >"$logs/unit.log" 2>&1); urc=$?
if [ $urc -ne 0 ] || grep -q "WARNING: ThreadSanitizer" "$logs/unit.log"; then
  why=$(grep -m1 -o "WARNING: ThreadSanitizer: [a-z -]*" "$build"/Testing/Temporary/LastTest.log 2>/dev/null)
  failures+=("unit tests: ${why:-a test failed} (ctest exit $urc); log $logs/unit.log and $build/Testing/Temporary/LastTest.log; replay: (cd ${build@Q} && ctest -L 'unit|robust' --output-on-failure)")
  echo "FAIL (${why:-ctest exit $urc})"
else
  echo "ok"
fi
echo "tsan-nightly: $minutes min, runs of up to $run_seconds s, $threads threads; logs in $logs"
while [ "$(date +%s)" -lt "$deadline" ]; do
  left=$(( deadline - $(date +%s) ))
  secs=$(( left < run_seconds ? left : run_seconds ))
  [ "$secs" -ge 5 ] || break
  wl=${workloads[$(( n % ${#workloads[@]} ))]}
  if [ -n "$seed0" ]; then seed=$(( seed0 + n )); else seed=$(( (RANDOM << 30 | RANDOM << 15 | RANDOM) )); fi
  n=$((n + 1))
  log=$(printf '%s/run-%03d.log' "$logs" "$n")
  printf 'tsan-nightly: run %03d workload %-8s seed %-12s %3d s ... ' "$n" "$wl" "$seed" "$secs"
  start=$(date +%s)
  # a run that hangs (a deadlock under TSan) is killed and counts as a failure
  tmo=$(( secs * 3 + 60 ))
  # in the background, so the traps below can stop it (timeout leads its own process group)
  timeout -k 10 "$tmo" "$bin" --workload "$wl" --seconds "$secs" --seed "$seed" --threads "$threads" --quiet >"$log" 2>&1 &
  child=$!
  wait "$child"
  rc=$? child=""
  runs[$wl]=$(( ${runs[$wl]:-0} + 1 ))
  if [ $rc -ne 0 ] || grep -q "WARNING: ThreadSanitizer" "$log"; then
    fails[$wl]=$(( ${fails[$wl]:-0} + 1 ))
    why=$(grep -m1 -o "WARNING: ThreadSanitizer: [a-z -]*\|invariant: .*" "$log")
    if [ -z "$why" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then why="HANG (killed after $tmo s)"
    elif [ -z "$why" ]; then why="exit $rc"; fi
    replay=$(grep -m1 "replay:" "$log" | sed 's/^ *replay: *//')
    [ -n "$replay" ] || replay="TSAN_OPTIONS='$TSAN_OPTIONS' ${bin@Q} --workload $wl --seconds $secs --seed $seed --threads $threads"
    failures+=("run $(printf %03d $n) $wl seed $seed: $why (exit $rc); log $log; replay: $replay")
    echo "FAIL ($why)"
  else
    echo "ok ($(( $(date +%s) - start )) s)"
  fi
done

{
  echo
  echo "tsan-nightly summary: $n runs in $minutes min, logs in $logs"
  for wl in "${workloads[@]}"; do
    [ -n "${runs[$wl]:-}" ] && printf '  %-8s %3d runs, %d failed\n' "$wl" "${runs[$wl]}" "${fails[$wl]:-0}"
  done
  printf '  %-8s %s\n' unit "$( [ $urc -eq 0 ] && echo 'passed' || echo 'FAILED')"
  if [ $n -eq 0 ]; then
    echo "  result: FAIL (no run: less than 5 s of the time was left)"
  elif [ ${#failures[@]} -eq 0 ]; then
    echo "  result: PASS (no ThreadSanitizer report, no violation)"
  else
    echo "  result: FAIL (${#failures[@]} failed)"
    for f in "${failures[@]}"; do echo "  $f"; done
  fi
} | tee "$logs/summary.txt"
[ $n -gt 0 ] && [ ${#failures[@]} -eq 0 ]
