#!/usr/bin/env bash
# Structural checks of alloc/src, on the compiled objects of liblode:
#
#   alloc_structure.sh layers LAYERS_TXT OBJ...
#       every call (and data reference) between lode's files goes down the
#       layer order of alloc/src/layers.txt; a file on no line fails too
#   alloc_structure.sh thread-locals tls|sim INTERNAL_H SRC_DIR OBJ...
#       every thread-local symbol of the objects is one LODE_THREAD_LOCALS
#       names (tls), or the simulator's context (sim): per-thread state the
#       simulation cannot switch would make simulated threads share it; and
#       no file reads per-thread state through a pthread key
#   alloc_structure.sh exports LIBLODE_SO
#       every allocation function the C library exports (any version:
#       __libc_valloc, cfree for old binaries) liblode.so exports too: one it
#       does not is glibc's, whose memory lode's free then calls invalid
#
# Exit 0 when the structure holds, 1 with one line per violation.
set -uo pipefail
mode=${1:-}
shift || true
bad=0
fail() { echo "FAIL: $*"; bad=1; }

src_of() { # object path -> source file name (heap.c.o -> heap.c)
  local b
  b=$(basename "$1")
  echo "${b%.o}"
}

case $mode in
layers)
  layers=$1; shift
  declare -A layer=()
  n=0
  while read -r line; do
    line=${line%%#*}
    [ -z "${line// /}" ] && continue
    n=$((n + 1))
    for f in $line; do layer[$f]=$n; done
  done <"$layers"
  [ $n -gt 1 ] || fail "no layers read from $layers"
  declare -A def=()
  for o in "$@"; do
    f=$(src_of "$o")
    [ -n "${layer[$f]:-}" ] || fail "$f is on no line of $layers: give it its layer"
    while read -r sym; do def[$sym]=$f; done < <(nm --defined-only "$o" | awk '$2 ~ /^[TDBRCVGS]$/ {print $3}')
  done
  edges=0
  for o in "$@"; do
    f=$(src_of "$o")
    while read -r sym; do
      g=${def[$sym]:-}
      [ -z "$g" ] && continue
      # LODE_SECURE's override.c defines the C library's memcpy/memmove/memset
      # (checked, for programs): lode's own calls of them are calls of the C
      # library, whichever definition the linker binds them to
      case $g:$sym in override.c:memcpy|override.c:memmove|override.c:memset) continue ;; esac
      edges=$((edges + 1))
      lf=${layer[$f]:-0} lg=${layer[$g]:-0}
      if [ "$lg" -ge "$lf" ]; then
        if [ "$lg" -eq "$lf" ]; then fail "$f calls $g's $sym: the same layer (line $lf)"
        else fail "$f (line $lf) calls up into $g (line $lg): $sym"; fi
      fi
    done < <(nm --undefined-only "$o" | awk '{print $2}' | sort -u)
  done
  [ $edges -gt 0 ] || fail "no call between lode's files found: wrong objects?"
  [ $bad -eq 0 ] && echo "alloc layers: $# objects, $edges cross-file references, all downward"
  ;;
thread-locals)
  kind=$1 internal=$2 srcdir=$3; shift 3
  names=$(sed -n '/^#define LODE_THREAD_LOCALS(X)/,/^$/p' "$internal" | grep -o 'X([^,]*, *[a-z_]*' | sed 's/.*, *//')
  [ -n "$names" ] || fail "LODE_THREAD_LOCALS not found in $internal"
  declare -A allowed=()
  if [ "$kind" = sim ]; then
    allowed[_lode_ctx_current]=1
    allowed[_lode_ctx_own]=1
  else
    for n in $names; do allowed[_lode_tls_$n]=1; done
  fi
  found=0
  for o in "$@"; do
    f=$(src_of "$o")
    [ -f "$srcdir/$f" ] || continue # another program's object (a harness compiled with lode)
    while read -r sym; do
      found=$((found + 1))
      [ -n "${allowed[$sym]:-}" ] ||
        fail "$(src_of "$o"): thread-local '$sym' is not in LODE_THREAD_LOCALS (internal.h): the simulator cannot switch it"
    done < <(readelf -sW "$o" | awk '$4 == "TLS" && $7 != "UND" {print $8}')
  done
  [ $found -gt 0 ] || fail "no thread-local symbol defined at all: wrong objects?"
  if grep -n 'pthread_getspecific' "$srcdir"/*.c "$srcdir"/*.h >/dev/null 2>&1; then
    fail "per-thread state read through a pthread key: $(grep -ln pthread_getspecific "$srcdir"/*.c "$srcdir"/*.h | tr '\n' ' ')"
  fi
  [ $bad -eq 0 ] && echo "alloc thread locals ($kind): $found symbols, all switched by the simulator: $(echo $names)"
  ;;
exports)
  lib=$1
  libc=$(ldd "$lib" | awk '$1 ~ /^libc\.so/ { print $3 }')
  [ -n "$libc" ] && [ -f "$libc" ] || { echo "SKIP: no C library found for $lib"; exit 0; }
  want=$(nm -D --defined-only "$libc" | awk '{ sub(/@.*/, "", $3); print $3 }' |
    grep -E '^(__libc_)?(malloc|free|cfree|calloc|realloc|reallocarray|memalign|aligned_alloc|posix_memalign|valloc|pvalloc|malloc_usable_size)$' | sort -u)
  [ -n "$want" ] || fail "no allocation functions found in $libc"
  have=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | sort -u)
  for f in $want; do grep -qx "$f" <<<"$have" || fail "$f: the C library exports it, liblode.so does not"; done
  ;;
*)
  echo "usage: $0 layers LAYERS_TXT OBJ... | thread-locals tls|sim INTERNAL_H SRC_DIR OBJ... | exports LIBLODE_SO" >&2
  exit 2
  ;;
esac
exit $bad
