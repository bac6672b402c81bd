"""A rolling restart of every coordinator under steady client load, side by side:
impala-lb with the Impala agent, Debian's HAProxy asking the same agent, and HAProxy
with the plain ``option httpchk GET /healthz`` that Impala's docs recommend.

``impala-lb cluster restart`` drains each coordinator through the agent first (both
balancers that ask it drain), shuts it down gracefully (SIGRTMIN; it refuses new
sessions from then on, as Impala does), starts it again and waits until it takes
clients. The two balancers with the agent fail no query; the plain one keeps sending
new clients to a coordinator that refuses them (its /healthz stays 200), and fails
some. A ``:shutdown()`` nobody planned is drained within about one poll interval.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from impala.dbapi import connect

from proxy.appliance import cluster, daemon
from tests.support.cluster import cli, cluster_up
from tests.support.procs import wait_for

NET = "127.0.14"
PORT = 5500
#: the balancers under load: name -> listen address of their impala-shell frontend
BALANCERS = {"impala-lb": f"{NET}.1", "haproxy-agent": f"{NET}.2", "haproxy-healthz": f"{NET}.3"}
THREADS = 2
_AGENT_PARAMS = r" agent-check agent-port \d+ agent-inter \S+ agent-addr \S+ agent-send (?:\\ |\S)+"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from cluster_up(
        tmp_path_factory,
        net=NET,
        port=PORT,
        bind=BALANCERS["impala-lb"],
        impalad_flags=("--shutdown_grace_period_s=2",),
    )


def _haproxy_config(run: Path, name: str) -> str:
    """The appliance's rendered config, on this balancer's address and socket; without
    the agent for the plain one."""
    text = (run / "haproxy.cfg").read_text()
    text = text.replace(f"bind {BALANCERS['impala-lb']}:", f"bind {BALANCERS[name]}:")
    text = re.sub(r"stats socket \S+", f"stats socket {run / (name + '.sock')}", text)
    if name == "haproxy-healthz":
        text = re.sub(_AGENT_PARAMS, "", text)
        assert "agent-check" not in text
    return text


class Load:
    """Client threads through one balancer: a new connection and a query each time."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.ok = 0
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn = connect(host=self.host, port=PORT, timeout=60)
                try:
                    cur = conn.cursor()
                    cur.execute("select count(*) from sample.customers")
                    cur.fetchall()
                    cur.close()
                finally:
                    conn.close()
                self.ok += 1
            except Exception as e:
                self.failed.append(f"{type(e).__name__}: {e}"[:200])

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)


def test_rolling_restart_fails_no_query_with_the_agent(run: Path, tmp_path: Path) -> None:
    """impala-lb and HAProxy asking the Impala agent fail no query while every coordinator
    restarts in turn; HAProxy with the plain /healthz check fails some in the same run."""
    procs = []
    try:
        for name in ("haproxy-agent", "haproxy-healthz"):
            cfg = tmp_path / f"{name}.cfg"
            cfg.write_text(_haproxy_config(run, name))
            check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True)
            assert check.returncode == 0, check.stderr
            procs.append(
                subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stderr=subprocess.DEVNULL)
            )
        agent_sock = run / "haproxy-agent.sock"
        plain_sock = run / "haproxy-healthz.sock"

        def view(sock: Path) -> Callable[[str], set[str]]:
            return lambda server: cluster.balancer_states(run, server, sock)

        def up(sock: Path, i: int) -> Callable[[], bool]:
            return lambda: view(sock)(f"impalad-{i}") == {"UP"}

        for sock in (agent_sock, plain_sock):
            for i in (1, 2, 3):
                wait_for(f"impalad-{i} UP on {sock.name}", up(sock, i), 30)
        loads = {name: Load(host) for name, host in BALANCERS.items()}
        wait_for("load running", lambda: all(load.ok > 5 for load in loads.values()), 60)
        for i in (1, 2, 3):
            before = {name: load.ok for name, load in loads.items()}
            assert cluster.restart_coordinator(
                run, f"impalad-{i}", views=[view(agent_sock)], timeout=120, say=lambda _: None
            ), f"impalad-{i} did not restart"
            # the restarted coordinator takes clients on every balancer again
            for sock in (agent_sock, plain_sock):
                wait_for("UP again", up(sock, i), 30)

            def progressed(b: dict[str, int] = before) -> bool:
                return all(loads[n].ok > b[n] + 3 for n in loads)

            wait_for("more queries", progressed, 60)
        for load in loads.values():
            load.end()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    report = {name: (load.ok, len(load.failed)) for name, load in loads.items()}
    print(f"\nrolling restart (ok, failed): {report}")
    assert loads["impala-lb"].failed == [], loads["impala-lb"].failed[:3]
    assert loads["haproxy-agent"].failed == [], loads["haproxy-agent"].failed[:3]
    assert loads["haproxy-healthz"].failed, "the plain /healthz check failed no query"
    assert any("Server is being shut down" in f for f in loads["haproxy-healthz"].failed)


def test_unplanned_shutdown_is_drained_within_a_poll(run: Path) -> None:
    """SIGRTMIN on a coordinator nobody drained: the agent sees it quiescing and the
    balancer puts it in DRAIN (sessions on it are not cut), and `cluster status` says
    why (Impala's shutdown status); it comes back UP once restarted."""
    daemons = {d.name: d for d in cluster.load(run)[0]}
    d = daemons["impalad-2"]
    assert d.pid is not None
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGRTMIN)
    wait_for("DRAIN", lambda: cluster.balancer_states(run, "impalad-2") == {"DRAIN (agent)"}, 30)
    print(f"\nunplanned shutdown drained after {time.monotonic() - t0:.2f} s")
    rc, out = cli(run, "status")
    assert rc == 0, out
    line = next(ln for ln in out.splitlines() if ln.startswith("impalad-2 "))
    assert "DRAIN (agent)" in line and "(quiescing: shutdown grace period left: " in line, out
    pid = d.pid
    wait_for("exit", lambda: not daemon.alive(pid), 60)
    assert cli(run, "start", "impalad-2")[0] == 0
    wait_for("UP", lambda: cluster.balancer_states(run, "impalad-2") == {"UP"}, 30)
