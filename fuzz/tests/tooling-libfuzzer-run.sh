#!/usr/bin/env bash
# tooling-libfuzzer-run.sh LIBFUZZER-RUN.SH LODE-REPLAY
# libfuzzer-run.sh reports only the crashes of its own run: two runs that
# each crash (a stand-in engine saving one artifact) name one input each,
# its own, kept where the printed replay command finds it.
set -u
script=$1 replay=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
corpus=$work/corpus
mkdir "$corpus" && printf 'seed' >"$corpus/seed.bin"
export TMPDIR=$work
fails=0
bad() { echo "tooling-libfuzzer-run: FAIL: $*" >&2; fails=$((fails + 1)); }

# stand-in engine: saves ${artifact_prefix}crash-$CRASH_NAME and fails, as
# libFuzzer does when an input crashes
cat >"$work/engine" <<'STANDIN'
#!/usr/bin/env bash
for a; do case $a in -artifact_prefix=*) prefix=${a#-artifact_prefix=} ;; esac; done
echo "==1== ERROR: libFuzzer: deadly signal"
echo crash >"${prefix}crash-$CRASH_NAME"
exit 1
STANDIN
chmod +x "$work/engine"

for run in first second; do
  if CRASH_NAME=$run "$script" "$work/engine" "$corpus" 1 "$replay" >"$work/$run.log" 2>&1; then
    bad "$run run: exited 0 after a crash"
  fi
done
got=$(grep -c 'replay with:' "$work/second.log")
[ "$got" -eq 1 ] || { cat "$work/second.log"; bad "second run: $got replay commands, expected 1 (its own crash)"; }
f=$(sed -n 's/^replay with: .* -v //p' "$work/second.log" | head -1)
case $f in
  *crash-second) [ -f "$f" ] || bad "second run: $f does not exist" ;;
  *) bad "second run: replay command names '$f', not its own crash" ;;
esac
[ $fails -eq 0 ] || exit 1
echo "tooling-libfuzzer-run: each run reports its own crash only"
