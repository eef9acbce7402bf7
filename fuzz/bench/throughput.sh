#!/usr/bin/env bash
# throughput.sh [--repeats N] [--seed S] [--cpu C] LODE-REPLAY
# Runs per second of the fuzz harness, simulated vs real threads and OS, per
# input kind: the corpus's generated inputs, the harness floors (200 no-op ops
# on 1, 2, 4 threads) and 100 random 2 KiB inputs (what AFL++ and libFuzzer
# feed; made from the printed seed).  Pinned to one CPU; median of N repeats,
# the modes interleaved in each repeat.  A benchmark, not a test, but any
# input that fails (or gives no result) ends it with status 1, the input
# and the command that replays it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
repeats=5 seed=7 cpu=$(( $(nproc) - 1 ))
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 [--repeats N] [--seed S] [--cpu C] LODE-REPLAY" >&"$((st ? 2 : 1))"
  exit "$st"
}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage 0 ;;
    --repeats) [ $# -ge 2 ] || usage; repeats=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    --cpu) [ $# -ge 2 ] || usage; cpu=$2; shift 2 ;;
    -*) echo "throughput: unknown option '$1'" >&2; usage ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"
[ $# -eq 1 ] && [ -x "$1" ] || usage
[[ $repeats =~ ^[1-9][0-9]*$ && $seed =~ ^[0-9]+$ && $cpu =~ ^[0-9]+$ ]] || usage
replay=$(realpath "$1")
pin=(taskset -c "$cpu"); command -v taskset >/dev/null || pin=()
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/random"
python3 - "$seed" "$tmp/random" <<'PY'
import random, sys
rng = random.Random(int(sys.argv[1]))
for i in range(100):
    with open(f"{sys.argv[2]}/r{i:03d}", "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(2048)))
PY
echo "seed $seed (100 random 2 KiB inputs), cpu $cpu, $repeats repeats, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# runs/s of one kind into $rate: for a directory, total runs over total
# time.  Any failure ends the benchmark: lode-replay --bench stops at the
# first failing input, so a rate over the others would hide it.
rate() { # mode N input...
  local mode=$1 n=$2 st f missing=() keep; shift 2
  "${pin[@]}" "$replay" --mode "$mode" --bench "$n" "$@" >"$tmp/out" 2>"$tmp/err"; st=$?
  # every input must have its line (a directory: its files, as lode-replay takes them)
  while IFS= read -r -d '' f; do
    grep -qF -- "$f: " "$tmp/out" || missing+=("$f")
  done < <(find "$@" -type f ! -name '.*' ! -name 'README*' ! -name '*.md' -print0 | sort -z)
  if [ $st -ne 0 ] || [ ${#missing[@]} -gt 0 ]; then
    echo "throughput: FAIL: lode-replay --mode $mode --bench $n exited $st; ${#missing[@]} input(s) without a result" >&2
    tail -20 "$tmp/err" >&2
    if [ ${#missing[@]} -gt 0 ]; then
      f=${missing[0]}
      if [[ $f == "$tmp"/* ]]; then # the random inputs go with $tmp: keep the failing one
        keep=$(mktemp -d "${TMPDIR:-/tmp}/lode-throughput.XXXXXX") && cp "$f" "$keep/" && f=$keep/$(basename "$f")
      fi
      echo "throughput: first input without a result: $f (seed $seed)" >&2
      echo "throughput: replay with: $replay -v --mode $mode $f" >&2
    fi
    exit 1
  fi
  [ -s "$tmp/err" ] && cat "$tmp/err" >&2
  rate=$(awk '/runs in/ { for (i = 1; i <= NF; i++) if ($i == "in") { t += $(i + 1); r += $(i - 2) } }
              END { if (t > 0) printf "%.0f\n", r / t; else print "fail" }' "$tmp/out")
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

kinds=(mixed-200-2 mixed-200-3 mixed-200-5 mixed-1000-14 floor-1-thread floor-2-threads floor-4-threads random-2k)
input_of() {
  case $1 in
    mixed-*) echo "$root/corpus/$1.ops" ;;
    floor-*) echo "$here/$1.ops" ;;
    random-2k) echo "$tmp/random" ;;
  esac
}
runs_of() { # kind mode: enough runs for ~0.3 s, fewer for real threads
  case $1:$2 in
    floor-*:sim) echo 20000 ;; floor-*:real) echo 300 ;;
    random-2k:sim) echo 10 ;; random-2k:real) echo 1 ;;
    mixed-1000*:sim) echo 300 ;; mixed-1000*:real) echo 10 ;;
    *:sim) echo 1500 ;; *:real) echo 60 ;;
  esac
}
declare -A res=()
for ((r = 0; r < repeats; r++)); do
  for k in "${kinds[@]}"; do
    for m in sim real; do
      rate "$m" "$(runs_of "$k" "$m")" "$(input_of "$k")"
      res[$k.$m]+="$rate "
    done
  done
done
printf '\n| input | real threads and OS (runs/s) | simulated (runs/s) | sim / real |\n|---|---:|---:|---:|\n'
for k in "${kinds[@]}"; do
  s=$(tr ' ' '\n' <<<"${res[$k.sim]}" | grep -v '^$' | median)
  rl=$(tr ' ' '\n' <<<"${res[$k.real]}" | grep -v '^$' | median)
  ratio=$(awk -v a="$s" -v b="$rl" 'BEGIN { if (b > 0) printf "%.0fx", a / b; else print "-" }')
  printf '| %s | %s | %s | %s |\n' "$k" "$rl" "$s" "$ratio"
done
