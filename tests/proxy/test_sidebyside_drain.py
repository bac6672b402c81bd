"""The same drain scenario through real HAProxy 2.6 and through ``impala-lb``, side by side:
runtime drain and an agent's ``drain`` keep established sessions, send new ones elsewhere,
and both balancers report the same server states in ``show stat``."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.stats import FIELDS

BIN = Path(sys.executable).parent / "impala-lb"

CONFIG = """
global
    stats socket {sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} check inter 100 rise 2 fall 2 {agent_check}
    server b 127.0.0.1:{b} check inter 100 rise 2 fall 2
"""

#: ``show stat`` columns that must agree between the two balancers at every step.
SAME = ("status", "weight", "uweight", "act", "bck", "check_status", "agent_status")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Banner:
    """A backend that greets with its name, then echoes (a thread per client)."""

    def __init__(self, name: bytes, port: int = 0) -> None:
        self.name = name
        self.sock = socket.create_server(("127.0.0.1", port), backlog=128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(self.name + b"\n")
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass


class Agent:
    """An agent-check endpoint answering every connection with the current ``reply``."""

    def __init__(self) -> None:
        self.reply = b"ready up\n"
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(self.reply)


class Side:
    """One balancer (HAProxy or ours) with its stats socket and frontend port."""

    def __init__(self, name: str, argv: list[str], tmp: Path, ports: dict[str, int]) -> None:
        self.name = name
        self.sock = str(tmp / f"{name}.sock")
        self.fe = free_port()
        cfg = tmp / f"{name}.cfg"
        agent_check = f"agent-check agent-port {ports['agent']} agent-inter 100"
        cfg.write_text(CONFIG.format(sock=self.sock, fe=self.fe, agent_check=agent_check, **ports))
        self.proc = subprocess.Popen(
            [*argv, str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def ask(self, command: bytes) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(command)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def rows(self) -> dict[str, dict[str, str]]:
        out = {}
        for line in self.ask(b"show stat\n").splitlines():
            cells = line.split(",")
            if len(cells) > 40 and cells[0] == "be":
                rec = dict(zip(FIELDS, cells, strict=False))
                for key in ("check_status", "agent_status"):
                    rec[key] = rec[key].removeprefix("* ")
                out[cells[1]] = rec
        return out

    def columns(self, server: str) -> dict[str, str]:
        row = self.rows()[server]
        return {k: row[k] for k in SAME}

    def connect(self) -> tuple[socket.socket, bytes]:
        """A client through this balancer and the name of the server it reached."""
        c = socket.create_connection(("127.0.0.1", self.fe), timeout=5)
        c.settimeout(5)
        return c, c.recv(16).strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_for(cond: Callable[[], bool], limit: float = 10.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, KeyError):
            pass
        time.sleep(0.03)
    raise TimeoutError("condition not reached")


@dataclass
class Rig:
    """Both balancers over the same backends a and b and a's agent."""

    sides: list[Side]
    agent: Agent
    a: Banner
    b: Banner


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    a, b, agent = Banner(b"a"), Banner(b"b"), Agent()
    ports = {"a": a.port, "b": b.port, "agent": agent.port}
    both = [
        Side("haproxy", ["haproxy", "-db", "-f"], tmp_path, ports),
        Side("ours", [str(BIN), "-f"], tmp_path, ports),
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
    wait_for(lambda: all(s.columns(n)["status"] == "UP" for s in both for n in "ab"))
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
        wait_for(lambda: all(s.columns(name)["status"].startswith("DRAIN") for s in both))
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
        wait_for(lambda: all(s.columns(name)["status"] == "UP" for s in both))
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


def times_until(both: list[Side], server: str, status: str, limit: float = 10.0) -> list[float]:
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
    wait_for(lambda: all(s.columns(n)["status"] == "UP" for s in both for n in "ab"))
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
    rig.b = Banner(b"b", port=port)
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
