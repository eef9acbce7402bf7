#!/usr/bin/env bash
# hunt.sh: every lode-stress workload, with several seeds, against a list of
# allocators; prints an allocator x workload table: PASS, or the first
# failure (invariant or signal) with its replay line below the table.
#
#   scripts/hunt.sh [--seconds S] [--seeds N] [--threads N] [--allocators LIST]
#                   [--mimalloc-prefix DIR]... [-o FILE.md]
#
# Allocators (comma list; default all that are installed):
#   glibc, mimalloc, jemalloc, tcmalloc, scudo, lode   LD_PRELOAD of the library
#       (lode-stress --target libc: heaps are emulated with malloc, and a forced
#       collect is malloc_trim(0)); lode is liblode.so of this tree
#   lode-api        lode-stress --target lode (lode's own heaps and checker)
# --mimalloc-prefix DIR (repeatable): a mimalloc install prefix (its CMake
#   package); lode-stress is configured against it in build/hunt/ and run
#   with --target mimalloc (real mi_heap_* heaps).
# Seeds are printed; a failure's replay line reruns it.  Exit 0 always when
# the table was made (failures are findings), 2 on usage errors.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=2 seeds=2 threads=4 allocators="" out_md="" prefixes=()
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=${2:-}; shift 2 || usage ;;
    --seeds) seeds=${2:-}; shift 2 || usage ;;
    --threads) threads=${2:-}; shift 2 || usage ;;
    --allocators) allocators=${2:-}; shift 2 || usage ;;
    --mimalloc-prefix) [ $# -ge 2 ] || usage; prefixes+=("$2"); shift 2 ;;
    -o) out_md=${2:-}; shift 2 || usage ;;
    -h|--help) usage ;;
    *) echo "hunt.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ && $seeds =~ ^[1-9][0-9]*$ && $threads =~ ^[1-9][0-9]*$ ]] || usage

work=$root/build/hunt
mkdir -p "$work"
build() { # dir extra-cmake-args...
  local dir=$1; shift
  CC=${CC:-gcc} cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLODE_TESTING=OFF -DLODE_BUILD_TESTS=OFF \
    -DLODE_BUILD_FUZZ=OFF "$@" >"$dir.configure.log" 2>&1 && cmake --build "$dir" -j2 >"$dir.build.log" 2>&1
}
echo "hunt.sh: building lode-stress and liblode.so (Release) in $work/lode"
build "$work/lode" || { tail -20 "$work/lode.build.log"; echo "hunt.sh: build failed" >&2; exit 1; }
bin=$work/lode/stress/lode-stress
libdir=/usr/lib/x86_64-linux-gnu
scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | sort -V | tail -1)

# column name -> "binary target preload"
declare -A spec=(
  [glibc]="$bin libc -"
  [mimalloc]="$bin libc $libdir/libmimalloc.so.2"
  [jemalloc]="$bin libc $libdir/libjemalloc.so.2"
  [tcmalloc]="$bin libc $libdir/libtcmalloc_minimal.so.4"
  [scudo]="$bin libc ${scudo:-/nonexistent/libclang_rt.scudo_standalone.so}"
  [lode]="$bin libc $work/lode/alloc/liblode.so"
  [lode-api]="$bin lode -"
)
order=(glibc mimalloc jemalloc tcmalloc scudo lode lode-api)
[ -n "$allocators" ] && IFS=, read -r -a order <<<"$allocators"
cols=()
declare -A missing=()
for a in "${order[@]}"; do
  [ -n "${spec[$a]:-}" ] || { echo "hunt.sh: unknown allocator $a" >&2; usage; }
  read -r _ _ pre <<<"${spec[$a]}"
  [ "$pre" != - ] && [ ! -e "$pre" ] && missing[$a]=1
  cols+=("$a")
done
for p in "${prefixes[@]}"; do
  p=${p%/}
  name="mimalloc-api:$(basename "${p%/install}")" # /x/mi-3.4.3/install -> mi-3.4.3
  dir=$work/$(basename "${p%/install}")
  echo "hunt.sh: configuring lode-stress against the mimalloc in $p"
  if build "$dir" -DCMAKE_PREFIX_PATH="$p" && [ -x "$dir/stress/lode-stress-mimalloc" ]; then
    spec[$name]="$dir/stress/lode-stress mimalloc -"
  else
    spec[$name]="- - -"; missing[$name]=1
    grep -h 'target mimalloc' "$dir.configure.log" | sed 's/^/  /'
  fi
  cols+=("$name")
done
wls=$("$bin" --help 2>&1 | sed -n 's/.*comma list of \([a-z,]*\) .*/\1/p')
[ -n "$wls" ] || { echo "hunt.sh: cannot read the workload list from lode-stress --help" >&2; exit 1; }
IFS=, read -r -a wlist <<<"$wls"
base_seed=${HUNT_SEED:-$(( $(date +%s) % 100000 ))}
echo "hunt.sh: ${#cols[@]} allocators x ${#wlist[@]} workloads x $seeds seeds (seeds $base_seed..$((base_seed + seeds - 1))), ${seconds}s each, $threads threads"

declare -A cell=()
notes=()
for a in "${cols[@]}"; do
  for wl in "${wlist[@]}"; do
    if [ -n "${missing[$a]:-}" ]; then cell[$a,$wl]="not installed"; continue; fi
    read -r b tgt pre <<<"${spec[$a]}"
    cell[$a,$wl]=PASS
    for s in $(seq "$base_seed" $((base_seed + seeds - 1))); do
      log=$work/$a.$wl.$s.log
      env=()
      [ "$pre" != - ] && env=(LD_PRELOAD="$pre")
      timeout -k 5 $(( ${seconds%.*} * 4 + 60 )) env "${env[@]}" "$b" --target "$tgt" --workload "$wl" \
        --seconds "$seconds" --seed "$s" --threads "$threads" --quiet >"$log" 2>&1
      rc=$?
      [ $rc -eq 0 ] && continue
      inv=$(sed -n 's/^ *invariant: *//p' "$log" | head -1)
      [ -z "$inv" ] && [ $rc -eq 124 ] && inv="HANG (timeout)"
      [ -z "$inv" ] && [ $rc -gt 128 ] && inv="signal $((rc - 128))"
      [ -z "$inv" ] && inv="exit $rc"
      replay=$(sed -n 's/^ *replay: *//p' "$log" | head -1)
      [ -z "$replay" ] && replay="${env[*]} $b --target $tgt --workload $wl --seconds $seconds --seed $s --threads $threads"
      [ "$pre" != - ] && [[ $replay != *LD_PRELOAD* ]] && replay="LD_PRELOAD=$pre $replay"
      notes+=("$((${#notes[@]} + 1)). $a / $wl: $inv -- replay: \`$replay\` (log $log)")
      cell[$a,$wl]="$inv [${#notes[@]}]"
      break
    done
  done
  printf '  %-22s done\n' "$a"
done

table() {
  printf '| allocator |'; for wl in "${wlist[@]}"; do printf ' %s |' "$wl"; done; echo
  printf '|---|'; for _ in "${wlist[@]}"; do printf -- '---|'; done; echo
  for a in "${cols[@]}"; do
    printf '| %s |' "$a"; for wl in "${wlist[@]}"; do printf ' %s |' "${cell[$a,$wl]}"; done; echo
  done
  echo
  for n in "${notes[@]}"; do echo "$n"; done
}
echo
table
if [ -n "$out_md" ]; then
  { echo "Hunt $(date -u +%Y-%m-%d): ${seeds} seeds from $base_seed, ${seconds}s per run, $threads threads"; echo; table; } >"$out_md"
  echo "hunt.sh: table written to $out_md"
fi
