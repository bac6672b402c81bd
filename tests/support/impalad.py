"""Start real ``impalad`` processes on loopback and run the real clients against them.

Reusable by every suite that needs a daemon (impalad, balancer, cluster)::

    d = Impalad.start(tmp_path, host="127.0.0.2")
    out = run_shell(["-i", d.hs2_address, "-q", "select 1"])
    d.stop()

Ports are probed free on the chosen loopback address; the daemon is stopped
by its PID; every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.procs import ROOT, accepts, free_ports, stop_pid

__all__ = ["ROOT", "Balancer", "Impalad", "free_ports", "roundrobin_config", "run_shell"]

VENV_BIN = Path(sys.executable).parent
IMPALA_SHELL = str(VENV_BIN / "impala-shell")
START_TIMEOUT_S = 30.0


@dataclasses.dataclass
class Impalad:
    """A running impalad child process and where it listens."""

    proc: subprocess.Popen[bytes]
    host: str
    hs2_port: int
    hs2_http_port: int
    webserver_port: int
    warehouse: Path
    log: Path
    beeswax_port: int = 0

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        flags: Sequence[str] = (),
        warehouse: Path | None = None,
        timeout: float = START_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ) -> Impalad:
        """Start ``python -m backends.impalad.main`` and wait for its ready line."""
        directory.mkdir(parents=True, exist_ok=True)
        wh = warehouse or directory / "warehouse"
        wh.mkdir(parents=True, exist_ok=True)
        log = directory / f"impalad-{host}.log"
        last_error = ""
        for _attempt in range(3):  # a probed port can be taken by a parallel suite
            hs2, http, web, beeswax = free_ports(host, 4)
            argv = [
                sys.executable,
                "-m",
                "backends.impalad.main",
                f"--listen_host={host}",
                f"--hs2_port={hs2}",
                f"--hs2_http_port={http}",
                f"--webserver_port={web}",
                f"--beeswax_port={beeswax}",
                f"--warehouse_dir={wh}",
                # Standalone unless the caller names a statestore.
                *(() if any("state_store_host" in f for f in flags) else ("--state_store_host=",)),
                *flags,
            ]
            with open(log, "ab") as err:
                proc = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    start_new_session=True,
                    env=None if env is None else dict(env),
                )
            daemon = cls(proc, host, hs2, http, web, wh, log, beeswax)
            ready, last_error = daemon._wait_ready(timeout)
            if ready:
                return daemon
            daemon.stop()
        raise RuntimeError(f"impalad did not start: {last_error}\n{log.read_text()[-3000:]}")

    def _wait_ready(self, timeout: float) -> tuple[bool, str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buf += chunk
                if b"impalad ready:" in buf:
                    return True, ""
            if self.proc.poll() is not None:
                return False, f"exited with {self.proc.returncode}"
            time.sleep(0.05)
        return False, "timed out waiting for the ready line"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def hs2_address(self) -> str:
        return f"{self.host}:{self.hs2_port}"

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.hs2_http_port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.webserver_port}"

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET a web server path; returns (status, body) for any HTTP status."""
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def rss_kb(self) -> int:
        """The daemon's resident set size (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the process to exit; its status or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (exits at once), then SIGKILL if needed; always by PID."""
        stop_pid(self.proc, signal.SIGTERM, timeout, timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_shell(
    args: Sequence[str],
    timeout: float = 60.0,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real impala-shell with ``args``; stdout and stderr captured as text."""
    return subprocess.run(
        [IMPALA_SHELL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        cwd=ROOT,
        env=None if env is None else dict(env),
    )


def roundrobin_config(
    port: int, servers: Sequence[tuple[str, int, int]], *, check: bool = True
) -> str:
    """A plain-TCP round-robin balancer config: ``servers`` are (host, hs2_port, web_port).

    With ``check``, servers are checked with ``GET /healthz`` on their web port every
    300 ms; a refused connection is redispatched to another server either way."""
    lines = [
        "global",
        "    maxconn 1000",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 3",
        "    option redispatch",
        "listen impala",
        f"    bind 127.0.0.1:{port}",
        "    balance roundrobin",
    ]
    if check:
        lines.append("    option httpchk GET /healthz")
    for i, (host, hs2, web) in enumerate(servers):
        checking = f" check port {web} inter 300ms fall 1" if check else ""
        lines.append(f"    server impalad{i + 1} {host}:{hs2}{checking}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Balancer:
    """The real ``impala-lb -f <config>`` as a child process, stopped by PID."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(
        cls,
        directory: Path,
        servers: Sequence[tuple[str, int, int]],
        timeout: float = 20.0,
        *,
        check: bool = True,
    ) -> Balancer:
        directory.mkdir(parents=True, exist_ok=True)
        last = ""
        for _attempt in range(3):
            port = free_ports("127.0.0.1")[0]
            cfg = directory / "lb.cfg"
            cfg.write_text(roundrobin_config(port, servers, check=check))
            log = directory / "lb.log"
            with open(log, "ab") as err:
                proc = subprocess.Popen(
                    [str(VENV_BIN / "impala-lb"), "-f", str(cfg)],
                    cwd=ROOT,
                    stdout=err,
                    stderr=err,
                    start_new_session=True,
                )
            lb = cls(proc, port, log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if accepts("127.0.0.1", port):
                    return lb
                time.sleep(0.05)
            last = log.read_text(errors="replace")[-2000:]
            lb.stop()
        raise RuntimeError(f"impala-lb did not start: {last}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if needed; always by PID."""
        stop_pid(self.proc, signal.SIGTERM, timeout, timeout)
