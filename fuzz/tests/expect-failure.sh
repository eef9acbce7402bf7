#!/usr/bin/env bash
# expect-failure.sh LODE-REPLAY MODE INPUT.ops REGEX
# The oracle must fire on a deliberately wrong input: lode-replay --mode MODE
# exits 1 and its output matches REGEX (a silent pass, or a different
# failure, fails), with the command that replays it.
set -u
replay=$1 mode=$2 input=$3 regex=$4
out=$("$replay" --mode "$mode" "$input" 2>&1); rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 1 ]; then
  echo "expect-failure: lode-replay exited $rc on $input ($mode mode), expected 1 (the oracle must report it)" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
  echo "expect-failure: output does not match /$regex/" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -q -- "replay with: .* $input"; then
  echo "expect-failure: no replay command printed" >&2
  exit 1
fi
echo "expect-failure: reported as expected ($mode mode)"
