#!/usr/bin/env bash
# parks.sh LODE-REPLAY
# Every test point an input can name arms that point of lode's, and no other.
# (A park once armed lode's point by its index in the harness's own list of
# names, which skips wait-freeing: `park claim-failed` armed wait-freeing and
# never parked.)  The names come from decoding every value of a park op's
# point byte, so a point added to the list is checked too.
set -u
replay=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
names=()
for k in $(seq 0 31); do
  printf "\\x3a\\x$(printf %02x "$k")" >"$tmp/p.bin"
  "$replay" --to-text "$tmp/p.bin" "$tmp/p.ops" || { echo "FAIL: --to-text of park byte $k"; exit 1; }
  n=$(awk '$2 == "park" { print $3 }' "$tmp/p.ops")
  [ -n "$n" ] || { echo "FAIL: park byte $k decodes to no park op"; cat "$tmp/p.ops"; exit 1; }
  [[ " ${names[*]} " == *" $n "* ]] || names+=("$n")
done
[ "${#names[@]}" -ge 7 ] || { echo "FAIL: only ${#names[@]} points: ${names[*]}"; exit 1; }
fail=0
for n in "${names[@]}"; do
  printf 't1 park %s\nt1 malloc 8 -> s0\n' "$n" >"$tmp/in.ops"
  out=$("$replay" -v "$tmp/in.ops" 2>&1)
  if grep -q "(t1 stops at $n in its next op)" <<<"$out"; then echo "ok   park $n"
  else echo "FAIL park $n arms another point:"; grep park <<<"$out"; fail=1; fi
done
exit $fail
