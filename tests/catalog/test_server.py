"""CatalogServer in memory: roles, standby refusal, versions, publishing, durability."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from backends.catalog.objects import (
    CATALOG_TOPIC,
    SERVICE_ID_KEY,
    CatalogEntry,
    ServiceIdEntry,
    table_key,
)
from backends.catalog.protocol import CATALOG_IN_STANDBY_MODE, CATALOG_NOT_READY, encode_op
from backends.catalog.server import CatalogServer, Designation, open_local_store
from backends.impalad.sql import Catalog, DataFile, LocalCatalog
from tests.catalog._fixtures import ListPublisher, result_of, sample_table


def ddl(server: CatalogServer, op: str, args: Any) -> dict[str, Any]:
    result: dict[str, Any] = result_of(server.exec_ddl(op, args))
    return result


def make(
    tmp: Path, *, ha: bool, address: str = "127.0.0.1:26000", opener: Any = None
) -> tuple[CatalogServer, ListPublisher, task.Clock]:
    clock, pub = task.Clock(), ListPublisher()
    (tmp / "wh").mkdir(exist_ok=True)
    open_store = opener or open_local_store(tmp / "wh", tmp / "meta.duckdb")
    server = CatalogServer(clock, open_store, pub, address=address, enable_ha=ha)
    server.start()
    return server, pub, clock


def create(server: CatalogServer, name: str = "t") -> dict[str, Any]:
    t = dataclasses.replace(sample_table(name), location="")
    return ddl(server, "create_table", encode_op(table=t, if_not_exists=False))


def test_standby_refuses_with_impalas_error(tmp_path: Path) -> None:
    """An HA catalogd not designated active refuses DDL with CATALOG_IN_STANDBY_MODE."""
    server, pub, _ = make(tmp_path, ha=True)
    answer = create(server)
    assert answer["ok"] is False and answer["error_kind"] == CATALOG_IN_STANDBY_MODE
    expected = (
        "Request for Catalog service is rejected since catalogd 127.0.0.1:26000 is in standby mode"
    )
    assert answer["error_message"] == expected
    assert server.get_delta(0)["error_kind"] == CATALOG_IN_STANDBY_MODE
    assert server.store is None and pub.writes == []


def test_ddl_answers_new_objects_and_publishes_them(tmp_path: Path) -> None:
    """A change answers its version and objects, and queues them with the service id."""
    server, pub, _ = make(tmp_path, ha=False)
    answer = create(server)
    assert answer["ok"] and answer["service_id"] == server.service_id
    entries = [CatalogEntry.from_json(e) for e in answer["entries"]]
    assert [e.key for e in entries] == [table_key("default", "t")]
    assert entries[0].version == answer["version"]
    view = pub.view(CATALOG_TOPIC)
    assert table_key("default", "t") in view
    assert ServiceIdEntry.from_bytes(view[SERVICE_ID_KEY]).catalog_version == answer["version"]
    server.stop()


def test_errors_come_back_in_band_and_do_not_bump(tmp_path: Path) -> None:
    """A failing operation answers Impala's error and leaves the version unchanged."""
    server, _, _ = make(tmp_path, ha=False)
    create(server)
    version = server.version
    again = create(server)
    assert again == {
        "ok": False,
        "error_kind": "AnalysisException",
        "error_message": "Table already exists: default.t",
    }
    bad = ddl(server, "create_table", {"table": {"db": 1}})
    assert bad["ok"] is False and "bad catalog request" in bad["error_message"]
    assert ddl(server, "drop_everything", {})["ok"] is False
    assert server.version == version
    server.stop()


def test_retried_insert_does_not_add_files_twice(tmp_path: Path) -> None:
    """add_files ignores files the table already has, so a retried INSERT counts once."""
    server, _, _ = make(tmp_path, ha=False)
    create(server)
    files = [DataFile("a.parq", 10)]
    args = encode_op(db="default", name="t", files=files)
    first = ddl(server, "add_files", args)
    second = ddl(server, "add_files", args)
    assert first["ok"] and second["ok"] and second["entries"] == []
    assert server.store is not None
    t = server.store.table("default", "t")
    assert t is not None and [f.path for f in t.files] == ["a.parq"]
    server.stop()


def test_delta_returns_only_newer_objects(tmp_path: Path) -> None:
    """GetCatalogDelta(from) answers the objects changed after ``from``."""
    server, _, _ = make(tmp_path, ha=False)
    v1 = create(server, "a")["version"]
    create(server, "b")
    delta = server.get_delta(v1)
    assert delta["full"] is False
    assert [e["key"] for e in delta["entries"]] == [table_key("default", "b")]
    full = server.get_delta(0)
    assert full["full"] is True
    assert {e["key"] for e in full["entries"]} >= {table_key("default", "a"), "DATABASE:default"}
    server.stop()


def test_promotion_publishes_the_file_and_tombstones_stale_topic_keys(tmp_path: Path) -> None:
    """A promoted standby publishes every object at the file's version and drops stale keys."""
    first, _, _ = make(tmp_path, ha=False)
    create(first, "kept")
    create(first, "dropped")
    ddl(first, "drop_table", encode_op(db="default", name="dropped", if_exists=False))
    version = first.version
    first.stop()
    standby, pub, _ = make(tmp_path, ha=True, address="127.0.0.1:26001")
    # The topic still shows 'dropped' alive: the old active died before publishing the drop.
    stale = CatalogEntry(table_key("default", "dropped"), version - 1, sample_table("dropped"))
    standby.topic_updated({stale.key: stale.to_bytes()})
    assert standby.cache.get(stale.key) is not None
    old_sid = standby.service_id
    standby.designated(Designation(2, "127.0.0.1:26001", "cat-b"))
    assert standby.is_active and standby.service_id != old_sid
    view = pub.view(CATALOG_TOPIC)
    dropped = CatalogEntry.from_bytes(view[table_key("default", "dropped")])
    kept = CatalogEntry.from_bytes(view[table_key("default", "kept")])
    assert dropped.deleted and dropped.version == version
    assert kept.obj is not None and kept.version == version
    standby.stop()


def test_demotion_closes_the_file_and_takes_a_new_service_id(tmp_path: Path) -> None:
    """A designation naming the other catalogd makes this one standby, releasing the file."""
    server, _, _ = make(tmp_path, ha=True)
    server.designated(Designation(1, "127.0.0.1:26000", "cat-a"))
    assert server.is_active and server.store is not None
    sid = server.service_id
    server.designated(Designation(2, "127.0.0.1:26001", "cat-b"))
    assert not server.is_active and server.store is None and server.service_id != sid
    assert server.metrics()["catalog-server.ha-number-active-status-change"] == 2


def test_promotion_retries_while_the_file_is_locked(tmp_path: Path) -> None:
    """Until the previous holder lets go of the file, requests get CATALOG_NOT_READY."""
    real = open_local_store(tmp_path / "wh", tmp_path / "meta.duckdb")
    attempts: list[int] = []

    def opener() -> Catalog:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("Could not set lock on file")
        return real()

    server, _, clock = make(tmp_path, ha=True, opener=opener)
    server.designated(Designation(1, "127.0.0.1:26000", "cat-a"))
    assert create(server)["error_kind"] == CATALOG_NOT_READY
    clock.advance(0.2)
    clock.advance(0.2)
    assert len(attempts) == 3 and create(server)["ok"]
    server.stop()


def test_lost_statestore_makes_an_ha_active_step_down(tmp_path: Path) -> None:
    """With HA, an active that reaches no statestore fences itself (standby, file closed)."""
    server, _, _ = make(tmp_path, ha=True)
    server.designated(Designation(1, "127.0.0.1:26000", "cat-a"))
    server.lost_statestore()
    assert not server.is_active and server.store is None


def test_without_ha_the_catalogd_stays_active(tmp_path: Path) -> None:
    """Without HA, designations and a lost statestore do not change the role."""
    server, _, _ = make(tmp_path, ha=False)
    server.designated(Designation(1, "other:26000", "x"))
    server.lost_statestore()
    assert server.is_active and server.metrics()["catalog-server.active-status"] is True
    server.stop()


def _with_table_on_disk(tmp_path: Path) -> None:
    """Table ``default.ext`` created by one server (then stopped), and a data file of 7
    bytes written into its directory from outside."""
    first, _, _ = make(tmp_path, ha=False)
    location = tmp_path / "wh" / "ext"
    location.mkdir()
    t = dataclasses.replace(sample_table("ext"), location=str(location), partition_columns=())
    ddl(first, "create_table", encode_op(table=t, if_not_exists=False))
    first.stop()
    (location / "outside.parq").write_bytes(b"x" * 7)


def test_startup_load_picks_up_files_written_outside(tmp_path: Path) -> None:
    """Loading the catalog at activation rescans table directories (the start-up reset)."""
    _with_table_on_disk(tmp_path)
    (tmp_path / "wh" / "ext" / "_tmp").write_bytes(b"ignored")
    second, _, _ = make(tmp_path, ha=False)
    assert second.store is not None
    loaded = second.store.table("default", "ext")
    assert loaded is not None and [(f.path, f.size) for f in loaded.files] == [("outside.parq", 7)]
    second.stop()


class ManualRunner:
    """A Runner whose work waits in a queue until the test runs it, in order."""

    def __init__(self) -> None:
        self.queue: list[tuple[Any, defer.Deferred[Any]]] = []

    def __call__(self, fn: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.queue.append((fn, d))
        return d

    def drain(self) -> None:
        while self.queue:
            fn, d = self.queue.pop(0)
            d.callback(fn())


def _server(tmp_path: Path, runner: ManualRunner, background: bool) -> CatalogServer:
    server = CatalogServer(
        task.Clock(),
        open_local_store(tmp_path / "wh", tmp_path / "meta.duckdb"),
        ListPublisher(),
        address="127.0.0.1:26000",
        enable_ha=False,
        load_in_background=background,
        run=runner,
    )
    server.start()
    return server


def test_foreground_load_refuses_requests_until_every_table_is_loaded(tmp_path: Path) -> None:
    """--load_catalog_in_background=false: requests wait (CATALOG_NOT_READY) for the load."""
    _with_table_on_disk(tmp_path)
    runner = ManualRunner()
    server = _server(tmp_path, runner, background=False)
    assert server.get_delta(0)["error_kind"] == CATALOG_NOT_READY
    runner.drain()
    assert server.loaded and server.get_delta(0)["ok"]
    server.stop()
    runner.drain()


def test_background_load_serves_requests_while_loading(tmp_path: Path) -> None:
    """--load_catalog_in_background=true: requests are served while table files load."""
    _with_table_on_disk(tmp_path)
    runner = ManualRunner()
    server = _server(tmp_path, runner, background=True)
    assert server.get_delta(0)["ok"] and runner.queue
    runner.drain()
    t = server.cache.get(table_key("default", "ext"))
    assert t is not None and [f.path for f in getattr(t, "files", ())] == ["outside.parq"]
    server.stop()
    runner.drain()


def test_change_in_flight_at_demotion_commits_before_the_file_closes(tmp_path: Path) -> None:
    """A change already running when the catalogd is demoted still commits and answers ok,
    and the file is closed only after it."""
    runner = ManualRunner()
    (tmp_path / "wh").mkdir()
    server = CatalogServer(
        task.Clock(),
        open_local_store(tmp_path / "wh", tmp_path / "meta.duckdb"),
        ListPublisher(),
        address="127.0.0.1:26000",
        enable_ha=True,
        run=runner,
    )
    server.designated(Designation(1, "127.0.0.1:26000", "a"))
    runner.drain()
    t = dataclasses.replace(sample_table("late"), location="")
    pending = server.exec_ddl("create_table", encode_op(table=t, if_not_exists=False))
    server.designated(Designation(2, "127.0.0.1:26001", "b"))
    runner.drain()
    assert result_of(pending)["ok"] is True
    reopened = open_local_store(tmp_path / "wh", tmp_path / "meta.duckdb")()
    assert isinstance(reopened, LocalCatalog)
    assert reopened.table("default", "late") is not None
    reopened.close()


def test_active_republishes_everything_when_the_statestore_topic_is_empty(
    tmp_path: Path,
) -> None:
    """After a statestore restart or failover (empty topic) the active publishes it all again."""
    server, pub, _ = make(tmp_path, ha=False)
    create(server, "a")
    published = pub.view(CATALOG_TOPIC)
    pub.writes.clear()
    server.topic_updated(published)
    assert pub.writes == []
    server.topic_updated({})
    view = pub.view(CATALOG_TOPIC)
    assert table_key("default", "a") in view and SERVICE_ID_KEY in view
    pub.writes.clear()
    server.topic_updated(dict(view))
    assert pub.writes == []
    server.stop()
