"""A reload side by side: HAProxy 2.6 in master-worker mode (SIGUSR2) and ``impala-lb``
(SIGHUP) load the same new file; both keep an established session, list the same servers
with the same states, and differ only where we mean to (runtime weights survive ours)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.balancer import OURS, STATS_HEAD, Side
from tests.support.loopback import Echo
from tests.support.procs import wait_for

CONFIG = (
    STATS_HEAD
    + """frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    balance roundrobin
{servers}"""
)

SAME = ("status", "weight", "act", "bck", "check_status", "check_rise", "check_fall")


def columns(side: Side) -> dict[str, dict[str, str]]:
    """The :data:`SAME` columns of each server of ``be`` on ``side`` (no BACKEND row)."""
    return {srv: {k: row[k] for k in SAME} for srv, row in side.rows().items() if srv != "BACKEND"}


def write(side: Side, servers: str) -> None:
    side.write(CONFIG.format(sock=side.sock, fe=side.fe, servers=servers))


#: what a poll of both stats sockets may meet before the balancers are ready
NOT_YET = (OSError, KeyError)


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[list[Side], list[Echo]]]:
    echoes = [Echo(), Echo(), Echo()]
    both = [
        Side("haproxy", ["haproxy", "-W", "-db", "-f"], tmp_path, signal.SIGUSR2),
        Side("ours", OURS, tmp_path, signal.SIGHUP),
    ]
    yield both, echoes
    for side in both:
        side.stop()
    for e in echoes:
        e.sock.close()


def test_reload_adds_server_like_haproxy_and_keeps_session(
    sides: tuple[list[Side], list[Echo]],
) -> None:
    """Adding a server by reload: both list a, b, c with the same state columns, both keep
    the session opened before; a runtime weight survives our reload but not HAProxy's."""
    both, echoes = sides
    chk = " check inter 100 rise 2 fall 2\n"
    two = "".join(
        f"    server {n} 127.0.0.1:{e.port}{chk}" for n, e in zip("ab", echoes[:2], strict=True)
    )
    three = two + f"    server c 127.0.0.1:{echoes[2].port}{chk}"
    for side in both:
        write(side, two)
        side.start()
    wait_for(
        "a, b listed on both",
        lambda: all(set(columns(s)) == {"a", "b"} for s in both),
        tolerate=NOT_YET,
        interval=0.03,
    )
    wait_for(
        "all UP on both",
        lambda: all(r["status"] == "UP" for s in both for r in columns(s).values()),
        tolerate=NOT_YET,
        interval=0.03,
    )
    held = {}
    for side in both:
        side.ask(b"set server be/a weight 5\n")
        c = socket.create_connection(("127.0.0.1", side.fe), timeout=5)
        c.sendall(b"before")
        assert c.recv(16) == b"before"
        held[side.name] = c
    assert [s.rows()["a"]["uweight"] for s in both] == ["5", "5"]

    for side in both:
        write(side, three)
        side.reload()
    wait_for(
        "a, b, c listed on both",
        lambda: all(set(columns(s)) == {"a", "b", "c"} for s in both),
        tolerate=NOT_YET,
        interval=0.03,
    )
    wait_for(
        "all UP on both",
        lambda: all(r["status"] == "UP" for s in both for r in columns(s).values()),
        tolerate=NOT_YET,
        interval=0.03,
    )
    theirs, ours = (columns(s) for s in both)
    for server in ("b", "c"):
        assert theirs[server] == ours[server], server

    for side in both:
        held[side.name].sendall(b"after")
        assert held[side.name].recv(16) == b"after"
        held[side.name].close()
    # spec 4.2: HAProxy's new worker starts from the file; ours keeps the runtime weight
    assert [s.rows()["a"]["uweight"] for s in both] == ["1", "5"]
