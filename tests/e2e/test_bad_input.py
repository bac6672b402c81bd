"""Bad input on every port of every daemon and of the balancer, over ``cluster up``.

Every TCP port the running daemons listen on (found from the kernel's socket table,
by PID, so a new port is covered without editing this file), the balancer's frontends,
its stats page and its admin socket get random and structured garbage: Thrift frames
with huge or negative lengths, truncated SASL frames, TLS records that are not TLS,
HTTP with a huge Content-Length or no end of headers, AMP boxes that are not AMP, a
stats-socket line of 1 MiB. Each connection must be closed by the daemon (after the
garbage and the client's EOF; at once for a body or frame that announces more than the
daemon takes); afterwards every daemon is alive and healthy, the cluster answers a
query through the balancer, no daemon logged a traceback, and no daemon's memory grew
by more than a bound.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance import cluster, daemon
from tests.support.cluster import cluster_up, shell

NET = "127.0.11"
BIND = f"{NET}.1"
PORT = 5200
#: the most a daemon's resident memory may grow over the whole run
RSS_GROWTH = 64 << 20
#: how long a daemon may take to close a connection it was fed garbage on
CLOSE_WITHIN = 15.0

_rng = random.Random(12)
PAYLOADS: dict[str, bytes] = {
    "random": _rng.randbytes(4096),
    "random-large": _rng.randbytes(300_000),
    "thrift-huge-frame": b"\x7f\xff\xff\xff\x80\x01\x00\x01" + b"x" * 100,
    "thrift-negative-frame": b"\xff\xff\xff\xf0" + b"x" * 100,
    "thrift-truncated-message": b"\x80\x01\x00\x01\x00\x00\x00\x0bOpenSess",
    "sasl-truncated": b"\x01\x00\x00\x00\x05PLA",
    "sasl-huge": b"\x01\x7f\xff\xff\xffPLAIN",
    "sasl-bad-status": b"\x09\x00\x00\x00\x01x",
    "tls-not-tls": b"\x16\x03\x01\x40\x00" + _rng.randbytes(2000),
    "tls-hello-then-garbage": b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00" + b"\x17" * 500,
    "http-huge-content-length": (
        b"POST /cliservice HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc"
    ),
    "http-no-end-of-headers": b"GET / HTTP/1.1\r\nX-A: " + b"b" * 200_000,
    "http-bad-chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "amp-not-amp": b"\x00\x04_ask\x00\x011\x00\x08_command\xff\xff" + b"z" * 500,
    "nul-bytes": b"\x00" * 10_000,
}
#: garbage that announces more than any daemon takes: refused without waiting for EOF
AT_ONCE = {
    "http-huge-content-length": "http",
    "http-no-end-of-headers": "http",
    "thrift-huge-frame": "hs2",
    "sasl-huge": "hs2",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from cluster_up(tmp_path_factory, net=NET, port=PORT, bind=BIND)


def listening(pids: set[int]) -> list[tuple[str, int, int]]:
    """(host, port, pid) of every TCP socket the processes ``pids`` listen on."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        cols = line.split()
        host, _, port = cols[3].rpartition(":")
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((host, int(port), pid))
    return sorted(set(found))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def kind(host: str, port: int) -> str:
    """``http`` when the port answers HTTP, else ``other``."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        s.settimeout(5)
        try:
            return "http" if s.recv(5) == b"HTTP/" else "other"
        except OSError:
            return "other"


def closed_by_peer(s: socket.socket, within: float) -> bool:
    """Read until the peer closes (EOF or reset); False if it is still open after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def feed(host: str, port: int, data: bytes, *, eof: bool) -> bool:
    """Send ``data`` (then EOF if ``eof``); whether the daemon closed the connection."""
    with socket.create_connection((host, port), timeout=5) as s:
        try:
            s.sendall(data)
            if eof:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            return True  # it closed while we were still sending
        return closed_by_peer(s, CLOSE_WITHIN)


def test_garbage_on_every_port_closes_only_that_connection(run: Path) -> None:
    """Every payload on every TCP port of every daemon and of the balancer is closed by
    the daemon; then all daemons are alive and healthy, a query works through the
    balancer, no traceback was logged and no daemon grew past the bound."""
    daemons, _ = cluster.load(run)
    pids = {d.pid: d for d in daemons if d.pid}
    ports = listening(set(pids))
    # impala-lb's ports include the Impala controller's agent port (in-process)
    assert {pids[p].kind for _, _, p in ports} == {
        "impalad",
        "statestored",
        "catalogd",
        "impala-lb",
    }
    lb = next(p for p in pids if pids[p].kind == "impala-lb")
    assert cluster.AGENT_PORT in {port for _, port, p in ports if p == lb}
    logs = {p: (run / "logs" / f"{pids[p].name}.out") for p in pids}
    log_start = {p: path.stat().st_size if path.exists() else 0 for p, path in logs.items()}
    before = {p: rss(p) for p in pids}
    kinds = {(h, port): kind(h, port) for h, port, _ in ports}
    stuck = []
    for host, port, pid in ports:
        for name, data in PAYLOADS.items():
            at_once = AT_ONCE.get(name)
            wants_at_once = at_once == kinds[(host, port)] or (
                at_once == "hs2" and pids[pid].kind == "impalad" and port == 21050
            )
            if not feed(host, port, data, eof=not wants_at_once):
                stuck.append(f"{pids[pid].name} {host}:{port} {name}")
    # the admin socket: a line of 1 MiB, no newline
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(run / "admin.sock"))
        try:
            s.sendall(b"x" * (1 << 20))
        except OSError:
            pass
        else:
            if not closed_by_peer(s, CLOSE_WITHIN):
                stuck.append("impala-lb admin.sock 1 MiB line")
    assert stuck == [], "left open:\n" + "\n".join(stuck)
    for pid, d in pids.items():
        assert daemon.alive(pid), f"{d.name} died"
        if d.health_url:
            with urllib.request.urlopen(d.health_url, timeout=5) as r:
                assert r.status == 200, d.name
    assert "| 100000   |" in shell(BIND, PORT, "select count(*) from sample.orders")
    for pid, path in logs.items():
        if path.exists():
            with path.open("rb") as f:
                f.seek(log_start[pid])
                text = f.read().decode(errors="replace")
            assert "Traceback" not in text and "Unhandled" not in text, (pids[pid].name, text)
        grown = rss(pid) - before[pid]
        assert grown < RSS_GROWTH, f"{pids[pid].name} grew {grown >> 20} MiB"
