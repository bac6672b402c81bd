"""``show stat``'s averaged times after the same traffic through HAProxy and impala-lb.

One server with ``maxconn 1``: a first client holds its connection until the balancer's
own stats show a second one queued behind it, then leaves. On both balancers the
server row and the BACKEND row then carry the same kinds of figures: a queue time and
a total time that are not zero, a connect time, rtime 0 (TCP), each sampled once per
connected session (so the maxima never exceed what the sessions lasted).
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.balancer import HAPROXY, OURS, STATS_HEAD, Side
from tests.support.loopback import Echo
from tests.support.procs import wait_for, wait_port

TIMES = ("qtime", "ctime", "rtime", "ttime", "qtime_max", "ctime_max", "rtime_max", "ttime_max")


def _traffic(side: Side) -> dict[str, dict[str, int]]:
    """Two sessions, the second queued behind the first; the averaged fields after."""
    wait_port(side.fe)
    first = socket.create_connection(("127.0.0.1", side.fe), timeout=5)
    first.sendall(b"x")
    assert first.recv(1) == b"x"
    second = socket.create_connection(("127.0.0.1", side.fe), timeout=5)
    second.sendall(b"y")
    seen = [0]

    def queued_three_polls() -> bool:
        # three stats round trips in a row with the second client queued: it waits a while
        seen[0] = seen[0] + 1 if side.rows()["BACKEND"]["qcur"] == "1" else 0
        return seen[0] >= 3

    wait_for("second client queued", queued_three_polls, tolerate=(OSError,))
    first.close()
    assert second.recv(1) == b"y"
    second.close()
    wait_for("both sessions ended", lambda: side.rows()["BACKEND"]["scur"] == "0")
    rows = side.rows()
    return {name: {f: int(rows[name][f] or 0) for f in TIMES} for name in ("a", "BACKEND")}


def test_averaged_times_have_haproxys_kind(tmp_path: Path) -> None:
    """qtime/ttime (and their maxima) are non-zero on the server and BACKEND rows of
    both balancers, rtime is 0, and the BACKEND row is the server's (one server)."""
    echo = Echo()
    sides = [Side("haproxy", HAPROXY, tmp_path), Side("ours", OURS, tmp_path)]
    try:
        got = {}
        for side in sides:
            side.write(
                STATS_HEAD.format(sock=side.sock) + f"listen be\n    bind 127.0.0.1:{side.fe}\n"
                f"    server a 127.0.0.1:{echo.port} maxconn 1\n"
            )
            side.start()
            got[side.name] = _traffic(side)
    finally:
        for side in sides:
            side.stop()
        echo.close()
    for name, rows in got.items():
        for row in ("a", "BACKEND"):
            r = rows[row]
            assert r["qtime"] > 0 and r["qtime_max"] > 0, (name, row, r)
            assert r["ttime"] > 0 and r["ttime_max"] > 0, (name, row, r)
            assert r["rtime"] == 0 and r["rtime_max"] == 0, (name, row, r)
        assert rows["a"] == rows["BACKEND"], name
    kinds = {name: {row: {f: v > 0 for f, v in r.items() if f != "ctime" and f != "ctime_max"}
                    for row, r in rows.items()} for name, rows in got.items()}  # fmt: skip
    assert kinds["ours"] == kinds["haproxy"]
