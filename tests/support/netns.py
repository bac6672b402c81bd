"""A small network of Linux network namespaces joined by one bridge, for tests as root.

Every namespace, link and process this makes is removed by :meth:`Net.close`, which
the owner calls in a ``finally``; names carry the test's own prefix, so nothing of the
machine's is touched and traffic stays inside the namespaces made here."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.procs import stop_pid

SUBNET = "10.250.0"


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


class Net:
    """Namespaces ``<prefix><name>`` on one bridge (in a namespace of its own), each with
    an ``eth0`` at ``10.250.0.<n>/24``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
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

    def host(self, name: str, octet: int) -> str:
        """A namespace ``name`` with ``eth0`` at 10.250.0.<octet>; its address."""
        ns = self.ns(name)
        self._add_ns(ns)
        outside = f"{self.prefix}{name}"[-15:]  # the bridge side, in the bridge's namespace
        _ip("link", "add", outside, "type", "veth", "peer", "name", f"{outside[:11]}-in")
        _ip("link", "set", outside, "netns", self.bridge_ns)
        _ip("link", "set", f"{outside[:11]}-in", "netns", ns)
        self.run(ns, "ip", "link", "set", f"{outside[:11]}-in", "name", "eth0")
        self.run(ns, "ip", "addr", "add", f"{SUBNET}.{octet}/24", "dev", "eth0")
        self.run(ns, "ip", "link", "set", "eth0", "up")
        self.run(self.bridge_ns, "ip", "link", "set", outside, "master", "br0")
        self.run(self.bridge_ns, "ip", "link", "set", outside, "up")
        return f"{SUBNET}.{octet}"

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
                stop_pid(proc, timeout=5.0)
        for ns in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                _ip("netns", "del", ns)
