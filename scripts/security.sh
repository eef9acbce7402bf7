#!/usr/bin/env bash
# Allocator security cases (tests/security) against several allocators.
#
# Every case x size runs in its own process, with the allocator LD_PRELOADed
# and a per-case timeout.  A case is caught when the process dies (signal,
# abort, nonzero exit from the allocator's error path) before it prints
# "NOT CAUGHT", or, for the property cases, when it exits 3 ("HELD").  A case
# that times out or cannot set itself up counts as missed.  See
# tests/security/README.md.
#
# Prints a per-class table (caught/total per allocator) and totals.  A
# library whose path has a space or colon (ld.so splits LD_PRELOAD there) is
# preloaded through a symlink in /tmp; one ld.so cannot preload is left out
# with a line saying so.  Ctrl-C or TERM stops the current case and exits 130/143.
set -u

usage() {
  cat <<'USAGE'
usage: scripts/security.sh [options]
  --bin DIR             the case programs sectest (and sectest-cxx) are in DIR
                        (default: compile them into the work directory)
  --lode PATH           lode's liblode.so, default build (default: build it)
  --lode-secure PATH    a LODE_SECURE liblode.so (default: build it)
  --only LIST           allocators to run, comma-separated, from
                        glibc,jemalloc,tcmalloc,mimalloc,scudo,lode,lode-secure
                        (default: every one found)
  --lib NAME=PATH       one more allocator (may be repeated)
  --sizes LIST          block sizes, comma-separated (default 8,4096,262144)
  --cases REGEX         only the cases whose name matches
  --timeout SEC         per case (default 5)
  --runs N              runs of every case; caught only if caught in all, and
                        'varies' if caught in some (default 1)
  --work DIR            work directory (default: a temporary one, removed)
  -o FILE               write the table (and the per-case results) as markdown
  --details FILE        write every result: ALLOC CASE SIZE RESULT HOW [MESSAGE]
  --expect FILE         with one allocator: fail, listing them, on the cases
                        FILE says are caught that are not caught now, and on
                        the caught cases whose stderr lacks FILE's message
  --write-expect FILE   with one allocator: write its per-case results as FILE
  -h, --help            this text
USAGE
}

die_usage() { echo "security.sh: $*" >&2; usage >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
me=security.sh
. "$root/scripts/lib-run.sh"
bin_dir="" lode_lib="" secure_lib="" only="" sizes="8,4096,262144" case_re="" tmo=5 runs=1
work="" out_md="" details="" expect="" write_expect=""
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --bin|--lode|--lode-secure|--only|--lib|--sizes|--cases|--timeout|--runs|--work|-o|--details|--expect|--write-expect)
      [ $# -ge 2 ] || die_usage "$1 needs a value"
      v=$2
      case $1 in
        --bin) bin_dir=$v ;;
        --lode) lode_lib=$v ;;
        --lode-secure) secure_lib=$v ;;
        --only) only=$v ;;
        --lib) case $v in *=?*) extra+=("$v") ;; *) die_usage "--lib wants NAME=PATH" ;; esac ;;
        --sizes) sizes=$v ;;
        --cases) case_re=$v ;;
        --timeout) tmo=$v ;;
        --runs) runs=$v ;;
        --work) work=$v ;;
        -o) out_md=$v ;;
        --details) details=$v ;;
        --expect) expect=$v ;;
        --write-expect) write_expect=$v ;;
      esac
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done
[[ $tmo =~ ^[0-9]+$ && $tmo -gt 0 ]] || die_usage "--timeout wants a positive number of seconds"
[[ $runs =~ ^[0-9]+$ && $runs -gt 0 ]] || die_usage "--runs wants a positive number"
[[ $sizes =~ ^[0-9]+(,[0-9]+)*$ ]] || die_usage "--sizes wants numbers separated by commas"
[ -z "$expect" ] || [ -f "$expect" ] || die_usage "no expect file $expect"
if [ -n "$bin_dir" ] && [ ! -x "$bin_dir/sectest" ]; then die_usage "no sectest program in $bin_dir"; fi
for f in "$lode_lib" "$secure_lib"; do
  [ -z "$f" ] || [ -f "$f" ] || die_usage "no such library: $f"
done
known="glibc jemalloc tcmalloc mimalloc scudo lode lode-secure"
if [ -n "$only" ]; then
  for a in ${only//,/ }; do
    is_extra=0
    for e in "${extra[@]+"${extra[@]}"}"; do [ "${e%%=*}" = "$a" ] && is_extra=1; done
    [[ " $known " == *" $a "* || $is_extra -eq 1 ]] || die_usage "unknown allocator '$a'"
  done
fi

ulimit -c 0
export LIBC_FATAL_STDERR_=1   # glibc's fatal messages to stderr, not the tty
tmp_work="" pre_dir="" child=""
trap 'rm -rf ${tmp_work:+"$tmp_work"} ${pre_dir:+"$pre_dir"}' EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/lode-security.XXXXXX") || exit 1
  tmp_work=$work
else
  mkdir -p "$work" || exit 1
fi
work=$(cd "$work" && pwd)

wanted() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# ---- the case programs ----------------------------------------------------
if [ -z "$bin_dir" ]; then
  bin_dir=$work/bin
  mkdir -p "$bin_dir"
  cc=${CC:-cc} cxx=${CXX:-c++}
  "$cc" -std=c11 -O2 -fno-builtin -Wall -Wextra -Werror -o "$bin_dir/sectest" "$root/tests/security/sectest.c" ||
    { echo "security.sh: cannot compile sectest.c" >&2; exit 1; }
  if command -v "$cxx" >/dev/null 2>&1; then
    "$cxx" -std=c++17 -fsized-deallocation -O2 -fno-builtin -Wall -Wextra -Werror \
      -o "$bin_dir/sectest-cxx" "$root/tests/security/sectest_cxx.cpp" ||
      { echo "security.sh: cannot compile sectest_cxx.cpp" >&2; exit 1; }
  fi
fi
bin_dir=$(cd "$bin_dir" && pwd)

# ---- the allocators -------------------------------------------------------
build_lode() { # dir cmake-args... -> prints the library's path
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLODE_BUILD_STRESS=OFF "$@" >"$dir.log" 2>&1 &&
    cmake --build "$dir" -j2 --target lode >>"$dir.log" 2>&1 ||
    { echo "security.sh: building lode failed (log: $dir.log)" >&2; return 1; }
  echo "$dir/alloc/liblode.so"
}
find_lib() { # soname...
  local n p
  for n in "$@"; do
    p=$(ldconfig -p 2>/dev/null | awk -v n="$n" '$1 == n { print $NF; exit }')
    [ -n "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

names=() libs=()
add_alloc() { # name lib: left out, with a line, when ld.so cannot preload lib
  local err
  if [ -n "$2" ]; then
    safe_preload "$2" || { echo "security.sh: cannot make a preload symlink in /tmp" >&2; exit 1; }
    # ld.so only warns on a library it cannot preload: every case would test glibc
    if ! err=$(LD_PRELOAD="$safe" "$bin_dir/sectest" --list 2>&1 >/dev/null) || grep -q 'cannot be preloaded' <<<"$err"; then
      echo "security.sh: $1 left out (preloading $2 fails): $(grep -m1 . <<<"$err")" >&2
      return 0
    fi
    names+=("$1"); libs+=("$safe")
  else
    names+=("$1"); libs+=("")
  fi
}
wanted glibc && add_alloc glibc ""
if wanted jemalloc && p=$(find_lib libjemalloc.so.2 libjemalloc.so); then add_alloc jemalloc "$p"; fi
if wanted tcmalloc && p=$(find_lib libtcmalloc_minimal.so.4 libtcmalloc.so.4); then add_alloc tcmalloc "$p"; fi
if wanted mimalloc && p=$(find_lib libmimalloc.so.2 libmimalloc.so); then add_alloc mimalloc "$p"; fi
if wanted scudo; then
  p=$(find / -xdev -name "libclang_rt.scudo_standalone-$(uname -m).so" -path '*/lib/*' 2>/dev/null | sort -V | tail -1)
  [ -n "$p" ] && add_alloc scudo "$p"
fi
if wanted lode; then
  if [ -z "$lode_lib" ]; then lode_lib=$(build_lode "$work/lode-default") || exit 1; fi
  add_alloc lode "$(realpath "$lode_lib")"
fi
if wanted lode-secure; then
  if [ -z "$secure_lib" ]; then secure_lib=$(build_lode "$work/lode-secure" -DLODE_SECURE=ON) || exit 1; fi
  add_alloc lode-secure "$(realpath "$secure_lib")"
fi
for e in "${extra[@]+"${extra[@]}"}"; do
  wanted "${e%%=*}" || continue
  [ -f "${e#*=}" ] || die_usage "no such library: ${e#*=}"
  add_alloc "${e%%=*}" "$(realpath "${e#*=}")"
done
[ ${#names[@]} -gt 0 ] || { echo "security.sh: no allocator to run" >&2; exit 2; }
if [ -n "$expect$write_expect" ] && [ ${#names[@]} -ne 1 ]; then
  die_usage "--expect and --write-expect want exactly one allocator (use --only)"
fi

# ---- the cases ------------------------------------------------------------
: >"$work/cases"
for prog in sectest sectest-cxx; do
  [ -x "$bin_dir/$prog" ] || continue
  "$bin_dir/$prog" --list | while read -r name cls; do
    [ -z "$case_re" ] || [[ $name =~ $case_re ]] || continue
    echo "$name $cls $prog"
  done >>"$work/cases"
done
[ -x "$bin_dir/sectest-cxx" ] || echo "security.sh: no sectest-cxx (no C++ compiler): the c++ cases are skipped" >&2
[ -s "$work/cases" ] || { echo "security.sh: no case to run" >&2; exit 2; }

# run_once LIB PROG CASE SIZE: sets res (caught|missed) how (signal, exit
# code, held, timeout...) and msg (lode's error line without its address).
run_once() {
  local lib=$1 prog=$2 name=$3 size=$4 rc sig
  local o=$work/out e=$work/err
  if [ -n "$lib" ]; then
    timeout -k 2 "$tmo" env LD_PRELOAD="$lib" "$bin_dir/$prog" "$name" "$size" >"$o" 2>"$e" </dev/null &
  else
    timeout -k 2 "$tmo" "$bin_dir/$prog" "$name" "$size" >"$o" 2>"$e" </dev/null &
  fi
  child=$!
  wait "$child" 2>/dev/null # (no "Segmentation fault" line from bash)
  rc=$? child=""
  msg=$(grep -m1 '^lode: ' "$e" | sed -E 's/ 0x[0-9a-f]+( \(block of [0-9]+ bytes\))?$/\1/; s/[[:space:]]+$//')
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then   # timeout's own codes: TERM, then KILL
    res=missed how=timeout
  elif grep -q '^NOT CAUGHT$' "$o"; then
    res=missed how=not-caught
  elif [ $rc -eq 3 ] && grep -q '^HELD' "$o"; then
    res=caught how=held
  elif [ $rc -eq 4 ] && grep -q '^SETUP FAILED' "$o"; then
    res=missed how=setup-failed
  elif [ $rc -gt 128 ]; then
    sig=$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))
    res=caught how=SIG$sig
  elif [ $rc -ne 0 ]; then
    res=caught how=exit$rc
  else
    res=missed how=exit0-silent
  fi
}

# run_case LIB PROG CASE SIZE: runs it $runs times.
run_case() {
  local i n_caught=0 first_how="" first_msg=""
  for ((i = 0; i < runs; i++)); do
    run_once "$@"
    if [ "$res" = caught ]; then
      n_caught=$((n_caught + 1))
      [ -n "$first_how" ] || { first_how=$how; first_msg=$msg; }
    else
      first_miss=$how
    fi
  done
  if [ $n_caught -eq "$runs" ]; then
    res=caught how=$first_how msg=$first_msg
  elif [ $n_caught -eq 0 ]; then
    res=missed how=$first_miss msg=""
  else
    res=varies how="caught-$n_caught-of-$runs" msg=""
  fi
}

results=$work/results
: >"$results"
ncases=$(wc -l <"$work/cases")
for ((a = 0; a < ${#names[@]}; a++)); do
  echo "security.sh: ${names[a]} (${libs[a]:-no preload}): $ncases cases x sizes $sizes" >&2
  while read -r name cls prog; do
    for size in ${sizes//,/ }; do
      run_case "${libs[a]}" "$prog" "$name" "$size"
      printf '%s %s %s %s %s %s%s\n' "${names[a]}" "$cls" "$name" "$size" "$res" "$how" "${msg:+ $msg}" >>"$results"
    done
  done <"$work/cases"
done

# ---- the table ------------------------------------------------------------
table() { # md: 1 for markdown
  awk -v md="$1" -v order="${names[*]}" '
    { cls[$2] = 1; if (!($2 in seen)) { seen[$2] = 1; classes[++nc] = $2 }
      key = $1 SUBSEP $2; tot[key]++; if ($5 == "caught") hit[key]++
      T[$1]++; if ($5 == "caught") H[$1]++ }
    END {
      na = split(order, al, " ")
      if (md) {
        line = "| class |"; sep = "|---|"
        for (i = 1; i <= na; i++) { line = line " " al[i] " |"; sep = sep "---|" }
        print line; print sep
        for (c = 1; c <= nc; c++) {
          line = "| " classes[c] " |"
          for (i = 1; i <= na; i++) line = line " " hit[al[i], classes[c]] + 0 "/" tot[al[i], classes[c]] + 0 " |"
          print line
        }
        line = "| **total** |"
        for (i = 1; i <= na; i++) line = line " **" H[al[i]] + 0 "/" T[al[i]] + 0 "** |"
        print line
      } else {
        printf "%-18s", "class"; for (i = 1; i <= na; i++) printf " %12s", al[i]; printf "\n"
        for (c = 1; c <= nc; c++) {
          printf "%-18s", classes[c]
          for (i = 1; i <= na; i++) printf " %12s", hit[al[i], classes[c]] + 0 "/" tot[al[i], classes[c]] + 0
          printf "\n"
        }
        printf "%-18s", "total"; for (i = 1; i <= na; i++) printf " %12s", H[al[i]] + 0 "/" T[al[i]] + 0; printf "\n"
      }
    }' "$results"
}
table 0
[ -z "$details" ] || cp "$results" "$details"
if [ -n "$out_md" ]; then
  {
    echo "| allocator | library |"
    echo "|---|---|"
    for ((a = 0; a < ${#names[@]}; a++)); do echo "| ${names[a]} | ${libs[a]:-none (glibc malloc)} |"; done
    echo
    table 1
    echo
    echo "Per case (C: caught, -: missed, ~: varies):"
    echo
    awk -v order="${names[*]}" '
      { k = $3 " " $4; if (!(k in seen)) { seen[k] = 1; keys[++nk] = k; cl[k] = $2 }
        r[$1, k] = ($5 == "caught") ? "C" : ($5 == "varies") ? "~" : "-" }
      END {
        na = split(order, al, " ")
        line = "| case | size | class |"; sep = "|---|---|---|"
        for (i = 1; i <= na; i++) { line = line " " al[i] " |"; sep = sep "---|" }
        print line; print sep
        for (j = 1; j <= nk; j++) {
          split(keys[j], f, " ")
          line = "| " f[1] " | " f[2] " | " cl[keys[j]] " |"
          for (i = 1; i <= na; i++) line = line " " r[al[i], keys[j]] " |"
          print line
        }
      }' "$results"
  } >"$out_md"
fi

# ---- expect files ---------------------------------------------------------
if [ -n "$write_expect" ]; then
  {
    echo "# Per-case results of ${names[0]} (${libs[0]:-no preload}), written by"
    echo "# scripts/security.sh --write-expect (runs per case: $runs) on $(date -u +%Y-%m-%d)."
    echo "# CASE SIZE caught|missed|varies [MESSAGE: a line lode printed on stderr, address cut off]"
    echo "# --expect fails on a case listed caught that is not caught, or whose stderr lacks MESSAGE."
    awk '{ line = $3 " " $4 " " $5; if ($5 == "caught" && NF > 6) { m = $7; for (i = 8; i <= NF; i++) m = m " " $i; line = line " " m }; print line }' "$results"
  } >"$write_expect"
  echo "security.sh: wrote $write_expect" >&2
fi

status=0
if [ -n "$expect" ]; then
  fails=$work/fails gains=$work/gains
  : >"$fails"; : >"$gains"
  while read -r name size want rest; do
    case $name in ''|\#*) continue ;; esac
    got=$(awk -v n="$name" -v s="$size" '$3 == n && $4 == s' "$results")
    [ -n "$got" ] || continue   # not run (--cases, --sizes, or no C++)
    read -r _ _ _ _ gres ghow gmsg <<<"$got"
    if [ "$want" = caught ] && [ "$gres" != caught ]; then
      echo "$name $size: caught before, now $gres ($ghow)" >>"$fails"
    elif [ "$want" = caught ] && [ -n "$rest" ] && [ "$gmsg" != "$rest" ]; then
      echo "$name $size: caught ($ghow) but without the message '$rest' (stderr: '${gmsg}')" >>"$fails"
    elif [ "$want" != caught ] && [ "$gres" = caught ]; then
      echo "$name $size: now caught ($ghow${gmsg:+: $gmsg})" >>"$gains"
    fi
  done <"$expect"
  if [ -s "$gains" ]; then
    echo "security.sh: caught now, not in $expect (regenerate it with --write-expect):" >&2
    sed 's/^/  /' "$gains" >&2
  fi
  if [ -s "$fails" ]; then
    echo "security.sh: FAIL: $(wc -l <"$fails") case(s) against $expect:"
    sed 's/^/  /' "$fails"
    status=1
  else
    echo "security.sh: every case $expect lists as caught is caught, with its message"
  fi
fi
exit $status
