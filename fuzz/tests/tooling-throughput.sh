#!/usr/bin/env bash
# tooling-throughput.sh THROUGHPUT.SH
# fuzz/bench/throughput.sh fails loudly: an input that fails under
# lode-replay --bench (which stops there), or one with no result line, ends
# it with status 1, naming the input and the command that replays it; a
# clean run prints its table.  lode-replay is a stand-in here (the real one
# would make the test depend on what the random inputs find).
set -u
script=$1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
fails=0
bad() { echo "tooling-throughput: FAIL: $*" >&2; fails=$((fails + 1)); }

# stand-in for lode-replay --mode M --bench N INPUT...: a result line per
# input, as replay.c prints it; FAKE_FAIL=NAME fails there (exit 1, as
# fz_fail does), FAKE_SKIP=NAME prints nothing for it
cat >"$work/replay" <<'STANDIN'
#!/usr/bin/env bash
mode=$2 n=$4; shift 4
while IFS= read -r -d '' f; do
  case $(basename "$f") in
    "${FAKE_FAIL:-}") echo "lode-fuzz: FAILURE at op #3 (t0 free) ($mode mode): stand-in failure" >&2
                      echo "lode-fuzz: replay with: $0 -v $f" >&2; exit 1 ;;
    "${FAKE_SKIP:-}") continue ;;
  esac
  echo "$f: 10 ops, $mode mode, $n runs in 0.010 s: $((n * 100)) runs/s, $((n * 1000)) ops/s"
done < <(find "$@" -type f -print0 | sort -z)
STANDIN
chmod +x "$work/replay"

run() { "$script" --repeats 1 --cpu 0 "$work/replay" >"$work/out" 2>"$work/err"; }
if ! run; then
  cat "$work/out" "$work/err"; bad "a clean run exited non-zero"
else
  grep -q '^| random-2k | 100 | 1000 | 10x |$' "$work/out" || { cat "$work/out"; bad "no random-2k row in the table"; }
fi
for kind in FAKE_FAIL FAKE_SKIP; do
  if env "$kind=r064" "$script" --repeats 1 --cpu 0 "$work/replay" >"$work/out" 2>"$work/err"; then
    bad "$kind=r064: exited 0"
  else
    grep -q 'r064' "$work/err" && grep -q 'replay with: .*r064' "$work/err" ||
      { cat "$work/err"; bad "$kind=r064: the input or its replay command not printed"; }
    f=$(sed -n 's/^throughput: replay with: .* //p' "$work/err")
    [ -f "$f" ] || bad "$kind=r064: the input named ($f) is gone"
  fi
done
[ $fails -eq 0 ] || exit 1
echo "tooling-throughput: failing and missing inputs reported, clean run tabulated"
