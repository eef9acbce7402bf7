#!/usr/bin/env bash
# oss-fuzz-build.sh SOURCE-DIR OUT-DIR: runs fuzz/oss-fuzz/build.sh the way
# OSS-Fuzz does (libFuzzer + ASan settings), checks what it must produce, and
# runs the fuzzer over its seed corpus once.
set -eu
src=$1 out=$2
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
CC=clang CFLAGS="-fsanitize=address,fuzzer-no-link -g" LIB_FUZZING_ENGINE=-fsanitize=fuzzer \
  SRC="$work/src" LODE_SRC="$src" WORK="$work" OUT="$out" "$src/fuzz/oss-fuzz/build.sh"
for f in lode_fuzz lode_fuzz_seed_corpus.zip lode_fuzz.dict; do
  [ -s "$out/$f" ] || { echo "oss-fuzz-build: $out/$f missing"; exit 1; }
done
mkdir -p "$work/seeds" && (cd "$work/seeds" && unzip -q "$out/lode_fuzz_seed_corpus.zip")
n=$(find "$work/seeds" -type f | wc -l)
[ "$n" -gt 0 ] || { echo "oss-fuzz-build: empty seed corpus"; exit 1; }
"$out/lode_fuzz" -runs=0 -dict="$out/lode_fuzz.dict" "$work/seeds" 2>&1 | tail -3
echo "oss-fuzz-build: ok ($n seeds)"
