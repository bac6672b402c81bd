"""The same runtime commands sent to real HAProxy 2.6 and to us get the same bytes back."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from haconfig import parse_text
from proxy.checks.testing import new_reactor, pump
from proxy.runtime import Runtime
from proxy.stats import ObservabilityService
from tests.support.balancer import HAPROXY, spawn
from tests.support.procs import free_port, kill_pid

CONFIG = """
global
    stats socket {admin} mode 600 level admin
    stats socket {oper} mode 600
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
backend be
    server a 127.0.0.1:{port} weight 5
    server b 127.0.0.1:{port} check inter 60s agent-check agent-port {port} agent-inter 60s
backend st
    balance static-rr
    server s 127.0.0.1:{port} weight 4
"""

# (socket, command) pairs, run in this order on both sides
SCRIPT: list[tuple[str, bytes]] = [
    ("admin", b"get weight be/a\n"),
    ("admin", b"set server be/a weight 300\n"),
    ("admin", b"set server be/a state up\n"),
    ("admin", b"disable server be/zz\n"),
    ("admin", b"disable server nope/a\n"),
    ("admin", b"disable server a\n"),
    ("admin", b"set weight be/a 2\n"),
    ("admin", b"get weight be/a\n"),
    ("admin", b"set weight be/a 60%\n"),
    ("admin", b"get weight be/a;get weight be/b\n"),
    ("admin", b"set weight be/a -1\n"),
    ("admin", b"set weight be/a x\n"),
    ("admin", b"set server be/a weight\n"),
    ("admin", b"set server be/a\n"),
    ("admin", b"set server be/a health up\n"),
    ("admin", b"set server be/b health sideways\n"),
    ("admin", b"set server be/a agent up\n"),
    ("admin", b"set server be/b agent sideways\n"),
    ("admin", b"enable agent be/a\n"),
    ("admin", b"disable agent be/a\n"),
    ("admin", b"enable health be/a\n"),
    ("admin", b"set weight st/s 3\n"),
    ("admin", b"set weight st/s 0\n"),
    ("admin", b"get weight st/s\n"),
    ("admin", b"set server be/a state drain\n"),
    ("admin", b"disable server be/a\n"),
    ("admin", b"enable server be/a\n"),
    ("admin", b"set maxconn server be/a 10\n"),
    ("admin", b"shutdown sessions server be/a\n"),
    ("admin", b"show servers state nope\n"),
    ("admin", b"show backend\n"),
    ("admin", b"show cli level\n"),
    ("admin", b"prompt\nget weight be/a\nquit\n"),
    ("oper", b"disable server be/a\n"),
    ("oper", b"set server be/a state maint\n"),
    ("oper", b"show cli level\n"),
    ("oper", b"get weight be/b\n"),
]


def ask(path: str, command: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(command)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def sockets(tmp_path: Path) -> Any:
    port = free_port()
    paths = {}
    procs = []
    reactor = new_reactor()
    obs: Any = None
    try:
        ha = {k: str(tmp_path / f"ha-{k}.sock") for k in ("admin", "oper")}
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(CONFIG.format(port=port, **ha))
        procs.append(spawn([*HAPROXY, str(cfg)]))
        ours = {k: str(tmp_path / f"our-{k}.sock") for k in ("admin", "oper")}
        obs = ObservabilityService.from_runtime(
            Runtime(parse_text(CONFIG.format(port=port, **ours)), reactor), reactor
        )
        obs.startService()
        deadline = time.monotonic() + 10
        while not all(Path(p).exists() for p in ha.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        paths = {"haproxy": ha, "ours": ours}
        yield reactor, paths
    finally:
        if obs is not None:
            obs.stopService()
        for p in procs:
            kill_pid(p)


def test_replies_match_haproxy_byte_for_byte(sockets: Any) -> None:
    """Every reply and error of the script is byte-identical to HAProxy 2.6's."""
    reactor, paths = sockets
    mismatches = []
    with ThreadPoolExecutor(1) as pool:
        for which, command in SCRIPT:
            theirs = ask(paths["haproxy"][which], command)
            future = pool.submit(ask, paths["ours"][which], command)
            pump(reactor, future.done, timeout=10)
            ours = future.result()
            if ours != theirs:
                mismatches.append((which, command, theirs, ours))
    assert mismatches == []


def test_show_info_has_haproxy_keys_in_order(sockets: Any) -> None:
    """``show info`` lists the same keys as HAProxy 2.6, in the same order."""
    reactor, paths = sockets

    def keys(text: bytes) -> list[str]:
        return [line.split(":")[0] for line in text.decode().splitlines() if line]

    theirs = keys(ask(paths["haproxy"]["admin"], b"show info\n"))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask, paths["ours"]["admin"], b"show info\n")
        pump(reactor, future.done, timeout=10)
    assert keys(future.result()) == theirs
