#!/usr/bin/env python3
"""canon-sizes.py FILE.ops...: round every size in .ops text up to the nearest
size the binary form holds (fuzz/optable.c, size_classes), in place, keeping
comments and layout: `lode-replay --to-bin` then takes the file.  Used to
convert the corpus when the size code changed."""
import re
import sys

# (first code, end code, shift) as in fuzz/optable.c; the first class is 0..1023.
CLASSES = [(0xd000, 0xf000, 0), (0xf000, 0xfc00, 4), (0xfc00, 0xff00, 10), (0xff00, 0xffe0, 14), (0xffe0, 0x10000, 18)]


def canon(size):
    if size <= 0x3ff:
        return size
    for first, end, shift in CLASSES:
        step = 1 << shift
        up = (size + step - 1) // step * step
        if (up >> shift) < end - first:
            return up
    raise SystemExit(f"size {size} is beyond the binary form")


# op name -> indexes (after the name) of its size words
SIZE_ARGS = {"malloc": [0], "calloc": [1], "realloc": [1], "aligned-alloc": [1], "heap-malloc": [1]}


def fix(line):
    body, hash_, comment = line.partition("#")
    words = body.split()
    if not words:
        return line
    i = 1 if re.fullmatch(r"t\d", words[0]) else 0
    for k in SIZE_ARGS.get(words[i] if i < len(words) else "", []):
        j = i + 1 + k
        if j < len(words) and words[j].isdigit():
            words[j] = str(canon(int(words[j])))
    lead = body[: len(body) - len(body.lstrip())]
    new = lead + " ".join(words)
    return new + ("  " + hash_ + comment if hash_ else "") if body.strip() else line


def main():
    usage = "usage: canon-sizes.py FILE.ops...\n"
    args = sys.argv[1:]
    if args in (["-h"], ["--help"]):
        sys.stdout.write(usage + "\n" + __doc__.split(":", 1)[1].lstrip() + "\n")
        sys.exit(0)
    if args[:1] == ["--"]:
        args = args[1:]
    elif any(a.startswith("-") for a in args):
        bad = next(a for a in args if a.startswith("-"))
        sys.stderr.write(f"canon-sizes: unknown option '{bad}'\n" + usage)
        sys.exit(2)
    if not args:
        sys.stderr.write(usage)
        sys.exit(2)
    status = 0
    for path in args:
        try:
            with open(path) as f:
                lines = f.read().split("\n")
            out = [fix(l) for l in lines]
            if out != lines:
                with open(path, "w") as f:
                    f.write("\n".join(out))
                print(f"canon-sizes: {path}: sizes rounded")
        except (OSError, UnicodeDecodeError) as e:
            sys.stderr.write(f"canon-sizes: {path}: {getattr(e, 'strerror', None) or e}\n")
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
