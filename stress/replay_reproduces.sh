#!/bin/sh
# replay_reproduces.sh LODE-STRESS: a failure's replay line brings the same
# failure back (invariant and round).  Corruptions are injected past round 0,
# and caught both by a worker (P1) and by main at the barrier (A2): main's
# report once named round 0 and replayed one round, which never got there.
stress=$1
fail=0
for case in P1@2 A2@3 A2@4 P1@3:exit; do
  inv=${case%@*} round=${case#*@} round=${round%:exit}
  out=$("$stress" --workload mixed --rounds 7 --threads 2 --seed 5 --quiet --inject-corruption "$case" 2>&1)
  inv1=$(printf '%s\n' "$out" | sed -n 's/^  invariant: *//p' | head -1)
  round1=$(printf '%s\n' "$out" | sed -n 's/^  round: *//p' | head -1)
  replay=$(printf '%s\n' "$out" | sed -n 's/^  replay: *//p' | head -1)
  if [ "$inv1" != "$inv" ] || [ "$round1" != "$round" ] || [ -z "$replay" ]; then
    printf '%s\n' "$out" | tail -12
    echo "FAIL $case: reported invariant '$inv1' round '$round1' (wanted $inv, $round)"; fail=1; continue
  fi
  out2=$(sh -c "$replay" 2>&1)
  inv2=$(printf '%s\n' "$out2" | sed -n 's/^  invariant: *//p' | head -1)
  round2=$(printf '%s\n' "$out2" | sed -n 's/^  round: *//p' | head -1)
  if [ "$inv2" != "$inv1" ] || [ "$round2" != "$round1" ]; then
    printf '%s\n' "$out2" | tail -12
    echo "FAIL $case: the replay gave invariant '$inv2' round '$round2', the run '$inv1' round '$round1'"; fail=1
    continue
  fi
  echo "ok $case: $inv1 in round $round1, and again from: $replay"
done
exit $fail
