#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script: the libFuzzer engine of lode's
# harness as $OUT/lode_fuzz, with its seed corpus and dictionary.  Uses the
# variables OSS-Fuzz sets: $CC $CFLAGS $LIB_FUZZING_ENGINE $OUT $SRC (lode's
# checkout at $SRC/lode unless LODE_SRC says otherwise).
lode=${LODE_SRC:-$SRC/lode}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work/lode-obj" "$OUT"
defs="-D_GNU_SOURCE -DLODE_DEBUG=1 -DLODE_TESTING=1 -DLODE_SIM=1" # simulated threads and OS, as in fuzz/CMakeLists.txt
objs=()
for f in "$lode"/alloc/src/*.c "$lode"/fuzz/{harness,optable,ops,shadow,sched_sim,sched_real,fail,engine_libfuzzer}.c; do
  case $(basename "$f") in override.c) continue ;; esac # lode_* API only, no malloc override
  o=$work/lode-obj/$(basename "$(dirname "$f")")-$(basename "${f%.c}").o
  # shellcheck disable=SC2086
  $CC $CFLAGS -std=c11 $defs -I"$lode/alloc/include" -I"$lode/alloc/src" -fno-builtin-malloc \
      -ftls-model=initial-exec -c "$f" -o "$o"
  objs+=("$o")
done
# shellcheck disable=SC2086
$CC $CFLAGS $LIB_FUZZING_ENGINE "${objs[@]}" -lpthread -o "$OUT/lode_fuzz"
rm -f "$OUT/lode_fuzz_seed_corpus.zip"
(cd "$lode/corpus" && find . -type f -name '*.bin' -not -path './regressions/*' | sort | zip -q -@ "$OUT/lode_fuzz_seed_corpus.zip")
cp "$lode/fuzz/lode.dict" "$OUT/lode_fuzz.dict"
printf '[libfuzzer]\ndict = lode_fuzz.dict\nmax_len = 6000\n' >"$OUT/lode_fuzz.options"
