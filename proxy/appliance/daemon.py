"""One process of the local cluster (``impala-lb cluster``): how to start it, where it
answers, and the PID it runs as (the run directory's ``state.json`` lists them); and
starting, probing and stopping it by that PID, in its network namespace when it has
one (``--lb-pair``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from proxy.appliance import netns


@dataclasses.dataclass
class Daemon:
    """One process of the cluster: how to start it and where it answers."""

    name: str
    kind: str  # impalad | statestored | catalogd | impala-lb
    host: str
    argv: list[str]
    web_port: int | None
    role_metric: str | None = None
    pid: int | None = None
    #: the name the balancer knows it by ("" = its own name); an impalad added to a
    #: running cluster is named by its host, as the Impala controller names it
    server: str = ""
    #: an Impala daemon's own flags, written to ``<name>.flags`` beside the cluster's
    #: ``common.flags``; its argv reads both (:func:`write_flagfiles`)
    flags: list[str] = dataclasses.field(default_factory=list)
    #: the network namespace it runs in ("" = the machine's own; ``--lb-pair``)
    netns: str = ""

    @property
    def server_name(self) -> str:
        return self.server or self.name

    @property
    def health_url(self) -> str | None:
        return f"http://{self.host}:{self.web_port}/healthz" if self.web_port else None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def spawn(d: Daemon, run: Path) -> None:
    logs = run / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if d.kind == "keepalived":
        _drop_pid_files(d)
    # ``ip netns exec`` joins the namespace and execs the daemon: the PID is the daemon's
    argv = ["ip", "netns", "exec", d.netns, *d.argv] if d.netns else d.argv
    with open(logs / f"{d.name}.out", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=run,
            start_new_session=True,
        )
    d.pid = proc.pid


def wait_healthy(d: Daemon, deadline: float) -> bool:
    url = d.health_url
    while time.monotonic() < deadline:
        if not alive(d.pid):
            return False
        if url is None:
            return True
        try:
            if netns.call(d.netns, lambda: http_status(url)) == 200:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=1) as r:
        return int(r.status)


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=1) as r:
        return json.loads(r.read())


def wait_listening(d: Daemon, host: str, port: int, deadline: float) -> bool:
    def connect() -> None:
        socket.create_connection((host, port), timeout=0.5).close()

    while time.monotonic() < deadline and alive(d.pid):
        try:
            netns.call(d.netns, connect)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_pid(pid: int | None, timeout: float = 15.0) -> None:
    if not alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _drop_pid_files(d: Daemon) -> None:
    """keepalived refuses to start over the pid files a killed one left: drop them."""
    for arg in d.argv:
        for option in ("--pid=", "--vrrp_pid="):
            if arg.startswith(option):
                Path(arg[len(option) :]).unlink(missing_ok=True)
