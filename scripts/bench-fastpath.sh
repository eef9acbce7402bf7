#!/usr/bin/env bash
# The fast path alone: ns per same-thread malloc/free pair, per size, for
# lode and the other allocators (LD_PRELOAD; glibc: none), interleaved,
# medians of N repeats; and instructions per pair counted by callgrind
# (valgrind), which this VM needs: it has no hardware counters for perf.
#
#   scripts/bench-fastpath.sh [--repeats N] [--pairs N] [--pattern pair|batch|remote]
#                             [--allocators a,b,..] [--mimalloc-prefix DIR] [--no-instructions] [-o FILE.md]
#
# Allocators: lode (liblode.so, Release, LODE_DEBUG=0), glibc, mimalloc
# (Debian's), mimalloc-new (DIR/lib/libmimalloc.so of --mimalloc-prefix, e.g.
# a 3.x built from source), jemalloc, tcmalloc, scudo (clang's runtime).
# An allocator whose library is missing, or that ld.so refuses to preload,
# is skipped with a line saying so.  A library whose path has a space or
# colon (ld.so splits LD_PRELOAD there) is preloaded through a symlink in a
# temporary directory, removed at exit.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
me=bench-fastpath.sh
. "$root/scripts/lib-run.sh"
repeats=5 pairs=20000000 pattern=pair allocators=lode,glibc,mimalloc,mimalloc-new,jemalloc,tcmalloc,scudo
mi_prefix="" instr=1 md=""
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 [--repeats N] [--pairs N] [--pattern pair|batch|remote] [--allocators LIST] [--mimalloc-prefix DIR] [--no-instructions] [-o FILE.md]" >&"$((st ? 2 : 1))"
  exit "$st"
}
while [ $# -gt 0 ]; do
  case $1 in
    --repeats) repeats=${2:-}; shift 2 || usage ;;
    --pairs) pairs=${2:-}; shift 2 || usage ;;
    --pattern) pattern=${2:-}; shift 2 || usage ;;
    --allocators) allocators=${2:-}; shift 2 || usage ;;
    --mimalloc-prefix) mi_prefix=${2:-}; shift 2 || usage ;;
    --no-instructions) instr=0; shift ;;
    -o) md=${2:-}; shift 2 || usage ;;
    -h|--help) usage 0 ;;
    *) echo "bench-fastpath.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $repeats =~ ^[1-9][0-9]*$ && $pairs =~ ^[1-9][0-9]*$ && $pattern =~ ^(pair|batch|remote)$ ]] || usage
# remote: only the frees are counted (another thread allocated the blocks)
toggle=measure
[ "$pattern" = remote ] && toggle="remote_frees*" # (gcc may name it remote_frees.constprop.0)
out=$root/build/bench-fastpath
mkdir -p "$out"
echo "bench-fastpath.sh: building $out/lode (Release, LODE_DEBUG=0)"
CC=${CC:-gcc} cmake -S "$root" -B "$out/lode" -DCMAKE_BUILD_TYPE=Release -DLODE_DEBUG=0 -DLODE_TESTING=OFF \
  -DLODE_BUILD_TESTS=OFF -DLODE_BUILD_FUZZ=OFF >"$out/configure.log" 2>&1 &&
  cmake --build "$out/lode" -j2 --target lode lode-bench-fastpath >"$out/build.log" 2>&1 ||
  { tail -20 "$out/build.log" "$out/configure.log"; echo "bench-fastpath.sh: build failed" >&2; exit 1; }
bin=$out/lode/stress/lode-bench-fastpath
lib=/usr/lib/x86_64-linux-gnu
scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | sort -V | tail -1)
declare -A preload=(
  [lode]=$out/lode/alloc/liblode.so [glibc]="" [mimalloc]=$lib/libmimalloc.so.2
  [mimalloc-new]=${mi_prefix:+$mi_prefix/lib/libmimalloc.so} [jemalloc]=$lib/libjemalloc.so.2
  [tcmalloc]=$lib/libtcmalloc_minimal.so.4 [scudo]=$scudo
)
pre_dir=""
trap '[ -z "$pre_dir" ] || rm -rf "$pre_dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
names=()
IFS=, read -r -a wanted <<<"$allocators"
for a in "${wanted[@]}"; do
  [[ -v preload[$a] ]] || { echo "bench-fastpath.sh: unknown allocator $a" >&2; usage; }
  p=${preload[$a]}
  if [ "$a" != glibc ] && [ ! -e "$p" ]; then
    echo "bench-fastpath.sh: $a skipped (library ${p:-not given} not found)"
    continue
  fi
  # a library built without overriding malloc (mimalloc's MI_OVERRIDE=OFF)
  # would leave glibc's in place and be timed as glibc
  # (nm's output whole first: grep -q stops early, and under pipefail nm's SIGPIPE would count as "absent")
  if [ "$a" != glibc ] && command -v nm >/dev/null && ! grep -Eq ' [TW] malloc$' <<<"$(nm -D "$p" 2>/dev/null)"; then
    echo "bench-fastpath.sh: $a skipped ($p does not export malloc: built without overriding it?)"
    continue
  fi
  if [ "$a" != glibc ]; then
    safe_preload "$p" || { echo "bench-fastpath.sh: cannot make a preload symlink in /tmp" >&2; exit 1; }
    # ld.so only warns about a library it cannot preload, and the column would time glibc
    if ! err=$(LD_PRELOAD="$safe" "$bin" --pairs 1 2>&1 >/dev/null) || grep -q 'cannot be preloaded' <<<"$err"; then
      echo "bench-fastpath.sh: $a skipped (preloading $p fails): $(grep -m1 . <<<"$err")"
      continue
    fi
    preload[$a]=$safe
  fi
  names+=("$a")
done
[ ${#names[@]} -gt 0 ] || { echo "bench-fastpath.sh: no allocator to measure" >&2; exit 1; }
run() { # allocator args...
  local a=$1; shift
  if [ -n "${preload[$a]}" ]; then LD_PRELOAD=${preload[$a]} "$@"; else "$@"; fi
}

raw=$out/times.txt
: >"$raw"
for ((r = 1; r <= repeats; r++)); do
  for a in "${names[@]}"; do
    run "$a" "$bin" --pairs "$pairs" --pattern "$pattern" | sed "s/^/$a /" >>"$raw"
  done
  echo "bench-fastpath.sh: repeat $r/$repeats done"
done

# instructions per pair: callgrind over measure() only, N and 2N pairs
icount=$out/instructions.txt
: >"$icount"
if [ $instr = 1 ] && command -v valgrind >/dev/null; then
  n=20480 # whole chunks of 1024 for remote
  for a in "${names[@]}"; do
    for size in 16 64 256 1024; do
      c=()
      for k in 1 2; do
        f=$out/cg.$a.$size.$k
        run "$a" valgrind --tool=callgrind --callgrind-out-file="$f" --collect-atstart=no --toggle-collect="$toggle" \
          "$bin" --only "$size" --pairs $((n * k)) --pattern "$pattern" >/dev/null 2>&1
        c+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$f" 2>/dev/null)")
      done
      # under valgrind a preloaded library may not be the one that runs
      # (mimalloc 3.4 falls back to glibc's there): count it only if its
      # code ran inside measure()
      if [ -n "${preload[$a]}" ] && ! grep -q "$(basename "${preload[$a]}")" "$out/cg.$a.$size.2" 2>/dev/null; then
        echo "bench-fastpath.sh: $a: its library did not run under callgrind (size $size): no count"
      elif [[ ${c[0]} =~ ^[0-9]+$ && ${c[1]} =~ ^[0-9]+$ ]] && ((c[1] > c[0])); then
        echo "$a $size $(((c[1] - c[0]) / n))" >>"$icount"
      fi
    done
  done
elif [ $instr = 1 ]; then
  echo "bench-fastpath.sh: valgrind not found: no instruction counts (apt-get install valgrind)"
fi

python3 - "$raw" "$icount" "$pattern" "$repeats" "${names[*]}" >"$out/table.md" <<'PY'
import sys, statistics, collections
raw, icount, pattern, repeats, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()
t = collections.defaultdict(list)
for line in open(raw):
    a, size, ns = line.split()
    t[(a, int(size))].append(float(ns))
ins = {}
for line in open(icount):
    a, size, n = line.split()
    ins[(a, int(size))] = int(n)
sizes = sorted({s for _, s in t})
what = "free of a block another thread allocated" if pattern == "remote" else "malloc/free pair"
print(f"ns per {what} ({pattern}), median of {repeats}, interleaved; ratio to lode in ()\n")
print("| size | " + " | ".join(names) + " |")
print("|---:|" + "---:|" * len(names))
for s in sizes:
    base = statistics.median(t[("lode", s)]) if ("lode", s) in t else None
    cells = []
    for a in names:
        m = statistics.median(t[(a, s)]) if (a, s) in t else None
        cells.append("-" if m is None else f"{m:.2f}" + (f" ({m / base:.2f})" if base and a != "lode" else ""))
    print(f"| {s} | " + " | ".join(cells) + " |")
if ins:
    print(f"\ninstructions per {'remote free' if pattern == 'remote' else 'pair'} (callgrind; the PLT jumps and the loop's own included, the same for all)\n")
    print("| size | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for s in sorted({s for _, s in ins}):
        print(f"| {s} | " + " | ".join(str(ins.get((a, s), "-")) for a in names) + " |")
PY
cat "$out/table.md"
[ -n "$md" ] && cp "$out/table.md" "$md"
exit 0
