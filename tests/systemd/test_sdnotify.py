"""sd_notify: the datagrams systemd reads from a Type=notify service."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.sdnotify import Notifier, WatchdogService


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    yield path, s
    s.close()


def test_ready_reloading_stopping_reach_the_socket(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """READY, RELOADING (with MONOTONIC_USEC) and STOPPING arrive as systemd expects them."""
    path, s = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.ready("serving")
    assert s.recv(4096) == b"READY=1\nSTATUS=serving"
    assert n.reloading()
    lines = s.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
    assert n.stopping()
    assert s.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_are_understood() -> None:
    """An '@' NOTIFY_SOCKET is the abstract namespace, as systemd hands it out."""
    name = f"impala-lb-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert s.recv(100) == b"READY=1"
    finally:
        s.close()


def test_no_socket_means_no_op() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    n = Notifier({})
    assert not n.enabled
    assert not n.ready()


def test_watchdog_pings_at_half_the_interval(notify_socket: tuple[str, socket.socket]) -> None:
    """WATCHDOG=1 is sent at once and then every WATCHDOG_USEC/2, until the service stops."""
    path, s = notify_socket
    clock = Clock()
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    svc = WatchdogService(notifier, cast(IReactorTime, clock))
    svc.startService()
    assert s.recv(100) == b"WATCHDOG=1"
    clock.advance(2.0)
    assert s.recv(100) == b"WATCHDOG=1"
    svc.stopService()
    assert clock.getDelayedCalls() == []


def test_watchdog_for_another_pid_is_ignored() -> None:
    """WATCHDOG_PID naming another process disables the pings, as sd_watchdog_enabled does."""
    n = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "100", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None or os.getpid() == 1
