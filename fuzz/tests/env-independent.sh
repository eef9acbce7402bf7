#!/usr/bin/env bash
# env-independent.sh LODE-REPLAY CORPUS-DIR
# lode reads LODE_* options from its environment; a fuzz run must not: an
# input runs as its replay command runs it, wherever either runs.  The -v
# trace of the corpus's top-level inputs, each alone and all in one process
# (--no-fork), must read the same with each option set in the environment as
# with none.  Normalised (ASLR, pids): foreign pointers' addresses, LODE_SECURE's
# malloc(0) block (a real mapping), fork child pids.
set -u
replay=$1 corpus=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
inputs=("$corpus"/*.ops)
unset_all=()
for v in $(env | sed -n 's/^\(LODE_[A-Z_]*\)=.*/\1/p'); do unset_all+=(-u "$v"); done

trace() { # trace OUT [VAR=VALUE]: both runs, normalised
  local out=$1; shift
  { env "${unset_all[@]}" "$@" "$replay" -v -- "${inputs[@]}"
    echo "== rc $?"
    env "${unset_all[@]}" "$@" "$replay" -v --no-fork -- "${inputs[@]}"
    echo "== rc $?"; } 2>&1 |
    sed -E '/ foreign-free (libc|stack|global) /s/0x[0-9a-f]+/ADDR/; s/= 0x[0-9a-f]+ usable 0$/= ZERO usable 0/
            s/child [0-9]+: clean/child PID: clean/' >"$out"
}

trace "$tmp/base"
grep -q '^== rc 0$' "$tmp/base" || { echo "FAIL: the inputs do not run clean without LODE_* variables"; exit 1; }
fail=0
for setting in LODE_PURGE_MODE=free LODE_PURGE_MODE=decommit LODE_HUGE_OS_PAGES=0 LODE_PURGE_DELAY=0 \
               LODE_PURGE_DELAY=-1 LODE_PURGE_BACKOFF=0 LODE_QUARANTINE=0 LODE_ON_ERROR=abort LODE_VERBOSE=0 \
               LODE_SHOW_STATS=1; do
  trace "$tmp/env" "$setting"
  if ! cmp -s "$tmp/base" "$tmp/env"; then
    echo "FAIL: $setting in the environment changes the trace:"
    diff "$tmp/base" "$tmp/env" | head -8 | sed 's/^/    /'
    fail=1
  fi
done
echo "env-independent: ${#inputs[@]} inputs, $([ $fail -eq 0 ] && echo 'the same trace whatever LODE_* says' || echo FAILED)"
exit $fail
