#!/bin/sh
# expect.sh CODE REGEX1 REGEX2 COMMAND...: runs COMMAND and passes when it
# exits with CODE and its output (stdout + stderr) matches both regexes.
code=$1 re1=$2 re2=$3
shift 3
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 30
if [ "$rc" -ne "$code" ]; then echo "expect.sh: exit $rc, wanted $code" >&2; exit 1; fi
printf '%s\n' "$out" | grep -Eq -- "$re1" || { echo "expect.sh: no match for '$re1'" >&2; exit 1; }
printf '%s\n' "$out" | grep -Eq -- "$re2" || { echo "expect.sh: no match for '$re2'" >&2; exit 1; }
echo "expect.sh: exit $rc and both patterns matched"
