#!/bin/sh
# bench_touch.sh LODE_STRESS [secure]: --bench --touch pages must write the
# blocks' pages (twice the page faults of --touch first on the large workload;
# 1.5x for a LODE_SECURE build, see below),
# or the "program using its memory" bench measures nothing new.
# Faults are counted per 4 KiB page, so huge blocks are kept off
# transparent huge pages (one fault per 2 MiB would hide the writes); a
# kernel that puts every mapping on them cannot tell the two apart.
b=$1 secure=${2:-}
if grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
  echo "bench_touch: transparent huge pages are 'always' here: faults do not count pages; skipped"
  exit 77
fi
export LODE_HUGE_OS_PAGES=0
run() { "$b" --bench --quiet --workload large --rounds 2 --threads 1 --touch "$1" | sed -n 's/.*minor_faults=\([0-9]*\).*/\1/p'; }
first=$(run first) pages=$(run pages)
echo "bench_touch: minor faults, --touch first: $first, --touch pages: $pages"
[ -n "$first" ] && [ -n "$pages" ] || { echo "bench_touch: no minor_faults in the bench line" >&2; exit 1; }
# LODE_SECURE touches blocks itself (--touch first ~7,400 faults against
# ~5,900), so its ratio sits at 2.0-2.2 where the default build's is ~2.7: a 2x
# bound failed there by noise in CI.  Writing nothing more gives ~1.0 in both.
if [ "$secure" = secure ]; then num=3 den=2; else num=2 den=1; fi
[ $((den * pages)) -ge $((num * first)) ] || { echo "bench_touch: --touch pages did not write the blocks" >&2; exit 1; }
echo "bench_touch: ok"
