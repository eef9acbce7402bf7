#!/usr/bin/env bash
# Every combination of lode's build options either builds or is refused at
# configure time with a message; and the default (installed) build exports
# no test hook.
#
#   options_matrix.sh SOURCE_DIR [CC]
#
# For each of LODE_TESTING, LODE_SIM, LODE_SECURE, LODE_BUILD_TESTS and
# LODE_BUILD_FUZZ ON/OFF (stress drivers on): configure; a refusal must name
# the option it needs; an accepted tree must build everything it configured.
set -uo pipefail
src=$(cd "${1:?usage: options_matrix.sh SOURCE_DIR [CC]}" && pwd)
cc=${2:-cc}
work=$(mktemp -d "${TMPDIR:-/tmp}/lode-options.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0 built=0 refused=0

for testing in OFF ON; do
  for sim in OFF ON; do
    for secure in OFF ON; do
      for tests in OFF ON; do
        for fuzz in OFF ON; do
          tag="TESTING=$testing SIM=$sim SECURE=$secure BUILD_TESTS=$tests BUILD_FUZZ=$fuzz"
          dir=$work/b
          rm -rf "$dir"
          if ! CC=$cc cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLODE_TESTING=$testing -DLODE_SIM=$sim \
               -DLODE_SECURE=$secure -DLODE_BUILD_TESTS=$tests -DLODE_BUILD_FUZZ=$fuzz >"$work/log" 2>&1; then
            if grep -q "needs LODE_TESTING=ON" "$work/log"; then
              refused=$((refused + 1))
            else
              echo "FAIL: $tag: configure failed without saying why"; tail -5 "$work/log"; bad=1
            fi
            continue
          fi
          # The library and everything else the tree configured (the long
          # fuzz engines only where they are plain targets).
          if ! cmake --build "$dir" -j2 >"$work/log" 2>&1; then
            echo "FAIL: $tag: configured but does not build"; grep -E "error" "$work/log" | head -5; bad=1
            continue
          fi
          built=$((built + 1))
          so=$(find "$dir" -name 'liblode.so*' -type f | head -n1)
          hooks=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -E '^lode_(test|sim)_' | tr '\n' ' ')
          if [ "$testing" = OFF ] && [ -n "$hooks" ]; then echo "FAIL: $tag: liblode.so exports $hooks"; bad=1; fi
          if [ "$testing" = ON ] && [ -z "$hooks" ]; then echo "FAIL: $tag: liblode.so has no test interface"; bad=1; fi
          nm -D --defined-only "$so" | grep ' lode_malloc$' >/dev/null || { echo "FAIL: $tag: no lode_malloc"; bad=1; }
        done
      done
    done
  done
done
echo "options: $built combinations built, $refused refused with a reason"
[ $built -gt 0 ] && [ $refused -gt 0 ] || bad=1
exit $bad
