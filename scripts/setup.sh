#!/usr/bin/env bash
# Installs what `make test`, `make stress` and the fuzz campaigns need, with
# apt-get when running as root; otherwise says what is missing.  Idempotent:
# a machine that has everything makes no network call.
#
#   scripts/setup.sh   (no arguments)
set -u
usage() { # status: --help gets stdout, anything else stderr
  echo "usage: $0   (no arguments: installs the packages tests and campaigns need, when root)" >&"$(($1 ? 2 : 1))"
  exit "$1"
}
case ${1-} in -h|--help) [ $# -eq 1 ] && usage 0 ;; esac
[ $# -eq 0 ] || usage 2
pkgs=(cmake make gcc clang llvm python3 git xz-utils zip
      afl++ libclang-rt-14-dev
      libmimalloc-dev libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 gnuplot-nox gcovr)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: not root, cannot install: ${missing[*]} (tests that need them will be skipped)" >&2
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "setup: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  echo "setup: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
echo "setup: done"
