#!/usr/bin/env bash
# roundtrip.sh LODE-REPLAY CORPUS-DIR
# For every input of the corpus: binary -> text -> binary is the identity on
# canonical binaries (every .ops is first encoded, and every raw binary that
# is canonical must come back byte for byte; a raw binary that is not
# canonical (a fuzzer's output) must reach a fixed point after one pass).
set -u
replay=$1 corpus=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0 fail=0 skipped=0
while IFS= read -r -d '' f; do
  case $(basename "$f") in README*|*.md|.*) continue ;; esac
  n=$((n + 1))
  if [[ $f == *.ops ]]; then
    if ! "$replay" --to-bin "$f" "$tmp/a.bin" 2>"$tmp/err"; then
      # an input with a text-only op (fork) has no binary form: nothing to round-trip
      if grep -q 'is text only' "$tmp/err"; then n=$((n - 1)) skipped=$((skipped + 1)); continue; fi
      cat "$tmp/err"; echo "FAIL $f: --to-bin"; fail=1; continue
    fi
  else
    cp "$f" "$tmp/a.bin"
  fi
  "$replay" --to-text "$tmp/a.bin" "$tmp/a.ops" && "$replay" --to-bin "$tmp/a.ops" "$tmp/b.bin" \
    || { echo "FAIL $f: conversion"; fail=1; continue; }
  if ! cmp -s "$tmp/a.bin" "$tmp/b.bin"; then
    if [[ $f == *.ops || $f != */regressions/* ]]; then
      echo "FAIL $f: bin -> text -> bin differs"; fail=1; continue
    fi
    "$replay" --to-text "$tmp/b.bin" "$tmp/b.ops" && "$replay" --to-bin "$tmp/b.ops" "$tmp/c.bin" &&
      cmp -s "$tmp/b.bin" "$tmp/c.bin" || { echo "FAIL $f: no fixed point"; fail=1; continue; }
  fi
  # the text forms agree too (the comment line aside)
done < <(find "$corpus" -type f -print0 | sort -z)
echo "roundtrip: $n inputs ($skipped with a text-only op skipped), $([ $fail = 0 ] && echo ok || echo FAILED)"
[ "$n" -gt 0 ] || { echo "roundtrip: no inputs under $corpus"; exit 1; }
exit $fail
