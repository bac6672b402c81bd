"""The whole observability stack wired from a parsed config over the real Runtime."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from haconfig import parse_text
from proxy.checks.testing import echo_factory, new_reactor, pump
from proxy.runtime import Runtime
from proxy.stats import FIELDS, ObservabilityService
from tests.support.balancer import STATS_HEAD
from tests.support.procs import free_port

CONFIG = (
    STATS_HEAD
    + """frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend be
backend be
    server a 127.0.0.1:{port} check inter 100 rise 2 fall 2
    server b 127.0.0.1:{port} weight 3
"""
)


def socat(reactor: Any, sock: str, command: bytes) -> str:
    proc = subprocess.Popen(
        ["socat", "stdio", f"unix-connect:{sock}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command)
    proc.stdin.close()
    pump(reactor, lambda: proc.poll() is not None, timeout=10)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return out


def status_of(reactor: Any, sock: str, server: str) -> dict[str, str]:
    for line in socat(reactor, sock, b"show stat\n").splitlines():
        cells = line.split(",")
        if len(cells) > 2 and cells[0] == "be" and cells[1] == server:
            return dict(zip(FIELDS, cells, strict=False))
    raise AssertionError(f"no row for {server}")


def test_runtime_wiring_checks_and_socket(tmp_path: Path) -> None:
    """From a parsed config: checks run on the runtime's servers and socat sees them change."""
    reactor = new_reactor()
    backend = reactor.listenTCP(0, echo_factory(), interface="127.0.0.1")
    sock = str(tmp_path / "admin.sock")
    config = parse_text(
        CONFIG.format(sock=sock, port=backend.getHost().port, fe_port=1)  # fe never started
    )
    runtime = Runtime(config, reactor)
    obs: Any = ObservabilityService.from_runtime(runtime, reactor)
    obs.startService()
    try:
        assert status_of(reactor, sock, "b")["status"] == "no check"
        pump(reactor, lambda: status_of(reactor, sock, "a")["check_status"] == "L4OK", 5)
        assert status_of(reactor, sock, "a")["status"] == "UP"
        backend.stopListening()
        pump(reactor, lambda: status_of(reactor, sock, "a")["status"] == "DOWN", 5)
        row = status_of(reactor, sock, "a")
        assert (row["check_status"], row["last_chk"]) == ("L4CON", "Connection refused")
        assert runtime.servers[("be", "a")].usable is False
        assert socat(reactor, sock, b"set server be/b state drain\n") == "\n"
        assert runtime.servers[("be", "b")].admin.drain
    finally:
        d = obs.stopService()
        done: list[object] = []
        d.addBoth(done.append)
        pump(reactor, lambda: bool(done), 5)


TRAFFIC = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe_port}
    default_backend be
backend be
    server a 127.0.0.1:{port} check inter 200
"""


def test_traffic_counters_reach_show_stat() -> None:
    """A proxied connection shows in FRONTEND, server and BACKEND rows (stot, bin, bout)."""
    import socket

    from proxy.checks.testing import pump_for
    from proxy.stats import show_stat

    reactor = new_reactor()
    backend = reactor.listenTCP(0, echo_factory(), interface="127.0.0.1")
    fe_port = free_port()
    config = parse_text(TRAFFIC.format(fe_port=fe_port, port=backend.getHost().port))
    runtime = Runtime(config, reactor)
    runtime.start()
    obs: Any = ObservabilityService.from_runtime(runtime, reactor)
    obs.startService()
    client = socket.socket()
    try:
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", fe_port))
        pump_for(reactor, 0.2)
        client.send(b"hello")
        got = b""
        end = 50
        while got != b"hello" and end:
            pump_for(reactor, 0.02)
            try:
                got += client.recv(100)
            except BlockingIOError:
                end -= 1
        assert got == b"hello"
        client.close()
        pump_for(reactor, 0.2)
        rows = {
            line.split(",")[1]: dict(zip(FIELDS, line.split(","), strict=False))
            for line in show_stat(obs.state).splitlines()[1:]
        }
        assert rows["FRONTEND"]["stot"] == "1"
        for name in ("a", "BACKEND"):
            assert (rows[name]["stot"], rows[name]["bin"], rows[name]["bout"]) == ("1", "5", "5")
            assert rows[name]["scur"] == "0"
        assert rows["a"]["check_status"].removeprefix("* ") == "L4OK"
    finally:
        client.close()
        obs.stopService()
        runtime.stop()
        backend.stopListening()
        pump_for(reactor, 0.05)
