"""The pump's schedules through real balancer processes: HAProxy 2.6 and impala-lb.

The schedules of :mod:`tests.proxy.pumpmodel` (sends, bounded reads and FINs on both
ends, with small receive buffers at the ends so that the balancers hold data back),
played against ``haproxy -db`` and ``impala-lb -f`` running the same config, each on
a session established first (a greeting from the server end). Each run
must give the oracle's bytes, and the same termination flags in the tcplog line on
both (``--`` when both ends half-closed; otherwise the session is still open, which
``show stat`` says). Resets are left to the in-memory suite: what arrives before a
RST depends on timing on a real machine, for HAProxy too.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.proxy.pumpmodel import EndPair, Outcome, Step, judge, sample_schedules
from tests.support.balancer import HAPROXY, OURS, Side
from tests.support.procs import wait_for

#: receive buffers of the two ends: small, so the balancer in between has to hold back
ENDBUF = 8192
#: tcplog's termination state, followed by actconn/feconn/beconn/srv_conn/retries
_FLAGS = re.compile(r" (\S\S) \d+/\d+/\d+/\d+/\d+ ")

CONFIG = """
global
    stats socket {sock} mode 600 level admin
    log 127.0.0.1:{syslog} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
listen be
    bind 127.0.0.1:{fe}
    server s 127.0.0.1:{backend}
"""

SCHEDULES = [
    [Step("fin", "C"), Step("send", "S", 65536), Step("fin", "S")],
    [Step("send", "C", 10241), Step("fin", "C"), Step("fin", "S")],
    [Step("send", "S", 30000), Step("fin", "C"), Step("fin", "S")],
    [Step("send", "C", 200_000), Step("send", "S", 200_000), Step("fin", "S")],
    *sample_schedules(16, seed=12),
]


class Balanced(EndPair):
    """A schedule's ends on either side of a real balancer process."""

    def __init__(self, fe: int, backend: socket.socket) -> None:
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ENDBUF)
        cli.connect(("127.0.0.1", fe))
        backend.settimeout(5)
        srv, _ = backend.accept()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ENDBUF)
        # A greeting through the balancer first, so the schedule starts on an established
        # session: a client FIN while the balancer still connects is an abort (CC) on
        # both balancers, and whether it lands before or after the connect is timing.
        srv.sendall(b"!")
        cli.settimeout(5)
        assert cli.recv(1) == b"!"
        for s in (cli, srv):
            s.setblocking(False)
        super().__init__({"C": cli, "S": srv})

    def pump(self) -> None:
        """The balancer runs on its own; each step is followed by nothing."""

    def flags(self) -> str | None:
        return None

    def drain(self, rounds: int) -> None:
        """Read on both ends until each has all the other sent (and its EOF if the other
        half-closed), or 20 s pass."""
        out = self.out
        deadline = time.monotonic() + 20

        def complete(end: str) -> bool:
            other = "S" if end == "C" else "C"
            return len(out.got[end]) == len(out.sent[other]) and (
                out.eof[end] or other not in out.fin
            )

        while time.monotonic() < deadline and not all(complete(e) for e in ("C", "S")):
            waiting = [self.ends[e] for e in ("C", "S") if not out.eof[e]]
            if not waiting:
                break
            select.select(waiting, [], [], 0.2)
            for end in ("C", "S"):
                self.read(end, 1 << 30)


def _serving(side: Side) -> Callable[[], bool]:
    return lambda: "BACKEND" in side.rows(strip=())


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[list[tuple[Side, socket.socket, socket.socket]]]:
    """HAProxy and impala-lb on the same config, each with its own backend listener and
    syslog receiver."""
    out = []
    try:
        for name, argv in (("haproxy", HAPROXY), ("ours", OURS)):
            side = Side(name, argv, tmp_path)
            backend = socket.create_server(("127.0.0.1", 0), backlog=16)
            syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            syslog.bind(("127.0.0.1", 0))
            side.write(
                CONFIG.format(
                    sock=side.sock,
                    syslog=syslog.getsockname()[1],
                    fe=side.fe,
                    backend=backend.getsockname()[1],
                )
            )
            side.start()
            # the stats socket, not a probe connection: that would become a session
            wait_for(f"{name} up", _serving(side))
            out.append((side, backend, syslog))
        yield out
    finally:
        for side, backend, syslog in out:
            side.stop()
            backend.close()
            syslog.close()


def _line(syslog: socket.socket) -> str:
    syslog.settimeout(10)
    while True:
        line = syslog.recv(4096).decode()
        if " be/s " in line:  # the tcplog line
            return line


def _play(side: Side, backend: socket.socket, syslog: socket.socket, sched: list[Step]) -> str:
    """Run one schedule; the flags it ended with, or 'open' if it is still open."""
    ends = Balanced(side.fe, backend)
    try:
        out: Outcome = ends.play(sched)
        both = out.fin == {"C", "S"}
        if both:
            flags_m = _FLAGS.search(_line(syslog))
            assert flags_m, "no termination flags in the tcplog line"
            out.flags = flags_m.group(1)
        else:
            wait_for("one session open", lambda: side.rows(strip=())["BACKEND"]["scur"] == "1")
            out.flags = None
        try:
            judge(out)
        except AssertionError as e:
            raise AssertionError(f"{side.name}, {sched}: {e}") from None
        return out.flags or "open"
    finally:
        ends.close()
        if not ends.out.fin >= {"C", "S"}:
            _line(syslog)  # the line of the session our close just ended


def test_schedules_give_the_same_bytes_and_flags_as_haproxy(
    sides: list[tuple[Side, socket.socket, socket.socket]],
) -> None:
    """Every schedule delivers the oracle's bytes through HAProxy and impala-lb alike,
    and ends with the same flags (or stays open on both)."""
    for sched in SCHEDULES:
        results = {
            side.name: _play(side, backend, syslog, sched) for side, backend, syslog in sides
        }
        assert results["ours"] == results["haproxy"], (sched, results)
