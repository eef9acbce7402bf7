#!/bin/sh
# replay_env.sh LODE_STRESS LIBLODE: a run under LD_PRELOAD with a lode option
# in the environment dies of a fatal signal; its replay line must name both,
# or replaying it would test another allocator with other settings.
bin=$1 lib=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
env LD_PRELOAD="$lib" LODE_PURGE_DELAY=7 "$bin" --target libc --workload xthread --seconds 60 --threads 2 \
  --seed 9 --quiet >"$out" 2>&1 &
pid=$!
# wait for the run to start its workers (the header line), then stop it hard
i=0
while [ $i -lt 100 ] && ! grep -q "lode-stress: target" "$out"; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
kill -SEGV $pid
wait $pid
rc=$?
cat "$out"
[ $rc -ne 0 ] || { echo "replay_env.sh: the run survived SIGSEGV" >&2; exit 1; }
line=$(grep -m1 "replay:" "$out") || { echo "replay_env.sh: no replay line" >&2; exit 1; }
case $line in
  *"LD_PRELOAD=$lib "*) ;;
  *) echo "replay_env.sh: the replay line does not name LD_PRELOAD=$lib" >&2; exit 1 ;;
esac
case $line in
  *"LODE_PURGE_DELAY=7 "*"$bin --target libc --workload xthread --seed 9 "*) ;;
  *) echo "replay_env.sh: the replay line does not name LODE_PURGE_DELAY=7 before the command" >&2; exit 1 ;;
esac
echo "replay_env.sh: the replay line names the environment"
