#!/usr/bin/env bash
# Real programs under LD_PRELOAD=liblode.so must print exactly what they
# print without it.  Usage: preload_programs.sh /path/to/liblode.so
set -u
lib=${1:?usage: preload_programs.sh LIBLODE_SO}
lib=$(realpath "$lib") || exit 2
[ -f "$lib" ] || { echo "no such library: $lib"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0; passed=0; skipped=0

# run NAME CMD...: plain run, then preloaded run; outputs and exit codes must match.
run() {
  local name=$1; shift
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "skip $name: $1 not installed"; skipped=$((skipped + 1)); return
  fi
  (cd "$work" && "$@") >"$work/$name.plain" 2>&1; local rc1=$?
  (cd "$work" && LD_PRELOAD="$lib" LODE_SHOW_STATS=1 "$@") >"$work/$name.lode" 2>"$work/$name.stats"; local rc2=$?
  # stderr of the preloaded run carries the statistics; program stderr is compared through .plain
  (cd "$work" && LD_PRELOAD="$lib" "$@") >"$work/$name.lode2" 2>&1; local rc3=$?
  if [ $rc1 -ne $rc3 ] || ! cmp -s "$work/$name.plain" "$work/$name.lode2"; then
    echo "FAIL $name: output or exit code differs under lode (plain rc=$rc1, lode rc=$rc3)"
    diff "$work/$name.plain" "$work/$name.lode2" | head -20
    fail=$((fail + 1)); return
  fi
  if [ $rc2 -ne $rc1 ] || ! grep -q 'lode stats:' "$work/$name.stats"; then
    echo "FAIL $name: LODE_SHOW_STATS=1 printed no statistics (rc=$rc2)"
    fail=$((fail + 1)); return
  fi
  echo "ok   $name ($(grep -o 'peak [0-9]*' "$work/$name.stats" | head -1) segments)"
  passed=$((passed + 1))
}

cat >"$work/dicts.py" <<'PY'
import threading, hashlib
out = [None] * 4
def work(k):
    h = hashlib.sha256()
    for r in range(60):
        d = {f"{k}-{i}": [i] * (i % 7) for i in range(4000)}
        s = sorted(d.items())[:: 97]
        h.update(repr(s).encode())
        del d
    out[k] = h.hexdigest()
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("\n".join(out))
PY
run python3 python3 dicts.py

awk 'BEGIN { srand(42); for (i = 0; i < 300000; i++) printf "%d %s\n", int(rand() * 1e9), substr("abcdefghijklmnop", 1 + i % 16) }' >"$work/big.txt"
run sort sort -k1,1n -k2 big.txt

mkdir -p "$work/repo"
cat >"$work/git.sh" <<'SH'
set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
# no user or system configuration, no background gc racing the explicit one
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
rm -rf r && git init -q r && cd r && git config gc.auto 0 && git config maintenance.auto false
for i in $(seq 1 40); do seq $i 3 2000 > f$i.txt; done
git add . && git commit -qm one
for i in $(seq 1 40 ); do seq 1 $i >> f$i.txt; done
git commit -qam two
git log --stat --format='%H %s' | head -60
git diff HEAD~1 --stat | tail -3
git gc -q && git count-objects -v | grep -v size
SH
run git bash git.sh

cat >"$work/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
struct node { struct node* next; int v; };
int main(void) {
  struct node* head = NULL;
  for (int i = 0; i < 100000; i++) { struct node* n = malloc(sizeof *n); n->v = i; n->next = head; head = n; }
  long s = 0; while (head) { struct node* n = head; s += n->v; head = n->next; free(n); }
  printf("%ld\n", s);
  return 0;
}
C
run cc bash -c 'cc -O2 -Wall -o prog prog.c && ./prog && cc -fsyntax-only prog.c && echo compiled'

head -c 20000000 "$work/big.txt" >"$work/xzin"
run xz bash -c 'xz -T2 -3 -c xzin > x.xz && xz -T2 -dc x.xz | md5sum && md5sum < xzin'

echo "$passed passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
