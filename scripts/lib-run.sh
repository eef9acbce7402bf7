# Sourced by the scripts that run allocators under a time limit (hunt, bench,
# bench-fastpath, security): what they share.  The caller sets `child` (the
# background run, "" when none) and `pre_dir` ("" until safe_preload makes
# one); `me` names the script in messages.

# Each run is a background job the traps can kill: a foreground timeout sits
# in its own process group, out of Ctrl-C's reach, and bash would run a trap
# only once it ended.
on_signal() { # exit-status
  trap '' INT TERM
  [ -z "$child" ] || { kill -TERM -- "-$child" || kill -TERM "$child"; wait "$child"; } 2>/dev/null
  echo "$me: interrupted" >&2
  exit "$1"
}

# safe_preload LIB: sets safe to a path ld.so takes whole (it splits
# LD_PRELOAD on spaces and colons): LIB, or a symlink of the same file name
# under a /tmp directory when LIB's path has one of them.
safe_preload() {
  safe=$1
  case $1 in *[[:space:]:]*) ;; *) return 0 ;; esac
  [ -n "$pre_dir" ] || pre_dir=$(mktemp -d /tmp/lode-preload.XXXXXX) || return 1
  local d
  d=$pre_dir/$(find "$pre_dir" -mindepth 1 -maxdepth 1 | wc -l)
  mkdir "$d" && ln -s "$1" "$d/$(basename "$1")" && safe=$d/$(basename "$1")
}
