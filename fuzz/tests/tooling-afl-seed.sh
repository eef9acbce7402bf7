#!/usr/bin/env bash
# tooling-afl-seed.sh SOURCE-DIR WORK-DIR SECONDS
# scripts/afl-campaign.sh makes its random choices from a printed seed:
# --seed S gives afl-fuzz -s S (main) and -s S+1 (the secondary), as each
# instance's fuzzer_stats records, and the summary prints the seed and the
# rerun command; a bad --seed is a usage error (2).  Exit 77 (skip) when
# afl-clang-fast is missing and cannot be installed.
set -u
src=$1 work=$2 secs=$3
fails=0
bad() { echo "tooling-afl-seed: FAIL: $*" >&2; fails=$((fails + 1)); }
"$src/scripts/afl-campaign.sh" --seed x1 --duration 1 >/dev/null 2>&1
st=$?; [ $st -eq 2 ] || bad "--seed x1: status $st, expected 2"
mkdir -p "$work"
"$src/scripts/afl-campaign.sh" --seed 4242 --duration "$secs" --jobs 2 --out "$work/out" --build-dir "$work" \
  >"$work/campaign.log" 2>&1
rc=$?
grep -v '^    ' "$work/campaign.log" | tail -30
[ $rc -eq 77 ] && { echo "tooling-afl-seed: SKIPPED: afl-clang-fast not available"; exit 77; }
for inst in main:4242 sec1:4243; do
  f=$work/out/sync/${inst%%:*}/fuzzer_stats
  grep -Eq "^command_line *:.* -s ${inst#*:} " "$f" 2>/dev/null || bad "${inst%%:*}: afl-fuzz ran without -s ${inst#*:}"
done
grep -q '^seed  *4242 ' "$work/campaign.log" || bad "the summary does not print the seed"
grep -q 'rerun: .*--seed 4242' "$work/campaign.log" || bad "no rerun command with the seed printed"
[ $fails -eq 0 ] || exit 1
echo "tooling-afl-seed: the campaign's seed reaches every afl-fuzz instance and is printed"
