"""The same drain scenario through real HAProxy 2.6 and through ``impala-lb``, side by side:
runtime drain and an agent's ``drain`` keep established sessions, send new ones elsewhere,
and both balancers report the same server states in ``show stat``."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.balancer import HAPROXY, OURS, STATS_HEAD, Side
from tests.support.loopback import Echo, Replier
from tests.support.procs import wait_for

CONFIG = (
    STATS_HEAD
    + """frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} check inter 100 rise 2 fall 2 {agent_check}
    server b 127.0.0.1:{b} check inter 100 rise 2 fall 2
"""
)

#: ``show stat`` columns that must agree between the two balancers at every step.
SAME = ("status", "weight", "uweight", "act", "bck", "check_status", "agent_status")


class Drained(Side):
    """One balancer (HAProxy or ours) over backends a and b, a with its agent."""

    def __init__(self, name: str, argv: Sequence[str], tmp: Path, ports: dict[str, int]) -> None:
        super().__init__(name, argv, tmp)
        agent_check = f"agent-check agent-port {ports['agent']} agent-inter 100"
        self.write(CONFIG.format(sock=self.sock, fe=self.fe, agent_check=agent_check, **ports))
        self.start()

    def columns(self, server: str) -> dict[str, str]:
        row = self.rows(strip=("check_status", "agent_status"))[server]
        return {k: row[k] for k in SAME}

    def connect(self) -> tuple[socket.socket, bytes]:
        """A client through this balancer and the name of the server it reached."""
        c = socket.create_connection(("127.0.0.1", self.fe), timeout=5)
        c.settimeout(5)
        return c, c.recv(16).strip()


#: what a poll of both stats sockets may meet before the balancers are ready
NOT_YET = (OSError, KeyError)


@dataclass
class Rig:
    """Both balancers over the same backends a and b and a's agent."""

    sides: list[Drained]
    agent: Replier
    a: Echo
    b: Echo


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    a, b, agent = Echo(banner=b"a"), Echo(banner=b"b"), Replier(b"ready up\n")
    ports = {"a": a.port, "b": b.port, "agent": agent.port}
    both = [
        Drained("haproxy", HAPROXY, tmp_path, ports),
        Drained("ours", OURS, tmp_path, ports),
    ]
    r = Rig(both, agent, a, b)
    yield r
    for side in both:
        side.stop()
    for s in (r.a.sock, r.b.sock, agent.sock):
        s.close()


def test_drain_and_agent_drain_match_haproxy(rig: Rig) -> None:
    """Runtime drain of b, then an agent ``drain`` of a: at each step both balancers show
    the same ``show stat`` columns, the drained server's established session keeps echoing,
    and every new connection goes to the other server."""
    both, agent = rig.sides, rig.agent
    wait_for(
        "a and b UP on both",
        lambda: all(s.columns(n)["status"] == "UP" for s in both for n in "ab"),
        tolerate=NOT_YET,
        interval=0.03,
    )
    assert both[0].columns("a") == both[1].columns("a")

    held: dict[tuple[str, bytes], socket.socket] = {}
    for side in both:
        for _ in range(6):
            c, name = side.connect()
            if (side.name, name) in held:
                c.close()
            else:
                held[side.name, name] = c
        assert (side.name, b"a") in held and (side.name, b"b") in held

    def drained(server: bytes, other: bytes) -> list[dict[str, str]]:
        """Both sides' columns for the drained ``server`` once both show DRAIN, after
        checking its session still echoes and new clients all reach ``other``."""
        name = server.decode()
        wait_for(
            f"{name} DRAIN on both",
            lambda: all(s.columns(name)["status"].startswith("DRAIN") for s in both),
            tolerate=NOT_YET,
            interval=0.03,
        )
        for side in both:
            session = held[side.name, server]
            session.sendall(b"still")
            assert session.recv(16) == b"still"
            for _ in range(4):
                c, reached = side.connect()
                c.close()
                assert reached == other, f"{side.name} sent a new client to drained {name}"
        return [side.columns(name) for side in both]

    def back_up(name: str) -> None:
        wait_for(
            f"{name} UP on both",
            lambda: all(s.columns(name)["status"] == "UP" for s in both),
            tolerate=NOT_YET,
            interval=0.03,
        )
        assert both[0].columns(name) == both[1].columns(name)

    for side in both:
        assert side.ask(b"set server be/b state drain\n").strip() == ""
    theirs, ours = drained(b"b", b"a")
    assert theirs == ours and ours["status"] == "DRAIN"
    for side in both:
        side.ask(b"set server be/b state ready\n")
    back_up("b")

    agent.reply = b"drain\n"
    theirs, ours = drained(b"a", b"b")
    assert theirs == ours
    assert (ours["status"], ours["agent_status"]) == ("DRAIN (agent)", "CHECKED")
    agent.reply = b"ready\n"
    back_up("a")

    for c in held.values():
        c.sendall(b"end")
        assert c.recv(16) == b"end"
        c.close()


def times_until(both: list[Drained], server: str, status: str, limit: float = 10.0) -> list[float]:
    """Seconds from now until each side shows ``status`` for ``server`` (10 ms sampling)."""
    start = time.monotonic()
    took: list[float | None] = [None] * len(both)
    while None in took and time.monotonic() - start < limit:
        for i, side in enumerate(both):
            if took[i] is None:
                with contextlib.suppress(OSError, KeyError):
                    if side.columns(server)["status"] == status:
                        took[i] = time.monotonic() - start
        time.sleep(0.01)
    assert None not in took, f"{server} never {status}: {took}"
    return [t for t in took if t is not None]


def test_killed_server_down_within_fall_inter_and_back_after_rise(rig: Rig) -> None:
    """Killing b marks it DOWN on both balancers within fall x inter (plus one interval of
    scheduling slack), no new client reaches it after that, and it is UP again after rise
    checks once it returns, with the same columns on both."""
    both = rig.sides
    wait_for(
        "a and b UP on both",
        lambda: all(s.columns(n)["status"] == "UP" for s in both for n in "ab"),
        tolerate=NOT_YET,
        interval=0.03,
    )
    port = rig.b.port
    rig.b.sock.close()  # new connections and checks to b are refused from now on
    fall_inter = rise_inter = 2 * 0.1
    slack = 0.1 + 0.25  # the first check's phase in its interval, and sampling
    took = times_until(both, "b", "DOWN")
    assert all(t <= fall_inter + slack for t in took), took
    for side in both:
        for _ in range(6):
            c, reached = side.connect()
            c.close()
            assert reached == b"a", f"{side.name} sent a client to DOWN b"
    rig.b = Echo(banner=b"b", port=port)
    took = times_until(both, "b", "UP")
    assert all(t <= rise_inter + slack for t in took), took
    assert both[0].columns("b") == both[1].columns("b")
    for side in both:
        names = set()
        for _ in range(4):
            c, name = side.connect()
            c.close()
            names.add(name)
        assert names == {b"a", b"b"}, side.name
