#!/usr/bin/env bash
# lode vs glibc, mimalloc, jemalloc, tcmalloc and Scudo on the lode-stress workloads
# in benchmark mode (fixed work, no checks, no patterns).  Each run is one
# workload in one process (peak RSS is per process); within each repeat the
# allocators alternate.  Prints tables of medians (time, peak RSS, minor page
# faults, CPU time) with ratios to mimalloc,
# writes build/bench/results.csv, build/bench/summary.csv and a chart
# build/bench/bench.svg (+ .png with gnuplot).
#
#   scripts/bench.sh [--repeats N] [--threads N] [--workloads a,b,..] [--allocators a,b,..] [--touch first|pages|all]
#                    [--hog N] [--seed N] [--rounds R --round-ops N]
#
# The allocators run in a new random order for each workload of each repeat
# (--seed, printed, replays it): a run is faster or slower by what ran just
# before it (on this VM a process that faults in transparent huge pages
# after one that freed only small pages takes frames the host took back, up
# to 5x slower), so no allocator may always follow the same one.
#
# --threads above the CPU count and --hog N (N processes that spin for the
# whole run, beside every allocator alike) measure behaviour when threads
# outnumber cores, as on a loaded server: waits that spin or yield and lock
# hand-offs cost most then.  Compare the same-run ratios with and without.
# Read the CPU-time table there too: a wait for a CPU (the driver's barrier
# each round waits for its last thread to be scheduled) adds wall time to
# every allocator alike, which pulls any wall ratio towards 1; spinning or
# yielding inside an allocator shows as CPU time, lock hand-offs as both.
# --rounds R --round-ops N (lode-stress's: 300 rounds of 2,000 operations a
# thread by default) keep the work and change how often the threads meet at
# the barrier (and how often 30 % of rounds re-create them): 20 rounds of
# 30,000 measure the allocator under load rather than the scheduler's
# wake-ups, as programs that do not meet every millisecond see it.
#
# Allocators: lode (--target lode), lode-secure (LODE_SECURE build), lode-wipe
# (lode with --wipe-floor: the least a secure build's wipe and check cost), glibc,
# mimalloc, jemalloc, tcmalloc, scudo (LD_PRELOAD of Debian's libraries, Scudo
# from the clang runtime (libclang_rt.scudo_standalone), with
# --target libc), mimalloc-api (--target mimalloc: mi_heap_* and mi_collect,
# when CMake found mimalloc), lode-preload (LD_PRELOAD liblode.so, --target
# libc).  Under --target libc a forced collect is malloc_trim(0): a real trim
# for glibc and a forced collect for lode, nothing for the preloaded mimalloc,
# jemalloc and tcmalloc (none exports it).  Heaps are emulated there.  So in
# mixed (10% of its collects are forced), collect and heaps, lode compares
# with mimalloc-api, which is asked for the same work -- though lode's forced
# collect also purges every free page of the thread at once (P4), where
# mimalloc 2.0's leaves that to its delay.  mimalloc-own (jemalloc-own,
# tcmalloc-own on request) is the preloaded library with --collect-via own:
# forced collects call mi_collect(true) (jemalloc's purge, tcmalloc's
# release), so lode-preload meets it like with like.
#
# floor (huge only): lode-stress --floor, the same steps with no allocator:
# each slot writes into a region of its own (perfect reuse without moving
# anything), and floor-bound, from the same run, the writes alone plus the
# first touch of the largest live total: no allocator with 4 KiB pages is
# faster than floor-bound on this machine, whose page faults cost 2-8x more
# than another's -- read huge's ratios against it.
#
# The ratios are to mimalloc, or to the first allocator when mimalloc is not
# measured.  A library whose path has a space or colon (ld.so splits
# LD_PRELOAD there) is preloaded through a symlink in /tmp/lode-preload.*;
# one ld.so cannot preload is skipped with a line saying so.  A failed or
# hung run prints the command that reproduces it, and the script then exits
# 1 (after the tables); Ctrl-C stops it at once (exit 130).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
me=bench.sh
. "$root/scripts/lib-run.sh"
repeats=5 threads=4 touch=first hog=0 seed="" rounds="" round_ops=""
workloads=mixed,collect,churn,heaps,xthread,large,realloc,espresso,huge,gthread,leak,rptest,thrash,larson
allocators=lode,lode-secure,glibc,mimalloc,mimalloc-own,mimalloc-api,jemalloc,tcmalloc,scudo,lode-preload,floor
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 [--repeats N] [--threads N] [--workloads LIST] [--allocators LIST] [--touch first|pages|all] [--hog N] [--seed N] [--rounds R] [--round-ops N]" >&"$((st ? 2 : 1))"
  exit "$st"
}
while [ $# -gt 0 ]; do
  case $1 in
    --repeats) repeats=${2:-}; shift 2 || usage ;;
    --threads) threads=${2:-}; shift 2 || usage ;;
    --workloads) workloads=${2:-}; shift 2 || usage ;;
    --allocators) allocators=${2:-}; shift 2 || usage ;;
    --touch) touch=${2:-}; shift 2 || usage ;;
    --hog) hog=${2:-}; shift 2 || usage ;;
    --seed) seed=${2:-}; shift 2 || usage ;;
    --rounds) rounds=${2:-}; shift 2 || usage ;;
    --round-ops) round_ops=${2:-}; shift 2 || usage ;;
    -h|--help) usage 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $repeats =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ && $touch =~ ^(first|pages|all)$ && $hog =~ ^[0-9]+$ &&
   $seed =~ ^[0-9]*$ && $rounds =~ ^([1-9][0-9]*)?$ && $round_ops =~ ^([1-9][0-9]*)?$ ]] || usage
[ -n "$seed" ] || seed=$(( $(date +%s) % 1000000 ))
seed=$((10#$seed)) # 08 is 8, not a bad octal number
out=$root/build/bench
mkdir -p "$out"
libdir=/usr/lib/x86_64-linux-gnu

build() { # dir extra-cmake-args...
  local dir=$1; shift
  echo "bench.sh: building $dir"
  CC=${CC:-gcc} cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLODE_DEBUG=0 -DLODE_TESTING=OFF \
    -DLODE_BUILD_TESTS=OFF -DLODE_BUILD_FUZZ=OFF "$@" >"$dir.configure.log" 2>&1 &&
    cmake --build "$dir" -j2 --target lode-stress lode >"$dir.build.log" 2>&1 ||
    { tail -20 "$dir.build.log" "$dir.configure.log" 2>/dev/null; echo "bench.sh: build of $dir failed" >&2; exit 1; }
}
hog_pids=() child="" pre_dir="" keep_pre=0
stop_hogs() { [ ${#hog_pids[@]} -gt 0 ] && kill "${hog_pids[@]}" 2>/dev/null; hog_pids=(); }
trap 'stop_hogs; [ -z "$pre_dir" ] || [ $keep_pre -eq 1 ] || rm -rf "$pre_dir"' EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
# shell words, quoted where needed: a command to paste
quote() {
  local w ws=()
  for w; do if [[ $w =~ ^[A-Za-z0-9_./:,+=@-]+$ ]]; then ws+=("$w"); else ws+=("${w@Q}"); fi; done
  echo "${ws[*]}"
}

build "$out/lode"
build "$out/lode-secure" -DLODE_SECURE=ON

bin=$out/lode/stress/lode-stress
scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | sort -V | tail -1)
# name -> binary, target, preload (- none), forced-collect call ("" default);
# an array each, since a path may hold spaces
declare -A sbin=() stgt=() spre=() svia=() sarg=()
spec() { sbin[$1]=$2 stgt[$1]=$3 spre[$1]=$4 svia[$1]=${5:-} sarg[$1]=${6:-}; }
spec lode "$bin" lode -
spec lode-secure "$out/lode-secure/stress/lode-stress" lode -
spec lode-wipe "$bin" lode - "" --wipe-floor
spec glibc "$bin" libc -
spec mimalloc "$bin" libc "$libdir/libmimalloc.so.2"
spec mimalloc-own "$bin" libc "$libdir/libmimalloc.so.2" own
spec mimalloc-api "$bin" mimalloc -
spec jemalloc "$bin" libc "$libdir/libjemalloc.so.2"
spec jemalloc-own "$bin" libc "$libdir/libjemalloc.so.2" own
spec tcmalloc "$bin" libc "$libdir/libtcmalloc_minimal.so.4"
spec tcmalloc-own "$bin" libc "$libdir/libtcmalloc_minimal.so.4" own
spec scudo "$bin" libc "${scudo:-/nonexistent/libclang_rt.scudo_standalone.so}"
spec lode-preload "$bin" libc "$out/lode/alloc/liblode.so"
spec floor "$bin" lode - "" --floor
IFS=, read -r -a wls <<<"$workloads"
IFS=, read -r -a allocs_in <<<"$allocators"
allocs=()
for a in "${allocs_in[@]}"; do
  [ -n "${sbin[$a]:-}" ] || { echo "bench.sh: unknown allocator $a" >&2; usage; }
  tgt=${stgt[$a]} pre=${spre[$a]}
  if [ "$tgt" = mimalloc ] && [ ! -x "$out/lode/stress/lode-stress-mimalloc" ]; then
    echo "bench.sh: $a skipped (no mimalloc CMake package at configure time)"; continue
  fi
  if [ "$pre" != - ]; then
    if [ ! -e "$pre" ]; then echo "bench.sh: $a skipped ($pre missing; scripts/setup.sh installs it)"; continue; fi
    safe_preload "$pre" || { echo "bench.sh: cannot make a preload symlink in /tmp" >&2; exit 1; }
    # ld.so only warns on a library it cannot preload, and the column would time glibc
    err=$(LD_PRELOAD="$safe" "$bin" --help 2>&1)
    if grep -Eq 'cannot be preloaded|error while loading shared libraries' <<<"$err"; then
      echo "bench.sh: $a skipped (ld.so cannot preload $pre): $(grep -Em1 'cannot be preloaded|error while loading' <<<"$err")"
      continue
    fi
    spre[$a]=$safe
  fi
  allocs+=("$a")
done
[ ${#allocs[@]} -gt 0 ] || { echo "bench.sh: no allocator to measure" >&2; exit 1; }

csv=$out/results.csv
for _ in $(seq 1 "$hog"); do
  ( trap - EXIT INT TERM; while :; do :; done ) &
  hog_pids+=($!)
done
echo "allocator,workload,repeat,seconds,peak_rss_kib,minor_faults,cpu_seconds" >"$csv"
# A run takes seconds; one that hangs (mimalloc 2.0.9 can spin forever at
# thread exit after its heap bug, see stress/README.md) is killed and reported.
run_timeout=${BENCH_RUN_TIMEOUT:-60}
declare -A hung=()
failed=()
runlog=$out/run.log
total=$((repeats * ${#wls[@]} * ${#allocs[@]})) n=0
echo "bench.sh: ${#allocs[@]} allocators x ${#wls[@]} workloads x $repeats repeats, $threads threads, $hog CPU hog(s) on $(nproc) CPUs${rounds:+, $rounds rounds}${round_ops:+ of $round_ops ops}, order seed $seed (--seed $seed replays it)"
RANDOM=$seed
for r in $(seq 1 "$repeats"); do
  for wl in "${wls[@]}"; do
    # a fresh order each time (Fisher-Yates): no allocator always runs
    # first, nor always after the same one
    order=("${allocs[@]}")
    for ((i = ${#order[@]} - 1; i > 0; i--)); do
      j=$((RANDOM % (i + 1)))
      t=${order[i]} order[i]=${order[j]} order[j]=$t
    done
    for a in "${order[@]}"; do
      b=${sbin[$a]} tgt=${stgt[$a]} pre=${spre[$a]} via=${svia[$a]}
      cmd=("$b" --bench --quiet --workload "$wl" --target "$tgt" --threads "$threads" --touch "$touch")
      [ -n "$via" ] && cmd+=(--collect-via "$via")
      [ -n "$rounds" ] && cmd+=(--rounds "$rounds")
      [ -n "$round_ops" ] && cmd+=(--round-ops "$round_ops")
      [ -n "${sarg[$a]}" ] && cmd+=("${sarg[$a]}")
      [ "$pre" = - ] || cmd=(env LD_PRELOAD="$pre" "${cmd[@]}")
      n=$((n + 1))
      [ "$a" = floor ] && [ "$wl" != huge ] && continue # (huge's alone)
      [ -n "${hung[$a/$wl]:-}" ] && continue # it hung once: do not wait again
      timeout -k 5 "$run_timeout" "${cmd[@]}" >"$runlog" 2>&1 &
      child=$!
      wait "$child"
      rc=$? child=""
      line=$(<"$runlog")
      s=$(grep -o ' seconds=[0-9.]*' <<<"$line" | cut -d= -f2)
      m=$(grep -o 'peak_rss_kib=[0-9]*' <<<"$line" | cut -d= -f2)
      pf=$(grep -o 'minor_faults=[0-9]*' <<<"$line" | cut -d= -f2)
      cpu=$(grep -o 'cpu_seconds=[0-9.]*' <<<"$line" | cut -d= -f2)
      [ "$pre" != - ] && [ -n "$pre_dir" ] && [[ $pre == "$pre_dir"/* ]] && [ $rc -ne 0 ] && keep_pre=1 # the replay needs it
      if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        hung[$a/$wl]=1
        failed+=("$a $wl repeat $r: hung (killed after ${run_timeout}s): $(quote "${cmd[@]}")")
        echo "bench.sh: $a $wl did not finish within ${run_timeout}s (killed; its other repeats skipped); replay: $(quote "${cmd[@]}")"; continue
      fi
      if [ $rc -ne 0 ] || [ -z "$s" ]; then
        failed+=("$a $wl repeat $r: exit $rc: $(quote "${cmd[@]}")")
        echo "bench.sh: $a $wl failed (exit $rc); replay: $(quote "${cmd[@]}")"; tail -5 <<<"$line"; continue
      fi
      echo "$a,$wl,$r,$s,$m,$pf,$cpu" >>"$csv"
      bound=$(grep -o 'bound_seconds=[0-9.]*' <<<"$line" | cut -d= -f2)
      [ -n "$bound" ] && echo "floor-bound,$wl,$r,$bound,,,$bound" >>"$csv"
      [ -t 2 ] && printf '\rbench.sh: %d/%d runs' "$n" "$total" >&2
    done
  done
done
stop_hogs
[ -t 2 ] && echo >&2

rm -f "$out/ref.txt"
shown=()
for a in "${allocs[@]}"; do shown+=("$a"); [ "$a" = floor ] && shown+=(floor-bound); done
python3 - "$csv" "$out" "${shown[*]}" <<'PY'
import csv, statistics, sys, os
rows = list(csv.DictReader(open(sys.argv[1])))
out = sys.argv[2]
if not rows:
    sys.exit("bench.sh: no run succeeded: no table")
# columns in the order asked for, not the (shuffled) order the runs took
ran = {r["allocator"] for r in rows}
allocs, wls = [a for a in sys.argv[3].split() if a in ran], []
for r in rows:
    if r["workload"] not in wls: wls.append(r["workload"])
med = {}
for a in allocs:
    for w in wls:
        t = [float(r["seconds"]) for r in rows if r["allocator"] == a and r["workload"] == w]
        m = [int(r["peak_rss_kib"] or 0) for r in rows if r["allocator"] == a and r["workload"] == w]
        pf = [int(r["minor_faults"] or 0) for r in rows if r["allocator"] == a and r["workload"] == w]
        cpu = [float(r["cpu_seconds"] or 0) for r in rows if r["allocator"] == a and r["workload"] == w]
        if t: med[a, w] = (statistics.median(t), statistics.median(m), statistics.median(pf), statistics.median(cpu))
ref = "mimalloc" if "mimalloc" in allocs else allocs[0]
open(os.path.join(out, "ref.txt"), "w").write(ref + "\n")  # the chart's labels
with open(os.path.join(out, "summary.csv"), "w") as f:
    f.write("workload,allocator,median_seconds,median_peak_rss_kib,median_minor_faults,time_ratio,rss_ratio,"
            "median_cpu_seconds,cpu_ratio\n")
    for w in wls:
        for a in allocs:
            if (a, w) in med and (ref, w) in med:
                t, m, pf, c = med[a, w]; rt, rm, _, rc = med[ref, w]
                f.write(f"{w},{a},{t:.4f},{m},{pf:.0f},{t / rt:.3f},{m / rm:.3f},{c:.4f},{c / rc if rc else 0:.3f}\n")
for title, idx, unit, scale in (("median time, s", 0, "", 1.0), ("median peak RSS, MiB", 1, "", 1024.0),
                                ("median page faults (minor), thousands", 2, "", 1000.0),
                                ("median CPU time (user + sys), s", 3, "", 1.0)):
    print(f"\n{title} (ratio to {ref})")
    print(f"{'workload':9}" + "".join(f"{a:>16}" for a in allocs))
    for w in wls:
        line = f"{w:9}"
        for a in allocs:
            if (a, w) not in med or (ref, w) not in med:
                line += f"{'-':>16}"; continue
            v, r = med[a, w][idx], med[ref, w][idx]
            if not r or (idx in (1, 2) and not v):  # (floor-bound: a time only)
                line += f"{'-':>16}"; continue
            line += f"{v / scale:9.3f} ({v / r:4.2f})" if idx in (0, 3) else f"{v / scale:9.1f} ({v / r:4.2f})"
        print(line)
# huge against the machine's floor
for w in wls:
    if ("floor-bound", w) not in med: continue
    b = med["floor-bound", w][0]
    rel = ", ".join(f"{a} {med[a, w][0] / b:.2f}x" for a in allocs if (a, w) in med and a != "floor-bound")
    g = f", {b / med['glibc', w][0]:.2f}x glibc's time" if ("glibc", w) in med else ""
    print(f"\n{w} against floor-bound ({b:.3f} s{g}: no allocator with 4 KiB pages is faster here): {rel}")
if "lode" in allocs and "lode-secure" in allocs:
    costs = [med["lode-secure", w][0] / med["lode", w][0] for w in wls if ("lode", w) in med and ("lode-secure", w) in med]
    if costs:
        print(f"\nlode-secure time / lode time: " + ", ".join(f"{w} {c:.2f}x" for w, c in zip(wls, costs)))
# Targets: lode <= 1.0x mimalloc's time and <= 1.1x its peak RSS.  Besides the
# headline column pair (lode's API against mimalloc through LD_PRELOAD, where
# a forced collect is a no-op malloc_trim and heaps are plain malloc), compare
# like with like: both through LD_PRELOAD (lode still honours malloc_trim),
# and both through their own API.
for mine, theirs, how in (("lode", ref, "headline"), ("lode-preload", "mimalloc", "both LD_PRELOAD"),
                          ("lode-preload", "mimalloc-own", "both LD_PRELOAD, forced collects through each one's own call"),
                          ("lode", "mimalloc-api", "both native API")):
    targets = [w for w in wls if (mine, w) in med and (theirs, w) in med]
    if not targets or mine == theirs: continue
    res = []
    for w in targets:
        rt, rm = med[mine, w][0] / med[theirs, w][0], med[mine, w][1] / med[theirs, w][1]
        if rt > 1.0 or rm > 1.1: res.append(f"{w} (time {rt:.2f}x, RSS {rm:.2f}x)")
    print("target %s vs %s (%s): %s" % (mine, theirs, how, "met" if not res else "missed on " + ", ".join(res)))
# chart data for gnuplot: one row per workload, one column per allocator
for kind, idx in (("time", 0), ("rss", 1)):
    with open(os.path.join(out, f"chart-{kind}.dat"), "w") as f:
        f.write("workload " + " ".join(allocs) + "\n")
        for w in wls:
            f.write(w + " " + " ".join(
                f"{med[a, w][idx] / med[ref, w][idx]:.4f}" if (a, w) in med and (ref, w) in med else "0" for a in allocs) + "\n")
# SVG written here (used when gnuplot is missing)
def svg(path):
    W, H, pad = 980, 620, 60
    ph = (H - 3 * pad) / 2
    colors = ["#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a", "#d62728", "#9467bd", "#8c564b", "#e377c2",
              "#17becf", "#bcbd22"]
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>']
    for p, (kind, idx, title) in enumerate((("time", 0, f"time / {ref}"), ("rss", 1, f"peak RSS / {ref}"))):
        top = pad + p * (ph + pad)
        vals = [med[a, w][idx] / med[ref, w][idx] for w in wls for a in allocs if (a, w) in med and (ref, w) in med]
        vmax = max(vals + [1.0]) * 1.1
        s.append(f'<text x="{pad}" y="{top - 10}" font-size="13">{title} (lower is better; line = 1.0)</text>')
        gw = (W - 2 * pad) / len(wls)
        bw = gw * 0.8 / len(allocs)
        for i, w in enumerate(wls):
            for j, a in enumerate(allocs):
                if (a, w) not in med or (ref, w) not in med: continue
                v = med[a, w][idx] / med[ref, w][idx]
                h = v / vmax * ph
                x = pad + i * gw + gw * 0.1 + j * bw
                s.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" fill="{colors[j % len(colors)]}"><title>{a} {w}: {v:.2f}</title></rect>')
            s.append(f'<text x="{pad + i * gw + gw / 2:.1f}" y="{top + ph + 14}" text-anchor="middle">{w}</text>')
        y1 = top + ph - 1.0 / vmax * ph
        s.append(f'<line x1="{pad}" x2="{W - pad}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="black" stroke-dasharray="4"/>')
        s.append(f'<line x1="{pad}" x2="{pad}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    for j, a in enumerate(allocs):
        s.append(f'<rect x="{pad + j * 100}" y="{H - 22}" width="10" height="10" fill="{colors[j % len(colors)]}"/>'
                 f'<text x="{pad + j * 100 + 14}" y="{H - 13}">{a}</text>')
    s.append("</svg>")
    open(path, "w").write("\n".join(s))
svg(os.path.join(out, "bench-fallback.svg"))
PY
py=$?
ref=$(cat "$out/ref.txt" 2>/dev/null)

if [ $py -ne 0 ] || [ -z "$ref" ]; then
  echo "bench.sh: the summary step failed (exit $py): no chart" >&2
elif command -v gnuplot >/dev/null; then
  ncol=$(( ${#allocs[@]} + 1 ))
  for fmt in "svg size 1000,640" "pngcairo size 1000,640" "png size 1000,640"; do
    ext=${fmt%% *}; ext=${ext/pngcairo/png}
    [ "$ext" = png ] && [ -s "$out/bench.png" ] && continue
    gnuplot 2>/dev/null <<GP && echo "bench.sh: chart $out/bench.$ext"
set terminal $fmt
set output "$out/bench.$ext"
set multiplot layout 2,1 title "lode-stress --bench, $threads threads, medians of $repeats (ratio to $ref)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set yrange [0:*]
set grid ytics
set ylabel "time / $ref"
plot for [i=2:$ncol] "$out/chart-time.dat" using i:xtic(1) title columnheader(i), 1 with lines dt 2 lc rgb "black" notitle
set ylabel "peak RSS / $ref"
plot for [i=2:$ncol] "$out/chart-rss.dat" using i:xtic(1) title columnheader(i), 1 with lines dt 2 lc rgb "black" notitle
unset multiplot
GP
  done
else
  cp "$out/bench-fallback.svg" "$out/bench.svg"
  echo "bench.sh: gnuplot missing; wrote $out/bench.svg from the script"
fi
echo "bench.sh: raw runs $csv, medians $out/summary.csv"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench.sh: FAIL: ${#failed[@]} run(s) failed; each reruns with:" >&2
  for f in "${failed[@]}"; do echo "  $f" >&2; done
  [ $keep_pre -eq 0 ] || echo "bench.sh: those preload through symlinks in $pre_dir (kept; remove it when done)" >&2
  exit 1
fi
[ $py -eq 0 ] || exit 1
