#!/bin/sh
# sim-arena-anywhere.sh LODE-REPLAY BLOCKER.so INPUT...: the simulated OS's
# choices (MADV_FREE keeps or drops a purge's bytes) must not depend on where
# its arena lies.  Under ASan the arena's fixed address is taken and it lands
# anywhere; coins drawn from the real address made a sanitized fuzzer's
# failures not replay in lode-replay.  Each input runs as usual and with
# BLOCKER preloaded (it takes the arena's address first): the summary of the
# simulated OS must be the same, and the addresses must differ (or the
# check proved nothing).
r=$1 blocker=$2
shift 2
status=0
for f in "$@"; do
  a=$("$r" -v "$f" 2>&1) b=$(LD_PRELOAD=$blocker "$r" -v "$f" 2>&1)
  sa=$(printf '%s\n' "$a" | grep '^simulated OS:') sb=$(printf '%s\n' "$b" | grep '^simulated OS:')
  if printf '%s\n' "$b" | grep -q 'could not take'; then echo "sim-arena-anywhere: the blocker failed" >&2; exit 1; fi
  if [ "$(printf '%s\n' "$a" | grep -c 0x1000)" -eq "$(printf '%s\n' "$b" | grep -c 0x1000)" ]; then
    echo "sim-arena-anywhere: $f: the arena did not move (same addresses)" >&2; status=1; continue
  fi
  if [ -z "$sa" ] || [ "$sa" != "$sb" ]; then
    echo "sim-arena-anywhere: $f: at the fixed address '$sa', elsewhere '$sb'" >&2
    echo "  replay with: LD_PRELOAD=$blocker $r -v $f" >&2
    status=1
  else
    echo "sim-arena-anywhere: $f: $sa (both)"
  fi
done
exit $status
