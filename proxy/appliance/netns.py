"""A small network of Linux network namespaces joined by one bridge (root only).

``cluster up --lb-pair`` and tests/e2e/test_lb_pair.py build their balancer pairs on it.
Every namespace, link and process a :class:`Net` makes is removed by :meth:`Net.close`
(or, from a later command, :func:`remove`); names carry the owner's prefix, so nothing
of the machine's is touched, the root namespace gets no address, and traffic stays
inside the namespaces made here. :func:`call` runs a function inside one of them (a
thread that joined it), for a probe from a process that lives outside."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

SUBNET = "10.250.0"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def available() -> str:
    """Empty when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"ilbprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"cannot make a network namespace: {getattr(e, 'stderr', '') or e}"
    _ip("netns", "del", probe)
    return ""


def exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def remove(namespaces: Iterable[str]) -> None:
    """Delete these namespaces (their links go with them), missing ones included."""
    for ns in namespaces:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            if exists(ns):
                _ip("netns", "del", ns)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def call(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` run in network namespace ``ns`` (by a thread that joined it with
    ``setns``: sockets it opens live there); in this one when ``ns`` is empty."""
    if not ns:
        return fn()
    out: list[T] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns {ns}: {os.strerror(code)}")
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as e:  # handed to the caller's thread
            err.append(e)

    thread = threading.Thread(target=run, name=f"netns {ns}", daemon=True)
    thread.start()
    thread.join()
    if err:
        raise err[0]
    return out[0]


def has_address(ns: str, address: str, dev: str = "eth0") -> bool:
    """Whether ``address`` (``a.b.c.d/nn``) is on ``dev`` in ``ns``."""
    r = subprocess.run(
        ["ip", "-n", ns, "-o", "addr", "show", "dev", dev],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return r.returncode == 0 and f" {address} " in r.stdout


def _stop(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM ``proc`` by PID; SIGKILL its process group (keepalived's children too)
    if it outlives ``timeout``; reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Net:
    """Namespaces ``<prefix><name>`` on one bridge (in a namespace of its own), each with
    an ``eth0`` at ``10.250.0.<n>/24`` (``subnet`` for another /24)."""

    def __init__(self, prefix: str, subnet: str = SUBNET) -> None:
        self.prefix = prefix
        self.subnet = subnet
        self.bridge_ns = f"{prefix}br"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self._add_ns(self.bridge_ns)
        self.run(self.bridge_ns, "ip", "link", "add", "br0", "type", "bridge")
        self.run(self.bridge_ns, "ip", "link", "set", "br0", "up")

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        self.run(ns, "ip", "link", "set", "lo", "up")

    def ns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def host(self, name: str, octet: int, *more: int) -> str:
        """A namespace ``name`` with ``eth0`` at <subnet>.<octet> (and at each of ``more``
        too); its first address."""
        ns = self.ns(name)
        self._add_ns(ns)
        outside = f"{self.prefix}{name}"[-15:]  # the bridge side, in the bridge's namespace
        _ip("link", "add", outside, "type", "veth", "peer", "name", f"{outside[:11]}-in")
        _ip("link", "set", outside, "netns", self.bridge_ns)
        _ip("link", "set", f"{outside[:11]}-in", "netns", ns)
        self.run(ns, "ip", "link", "set", f"{outside[:11]}-in", "name", "eth0")
        for n in (octet, *more):
            self.run(ns, "ip", "addr", "add", f"{self.subnet}.{n}/24", "dev", "eth0")
        self.run(ns, "ip", "link", "set", "eth0", "up")
        self.run(self.bridge_ns, "ip", "link", "set", outside, "master", "br0")
        self.run(self.bridge_ns, "ip", "link", "set", outside, "up")
        return f"{self.subnet}.{octet}"

    def link(self, name: str, up: bool) -> None:
        """Cut (or restore) ``name``'s cable: its port on the bridge goes down (up)."""
        outside = f"{self.prefix}{name}"[-15:]
        self.run(self.bridge_ns, "ip", "link", "set", outside, "up" if up else "down")

    def addresses(self, name: str) -> str:
        return self.run(self.ns(name), "ip", "-o", "addr", "show", "dev", "eth0")

    def run(self, ns: str, *argv: str) -> str:
        r = subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30
        )
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {ns}: {r.stderr.strip()}")
        return r.stdout

    def spawn(self, name: str, argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in namespace ``name`` (its own process group), output to ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(name), *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kw,
            )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process started here (by PID), then remove every namespace."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                _stop(proc, timeout=5.0)
        remove(reversed(self.namespaces))
