#!/bin/sh
# run.sh LIBLODE BINDIR SECURE [LIBCXX_PLUGIN]: the C++ runtime's promises
# with liblode.so preloaded (see replaced.cpp, replaced_one.cpp, runtime.cpp,
# plugin.cpp, dlerror.cpp); with SECURE=1 also that a zero-size new keeps
# its kind (each mismatch aborts with lode's message).  With LIBCXX_PLUGIN
# (plugin.cpp built against LLVM libc++), only the C program loading it.
lib=$1 bin=$2 secure=$3 libcxx_plugin=${4:-}
fail=0
run() { # NAME COMMAND...: must exit 0
  name=$1; shift
  if out=$(env LD_PRELOAD="$lib" "$@" 2>&1); then echo "ok   $name: $out"
  else echo "FAIL $name (exit $?): $out"; fail=1; fi
}
if [ -n "$libcxx_plugin" ]; then
  run plugin-libcxx "$bin/cxx-host" "$libcxx_plugin"
  exit $fail
fi
run replaced "$bin/cxx-replaced"
for f in array-new array-delete sized-array-delete aligned-array-new nothrow-array-new; do
  run "replaced-$f" "$bin/cxx-replaced-$f"
done
run handler "$bin/cxx-runtime" handler
run plugin "$bin/cxx-host" "$bin/libcxx-plugin.so"
run dlerror "$bin/cxx-dlerror"
run dlerror-replaced "$bin/cxx-dlerror-replaced"
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
