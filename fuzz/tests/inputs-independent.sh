#!/usr/bin/env bash
# inputs-independent.sh LODE-REPLAY CORPUS-DIR
# An input's run must not depend on the inputs run before it in the same
# process (libFuzzer, AFL++'s persistent mode and --no-fork run many; its
# replay command runs it alone).  Every corpus input's whole -v trace, run
# alone (lode-replay forks a child per input from the same start), must read
# the same as in one --no-fork process after other inputs, in several orders
# (so each input follows different predecessors).  Normalised away, as they
# differ between processes whatever lode does: the addresses of libc, stack
# and global foreign pointers and of LODE_SECURE's malloc(0) block (a real
# mapping: ASLR), fork child pids, and the byte count of the stats op's
# printout (its numbers are the process's cumulative stats).
set -u
replay=$1 corpus=$2
export LC_ALL=C
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# One line per trace line, "INPUT<tab>LINE", in the input's own line order.
keyed() {
  awk '
    /^== / { name = substr($0, 4); next }
    /^lode-replay: [0-9]+ input\(s\), / { next }
    name == "" { next }
    {
      if ($0 ~ / foreign-free (libc|stack|global) /) sub(/0x[0-9a-f]+/, "ADDR")
      sub(/= 0x[0-9a-f]+ usable 0$/, "= ZERO usable 0")
      sub(/\([0-9]+ bytes, all /, "(N bytes, all ")
      sub(/child [0-9]+: clean/, "child PID: clean")
      print name "\t" $0
    }' "$1" | sort -s -t "$(printf '\t')" -k1,1
}

# Inputs that fail alone are fuzz.replay_corpus's to report: left out here.
"$replay" -v "$corpus" >"$tmp/alone" 2>&1
sed -n 's/^lode-replay: FAIL \(.*\): \(exit status\|killed by signal\) [0-9]*$/\1/p' "$tmp/alone" | sort -u >"$tmp/failing"
while IFS= read -r f; do echo "note: $f fails alone: left out"; done <"$tmp/failing"
grep '^== ' "$tmp/alone" | cut -c4- | grep -vxF -f "$tmp/failing" >"$tmp/order.forward"
n=$(wc -l <"$tmp/order.forward")
[ "$n" -gt 0 ] || { echo "FAIL: no inputs in $corpus"; exit 1; }
keyed "$tmp/alone" >"$tmp/alone.k"

tac "$tmp/order.forward" >"$tmp/order.reverse"
for seed in 1 2; do
  awk -v s=$seed 'BEGIN { srand(s) } { printf "%.9f\t%s\n", rand(), $0 }' "$tmp/order.forward" |
    sort | cut -f2- >"$tmp/order.shuffle$seed"
done
orders="forward reverse shuffle1 shuffle2"
for o in $orders; do
  # one process per order, two at a time (the ctest runs on 2 cores)
  (mapfile -t files <"$tmp/order.$o"
   "$replay" -v --no-fork -- "${files[@]}" >"$tmp/run.$o" 2>&1; echo $? >"$tmp/rc.$o") &
  [ "$o" = reverse ] && wait
done
wait

# A single input before f (in order file $2) after which f's trace changes:
# a two-input reproducer, "-" when none alone does it.
culprit() {
  local f=$1 order=$2 p
  grep -F -- "$f$(printf '\t')" "$tmp/alone.k" | cut -f2- >"$tmp/f.alone"
  while IFS= read -r p; do
    [ "$p" = "$f" ] && break
    "$replay" -v --no-fork -- "$p" "$f" >"$tmp/pair" 2>&1
    keyed "$tmp/pair" | grep -F -- "$f$(printf '\t')" | cut -f2- | cmp -s - "$tmp/f.alone" || { echo "$p"; return; }
  done <"$order"
  echo -
}

fail=0 searched=0
for o in $orders; do
  keyed "$tmp/run.$o" >"$tmp/run.$o.k"
  ran=$(grep -c '^== ' "$tmp/run.$o")
  if [ "$(cat "$tmp/rc.$o")" -ne 0 ]; then
    stop=$(grep '^== ' "$tmp/run.$o" | tail -1 | cut -c4-)
    echo "FAIL ($o order): stopped at $stop, input $ran of $n: it fails after the inputs before it"
    grep '^lode-fuzz: FAILURE' "$tmp/run.$o" | head -2 | sed 's/^/    /'
    fail=1
  fi
  # the inputs this run reached, alone
  cut -f1 "$tmp/run.$o.k" | uniq >"$tmp/names"
  awk -F '\t' 'NR == FNR { ran[$0] = 1; next } ran[$1]' "$tmp/names" "$tmp/alone.k" >"$tmp/alone.sub"
  diff "$tmp/alone.sub" "$tmp/run.$o.k" | sed -n 's/^[<>] //p' | cut -f1 | sort -u >"$tmp/differ"
  shown=0
  while IFS= read -r f; do
    fail=1
    echo "FAIL ($o order): $f reads differently after other inputs"
    shown=$((shown + 1))
    if [ $searched -lt 3 ]; then
      searched=$((searched + 1))
      p=$(culprit "$f" "$tmp/order.$o")
      if [ "$p" != - ]; then
        echo "    reproduce: $replay -v --no-fork $p $f   (compare with: $replay -v $f)"
      else
        echo "    no single input before it in this order changes it: it takes several"
      fi
    fi
    if [ $shown -le 5 ]; then
      diff <(grep -F -- "$f$(printf '\t')" "$tmp/alone.sub" | cut -f2-) \
           <(grep -F -- "$f$(printf '\t')" "$tmp/run.$o.k" | cut -f2-) | head -6 | sed 's/^/    /'
    fi
  done <"$tmp/differ"
done
echo "inputs-independent: $n inputs in $(wc -w <<<"$orders") orders, $([ $fail -eq 0 ] &&
  echo 'every trace the same alone and after others' || echo FAILED)"
exit $fail
