#!/usr/bin/env bash
# inputs-independent.sh LODE-REPLAY CORPUS-DIR
# An input's run must not depend on the inputs run before it in the same
# process (libFuzzer, AFL++'s persistent mode and --no-fork run many; its
# replay command runs it alone).  For every corpus input that sets a purge
# mode, the trace's simulated-OS line (purges, and how many the MADV_FREE
# coin let keep their bytes) must read the same alone and after two others.
set -u
replay=$1 corpus=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
warm1=$corpus/mixed-300-21.ops warm2=$corpus/afl/main-id_000069.ops
n=0 fail=0
while IFS= read -r f; do
  n=$((n + 1))
  "$replay" -v "$f" >"$tmp/alone" 2>&1 || { echo "FAIL $f: fails alone"; fail=1; continue; }
  "$replay" -v --no-fork "$warm1" "$warm2" "$f" >"$tmp/after" 2>&1 || { echo "FAIL $f: fails after others"; fail=1; continue; }
  a=$(grep '^simulated OS:' "$tmp/alone" | tail -1)
  b=$(sed -n "/^== ${f//\//\\/}\$/,\$p" "$tmp/after" | grep '^simulated OS:' | tail -1)
  [ -n "$a" ] || { echo "FAIL $f: no simulated-OS line in the trace"; fail=1; continue; }
  if [ "$a" != "$b" ]; then
    echo "FAIL $f: alone '$a', after two other inputs '$b'"
    fail=1
  fi
done < <(grep -l 'purge-mode' "$corpus"/*.ops "$corpus"/*/*.ops 2>/dev/null | sort)
echo "inputs-independent: $n inputs, $([ $fail -eq 0 ] && echo all the same alone and after others || echo FAILED)"
exit $fail
