#!/usr/bin/env bash
# tooling-minimize.sh MINIMIZE.PY LODE-REPLAY SOURCE-DIR
# fuzz/minimize.py shrinks every kind of failure: an oracle FAILURE (the real
# lode-replay) and a CRASH (signal N) (a stand-in replay that prints what
# fuzz/fail.c and replay.c print for a crash: a correct lode never crashes),
# keeping the signal; a missing or binary input or replay binary is a clear
# error (exit 2, no traceback); no temporary file is left behind.
set -u
min=$1 replay=$2 src=$3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir "$work/tmp"
export TMPDIR=$work/tmp
fails=0
bad() { echo "tooling-minimize: FAIL: $*" >&2; fails=$((fails + 1)); }

# the crash report formats the stand-in copies must still be lode's
grep -q '"lode-fuzz: CRASH (signal "' "$src/fuzz/fail.c" || bad "fail.c no longer prints 'lode-fuzz: CRASH (signal N)'"
grep -q 'FAIL %s: killed by signal %d' "$src/fuzz/replay.c" || bad "replay.c no longer prints 'FAIL F: killed by signal N'"

# stand-in: `malloc 777` dies by SIGSEGV, `free s9` by SIGABRT (the first one
# reached counts), as lode-replay reports a crash of its child
cat >"$work/replay" <<'EOF'
#!/usr/bin/env bash
[ "$1" = --mode ] && shift 2
n=0
while IFS= read -r l; do
  case $l in '#'*|'') continue ;; esac
  n=$((n + 1)) sig=
  case $l in *'malloc 777 '*) sig=11 ;; *'free s9') sig=6 ;; esac
  if [ -n "$sig" ]; then
    t=${l%% *}; op=${l#* }; op=${op%% *}
    echo "lode-fuzz: CRASH (signal $sig) at op #$n ($t $op)" >&2
    echo "lode-fuzz: replay with: $0 -v $1" >&2
    echo "lode-replay: FAIL $1: killed by signal $sig" >&2
    echo "lode-replay: replay with: $0 -v $1" >&2
    echo "lode-replay: 1 input(s), 1 failed (sim mode)"
    exit 1
  fi
done <"$1"
echo "lode-replay: 1 input(s), 0 failed (sim mode)"
EOF
chmod +x "$work/replay"

cat >"$work/crash.ops" <<'EOF'
# crashes at the malloc 777 (SIGSEGV); without it, at the free s9 (SIGABRT)
t0 malloc 100 -> s1
t1 malloc 200 -> s2
t0 free s1
t1 malloc 777 -> s4
t0 malloc 16 -> s9
t0 free s9
t1 collect
t0 malloc 300 -> s3
EOF
if python3 "$min" --mode real "$work/replay" "$work/crash.ops" "$work/out.ops" >"$work/log" 2>&1; then
  got=$(grep -v '^#' "$work/out.ops")
  [ "$got" = "t1 malloc 777 -> s4" ] || bad "crash shrunk to '$got', expected the one malloc 777 line"
else
  cat "$work/log"; bad "a crashing input (CRASH (signal 11)) was not minimised"
fi

# an oracle failure, with the real replay
if python3 "$min" "$replay" "$src/fuzz/tests/double-free.ops" "$work/df.ops" >"$work/log" 2>&1; then
  n=$(grep -vc '^#' "$work/df.ops")
  [ "$n" -le 2 ] && grep -q raw-double-free "$work/df.ops" || bad "double-free.ops shrunk to $n ops"
  "$replay" "$work/df.ops" >/dev/null 2>&1 && bad "the shrunk double-free.ops no longer fails"
else
  cat "$work/log"; bad "double-free.ops was not minimised"
fi

# errors: status and a message of the tool's own, never a traceback
head -c 64 /dev/urandom >"$work/binary.ops"; printf '\0' >>"$work/binary.ops"
printf 't0 malloc 8 -> s0\nt0 free s0\n' >"$work/clean.ops"
check() { # want-status what args...
  local want=$1 what=$2; shift 2
  python3 "$min" "$@" >"$work/log" 2>&1; local st=$?
  [ $st -eq "$want" ] || bad "$what: exit status $st, expected $want"
  grep -q Traceback "$work/log" && bad "$what: a Python traceback"
  grep -q '^minimize: ' "$work/log" || bad "$what: no 'minimize:' message"
}
check 2 "missing input" "$replay" "$work/none.ops" "$work/o.ops"
check 2 "binary input" "$replay" "$work/binary.ops" "$work/o.ops"
check 2 "missing replay" "$work/no-replay" "$work/crash.ops" "$work/o.ops"
check 1 "input that does not fail" "$replay" "$work/clean.ops" "$work/o.ops"

left=$(ls -A "$TMPDIR")
[ -z "$left" ] || bad "temporary files left behind: $left"
[ $fails -eq 0 ] || exit 1
echo "tooling-minimize: crash and oracle failures minimised, errors clean, nothing left behind"
