#!/usr/bin/env bash
# afl-smoke.sh SOURCE-DIR WORK-DIR SECONDS
# A short AFL++ campaign through scripts/afl-campaign.sh (one instance, its own
# build directories under WORK-DIR): the persistent and CMPLOG targets build,
# afl-fuzz runs on the corpus, and nothing crashes.  Exit 77 (skip) when
# afl-clang-fast is missing and cannot be installed.
set -u
src=$1 work=$2 secs=$3
mkdir -p "$work"
"$src/scripts/afl-campaign.sh" --duration "$secs" --jobs 1 --out "$work/out" --build-dir "$work" >"$work/campaign.log" 2>&1
rc=$?
cat "$work/campaign.log" | grep -v '^    ' | tail -40
[ $rc -eq 77 ] && { echo "afl-smoke: SKIPPED: afl-clang-fast not available (install afl++, e.g. scripts/setup.sh)"; exit 77; }
grep -q '^execs total *[1-9]' "$work/campaign.log" || { echo "afl-smoke: no executions recorded"; exit 1; }
exit $rc
