"""``impala-lb -c [-q] -f FILE [-f FILE...]``: check a configuration like ``haproxy -c``.

Several ``-f`` are read in order as one configuration. Alerts and warnings go to
stderr, the verdict to stdout; ``-q`` prints only alerts. Exit 0 (valid), 1 (fatal
errors), 2 (no listener)."""

from __future__ import annotations

import sys
from typing import TextIO

from haconfig.validate import FATAL, check


def main(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    files: list[str] = []
    quiet = False
    checking = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-c":
            checking = True
        elif arg == "-q":
            quiet = True
        elif arg == "-f":
            if i + 1 >= len(argv):
                print("impala-lb: option -f requires a file name", file=err)
                return FATAL
            files.append(argv[i + 1])
            i += 1
        elif arg.startswith("-f") and len(arg) > 2:
            files.append(arg[2:])
        elif arg.startswith("-") and set(arg[1:]) <= {"c", "q"}:
            checking = checking or "c" in arg
            quiet = quiet or "q" in arg
        else:
            print(f"impala-lb: unexpected argument '{arg}' (usage: -c [-q] -f FILE ...)", file=err)
            return FATAL
        i += 1
    if not files:
        print("impala-lb: no configuration file given (-f FILE)", file=err)
        return FATAL
    del checking  # -c is what brought us here; accepted for symmetry with haproxy
    result = check(files)
    errors, verdict = result.printed(quiet)
    for line in errors:
        print(line, file=err)
    for line in verdict:
        print(line, file=out)
    return result.code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
