"""A pool that follows the cluster, for real: ``impala-lb cluster add impalad`` starts one
more coordinator, the Impala controller sees it in the membership and adds it to every
Impala backend (no config edit, no reload); killed, it leaves the membership and its
servers are deleted; the servers that did not change keep their counters. Once with
the controller inside impala-lb, once beside Debian's HAProxy (``--balancer haproxy``),
through the same runtime API."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance import cluster, daemon
from tests.support.balancer import stat_rows
from tests.support.cluster import SHELL, cli
from tests.support.procs import wait_for

NETS = {"impala-lb": "127.0.15", "haproxy": "127.0.16"}
PORT = 5000
BACKENDS = ("impala_shell", "impala_hue", "impala_hs2_http")


@pytest.fixture(scope="module", params=sorted(NETS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    balancer = request.param
    net = NETS[balancer]
    d = tmp_path_factory.mktemp(f"members-{balancer}")
    argv = ["--net", net, "--bind", f"{net}.1", "--port", str(PORT), "--balancer", balancer]
    rc, out = cli(d, "up", *argv)
    try:
        assert rc == 0, out + "".join(
            f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in (d / "logs").glob("*.out")
        )
        yield d
    finally:
        cli(d, "stop")
        daemons, _ = cluster.load(d)
        assert not any(daemon.alive(x.pid) for x in daemons)


def _rows(run: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(backend, server) -> its ``show stat`` row, for the Impala backends."""
    text = cluster.admin_command(run, "show stat")
    return {
        (be, name): row
        for be in BACKENDS
        for name, row in stat_rows(text, be, strip=()).items()
        if name not in ("FRONTEND", "BACKEND")
    }


def _query(run: Path) -> None:
    """One impala-shell ``select 1`` through the cluster's balancer; asserts it worked."""
    r = subprocess.run(
        [SHELL, "-i", f"{_host(run)}:{PORT}", "-q", "select 1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _host(run: Path) -> str:
    daemons, _ = cluster.load(run)
    return next(d.host for d in daemons if d.kind == "impala-lb")


def test_a_coordinator_that_joins_gets_clients_without_a_reload(run: Path) -> None:
    """``cluster add impalad``: within seconds every Impala backend has the new
    coordinator UP, by its host, with no reload; impala-shell sessions reach it."""
    before = _rows(run)
    rc, out = cli(run, "add", "impalad", timeout=120)
    assert rc == 0, out
    daemons, _ = cluster.load(run)
    new = next(d for d in daemons if d.name == "impalad-4")
    assert f"joined; the balancer serves it as server {new.host}" in out
    rows = _rows(run)
    for be in BACKENDS:
        assert rows[(be, new.host)]["status"] == "UP", rows[(be, new.host)]
    # the others are the same servers: their session totals only grew
    for key, row in before.items():
        assert int(rows[key]["stot"]) >= int(row["stot"]) and rows[key]["status"] == "UP"
    # leastconn: the newcomer is picked once its weight counts. HAProxy's slowstart (10 s
    # in the layout) ramps it up from 0, and with one connection at a time every server
    # has none, so HAProxy ties only once the ramp is over: query for up to 40 s
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if int(_rows(run)[("impala_shell", new.host)]["stot"]) > 0:
            break
        _query(run)
    assert int(_rows(run)[("impala_shell", new.host)]["stot"]) > 0
    for log in (run / "logs").glob("*.out"):
        if log.stem in ("impala-lb", "haproxy"):
            assert "reload" not in log.read_text().lower(), log


def test_a_coordinator_that_leaves_is_removed_and_the_rest_stay(run: Path) -> None:
    """Killed, the new coordinator drops out of the membership: its servers are put in
    maintenance and deleted; impalad-1..3 keep their state and counters."""
    daemons, _ = cluster.load(run)
    new = next(d for d in daemons if d.name == "impalad-4")
    before = {k: v for k, v in _rows(run).items() if k[1] != new.host}
    rc, out = cli(run, "kill", "impalad-4")
    assert rc == 0, out
    wait_for("its servers deleted", lambda: all(k[1] != new.host for k in _rows(run)), 45)
    after = _rows(run)
    for key, row in before.items():
        assert after[key]["status"] == row["status"] == "UP"
        assert int(after[key]["stot"]) >= int(row["stot"])


@pytest.mark.parametrize("run", ["haproxy"], indirect=True)
def test_a_controller_that_dies_leaves_haproxy_serving_the_last_state(run: Path) -> None:
    """SIGKILL the controller beside HAProxy: agent-checks fail, which changes nothing;
    every coordinator stays UP through several agent intervals and queries still run."""
    before = {k: v["status"] for k, v in _rows(run).items()}
    assert set(before.values()) == {"UP"}
    rc, out = cli(run, "kill", cluster.AGENT_NAME)
    assert rc == 0, out
    deadline = time.monotonic() + 5  # five agent-inter periods
    while time.monotonic() < deadline:
        assert {k: v["status"] for k, v in _rows(run).items()} == before
        time.sleep(0.5)
    _query(run)
    rc, out = cli(run, "start", cluster.AGENT_NAME)
    assert rc == 0, out
