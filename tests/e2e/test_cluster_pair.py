"""``impala-lb cluster up --lb-pair``, for real: the local cluster in network namespaces
behind two impala-lb + keepalived pairs and one virtual IP.

The appliance's own commands do everything (up, status, kill, start, stop); the test
runs impyla from the client namespace through the address, checks that ``status``
names the balancer holding it, that killing that balancer's impala-lb moves it and
queries go on, that a rolling restart drains on both balancers, and that ``stop``
removes every namespace (in a finally, so a failing
test leaves nothing behind either)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance import cluster_pair, netns
from tests.support.procs import wait_for

LB = str(Path(sys.executable).parent / "impala-lb")
VIP = f"{netns.SUBNET}.{cluster_pair.VIP_OCTET}"


def _cli(run: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LB, "cluster", "--dir", str(run), *args], capture_output=True, text=True, timeout=timeout
    )


def _query() -> list[tuple[int]]:
    """``select 1`` with impyla, from the client namespace, through the virtual IP."""

    def run() -> list[tuple[int]]:
        from impala.dbapi import connect

        conn = connect(host=VIP, port=5000, timeout=5)
        try:
            cur = conn.cursor()
            cur.execute("select 1")
            return list(cur.fetchall())
        finally:
            conn.close()

    return netns.call(cluster_pair.CLIENT_NS, run)


def _answers() -> bool:
    try:
        return _query() == [(1,)]
    except Exception:
        return False


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Path]:
    why = cluster_pair.unavailable()
    assert not why, why  # CI runs as root with keepalived installed: no skipping
    run = tmp_path / "run"
    try:
        yield run
    finally:
        stop = _cli(run, "stop", timeout=120)
        left = [ns for ns in cluster_pair.namespaces() if netns.exists(ns)]
        netns.remove(left)  # whatever the assertion below says, nothing stays behind
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "removed its namespaces" in stop.stdout
        assert not left, f"cluster stop left namespaces {left}"


def test_cluster_up_lb_pair_serves_through_the_address_and_moves_it(run: Path) -> None:
    up = _cli(
        run,
        "up",
        "--lb-pair",
        "--impalads",
        "1",
        "--timeout",
        "150",
        "--impalad-flag=--shutdown_grace_period_s=2",  # Impala's 120 s would slow the restart
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"ip netns exec {cluster_pair.CLIENT_NS} " in up.stdout
    assert f"-i {VIP}:5000" in up.stdout
    status = _cli(run, "status").stdout
    assert f"virtual IP {VIP}: held by impala-lb-1 (ilb-lb1)" in status, status
    rows = {line.split()[0]: line for line in status.splitlines() if line.strip()}
    for name in ("impala-lb-1", "impala-lb-2", "keepalived-1", "keepalived-2", "impalad-1"):
        assert " running " in rows[name], status
    # both balancers render from one description: same config but their stats sockets
    cfg1, cfg2 = (run / "haproxy.cfg").read_text(), (run / "haproxy-2.cfg").read_text()
    assert cfg1.replace("admin.sock", "admin-2.sock") == cfg2
    assert _query() == [(1,)]

    killed = _cli(run, "kill", "impala-lb-1")
    assert killed.returncode == 0, killed.stdout
    wait_for(
        "the address to move to impala-lb-2",
        lambda: "held by impala-lb-2 (ilb-lb2)" in _cli(run, "status").stdout,
        timeout=30,
    )
    wait_for("a query through the address again", _answers, timeout=30)

    started = _cli(run, "start", "impala-lb-1")
    assert started.returncode == 0, started.stdout + started.stderr
    assert _query() == [(1,)]

    # a rolling restart drains the coordinator on both balancers' controllers first
    restarted = _cli(run, "restart", "impalad-1", "--timeout", "120")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "impalad-1: drained" in restarted.stdout
    assert "restarted" in restarted.stdout and "taking clients" in restarted.stdout
    wait_for("a query after the restart", _answers, timeout=30)


def test_cluster_up_lb_pair_refuses_haproxy_with_the_reason(tmp_path: Path) -> None:
    up = _cli(tmp_path / "run", "up", "--lb-pair", "--balancer", "haproxy")
    assert up.returncode == 1
    assert "cannot start the cluster with --lb-pair: it pairs impala-lb only" in up.stdout
    assert not any(netns.exists(ns) for ns in cluster_pair.namespaces())
