#!/usr/bin/env bash
# cli-input-handling.sh LODE-REPLAY INPUT.ops
# Bad values and stray arguments are named as such (not "unknown option"),
# with usage, exit 2; a failed --to-bin leaves no OUT file; a directory symlink
# loop is walked once; a replay command with an awkward path pastes as printed.
set -u
replay=$1 input=$2 fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
bad() { echo "lode-replay $*" >&2; fail=1; }

# "ARGS|what stderr must say"
while IFS='|' read -r args want; do
  # shellcheck disable=SC2086
  err=$(timeout 10 "$replay" $args 2>&1 >/dev/null); rc=$? # (a bench of 10^20 runs would not end)
  if [ $rc -ne 2 ] || ! grep -q '^usage:' <<<"$err" || ! grep -qF -- "$want" <<<"$err" || grep -q 'unknown option' <<<"$err"; then
    bad "$args: exit $rc, stderr: $(head -1 <<<"$err")"
  fi
done <<EOF_CASES
--bench 5x $input|bad number of runs '5x'
--bench 0 $input|bad number of runs '0'
--bench -3 $input|bad number of runs '-3'
--bench abc $input|bad number of runs 'abc'
--bench 99999999999999999999 $input|bad number of runs
--bench|--bench needs a number of runs
--list-ops extra|--list-ops: unexpected argument 'extra'
--help extra|--help: unexpected argument 'extra'
-h extra|-h: unexpected argument 'extra'
--to-bin a b c|--to-bin: unexpected argument 'c'
--dict a b|--dict: unexpected argument 'b'
-v --list-ops|--list-ops goes first
EOF_CASES
out=$("$replay" --bench 2 "$input" 2>&1) || bad "--bench 2 $input: $out"

# --to-bin of a text-only op fails, and leaves no file
printf 't0 malloc 24 -> s0\nt0 fork\n' >"$tmp/fork.ops"
"$replay" --to-bin "$tmp/fork.ops" "$tmp/fork.bin" 2>/dev/null && bad "--to-bin fork.ops: succeeded"
[ -e "$tmp/fork.bin" ] && bad "--to-bin fork.ops: left $tmp/fork.bin ($(wc -c <"$tmp/fork.bin") bytes)"

# a symlink loop: each input once, and an end
mkdir -p "$tmp/loop/sub"
cp "$input" "$tmp/loop/sub/a.ops"
ln -s .. "$tmp/loop/sub/up"
ln -s . "$tmp/loop/self"
out=$(timeout 20 "$replay" "$tmp/loop" 2>&1); rc=$?
if [ $rc -ne 0 ] || ! grep -q '^lode-replay: 1 input(s), 0 failed' <<<"$out"; then
  bad "$tmp/loop (symlink loops): exit $rc, output: $(tail -3 <<<"$out")"
fi

# a failing input under a path with a space and a quote: its printed replay
# command, pasted into a shell, finds it
mkdir -p "$tmp/a dir"
printf 't0 malloc 24 -> s0\nt0 raw-double-free s0\n' >"$tmp/a dir/it's;x.ops"
cmd=$("$replay" "$tmp/a dir/it's;x.ops" 2>&1 | sed -n 's/^lode-replay: replay with: //p' | head -1)
[ -n "$cmd" ] || bad "no replay command printed"
out=$(bash -c "$cmd" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! grep -q '1 input(s), 1 failed' <<<"$out"; then
  bad "the printed replay command: $cmd: exit $rc, output: $(tail -3 <<<"$out")"
fi
exit $fail
