#!/bin/sh
# pipefail_lint.sh SOURCE_DIR: no shell script that sets pipefail pipes into
# `grep -q`.  grep -q exits at its first match; a writer with more to say then
# dies of SIGPIPE and pipefail turns the match into a failure (2026-12-08:
# options_matrix.sh's `nm | grep -q lode_malloc` failed four builds in CI
# once liblode.so's symbol list passed 4 KiB, nm's first write).  Use
# `grep PATTERN >/dev/null`, which reads to the end.  Text after a # is
# skipped (this comment names the pattern).
src=${1:?usage: pipefail_lint.sh SOURCE_DIR}
bad=0
for f in $(cd "$src" && git ls-files '*.sh' 2>/dev/null || find . -name '*.sh' -not -path './build/*'); do
  grep -q 'pipefail' "$src/$f" || continue
  if grep -nE '^[^#]*([^|]|^)\|[[:space:]]*grep[[:space:]]+(-[A-Za-z]*q|--quiet)' "$src/$f" | sed "s|^|$f:|" | grep .; then bad=1; fi
done
[ $bad -eq 0 ] && echo "pipefail_lint: no pipe into grep -q under pipefail"
exit $bad
