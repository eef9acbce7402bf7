#!/bin/sh
# run.sh LIBLODE BINDIR SECURE: the C++ runtime's promises with liblode.so
# preloaded (see replaced.cpp, runtime.cpp, plugin.cpp); with SECURE=1 also
# that a zero-size new keeps its kind (each mismatch aborts with lode's
# message).
lib=$1 bin=$2 secure=$3
fail=0
run() { # NAME COMMAND...: must exit 0
  name=$1; shift
  if out=$(env LD_PRELOAD="$lib" "$@" 2>&1); then echo "ok   $name: $out"
  else echo "FAIL $name (exit $?): $out"; fail=1; fi
}
run replaced "$bin/cxx-replaced"
run handler "$bin/cxx-runtime" handler
run plugin "$bin/cxx-host" "$bin/libcxx-plugin.so"
if [ "$secure" = 1 ]; then
  for m in zero-new-free zero-new-delete-array zero-malloc-delete; do
    out=$(env LD_PRELOAD="$lib" LODE_ON_ERROR=abort "$bin/cxx-runtime" "$m" 2>&1); rc=$?
    case $rc:$out in
      134:*"mismatched free"*) echo "ok   $m: aborted: $(printf '%s' "$out" | head -1)" ;;
      *) echo "FAIL $m: exit $rc, wanted SIGABRT and a mismatched-free message: $out"; fail=1 ;;
    esac
  done
fi
exit $fail
