"""The unit's ExecReload lines, run as systemd would against a running balancer."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance.install import render_unit
from tests.support.loopback import Replier
from tests.support.procs import free_port, holds, stop_pid

BINDIR = Path(sys.executable).parent


def exec_reload_commands(config: Path, mainpid: int) -> list[list[str]]:
    """The unit's ExecReload= command lines with its variables filled in, in order."""
    commands = []
    for line in render_unit("impala-lb.service", BINDIR).splitlines():
        if line.startswith("ExecReload="):
            text = line.removeprefix("ExecReload=")
            text = text.replace("${CONFIG}", str(config)).replace("$MAINPID", str(mainpid))
            commands.append(shlex.split(text))
    return commands


def run_exec_reload(config: Path, mainpid: int) -> list[int]:
    """Run ExecReload= lines like systemd: stop at the first one that fails."""
    codes = []
    for argv in exec_reload_commands(config, mainpid):
        code = subprocess.run(argv, capture_output=True, timeout=30).returncode
        codes.append(code)
        if code != 0:
            break
    return codes


def greet(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.settimeout(5)
        return c.recv(16)


def wait_greeting(port: int, want: bytes, limit: float = 10.0) -> None:
    end = time.monotonic() + limit
    got = b""
    while time.monotonic() < end:
        try:
            got = greet(port)
            if got == want:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"wanted {want!r}, last got {got!r}")


@pytest.fixture
def backends() -> Iterator[tuple[Replier, Replier]]:
    old, new = Replier(b"old"), Replier(b"new")
    yield old, new
    old.close()
    new.close()


def listen(port: int, server: int) -> str:
    return (
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n"
        f"    timeout server 10s\nlisten lb\n    bind 127.0.0.1:{port}\n"
        f"    server s 127.0.0.1:{server}\n"
    )


def test_exec_reload_refuses_broken_config_then_applies_good_one(
    tmp_path: Path, backends: tuple[Replier, Replier]
) -> None:
    """ExecReload's ``-c -q`` refuses a broken file (no HUP sent, old config serves); with a
    good file both lines run and the new config takes effect."""
    old, new = backends
    assert [c[1:] for c in exec_reload_commands(Path("C"), 42)] == [
        ["-c", "-q", "-f", "C"],
        ["-HUP", "42"],
    ]
    port = free_port()
    config = tmp_path / "impala-lb.cfg"
    config.write_text(listen(port, old.port))
    lb = subprocess.Popen(
        [str(BINDIR / "impala-lb"), "-f", str(config)],
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        wait_greeting(port, b"old")
        config.write_text(listen(port, new.port) + "    server bad 127.0.0.1:notaport\n")
        assert run_exec_reload(config, lb.pid) == [1]
        holds(
            "the refused reload keeping the old config",
            lambda: greet(port) == b"old" and lb.poll() is None,
            seconds=0.3,
        )
        config.write_text(listen(port, new.port))
        assert run_exec_reload(config, lb.pid) == [0, 0]
        wait_greeting(port, b"new")
        assert lb.poll() is None
    finally:
        stop_pid(lb, timeout=5)
