#!/usr/bin/env bash
# cli-usage.sh LODE-REPLAY: a bad flag or no input prints usage on stderr, exit 2;
# --help prints it on stdout, exit 0.
set -u
replay=$1 fail=0
for args in "--bogus" "" "--to-text" "-x corpus" "--mode fast corpus" "--mode" "--dict a b"; do
  # shellcheck disable=SC2086
  err=$("$replay" $args 2>&1 >/dev/null); rc=$?
  if [ $rc -ne 2 ] || ! grep -q '^usage:' <<<"$err"; then
    echo "lode-replay $args: exit $rc, stderr: $err" >&2
    fail=1
  fi
done
for h in --help -h; do
  out=$("$replay" $h 2>/dev/null); rc=$?
  if [ $rc -ne 0 ] || ! grep -q '^usage:' <<<"$out"; then
    echo "lode-replay $h: exit $rc, stdout: $out" >&2
    fail=1
  fi
done
exit $fail
