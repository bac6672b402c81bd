"""impalad as a cluster member, with real processes: a statestored HA pair, three impalads
(127.0.0.x) and the real balancer (``impala-lb -f``) in front of them."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from impala.dbapi import connect

from tests.statestore.procs import TIMING, Statestored
from tests.support.impalad import Balancer, Impalad, free_ports
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(180)

HOSTS = ["127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"]


def member_flags(host: str, stores: list[Statestored]) -> list[str]:
    """Impala's statestore flags for an impalad on ``host`` (fast heartbeats for tests)."""
    return [
        f"--hostname={host}",
        f"--state_store_host={stores[0].host}",
        f"--state_store_port={stores[0].port}",
        "--enable_statestored_ha",
        f"--state_store_2_host={stores[1].host}",
        f"--state_store_2_port={stores[1].port}",
        f"--state_store_subscriber_port={free_ports(host)[0]}",
        "--statestore_subscriber_recovery_grace_period_ms=500",
        "--shutdown_grace_period_s=30",
        *TIMING,
    ]


def backends(d: Impalad) -> dict[str, Any]:
    status, body = d.get("/backends?json", timeout=2)
    assert status == 200
    doc: dict[str, Any] = json.loads(body)
    return doc


def addresses(d: Impalad) -> set[str]:
    return {b["address"] for b in backends(d)["backends"]}


def primary_of(d: Impalad) -> str | None:
    for stub in backends(d)["statestore"]:
        if stub["is_primary"]:
            return str(stub["address"])
    return None


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stores = [Statestored(0, tmp), Statestored(1, tmp)]
        self.impalads: list[Impalad] = []
        self.lb: Balancer | None = None

    def start(self) -> None:
        a, b = self.stores
        a.start(b)
        b.start(a)
        for host in HOSTS[:3]:
            self.add(host)

    def add(self, host: str) -> Impalad:
        d = Impalad.start(self.tmp / host, host=host, flags=member_flags(host, self.stores))
        self.impalads.append(d)
        return d

    def stop(self) -> None:
        if self.lb is not None:
            self.lb.stop()
        for d in self.impalads:
            d.stop()
        for s in self.stores:
            if s.proc is not None:
                s.proc.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def query_through(lb: Balancer) -> int:
    """One new client connection through the balancer running ``select 1``."""
    conn = connect(host="127.0.0.1", port=lb.port, timeout=10)
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        value: int = cur.fetchall()[0][0]
        cur.close()
        return value
    finally:
        conn.close()


class QueryLoop(threading.Thread):
    """Queries through the balancer, one after another, until stopped (bounded in count)."""

    def __init__(self, lb: Balancer, limit: int = 2000) -> None:
        super().__init__(daemon=True)
        self.lb = lb
        self.limit = limit
        self.ok = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() and self.ok + len(self.errors) < self.limit:
            try:
                assert query_through(self.lb) == 1
                self.ok += 1
            except Exception as e:
                self.errors.append(repr(e))
            time.sleep(0.02)

    def finish(self) -> None:
        self.stopping.set()
        self.join(30)


def test_every_impalad_lists_all_three_with_impala_field_names(cluster: Cluster) -> None:
    """Each impalad's /backends?json lists all three members with Impala's fields and our
    client addresses, and /healthz is 200 once registered."""
    want = {f"{h}:27000" for h in HOSTS[:3]}
    for d in cluster.impalads:
        wait_for(f"{d.host} to list three backends", lambda d=d: addresses(d) == want)  # type: ignore[misc]
        assert d.get("/healthz") == (200, b"OK\n")
    doc = backends(cluster.impalads[0])
    assert doc["num_active_backends"] == 3
    by_host = {b["address"].split(":")[0]: b for b in doc["backends"]}
    for d in cluster.impalads:
        entry = by_host[d.host]
        assert entry["hs2_address"] == d.hs2_address
        assert entry["hs2_http_address"] == d.http_address
        assert entry["webserver_url"] == d.web_url
        assert entry["krpc_address"] == f"{d.host}:27000"
        assert entry["is_coordinator"] and entry["is_executor"] and entry["is_active"]
        assert not entry["is_quiescing"] and not entry["is_blacklisted"]
    metrics = json.loads(cluster.impalads[1].get("/jsonmetrics")[1])
    assert metrics["cluster-membership.backends.total"] == 3
    assert metrics["statestore-subscriber.connected"] is True


def test_killed_impalad_leaves_the_others_lists(cluster: Cluster) -> None:
    """A SIGKILLed impalad disappears from the other impalads' /backends."""
    want = {f"{h}:27000" for h in HOSTS[:3]}
    for d in cluster.impalads:
        wait_for("three backends", lambda d=d: addresses(d) == want)  # type: ignore[misc]
    victim = cluster.impalads[2]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    left = {f"{h}:27000" for h in HOSTS[:2]}
    for d in cluster.impalads[:2]:
        wait_for("the killed impalad to leave", lambda d=d: addresses(d) == left, timeout=15)  # type: ignore[misc]


def test_graceful_shutdown_is_published_as_quiescing(cluster: Cluster) -> None:
    """SIGRTMIN on one impalad makes every member show it is_quiescing and not active."""
    want = {f"{h}:27000" for h in HOSTS[:3]}
    for d in cluster.impalads:
        wait_for("three backends", lambda d=d: addresses(d) == want)  # type: ignore[misc]
    leaving = cluster.impalads[0]
    os.kill(leaving.pid, signal.SIGRTMIN)

    def seen_quiescing(d: Impalad) -> bool:
        entry = next(b for b in backends(d)["backends"] if b["address"].startswith(leaving.host))
        return bool(entry["is_quiescing"]) and not entry["is_active"]

    for d in cluster.impalads:
        wait_for("is_quiescing to propagate", lambda d=d: seen_quiescing(d), timeout=10)  # type: ignore[misc]
    assert backends(cluster.impalads[1])["num_quiescing_backends"] == 1


def test_statestore_failover_keeps_membership_and_balanced_queries(cluster: Cluster) -> None:
    """Killing an impalad and then the primary statestored: membership keeps flowing from the
    new primary and every query through the balancer succeeds throughout."""
    want = {f"{h}:27000" for h in HOSTS[:3]}
    for d in cluster.impalads:
        wait_for("three backends", lambda d=d: addresses(d) == want)  # type: ignore[misc]
    cluster.lb = Balancer.start(
        cluster.tmp / "lb", [(d.host, d.hs2_port, d.webserver_port) for d in cluster.impalads]
    )
    assert query_through(cluster.lb) == 1
    loop = QueryLoop(cluster.lb)
    loop.start()
    try:
        victim = cluster.impalads[2]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        survivors = cluster.impalads[:2]
        left = {f"{h}:27000" for h in HOSTS[:2]}
        for d in survivors:
            wait_for("the killed impalad to leave", lambda d=d: addresses(d) == left, timeout=15)  # type: ignore[misc]

        primary = wait_for("a primary statestore", lambda: primary_of(survivors[0]))
        dead = next(s for s in cluster.stores if f"{s.host}:{s.port}" == primary)
        other = next(s for s in cluster.stores if s is not dead)
        assert dead.proc is not None
        dead.proc.kill()
        new_primary = f"{other.host}:{other.port}"
        for d in survivors:
            wait_for(
                "the standby statestored to become every impalad's primary",
                lambda d=d: primary_of(d) == new_primary,  # type: ignore[misc]
                timeout=30,
            )
        # Membership flows from the new primary: a newcomer is seen by everyone.
        newcomer = cluster.add(HOSTS[3])
        grown = left | {f"{HOSTS[3]}:27000"}
        for d in [*survivors, newcomer]:
            wait_for("the newcomer in every list", lambda d=d: addresses(d) == grown, timeout=20)  # type: ignore[misc]
        after = loop.ok
        wait_for("a few more balanced queries after the failover", lambda: loop.ok >= after + 5)
    finally:
        loop.finish()
    assert loop.errors == [], loop.errors[:5]
    assert loop.ok >= 20, f"only {loop.ok} queries ran"
