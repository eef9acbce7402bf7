#!/bin/sh
# bench_touch.sh LODE_STRESS: --bench --touch pages must write the blocks'
# pages (half as many page faults again as --touch first on the large workload, at least),
# or the "program using its memory" bench measures nothing new.
# Faults are counted per 4 KiB page, so huge blocks are kept off
# transparent huge pages (one fault per 2 MiB would hide the writes); a
# kernel that puts every mapping on them cannot tell the two apart.
b=$1
if grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
  echo "bench_touch: transparent huge pages are 'always' here: faults do not count pages; skipped"
  exit 77
fi
export LODE_HUGE_OS_PAGES=0
run() { "$b" --bench --quiet --workload large --rounds 2 --threads 1 --touch "$1" | sed -n 's/.*minor_faults=\([0-9]*\).*/\1/p'; }
first=$(run first) pages=$(run pages)
echo "bench_touch: minor faults, --touch first: $first, --touch pages: $pages"
[ -n "$first" ] && [ -n "$pages" ] || { echo "bench_touch: no minor_faults in the bench line" >&2; exit 1; }
# Half as many faults again, not twice as many: LODE_SECURE touches blocks
# itself (first ~7,400 against ~5,900), so its ratio sits at 2.0-2.2 and a
# 2x bound failed by noise in CI; writing nothing more gives a ratio of ~1.
[ $((2 * pages)) -ge $((3 * first)) ] || { echo "bench_touch: --touch pages did not write the blocks" >&2; exit 1; }
echo "bench_touch: ok"
