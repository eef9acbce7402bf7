#!/usr/bin/env bash
# libfuzzer-run.sh LIBFUZZER-BINARY CORPUS-DIR SECONDS [LODE-REPLAY]
# Runs the libFuzzer engine for SECONDS on one core, seeded with a scratch copy
# of the corpus (libFuzzer writes new inputs into its first corpus directory;
# corpus/ itself stays untouched).  Fails if libFuzzer finds a crash, and then
# prints the command that replays it.  SECONDS 0: run every input once
# (regressions too) under the engine's sanitizers, no fuzzing.
# Each run's crashes go to a directory of their own (printed), never mixed
# with an earlier run's.
set -u
usage() { # [status]: --help gets stdout and 0, a bad argument stderr and 2
  local st=${1:-2}
  echo "usage: $0 LIBFUZZER-BINARY CORPUS-DIR SECONDS [LODE-REPLAY]" >&"$((st ? 2 : 1))"
  exit "$st"
}
case ${1:-} in
  -h|--help) usage 0 ;;
  -*) echo "libfuzzer-run: unknown option '$1'" >&2; usage ;;
esac
[ $# -ge 3 ] && [ $# -le 4 ] && [[ $3 =~ ^[0-9]+$ ]] || usage
bin=$1 corpus=$2 secs=$3 replay=${4:-lode-replay}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
skip=(-not -path '*/regressions/*')
[ "$secs" = 0 ] && skip=()
find "$corpus" -type f -name '*.bin' "${skip[@]}" -exec cp {} "$work/corpus/" \;
# text inputs (the campaign's minimised queue in corpus/afl) in binary form
if command -v "$replay" >/dev/null 2>&1; then
  find "$corpus" -type f -name '*.ops' "${skip[@]}" -print0 | while IFS= read -r -d '' f; do
    "$replay" --to-bin "$f" "$work/corpus/$(basename "$(dirname "$f")")-$(basename "${f%.ops}").bin" 2>/dev/null
  done
fi
dict=$(dirname "$0")/../lode.dict
if [ "$secs" = 0 ]; then
  n=$(find "$work/corpus" -type f | wc -l)
  [ "$n" -gt 0 ] || { echo "libfuzzer: no inputs found in $corpus" >&2; exit 1; }
  if ! "$bin" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/" "$work"/corpus/* >"$work/log" 2>&1; then
    tail -40 "$work/log"
    echo "libfuzzer: an input fails under the sanitizers; replay each with: $bin FILE (text form: $replay --to-bin F.ops F.bin)"
    exit 1
  fi
  echo "libfuzzer: $n corpus inputs clean under the sanitizers"
  exit 0
fi
"$bin" -max_total_time="$secs" -seed=1 -timeout=10 -rss_limit_mb=4096 -dict="$dict" \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus" >"$work/log" 2>&1
rc=$?
grep -E '^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec|cov:' "$work/log" | tail -4
if [ $rc -ne 0 ]; then
  tail -40 "$work/log"
  found=0
  for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    if [ $found -eq 0 ]; then
      keep=$(mktemp -d "${TMPDIR:-/tmp}/lode-libfuzzer-crashes.XXXXXX") || exit 1
      echo "libfuzzer: this run's crashes are in $keep"
    fi
    found=$((found + 1))
    cp "$a" "$keep/" && echo "replay with: $replay -v $keep/$(basename "$a")"
  done
  [ $found -gt 0 ] || echo "libfuzzer: exited $rc without saving a crashing input (see the log above)"
  exit 1
fi
echo "libfuzzer: ${secs}s clean"
