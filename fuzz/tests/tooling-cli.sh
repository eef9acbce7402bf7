#!/usr/bin/env bash
# tooling-cli.sh SOURCE-DIR
# Every fuzz tool takes --help (usage on stdout, status 0) and refuses an
# unknown flag (usage on stderr, status 2): fuzz/*.py, fuzz/bench/*.sh,
# fuzz/tests/libfuzzer-run.sh, scripts/afl-campaign.sh.
set -u
src=$1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fails=0
bad() { echo "tooling-cli: FAIL: $*" >&2; fails=$((fails + 1)); }
n=0
for t in "$src"/fuzz/*.py "$src"/fuzz/bench/*.sh "$src"/fuzz/tests/libfuzzer-run.sh "$src"/scripts/afl-campaign.sh; do
  [ -f "$t" ] || continue
  n=$((n + 1)) name=${t#"$src"/}
  cmd=("$t"); [[ $t == *.py ]] && cmd=(python3 "$t")
  (cd "$work" && timeout 60 "${cmd[@]}" --help) >"$work/out" 2>"$work/err"; st=$?
  [ $st -eq 0 ] || bad "$name --help: status $st, expected 0"
  grep -qi usage "$work/out" || bad "$name --help: no usage on stdout"
  [ -s "$work/err" ] && bad "$name --help: wrote to stderr: $(head -3 "$work/err")"
  (cd "$work" && timeout 60 "${cmd[@]}" --no-such-flag) >"$work/out" 2>"$work/err"; st=$?
  [ $st -eq 2 ] || bad "$name --no-such-flag: status $st, expected 2"
  grep -qi usage "$work/err" || bad "$name --no-such-flag: no usage on stderr"
  grep -q Traceback "$work/err" && bad "$name --no-such-flag: a Python traceback"
  [ -s "$work/out" ] && bad "$name --no-such-flag: wrote to stdout: $(head -3 "$work/out")"
done
[ $n -ge 5 ] || bad "only $n tools found under $src"
[ $fails -eq 0 ] || exit 1
echo "tooling-cli: $n tools: --help and unknown flags as they should be"
