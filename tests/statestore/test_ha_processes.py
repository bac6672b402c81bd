"""Impala's test_statestored_ha.py scenarios, with real statestored and subscriber processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.statestore.procs import Statestored, Subscriber
from tests.support.procs import ROOT, wait_for

pytestmark = pytest.mark.timeout(60)
NAMES = ("sub0", "sub1", "sub2")


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ss = [Statestored(0, tmp), Statestored(1, tmp)]
        self.subs: dict[str, Subscriber] = {}

    def start(self, *extra: str) -> None:
        self.ss[0].start(self.ss[1], *extra)
        self.ss[1].start(self.ss[0], *extra)
        for name in NAMES:
            self.add_subscriber(name)

    def add_subscriber(self, name: str) -> Subscriber:
        self.subs[name] = Subscriber(name, self.ss, self.tmp)
        return self.subs[name]

    def primaries(self) -> set[int | None]:
        return {s.primary_index() for s in self.subs.values()}

    def wait_all_follow(self, index: int, timeout: float = 10.0) -> None:
        wait_for(
            f"every subscriber to hold ss{index}", lambda: self.primaries() == {index}, timeout
        )

    def wait_membership(self, names: set[str], timeout: float = 10.0) -> None:
        wait_for(
            f"membership {sorted(names)} everywhere",
            lambda: all(set(s.membership()) == names for s in self.subs.values()),
            timeout,
        )

    def wait_ready(self) -> None:
        wait_for("ss0 active", lambda: self.ss[0].role() == "active")
        wait_for("ss1 standby", lambda: self.ss[1].role() == "standby")
        self.wait_all_follow(0)
        self.wait_membership(set(NAMES))

    def check_only_primary_applied(self) -> None:
        for sub in self.subs.values():
            assert sub.check_only_primary_applied() > 0

    def stop(self) -> None:
        procs = [s.proc for s in self.subs.values()] + [s.proc for s in self.ss]
        for proc in procs:
            if proc is not None:
                proc.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def test_kill_primary_standby_takes_over_and_membership_flows(cluster: Cluster) -> None:
    """Killing the active makes the standby active, every subscriber follows, and
    membership changes keep flowing through the new active."""
    cluster.start()
    cluster.wait_ready()
    assert cluster.ss[0].metrics()["statestore.active-status"] is True
    assert cluster.ss[1].metrics()["statestore.active-status"] is False

    assert cluster.ss[0].proc is not None
    started = time.monotonic()
    cluster.ss[0].proc.kill()
    wait_for("ss1 active", lambda: cluster.ss[1].metrics()["statestore.active-status"])
    cluster.wait_all_follow(1)
    failover = time.monotonic() - started
    print(f"\nstatestore failover (SIGKILL -> standby active and 3/3 subscribers): {failover:.2f}s")
    assert failover < 5.0

    cluster.wait_membership(set(NAMES))
    cluster.add_subscriber("sub3")
    cluster.wait_membership({*NAMES, "sub3"})
    cluster.subs.pop("sub2").proc.kill()
    cluster.wait_membership({"sub0", "sub1", "sub3"})
    topics = cluster.ss[1].get("/topics?json")["topics"]
    assert [(t["topic_id"], t["num_entries"]) for t in topics] == [("impala-membership", 3)]
    cluster.check_only_primary_applied()


def test_cut_peer_link_only_no_takeover(cluster: Cluster) -> None:
    """Cutting only the primary-standby link changes nothing: subscribers still reach the
    primary, so the standby's witnesses veto the takeover."""
    cluster.start()
    cluster.wait_ready()
    target = cluster.ss[0]
    argv = ["-m", "backends.statestore.debug_action", f"--host={target.host}"]
    argv += [f"--port={target.port}", "--cut_peer_link"]
    cut = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert cut.returncode == 0, cut.stderr
    wait_for(
        "ss1 to miss the primary's HA heartbeats",
        lambda: (cluster.ss[1].get("/ha?json")["peer_missed_heartbeats"] or 0) >= 10,
    )
    time.sleep(1.0)
    assert (cluster.ss[0].role(), cluster.ss[1].role()) == ("active", "standby")
    assert cluster.primaries() == {0}
    assert cluster.ss[1].get("/ha?json")["witnesses_failed"] == 0
    cluster.check_only_primary_applied()


def test_cut_primary_from_majority_takes_over(cluster: Cluster) -> None:
    """Cutting the primary from its peer and from 2 of 3 subscribers hands the role to the
    standby; healing leaves exactly one active."""
    cluster.start()
    cluster.wait_ready()
    cluster.ss[0].debug(cut_peer_link=True, isolate=("sub0", "sub1"))
    wait_for("ss1 active", lambda: cluster.ss[1].role() == "active")
    cluster.wait_all_follow(1)
    cluster.ss[0].debug()
    wait_for("ss0 standby again", lambda: cluster.ss[0].role() == "standby")
    # every subscriber ends on ss1 (polled: on a busy machine one may take a moment to
    # hear ss1 again after the heal), and the roles have not moved meanwhile
    cluster.wait_all_follow(1)
    assert (cluster.ss[0].role(), cluster.ss[1].role()) == ("standby", "active")
    cluster.wait_membership(set(NAMES))
    cluster.check_only_primary_applied()


def test_restarted_old_primary_returns_as_standby(cluster: Cluster) -> None:
    """A killed primary that restarts becomes standby and does not take the role back."""
    cluster.start()
    cluster.wait_ready()
    assert cluster.ss[0].proc is not None
    cluster.ss[0].proc.kill()
    cluster.wait_all_follow(1)
    cluster.ss[0].start(cluster.ss[1])
    wait_for(
        "subscribers registered with the restarted ss0",
        lambda: cluster.ss[0].metrics()["statestore.live-backends"] == 3,
    )
    for _ in range(10):  # one second of watching for a flip-flop
        assert (cluster.ss[0].role(), cluster.ss[1].role()) == ("standby", "active")
        assert cluster.primaries() == {1}
        time.sleep(0.1)
    assert cluster.ss[0].metrics()["statestore.num-successful-update-statestored-role-rpc"] == 0
    assert cluster.ss[1].metrics()["statestore.num-successful-update-statestored-role-rpc"] >= 3
    cluster.check_only_primary_applied()


def test_both_forced_active_end_with_one(cluster: Cluster) -> None:
    """Two statestoreds both started with --statestore_force_active end with one active."""
    cluster.start("--statestore_force_active")

    def settled() -> list[str | None] | None:
        roles = [s.role() for s in cluster.ss]
        return roles if sorted(str(r) for r in roles) == ["active", "standby"] else None

    roles: list[str | None] = wait_for("both statestoreds to settle", settled)
    active = roles.index("active")
    cluster.wait_all_follow(active)
    time.sleep(0.5)
    assert [s.role() for s in cluster.ss].count("active") == 1
    cluster.wait_membership(set(NAMES))
    cluster.check_only_primary_applied()
