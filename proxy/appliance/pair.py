"""``impala-lb alive``: does this balancer serve? The question keepalived asks it.

    impala-lb alive --stats-socket /run/impala-lb/admin.sock [--timeout 1]

Sends ``show stat`` over the stats socket (HAProxy's runtime API, which impala-lb and
HAProxy both speak) and succeeds only when at least one frontend is OPEN: a balancer
whose process runs but whose listeners are gone, or that no longer answers its socket
within the timeout, fails. keepalived's ``vrrp_script`` (haconfig.pair) runs it every
second and gives the virtual address away after two failures.

Exit status: 0 serving, 1 not serving (why on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import io
import socket
import sys
import time
from collections.abc import Sequence


def serving(path: str, timeout: float) -> tuple[bool, str]:
    """(whether a frontend is OPEN, why not)."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"show stat\n")
            chunks = []
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\n\n" in chunk[-2:] or chunk.endswith(b"\n\n"):
                    break
    except OSError as e:
        return False, f"stats socket {path}: {e.strerror or e}"
    text = b"".join(chunks).decode("utf-8", "replace")
    if not text.startswith("# "):
        return False, f"stats socket {path} answered no CSV: {text[:80]!r}"
    rows = csv.DictReader(io.StringIO(text[2:]))
    fronts = [r for r in rows if r.get("svname") == "FRONTEND"]
    if any(r.get("status") == "OPEN" for r in fronts):
        return True, ""
    if not fronts:
        return False, "no frontend in show stat"
    states = ", ".join(f"{r.get('pxname')}={r.get('status')}" for r in fronts)
    return False, f"no frontend OPEN ({states})"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="impala-lb alive", description="Succeed when this balancer serves."
    )
    p.add_argument("--stats-socket", required=True, help="the balancer's admin socket")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds (1)")
    try:
        args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return int(e.code or 0)
    ok, why = serving(args.stats_socket, args.timeout)
    if not ok:
        print(f"impala-lb alive: {why}", file=sys.stderr)
        return 1
    return 0
