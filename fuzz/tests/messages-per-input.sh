#!/usr/bin/env bash
# messages-per-input.sh LODE-REPLAY FAILING-INPUT CLEAN-INPUT
# An input that stops at a failure leaves lode's message for it unread; the
# next input (lode-replay's next child, AFL++'s next fork-server child) must
# not read it as its own.  FAILING-INPUT then CLEAN-INPUT: 1 failed, the first.
set -u
replay=$1 bad=$2 good=$3
out=$("$replay" "$bad" "$good" 2>&1); rc=$?
printf '%s\n' "$out"
fail=0
[ $rc -eq 1 ] || { echo "messages-per-input: exit $rc, expected 1" >&2; fail=1; }
grep -q '^lode-replay: 2 input(s), 1 failed' <<<"$out" || { echo "messages-per-input: expected 1 of 2 failed" >&2; fail=1; }
grep -qF "FAIL $good" <<<"$out" && { echo "messages-per-input: $good failed after $bad (alone it passes)" >&2; fail=1; }
grep -qF "FAIL $bad" <<<"$out" || { echo "messages-per-input: $bad did not fail" >&2; fail=1; }
exit $fail
