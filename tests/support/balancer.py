"""Real balancers side by side on loopback: ``haproxy -db -f`` and ``impala-lb -f`` as
children stopped by PID, one command on a stats socket, and ``show stat`` as rows::

    side = Side("ours", OURS, tmp_path)
    side.write(CONFIG.format(sock=side.sock, fe=side.fe))
    side.start()
    wait_for("a UP", lambda: side.rows()["a"]["status"] == "UP")
    side.stop()

:class:`tests.support.impalad.Balancer` stays the way to put ``impala-lb`` in front of
impalads; this module is for suites that compare it with HAProxy or drive its stats socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy.stats import FIELDS
from tests.support.procs import ROOT, free_port, stop_pid

IMPALA_LB = str(Path(sys.executable).parent / "impala-lb")
#: argv prefixes that take the config file as their last argument
HAPROXY = ("haproxy", "-db", "-f")
OURS = (IMPALA_LB, "-f")

#: The start of a ``.format``-ed config both balancers run: an admin stats socket at ``{sock}``
#: and TCP defaults; a suite appends its frontends and backends.
STATS_HEAD = """
global
    stats socket {sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


def spawn(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output discarded; the caller stops it by PID."""
    return subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check_backend(port: int, kind: str = "tcp") -> subprocess.Popen[bytes]:
    """``python -m proxy.checks.testing <kind> <port>``, returned once it printed ``ready``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.checks.testing", kind, str(port)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def ask(path: str | Path, command: bytes, timeout: float = 5.0) -> str:
    """One command on a stats socket (HAProxy's or ours), the answer read to EOF."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def stat_rows(
    csv: str, backend: str = "be", strip: Sequence[str] = ("check_status",)
) -> dict[str, dict[str, str]]:
    """``show stat`` CSV rows of ``backend`` by server name (``BACKEND`` included), each a
    dict over :data:`FIELDS`; the ``* `` HAProxy puts before a running check is removed
    from the ``strip`` columns."""
    out = {}
    for line in csv.splitlines():
        cells = line.split(",")
        if len(cells) > 40 and cells[0] == backend:
            rec = dict(zip(FIELDS, cells, strict=False))
            for key in strip:
                rec[key] = rec[key].removeprefix("* ")
            out[cells[1]] = rec
    return out


class Side:
    """One balancer (HAProxy or ours) run on ``<tmp>/<name>.cfg``, with the stats socket
    path ``sock`` and a free frontend port ``fe`` for that file to use."""

    def __init__(
        self, name: str, argv: Sequence[str], tmp: Path, reload_signal: int = signal.SIGHUP
    ) -> None:
        self.name = name
        self.sock = str(tmp / f"{name}.sock")
        self.fe = free_port()
        self.cfg = tmp / f"{name}.cfg"
        self.argv = [*argv, str(self.cfg)]
        self.reload_signal = reload_signal
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, config: str) -> None:
        self.cfg.write_text(config)

    def start(self) -> None:
        self.proc = spawn(self.argv)

    def reload(self) -> None:
        """Send ``reload_signal`` by PID."""
        assert self.proc is not None, f"{self.name} was never started"
        os.kill(self.proc.pid, self.reload_signal)

    def ask(self, command: bytes) -> str:
        return ask(self.sock, command)

    def rows(self, strip: Sequence[str] = ("check_status",)) -> dict[str, dict[str, str]]:
        return stat_rows(self.ask(b"show stat\n"), strip=strip)

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 5 s."""
        if self.proc is not None:
            stop_pid(self.proc, signal.SIGTERM, 5.0, 5.0)
