"""A reload side by side: HAProxy 2.6 in master-worker mode (SIGUSR2) and ``impala-lb``
(SIGHUP) load the same new file; both keep an established session, list the same servers
with the same states, and differ only where we mean to (runtime weights survive ours)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
{servers}"""

SAME = ("status", "weight", "act", "bck", "check_status", "check_rise", "check_fall")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Echo:
    """A loopback echo backend, a thread per client."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass


class Side:
    def __init__(self, name: str, argv: list[str], reload_signal: int, tmp: Path) -> None:
        self.name = name
        self.sock = str(tmp / f"{name}.sock")
        self.fe = free_port()
        self.cfg = tmp / f"{name}.cfg"
        self.argv = [*argv, str(self.cfg)]
        self.reload_signal = reload_signal
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, servers: str) -> None:
        self.cfg.write_text(CONFIG.format(sock=self.sock, fe=self.fe, servers=servers))

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def reload(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, self.reload_signal)

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
            if len(cells) > 40 and cells[0] == "be" and cells[1] != "BACKEND":
                rec = dict(zip(FIELDS, cells, strict=False))
                rec["check_status"] = rec["check_status"].removeprefix("* ")
                out[cells[1]] = rec
        return out

    def columns(self) -> dict[str, dict[str, str]]:
        return {srv: {k: row[k] for k in SAME} for srv, row in self.rows().items()}

    def stop(self) -> None:
        if self.proc is None:
            return
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


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[list[Side], list[Echo]]]:
    echoes = [Echo(), Echo(), Echo()]
    both = [
        Side("haproxy", ["haproxy", "-W", "-db", "-f"], signal.SIGUSR2, tmp_path),
        Side("ours", [str(BIN), "-f"], signal.SIGHUP, tmp_path),
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
        side.write(two)
        side.start()
    wait_for(lambda: all(set(s.columns()) == {"a", "b"} for s in both))
    wait_for(lambda: all(r["status"] == "UP" for s in both for r in s.columns().values()))
    held = {}
    for side in both:
        side.ask(b"set server be/a weight 5\n")
        c = socket.create_connection(("127.0.0.1", side.fe), timeout=5)
        c.sendall(b"before")
        assert c.recv(16) == b"before"
        held[side.name] = c
    assert [s.rows()["a"]["uweight"] for s in both] == ["5", "5"]

    for side in both:
        side.write(three)
        side.reload()
    wait_for(lambda: all(set(s.columns()) == {"a", "b", "c"} for s in both))
    wait_for(lambda: all(r["status"] == "UP" for s in both for r in s.columns().values()))
    theirs, ours = (s.columns() for s in both)
    for server in ("b", "c"):
        assert theirs[server] == ours[server], server

    for side in both:
        held[side.name].sendall(b"after")
        assert held[side.name].recv(16) == b"after"
        held[side.name].close()
    # spec 4.2: HAProxy's new worker starts from the file; ours keeps the runtime weight
    assert [s.rows()["a"]["uweight"] for s in both] == ["1", "5"]
