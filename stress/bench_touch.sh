#!/bin/sh
# bench_touch.sh LODE_STRESS: --bench --touch pages and --touch all must write
# the blocks' pages (twice the page faults of --touch first on the large
# workload), or the "program using its memory" bench measures nothing new;
# and --wipe-floor must write the blocks it frees; and the CPU time it
# prints is plausible.
# The check is of the driver, so it runs on glibc: lode's own writes (a
# LODE_SECURE build zeroes and checks blocks, a Debug one fills them) faulted
# pages in either way and made the ratio depend on the build and the machine
# (1.36 in one CI run of the secure tree, 2.1 locally).  glibc gives ~2.9;
# writing nothing more gives ~1.0.
# Faults are counted per 4 KiB page, so huge blocks are kept off
# transparent huge pages (one fault per 2 MiB would hide the writes); a
# kernel that puts every mapping on them cannot tell the two apart.
b=$1
if grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
  echo "bench_touch: transparent huge pages are 'always' here: faults do not count pages; skipped"
  exit 77
fi
export LODE_HUGE_OS_PAGES=0
run() { "$b" --bench --quiet --target libc --workload large --rounds 2 --threads 1 --touch "$1" | sed -n 's/.*minor_faults=\([0-9]*\).*/\1/p'; }
first=$(run first) pages=$(run pages) all=$(run all)
echo "bench_touch: minor faults on glibc, --touch first: $first, --touch pages: $pages, --touch all: $all"
[ -n "$first" ] && [ -n "$pages" ] && [ -n "$all" ] || { echo "bench_touch: no minor_faults in the bench line" >&2; exit 1; }
[ "$pages" -ge $((2 * first)) ] || { echo "bench_touch: --touch pages did not write the blocks" >&2; exit 1; }
[ "$all" -ge $((2 * first)) ] || { echo "bench_touch: --touch all did not write the blocks" >&2; exit 1; }
# --wipe-floor zeroes every freed block (rptest: 16 B .. 16 KiB): the pages
# --touch first left alone are written too (~1.8x the faults on glibc)
rp() { "$b" --bench --quiet --target libc --workload rptest --rounds 2 --threads 1 "$@" | sed -n 's/.*minor_faults=\([0-9]*\).*/\1/p'; }
plain=$(rp) wiped=$(rp --wipe-floor)
echo "bench_touch: rptest minor faults on glibc: $plain, with --wipe-floor: $wiped"
[ -n "$plain" ] && [ -n "$wiped" ] && [ $((2 * wiped)) -ge $((3 * plain)) ] ||
  { echo "bench_touch: --wipe-floor did not write the freed blocks" >&2; exit 1; }
# cpu_seconds (user + sys) sits beside the wall time: one thread writing
# every byte of its blocks uses the CPU (> 0) and no more than the run took
line=$("$b" --bench --quiet --target libc --workload large --rounds 2 --threads 1 --touch all | grep '^bench ')
echo "bench_touch: $line"
echo "$line" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  END { exit !(v["cpu_seconds"] != "" && v["cpu_seconds"] > 0 && v["cpu_seconds"] <= 2 * v["seconds"] + 0.5) }' ||
  { echo "bench_touch: cpu_seconds missing or not within (0, 2 x seconds + 0.5]" >&2; exit 1; }
echo "bench_touch: ok"
