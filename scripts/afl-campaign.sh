#!/usr/bin/env bash
# afl-campaign.sh: an AFL++ campaign on lode's fuzz harness.
#
#   scripts/afl-campaign.sh [--duration SECONDS] [--jobs N] [--mode sim|real] [--out DIR]
#                           [--build-dir DIR] [--seed S] [--update-corpus]
#
# Builds the persistent-mode target (build/afl) and a CMPLOG build
# (build/afl-cmplog) with afl-clang-fast, seeds from corpus/ (every .ops
# converted to binary with lode-replay), runs `afl-fuzz -M main -c CMPLOG` and
# N-1 `-S` secondaries for the duration, prints `afl-whatsup -s` every few
# minutes, then a summary (execs, exec/s, corpus size, coverage, crashes,
# hangs).  Every crash is minimised with afl-tmin into
# OUT/regression-candidates/ (binary + .ops) and replayed in both modes
# (simulated and real threads and OS), with the command that replays it.
# Exits 1 if anything crashed, 2 on usage errors.
#
#   --duration SECONDS  fuzzing time (default 3600)
#   --jobs N            afl-fuzz instances (default: nproc)
#   --out DIR           output directory (default build/afl-campaign)
#   --mode M            sim (default): the harness simulates threads and the OS on
#                       one OS thread; real: real pthreads and the real OS (slow)
#   --build-dir DIR     where the two builds go (default build; gives DIR/afl, DIR/afl-cmplog)
#   --seed S            afl-fuzz's random seed (-s S for main, S+i for secondary i;
#                       default: a random one); printed at the start and in the
#                       summary, where the command that reruns the campaign is.
#                       With several instances syncing, timing still differs.
#   --update-corpus     afterwards, the queue minimised (afl-cmin, then afl-tmin
#                       within a time budget) replaces corpus/afl/ in text form, and
#                       every crash that replays goes to corpus/regressions/
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)

usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&"$((st ? 2 : 1))"
  exit "$st"
}

duration=3600 jobs=$(nproc 2>/dev/null || echo 1) out=build/afl-campaign builddir=build mode=sim update=0 afl_seed=
while [ $# -gt 0 ]; do
  case $1 in
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; builddir=$2; shift 2 ;;
    --mode) [ $# -ge 2 ] && [[ $2 == sim || $2 == real ]] || usage; mode=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; afl_seed=$2; shift 2 ;;
    --update-corpus) update=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "afl-campaign: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $duration =~ ^[0-9]+$ && $duration -gt 0 && $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || usage
# a 32-bit seed, so S+i (secondary i) still fits
[ -n "$afl_seed" ] || afl_seed=$(( $(od -An -N4 -tu4 /dev/urandom) % 4000000000 ))
[[ $afl_seed =~ ^[0-9]{1,10}$ && $afl_seed -le 4000000000 ]] || { echo "afl-campaign: --seed takes 0..4000000000" >&2; usage; }
rerun="scripts/afl-campaign.sh --seed $afl_seed --duration $duration --jobs $jobs --mode $mode"

log() { echo "[afl-campaign $(date +%H:%M:%S)] $*"; }
log "seed $afl_seed (rerun: $rerun)"

# --- afl++ ----------------------------------------------------------------------
if ! command -v afl-clang-fast >/dev/null || ! command -v afl-fuzz >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing afl++ with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++) >/dev/null || true
  fi
  if ! command -v afl-clang-fast >/dev/null; then
    echo "afl-campaign: afl-clang-fast not found and could not be installed (need root + apt, or install afl++)" >&2
    exit 77
  fi
fi

# --- builds -----------------------------------------------------------------------
build() { # dir [env...]
  local dir=$1; shift
  mkdir -p "$dir"
  env "$@" CC=afl-clang-fast cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLODE_DEBUG=2 -DLODE_TESTING=ON \
    -DLODE_BUILD_TESTS=OFF -DLODE_BUILD_STRESS=OFF -DLODE_BUILD_FUZZ=ON -DLODE_FUZZ_AFL=ON >"$dir/configure.log" 2>&1 &&
    env "$@" AFL_QUIET=1 cmake --build "$dir" -j2 --target lode-fuzz-afl lode-replay >"$dir/build.log" 2>&1
}
afl_dir=$builddir/afl cmplog_dir=$builddir/afl-cmplog
log "building $afl_dir (persistent mode) and $cmplog_dir (CMPLOG)"
build "$afl_dir" || { echo "afl-campaign: build failed, see $afl_dir/build.log" >&2; tail -20 "$afl_dir/build.log" >&2; exit 1; }
build "$cmplog_dir" AFL_LLVM_CMPLOG=1 || { echo "afl-campaign: CMPLOG build failed, see $cmplog_dir/build.log" >&2; exit 1; }
target=$(realpath "$afl_dir/fuzz/lode-fuzz-afl") cmplog=$(realpath "$cmplog_dir/fuzz/lode-fuzz-afl")
replay=$(realpath "$afl_dir/fuzz/lode-replay")

# --- seeds ------------------------------------------------------------------------
mkdir -p "$out"
out=$(realpath "$out")
rm -rf "$out/seeds" "$out/sync" "$out/regression-candidates"
mkdir -p "$out/seeds"
n=0
while IFS= read -r -d '' f; do
  case $(basename "$f") in README*|*.md|.*) continue ;; esac
  name=$(echo "${f#corpus/}" | tr '/' '_')
  seed=$out/seeds/${name%.ops}.bin
  if [[ $f == *.ops ]]; then
    "$replay" --to-bin "$f" "$seed" 2>/dev/null || { log "seed $f has no binary form (bad ops?): skipped"; continue; }
  else
    cp "$f" "$seed"
  fi
  if ! "$replay" "$seed" >/dev/null 2>&1; then
    log "seed $f fails already (a known regression?): not used as a seed"
    rm -f "$seed"
    continue
  fi
  n=$((n + 1))
done < <(find corpus -type f -print0 | sort -z)
log "$n seeds in $out/seeds"

# --- fuzzing ----------------------------------------------------------------------
# Each instance binds to a free core when there is one (never fails when
# there is none): the harness hands control between its threads constantly,
# and on one core a handoff skips the cross-CPU wake-up.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_TRY_AFFINITY=1 LODE_FUZZ_MODE=$mode
[ -t 1 ] || export AFL_NO_UI=1
common=(-i "$out/seeds" -o "$out/sync" -m none -t 2000 -x "$root/fuzz/lode.dict" -V "$duration")
pids=()
log "afl-fuzz ($mode mode, seed $afl_seed): 1 main (CMPLOG) + $((jobs - 1)) secondaries for ${duration}s; output in $out/sync"
afl-fuzz "${common[@]}" -s "$afl_seed" -M main -c "$cmplog" -- "$target" >"$out/main.log" 2>&1 &
pids+=($!)
for ((i = 1; i < jobs; i++)); do
  afl-fuzz "${common[@]}" -s "$((afl_seed + i))" -S "sec$i" -- "$target" >"$out/sec$i.log" 2>&1 &
  pids+=($!)
done
# afl-fuzz leaves the CMPLOG target's persistent child stopped (state T,
# reparented to init) when it exits: reap this campaign's target processes,
# found by their executable, so runs do not pile up stopped processes.
reap_targets() {
  local d exe
  for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    if [ "$exe" = "$target" ] || [ "$exe" = "$cmplog" ]; then kill -KILL "${d#/proc/}" 2>/dev/null; fi
  done
}
trap 'kill "${pids[@]}" 2>/dev/null; wait; reap_targets; exit 130' INT TERM
start=$(date +%s)
interval=$(( duration / 6 )); [ $interval -lt 20 ] && interval=20; [ $interval -gt 300 ] && interval=300
while kill -0 "${pids[0]}" 2>/dev/null; do
  for ((s = 0; s < interval; s += 5)); do
    kill -0 "${pids[0]}" 2>/dev/null || break
    sleep 5
  done
  kill -0 "${pids[0]}" 2>/dev/null || break
  log "status after $(( $(date +%s) - start ))s:"
  afl-whatsup -s "$out/sync" 2>&1 | grep -v -e "^tput:" -e "status check tool" -e "^$" | sed "s/^/    /"
done
wait "${pids[@]}" 2>/dev/null
reap_targets
elapsed=$(( $(date +%s) - start ))
if [ ! -f "$out/sync/main/fuzzer_stats" ]; then
  echo "afl-campaign: afl-fuzz did not start; its log:" >&2
  tail -30 "$out/main.log" >&2
  exit 1
fi

# --- summary ------------------------------------------------------------------------
stat() { sed -n "s/^$2 *: *//p" "$1" | head -1; }
total_execs=0 crashes=0 hangs=0 corpus=0
printf '\n%-8s %12s %10s %8s %10s %8s %6s\n' instance execs exec/s corpus coverage crashes hangs
for d in "$out"/sync/*/; do
  f=$d/fuzzer_stats
  [ -f "$f" ] || continue
  inst=$(basename "$d")
  e=$(stat "$f" execs_done) eps=$(stat "$f" execs_per_sec) c=$(stat "$f" corpus_count)
  cov=$(stat "$f" bitmap_cvg)
  cr=$(find "$d/crashes" -name 'id:*' 2>/dev/null | wc -l) hg=$(find "$d/hangs" -name 'id:*' 2>/dev/null | wc -l)
  printf '%-8s %12s %10s %8s %10s %8s %6s\n' "$inst" "$e" "$eps" "$c" "$cov" "$cr" "$hg"
  total_execs=$((total_execs + ${e:-0})) crashes=$((crashes + cr)) hangs=$((hangs + hg))
  [ "${c:-0}" -gt "$corpus" ] && corpus=${c:-0}
done
eps_total=$(( elapsed > 0 ? total_execs / elapsed : 0 ))
cat <<EOF

== AFL++ campaign summary ==
duration        ${elapsed}s, $jobs instance(s) (main with CMPLOG), $mode mode
seed            $afl_seed (afl-fuzz -s; secondary i: $afl_seed+i)
rerun           $rerun
execs total     $total_execs
exec/s          $eps_total overall ($(( eps_total / jobs )) per instance)
corpus size     $corpus (largest queue)
coverage        $(stat "$out/sync/main/fuzzer_stats" bitmap_cvg) of the map (main), edges found $(stat "$out/sync/main/fuzzer_stats" edges_found)
crashes         $crashes
hangs           $hangs
EOF

# --- crashes -> regression candidates --------------------------------------------
# outcome FILE MODE -> "pass" or the first failure line of a replay in MODE
outcome() {
  local r
  r=$("$replay" --mode "$2" "$1" 2>&1) && { echo pass; return; }
  grep -m1 -E 'FAILURE|CRASH|lode:' <<<"$r" | sed 's/^lode-fuzz: //' || echo "exit status $?"
}
today=$(date +%Y-%m-%d)
if [ "$crashes" -gt 0 ]; then
  mkdir -p "$out/regression-candidates"
  echo
  echo "== regression candidates (minimised with afl-tmin, replayed in both modes) =="
  find "$out"/sync/*/crashes -name 'id:*' -print0 | sort -z | while IFS= read -r -d '' c; do
    inst=$(basename "$(dirname "$(dirname "$c")")")
    id=$(basename "$c" | sed 's/^id:\([0-9]*\).*/\1/')
    min=$out/regression-candidates/$inst-$id.bin
    if ! LODE_FUZZ_MODE=$mode AFL_ALLOW_TMP=1 AFL_TMPDIR="$out" timeout 600 afl-tmin -m none -t 5000 -i "$c" -o "$min" -- "$target" >"$min.tmin.log" 2>&1; then
      cp "$c" "$min"
    fi
    "$replay" --to-text "$min" "${min%.bin}.ops" 2>/dev/null
    sim=$(outcome "$min" sim) real=$(outcome "$min" real)
    echo "$min"
    echo "    sim:  $sim"
    echo "    real: $real"
    echo "    replay: $replay -v --mode $mode $min"
    if [ $update -eq 1 ]; then
      if [ "$sim" = pass ] && [ "$real" = pass ]; then
        echo "    not saved: replays clean in both modes (afl-fuzz saw a timeout or an engine crash?)"
        continue
      fi
      slug=$( (grep -oE '\): [a-z]+: [^(0-9]*' <<<"$sim $real" || echo "crash") | head -1 |
              sed -E 's/^\): //; s/[^a-z]+/-/g; s/^-|-$//g' | cut -c1-40)
      dest=$root/corpus/regressions/$today-afl-$inst-$id-${slug:-crash}.ops
      { echo "# AFL++ campaign $today ($mode mode, seed $afl_seed), $inst crash $id, minimised with afl-tmin"
        echo "# sim:  $sim"
        echo "# real: $real"
        grep -v '^#' "${min%.bin}.ops"; } >"$dest"
      echo "    saved as ${dest#"$root"/}"
    fi
  done
  echo "Name each saved regression for what it found, fix the bug, and keep the file."
fi
if [ "$hangs" -gt 0 ]; then
  echo
  echo "hangs (replay each with $replay -v FILE):"
  find "$out"/sync/*/hangs -name 'id:*' | sort | sed 's/^/    /'
fi
# --- corpus upkeep --------------------------------------------------------------------
# The queue, minimised to the inputs that keep its coverage, replaces
# corpus/afl/ in text form (readable, diffable); each is shrunk with afl-tmin
# while the time budget lasts (the rest go as they are).
if [ $update -eq 1 ]; then
  q=$out/queue-all cmin=$out/queue-cmin tmin=$out/queue-tmin
  rm -rf "$q" "$cmin" "$tmin"; mkdir -p "$q" "$tmin"
  for d in "$out"/sync/*/queue; do
    [ -d "$d" ] || continue
    for f in "$d"/id:*; do [ -f "$f" ] && cp "$f" "$q/$(basename "$(dirname "$d")")-$(basename "$f" | cut -d, -f1 | tr : _)"; done
  done
  log "corpus upkeep: afl-cmin over $(find "$q" -type f | wc -l) queue entries"
  if LODE_FUZZ_MODE=$mode AFL_QUIET=1 AFL_ALLOW_TMP=1 afl-cmin -m none -t 2000 -i "$q" -o "$cmin" -- "$target" >"$out/cmin.log" 2>&1; then
    budget_end=$(( $(date +%s) + ${TMIN_BUDGET:-900} )) shrunk=0
    for f in "$cmin"/*; do
      if [ "$(date +%s)" -lt $budget_end ] &&
         LODE_FUZZ_MODE=$mode AFL_ALLOW_TMP=1 AFL_TMPDIR="$out" timeout 60 afl-tmin -m none -t 2000 -i "$f" -o "$tmin/$(basename "$f")" -- "$target" >/dev/null 2>&1; then
        shrunk=$((shrunk + 1))
      else
        cp "$f" "$tmin/"
      fi
    done
    rm -rf "$root/corpus/afl"; mkdir -p "$root/corpus/afl"
    kept=0
    for f in "$tmin"/*; do
      t=$root/corpus/afl/$(basename "$f").ops
      "$replay" --to-text "$f" "$t" 2>/dev/null || { rm -f "$t"; continue; }
      sed -i "1s|.*|# AFL++ campaign $today ($mode mode): queue entry $(basename "$f"), afl-cmin + afl-tmin|" "$t"
      # a queue entry that fails in either mode is a crash, not a seed
      if "$replay" --mode sim "$t" >/dev/null 2>&1 && "$replay" --mode real "$t" >/dev/null 2>&1; then
        kept=$((kept + 1))
      else
        log "queue entry $(basename "$f") fails on replay: kept out of corpus/afl (see crashes)"; rm -f "$t"
      fi
    done
    log "corpus/afl: $kept inputs ($(find "$q" -type f | wc -l) queued, $(find "$cmin" -type f | wc -l) after afl-cmin, $shrunk shrunk by afl-tmin)"
  else
    log "afl-cmin failed (log: $out/cmin.log): corpus/afl left as it was"
  fi
fi
[ "$crashes" -eq 0 ]
