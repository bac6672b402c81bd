"""The catalog across real processes: 1 statestored, 2 HA catalogds, 3 impalads, impyla.

Needs docs/catalog-wiring.patch applied (the statestore elects the active catalogd, impalad
uses the remote catalog when --catalog_service_host is given).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import duckdb

from tests.catalog._cluster import Cluster, get_json, running_cluster, wait_for
from tests.support.procs import holds


def test_create_on_a_is_queryable_at_once_on_b_and_c(tmp_path: Path) -> None:
    """A table created through coordinator A is queryable immediately on B and C."""
    with running_cluster(tmp_path) as c:
        a, b, cc = c.impalads
        a.run("create table t1 (id int, name string)")
        assert b.run("select count(*) from t1") == [(0,)]
        assert ("t1",) in cc.run("show tables")


def test_insert_on_b_is_counted_on_c(tmp_path: Path) -> None:
    """Rows inserted through B are counted by C's next query, without REFRESH."""
    with running_cluster(tmp_path) as c:
        a, b, cc = c.impalads
        a.run("create table t (id int)")
        b.run("insert into t values (1), (2), (3)")
        assert cc.run("select count(*) from t") == [(3,)]
        cc.run("insert into t values (4)")
        assert a.run("select sum(id) from t") == [(10,)]


def test_sync_ddl_holds_across_coordinators(tmp_path: Path) -> None:
    """With reads served from the topic only, SYNC_DDL=1 returns once B and C have the change."""
    with running_cluster(tmp_path, sync_reads=False) as c:
        a, b, cc = c.impalads
        for i in range(5):
            a.run(f"create table s{i} (id int)", {"SYNC_DDL": "1"})
            assert (f"s{i}",) in b.run("show tables")
            assert (f"s{i}",) in cc.run("show tables")
            b.run(f"insert into s{i} values ({i})", {"SYNC_DDL": "1"})
            assert cc.run(f"select count(*) from s{i}") == [(1,)]


def test_refresh_on_one_coordinator_sees_an_outside_file_everywhere(tmp_path: Path) -> None:
    """REFRESH issued on A picks up a Parquet file written outside Impala, on B and C too."""
    with running_cluster(tmp_path) as c:
        a, b, cc = c.impalads
        location = tmp_path / "warehouse" / "ext"
        location.mkdir()
        a.run(f"create external table ext (id int) stored as parquet location '{location}'")
        assert b.run("select count(*) from ext") == [(0,)]
        duckdb.sql(
            f"COPY (SELECT range::INTEGER AS id FROM range(7)) TO '{location / 'outside.parq'}' "
            "(FORMAT PARQUET)"
        )
        assert b.run("select count(*) from ext") == [(0,)]
        a.run("refresh ext")
        assert b.run("select count(*) from ext") == [(7,)]
        assert cc.run("select count(*) from ext") == [(7,)]
        (location / "second.parq").write_bytes((location / "outside.parq").read_bytes())
        cc.run("invalidate metadata")
        assert a.run("select count(*) from ext") == [(14,)]


def test_web_pages_report_health_and_the_active(tmp_path: Path) -> None:
    """Both catalogds answer /healthz 200; exactly one has active-status true in /jsonmetrics."""
    with running_cluster(tmp_path) as c:
        statuses = []
        for cat in c.catalogds:
            base = f"http://{cat.host}:{cat.web_port}"
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                assert r.status == 200
            statuses.append(get_json(f"{base}/jsonmetrics?json")["catalog-server.active-status"])
            assert "databases" in get_json(f"{base}/catalog?json")
        assert sorted(statuses) == [False, True]


def _stream(c: Cluster, count: int, kill_at: int) -> tuple[list[str], list[str], float]:
    """CREATE/INSERT statements round-robin over the coordinators; kill the active midway."""
    created: list[str] = []
    inserted: list[str] = []
    killed_at = 0.0
    deadline = time.monotonic() + 90
    for i in range(count):
        assert time.monotonic() < deadline, "the statement stream took too long"
        if i == kill_at:
            active = c.active()
            assert active is not None
            # Lands while statement i is in flight.
            threading.Timer(0.005, active.proc.kill).start()
            killed_at = time.monotonic()
        coordinator = c.impalads[i % 3]
        try:
            if i % 2 == 0:
                coordinator.run(f"create table f{i} (id int)")
                created.append(f"f{i}")
            elif created:
                coordinator.run(f"insert into {created[-1]} values ({i})")
                inserted.append(created[-1])
        except Exception as e:  # a statement during the failover may fail; it must not count
            print(f"statement {i} failed: {e}")
    return created, inserted, killed_at


def test_failover_during_a_stream_loses_no_acknowledged_statement(tmp_path: Path) -> None:
    """Kill the active mid-stream: the standby takes over, later DDL works, nothing acked is lost,
    and the restarted old active stays standby."""
    with running_cluster(tmp_path) as c:
        first = c.active()
        assert first is not None
        other = next(x for x in c.catalogds if x is not first)
        created, inserted, _ = _stream(c, 40, kill_at=16)
        wait_for("the standby to be promoted", lambda: c.active() is other, timeout=30)
        assert other.metrics()["catalog-server.ha-number-active-status-change"] >= 1
        c.impalads[0].run("create table after_failover (id int)")
        assert len(created) >= 15 and len(inserted) >= 15
        for coordinator in c.impalads:
            tables = {r[0] for r in coordinator.run("show tables")}
            assert set(created) | {"after_failover"} <= tables
            for name in set(inserted):
                expected = inserted.count(name)
                assert coordinator.run(f"select count(*) from {name}") == [(expected,)]
        first.proc.start()
        wait_for("the old active to come back", lambda: first.metrics(), timeout=20)
        holds(
            "the returning catalogd staying standby",
            lambda: not first.is_active() and other.is_active(),
            seconds=2,
        )
        c.impalads[1].run("create table after_restart (id int)")
        assert ("after_restart",) in c.impalads[2].run("show tables")


def test_both_forced_active_exactly_one_wins(tmp_path: Path) -> None:
    """Two catalogds started with --force_catalogd_active: exactly one is active and DDL works."""
    with running_cluster(tmp_path, catalogd_flags=("--force_catalogd_active",)) as c:
        wait_for("an active catalogd", lambda: any(cat.is_active() for cat in c.catalogds))
        holds(
            "exactly one active catalogd",
            lambda: sum(1 for cat in c.catalogds if cat.is_active()) == 1,
            seconds=1.5,
        )
        c.impalads[2].run("create table forced (id int)")
        assert c.impalads[0].run("select count(*) from forced") == [(0,)]


def test_statestore_failover_keeps_the_catalog_working(tmp_path: Path) -> None:
    """With two statestoreds, killing the active one keeps the same active catalogd, and DDL
    and INSERT through any coordinator stay visible on all."""
    with running_cluster(tmp_path, statestores=2) as c:
        a, b, cc = c.impalads
        active = c.active()
        assert active is not None
        a.run("create table before (id int)", {"SYNC_DDL": "1"})
        ss = wait_for("one active statestored", c.active_statestored)
        ss.proc.kill()
        other = next(s for s in c.statestoreds if s is not ss)
        wait_for("the standby statestored to take over", other.is_active, timeout=30)
        b.run("insert into before values (1)")
        cc.run("create table after (id int)")
        for coordinator in c.impalads:
            assert coordinator.run("select count(*) from before") == [(1,)]
            assert ("after",) in coordinator.run("show tables")
        assert c.active() is active
        # The new active statestore also carries the topic: SYNC_DDL still completes.
        a.run("create table synced (id int)", {"SYNC_DDL": "1"})


def test_default_database_exists_at_once_without_catalogd_ha(tmp_path: Path) -> None:
    """One catalogd, no HA: the first statement on every coordinator can use `default`."""
    with running_cluster(tmp_path, catalogds=1, ha=False) as c:
        for i, d in enumerate(c.impalads):
            assert ("default",) in [r[:1] for r in d.run("show databases")]
            d.run(f"create table default.first_{i} (id int)")
        assert len(c.impalads[0].run("show tables in default")) == 3
