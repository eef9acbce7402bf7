#!/usr/bin/env python3
"""Shrink a failing text input (.ops) to the lines that still fail the same way.

usage: minimize.py [--mode sim|real] [--match REGEX] [--timeout S] LODE-REPLAY IN.ops OUT.ops

Line-based delta debugging (ddmin): drop chunks of op lines, halving the
chunk size, while lode-replay still fails with a message matching REGEX.
Without --match, the pattern is the first failure message with numbers,
addresses and slot names wildcarded, so the shrunk input fails for the same
reason rather than any reason.  Every failure kind counts: the oracle's
FAILURE, a CRASH (signal N), a sanitizer report, a child killed or exiting
non-zero.  Exits 0 when shrunk, 1 when IN does not fail, 2 on usage errors
(and a missing or binary IN).  Deterministic: no random choices.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def failure_line(stderr):
    """The failure a replay reports, whatever its kind (fuzz/fail.c, replay.c):
    the oracle's FAILURE, a CRASH (signal N), a sanitizer's report, or, with
    no report at all, how the child process died."""
    died = None
    for line in stderr.splitlines():
        # "at op #17 (t2 collect force)" or "at end of input: what it was doing"
        m = re.search(r"FAILURE at .*? \((?:sim|real) mode\): (.*)", line)
        if m:
            return m.group(1)
        # "CRASH (signal 11) at op #6 (t1 malloc)": the op's name, not its index
        m = re.search(r"CRASH \(signal (\d+)\) at (?:op #\d+ \((?:t\d+ )?(\S+)\)|(.*))", line)
        if m:
            return "CRASH (signal %s) in %s" % (m.group(1), m.group(2) or m.group(3))
        m = re.search(r"ERROR: (\w+Sanitizer: \S+)|runtime error: (.*)", line)
        if m:
            return m.group(1) or "runtime error: " + m.group(2)
        m = re.search(r"lode-replay: FAIL .*: (killed by signal \d+|exit status \d+)$", line)
        if m and died is None:
            died = m.group(1)
    return died


def pattern_of(msg):
    # a signal number or exit status is the failure itself: kept as it is
    m = re.match(r"(CRASH \(signal \d+\)|killed by signal \d+|exit status \d+)(.*)", msg)
    if m:
        return re.escape(m.group(1)) + pattern_of(m.group(2))
    out = []
    for tok in re.split(r"(0x[0-9a-fA-F]+|\b[sh]\d+\b|\d+)", msg):
        if re.fullmatch(r"0x[0-9a-fA-F]+|[sh]\d+|\d+", tok or "x"):
            out.append(r"\S+")
        else:
            out.append(re.escape(tok))
    return "".join(out)


def die(msg):
    print(f"minimize: {msg}", file=sys.stderr)
    sys.exit(2)


def read_ops(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        die(f"{path}: {e.strerror}")
    try:
        if b"\0" in data:
            raise UnicodeError
        return data.decode("utf-8").splitlines()
    except UnicodeError:
        die(f"{path} is not a text input (binary? convert it first: "
            f"lode-replay --to-text {path} OUT.ops)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="sim", choices=["sim", "real"])
    ap.add_argument("--match", help="regex the failure message must match")
    ap.add_argument("--timeout", type=float, default=60,
                    help="seconds per replay; a slower one counts as not failing (default 60)")
    ap.add_argument("replay")
    ap.add_argument("input")
    ap.add_argument("output")
    a = ap.parse_args()  # exits 2 (usage on stderr) or, for --help, 0
    if not (os.path.isfile(a.replay) and os.access(a.replay, os.X_OK)):
        die(f"{a.replay}: not an executable (the lode-replay binary)")
    if a.match is not None:
        try:
            re.compile(a.match)
        except re.error as e:
            die(f"--match: bad regex: {e}")
    lines = read_ops(a.input)
    ops = [l for l in lines if l.strip() and not l.startswith("#")]
    fd, tmp = tempfile.mkstemp(prefix="minimize-", suffix=".ops")
    os.close(fd)
    try:
        ops = shrink(a, ops, tmp)
    finally:
        os.unlink(tmp)
    try:
        with open(a.output, "w") as f:
            f.write("# minimised from %s by fuzz/minimize.py (%s mode)\n"
                    % (os.path.basename(a.input), a.mode))
            f.write("\n".join(ops) + "\n")
    except OSError as e:
        die(f"{a.output}: {e.strerror}")
    print(f"minimize: {len(ops)} ops -> {a.output}")


def shrink(a, ops, tmp):
    def run(cand):
        with open(tmp, "w") as f:
            f.write("\n".join(cand) + "\n")
        try:
            p = subprocess.run([a.replay, "--mode", a.mode, tmp],
                               capture_output=True, text=True, errors="replace",
                               timeout=a.timeout)
        except subprocess.TimeoutExpired:
            return None, ""
        return p.returncode, p.stderr

    rc, err = run(ops)
    msg = failure_line(err)
    if rc is None:
        print(f"minimize: {a.input} takes over {a.timeout:g} s to replay", file=sys.stderr)
        sys.exit(1)
    if rc == 0 or msg is None:
        print(f"minimize: {a.input} does not fail in {a.mode} mode (exit status {rc})", file=sys.stderr)
        sys.stderr.write("".join("    " + l + "\n" for l in err.splitlines()[-5:]))
        sys.exit(1)
    pat = re.compile(a.match or pattern_of(msg))
    if not pat.search(msg):
        print(f"minimize: failure '{msg}' does not match --match", file=sys.stderr)
        sys.exit(1)
    print(f"minimize: {len(ops)} ops fail with '{msg}', keeping failures matching /{pat.pattern}/")

    def still_fails(cand):
        rc, err = run(cand)
        m = failure_line(err)
        return rc not in (None, 0) and m is not None and pat.search(m) is not None

    n = 2
    while len(ops) >= 2:
        chunk = max(1, len(ops) // n)
        shrunk = False
        for i in range(0, len(ops), chunk):
            cand = ops[:i] + ops[i + chunk:]
            if cand and still_fails(cand):
                ops = cand
                n = max(n - 1, 2)
                shrunk = True
                break
        if not shrunk:
            if chunk == 1:
                break
            n = min(n * 2, len(ops))
    return ops


if __name__ == "__main__":
    main()
