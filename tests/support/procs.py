"""Real daemon processes for integration tests: free ports, bounded waits, stop by PID.

One harness for every suite that starts ``python -m backends...`` children::

    port = free_port("127.0.0.2")
    proc = Proc("statestored", ["-m", "backends.statestore.main", f"--state_store_port={port}"],
                tmp / "statestored.log")
    proc.start()
    wait_for("statestored listening", lambda: ..., timeout=10)
    proc.stop()

Suites keep their own flags, addresses and timeouts; what is shared is how a
port is picked, how a condition is polled and how a child is started and ended.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_ports(host: str = "127.0.0.1", count: int = 1) -> list[int]:
    """``count`` distinct TCP ports that were free on ``host`` a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One TCP port that was free on ``host`` a moment ago."""
    return free_ports(host)[0]


def accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port`` right now."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    """Wait until ``host:port`` accepts a TCP connection; ``TimeoutError`` after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port}")


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 10.0,
    *,
    tolerate: tuple[type[Exception], ...] = (OSError, ValueError),
    interval: float = 0.05,
) -> T:
    """Poll ``check`` every ``interval`` seconds until it returns something truthy; fail
    naming ``what``.

    Exceptions of the ``tolerate`` types count as "not yet" (the daemon may not be
    up); any other exception ends the wait at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            last = result
            if result:
                return result
        except tolerate as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def holds(what: str, check: Callable[[], object], seconds: float, interval: float = 0.05) -> None:
    """Assert that ``check`` stays truthy at every poll for ``seconds``: for what must
    *not* happen (a standby that stays standby, a process that does not exit), which
    no condition can end early; fail at the first poll where it does not hold."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        assert result, f"{what} stopped holding (got {result!r})"
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


def stop_pid(
    popen: subprocess.Popen[Any],
    sig: int = signal.SIGTERM,
    timeout: float = 5.0,
    kill_timeout: float = 5.0,
) -> None:
    """Send ``sig`` to a still-running child by PID; SIGKILL it if it outlives ``timeout``."""
    if popen.poll() is not None:
        return
    os.kill(popen.pid, sig)
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_pid(popen, kill_timeout)


def kill_pid(popen: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGKILL a still-running child by PID and reap it."""
    if popen.poll() is None:
        os.kill(popen.pid, signal.SIGKILL)
        popen.wait(timeout=timeout)


class Proc:
    """One ``python <argv>`` daemon run from the project root, its output in ``log``.

    ``argv`` may still be extended until :meth:`start`; ``stop`` sends
    ``stop_signal`` and waits, then SIGKILLs; every signal goes to this child's PID."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log: Path,
        *,
        stop_signal: int = signal.SIGTERM,
        kill_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.stop_signal = stop_signal
        self.kill_timeout = kill_timeout
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> Proc:
        """Start the child (appending to its log); returns ``self``."""
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *self.argv, *extra],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL by PID (a crash, as far as the daemon's peers can tell)."""
        if self.popen is not None:
            kill_pid(self.popen, self.kill_timeout)

    def stop(self) -> None:
        """``stop_signal`` by PID, then SIGKILL after 5 s."""
        if self.popen is not None:
            stop_pid(self.popen, self.stop_signal, 5.0, self.kill_timeout)


class Children:
    """The child processes one test started, all ended by PID in :meth:`stop`: SIGTERM to
    every one still running first, then each is waited for and SIGKILLed if it lingers."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def popen(
        self,
        argv: list[str],
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` and remember it for :meth:`stop`."""
        p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
        self.procs.append(p)
        return p

    def ready(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` with its stdout piped; returns once it printed ``ready``."""
        p = self.popen(argv, stdout=subprocess.PIPE)
        assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
        return p

    def stop(self, timeout: float = 5.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_pid(p, timeout)
