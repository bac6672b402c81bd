"""Health and admin log lines side by side with real HAProxy 2.6 (UDP syslog capture)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from haconfig import parse_text
from proxy.checks.testing import new_reactor, pump_for
from proxy.runtime import Runtime
from proxy.stats import ObservabilityService
from tests.support.balancer import HAPROXY, spawn
from tests.support.procs import free_port, kill_pid

CONFIG = """
global
    log 127.0.0.1:{syslog} local2
    stats socket {sock} mode 600 level admin
defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 10s
    timeout server 10s
backend be
    server a 127.0.0.1:{port} check inter 200 rise 2 fall 2
backend lh
    option log-health-checks
    server a 127.0.0.1:{port} check inter 200 rise 2 fall 2
"""

ADMIN = [
    b"disable server be/a\n",
    b"enable server be/a\n",
    b"set server be/a state drain\n",
    b"set server be/a state ready\n",
    b"set server lh/a health down\n",
]


def normalize(message: str) -> str:
    return re.sub(r"check duration: \d+ms", "check duration: Nms", message)


def ask(path: str, command: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(command)
        return s.recv(4096)


def test_log_lines_match_haproxy(tmp_path: Path) -> None:
    """DOWN/UP, log-health-checks, admin and "no server available" syslog lines (text and
    severity) equal HAProxy's."""
    port = free_port()
    catchers = []
    for _ in range(2):
        catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        catcher.bind(("127.0.0.1", 0))
        catcher.setblocking(False)
        catchers.append(catcher)
    syslog, our_syslog = catchers
    ha_sock, our_sock = str(tmp_path / "ha.sock"), str(tmp_path / "ours.sock")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(CONFIG.format(syslog=syslog.getsockname()[1], sock=ha_sock, port=port))
    haproxy = spawn([*HAPROXY, str(cfg)])
    reactor = new_reactor()
    ours: list[tuple[int, str]] = []
    theirs: list[tuple[int, str]] = []
    config = parse_text(CONFIG.format(syslog=our_syslog.getsockname()[1], sock=our_sock, port=port))
    # the state-change lines go to the backends' own `log` targets, as with HAProxy
    obs: Any = ObservabilityService.from_runtime(Runtime(config, reactor), reactor)
    obs.startService()
    listener = socket.socket()

    def collect() -> None:
        for catcher, log, tag in ((syslog, theirs, "haproxy"), (our_syslog, ours, "impala-lb")):
            while True:
                try:
                    data = catcher.recv(4096).decode()
                except BlockingIOError:
                    break
                pattern = r"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d " + tag + r"\[\d+\]: (.*)"
                match = re.match(pattern, data)
                assert match, data
                log.append((int(match.group(1)) - 8 * 18, normalize(match.group(2).strip())))

    def until(cond: Callable[[], bool], limit: float = 5.0) -> None:
        end = time.monotonic() + limit
        while not cond() and time.monotonic() < end:
            pump_for(reactor, 0.02)
            collect()
        assert cond(), (theirs, ours)

    def both_said(text: str, count: int = 1) -> Callable[[], bool]:
        def check() -> bool:
            return all(sum(text in m for _, m in log) >= count for log in (theirs, ours))

        return check

    try:
        until(both_said("backend lh has no server available!"))
        until(both_said("backend be has no server available!"))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1024)
        until(both_said("Server lh/a is UP."))
        until(both_said("Server be/a is UP,"))
        for command in ADMIN:
            assert ask(ha_sock, command) == b"\n"
            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(ask, our_sock, command)
                until(future.done)
                assert future.result() == b"\n"
            pump_for(reactor, 0.05)
        until(both_said("Server lh/a is UP.", 2))
        pump_for(reactor, 0.1)
        collect()
        for backend in ("be", "lh"):

            def mine(log: list[tuple[int, str]], be: str = backend) -> list[tuple[int, str]]:
                return [(p, m) for p, m in log if f" {be}/" in m or f"backend {be} " in m]

            assert mine(ours) == mine(theirs)
    finally:
        obs.stopService()
        kill_pid(haproxy)
        listener.close()
        for catcher in catchers:
            catcher.close()
