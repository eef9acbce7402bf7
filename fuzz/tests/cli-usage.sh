#!/usr/bin/env bash
# cli-usage.sh LODE-REPLAY: a bad flag or no input prints usage on stderr, exit 2;
# --help prints it on stdout, exit 0; a text input with a NUL byte, exit 1.
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
# a text input cut by a NUL byte is an error, not the ops before it
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 't0 malloc 24 -> s0\n\0t0 raw-double-free s0\n' >"$tmp/nul.ops"
err=$("$replay" "$tmp/nul.ops" 2>&1 >/dev/null); rc=$?
if [ $rc -ne 1 ] || ! grep -q 'NUL byte at offset 19' <<<"$err"; then
  echo "lode-replay nul.ops: exit $rc, stderr: $err" >&2
  fail=1
fi
exit $fail
