#!/usr/bin/env python3
"""Shrink a failing text input (.ops) to the lines that still fail the same way.

usage: minimize.py [--mode sim|real] [--match REGEX] LODE-REPLAY IN.ops OUT.ops

Line-based delta debugging (ddmin): drop chunks of op lines, halving the
chunk size, while lode-replay still fails with a message matching REGEX.
Without --match, the pattern is the first failure message with numbers,
addresses and slot names wildcarded, so the shrunk input fails for the same
reason rather than any reason.  Deterministic: no random choices.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def failure_line(stderr):
    for line in stderr.splitlines():
        # "at op #17 (t2 collect force)" or "at end of input: what it was doing"
        m = re.search(r"FAILURE at .*? \((?:sim|real) mode\): (.*)", line)
        if m:
            return m.group(1)
    return None


def pattern_of(msg):
    out = []
    for tok in re.split(r"(0x[0-9a-fA-F]+|\b[sh]\d+\b|\d+)", msg):
        if re.fullmatch(r"0x[0-9a-fA-F]+|[sh]\d+|\d+", tok or "x"):
            out.append(r"\S+")
        else:
            out.append(re.escape(tok))
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="sim", choices=["sim", "real"])
    ap.add_argument("--match", help="regex the failure message must match")
    ap.add_argument("replay")
    ap.add_argument("input")
    ap.add_argument("output")
    try:
        a = ap.parse_args()
    except SystemExit as e:
        sys.exit(2 if e.code else 0)
    with open(a.input) as f:
        lines = f.read().splitlines()
    head = [l for l in lines if l.startswith("#") or not l.strip()]
    ops = [l for l in lines if l.strip() and not l.startswith("#")]
    tmp = tempfile.NamedTemporaryFile("w", suffix=".ops", delete=False)
    tmp.close()

    def run(cand):
        with open(tmp.name, "w") as f:
            f.write("\n".join(cand) + "\n")
        p = subprocess.run([a.replay, "--mode", a.mode, tmp.name],
                           capture_output=True, text=True)
        return p.returncode, p.stderr

    rc, err = run(ops)
    msg = failure_line(err)
    if rc != 1 or msg is None:
        print(f"minimize: {a.input} does not fail in {a.mode} mode", file=sys.stderr)
        sys.exit(1)
    pat = re.compile(a.match or pattern_of(msg))
    if not pat.search(msg):
        print(f"minimize: failure '{msg}' does not match --match", file=sys.stderr)
        sys.exit(1)
    print(f"minimize: {len(ops)} ops, keeping failures matching /{pat.pattern}/")

    def still_fails(cand):
        rc, err = run(cand)
        m = failure_line(err)
        return rc == 1 and m is not None and pat.search(m) is not None

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
    os.unlink(tmp.name)
    with open(a.output, "w") as f:
        f.write("# minimised from %s by fuzz/minimize.py (%s mode)\n"
                % (os.path.basename(a.input), a.mode))
        f.write("\n".join(ops) + "\n")
    print(f"minimize: {len(ops)} ops -> {a.output}")


if __name__ == "__main__":
    main()
