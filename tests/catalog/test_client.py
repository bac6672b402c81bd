"""RemoteCatalog (impalad side) against real in-memory CatalogServers, no sockets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import task

from backends.catalog.objects import CATALOG_TOPIC
from backends.catalog.protocol import ExecDdl, GetCatalogDelta
from backends.catalog.server import (
    DESIGNATION_KEY,
    CatalogServer,
    Designation,
    open_local_store,
)
from backends.impalad.catalog_client import ACK_TOPIC, RemoteCatalog, SyncDdlEngine, attach
from backends.impalad.sql import Database, DataFile, ImpalaError
from tests.catalog._fixtures import ListPublisher, result_of, sample_table


class Network:
    """Routes blocking calls to in-memory servers by address; a missing one refuses."""

    def __init__(self) -> None:
        self.servers: dict[str, CatalogServer] = {}
        self.calls: list[tuple[str, str]] = []

    def call(self, host: str, port: int, command: Any, timeout: float, **kw: Any) -> dict[str, Any]:
        address = f"{host}:{port}"
        self.calls.append((address, command.__name__))
        server = self.servers.get(address)
        if server is None:
            raise ConnectionRefusedError(f"{address} refused")
        if command is ExecDdl:
            return {"result": result_of(server.exec_ddl(kw["op"], kw["args"]))}
        assert command is GetCatalogDelta
        return {"result": server.get_delta(kw["from_version"])}


def server_at(tmp: Path, address: str, *, ha: bool) -> tuple[CatalogServer, ListPublisher]:
    (tmp / "wh").mkdir(parents=True, exist_ok=True)
    pub = ListPublisher()
    s = CatalogServer(
        task.Clock(),
        open_local_store(tmp / "wh", tmp / "meta.duckdb"),
        pub,
        address=address,
        enable_ha=ha,
    )
    s.start()
    return s, pub


def client(net: Network, address: str, **kw: Any) -> RemoteCatalog:
    return RemoteCatalog(address, call=net.call, sleep=lambda s: None, retry_interval=0, **kw)


def table(name: str) -> Any:
    return dataclasses.replace(sample_table(name), location="")


def test_create_on_one_coordinator_is_visible_at_once_on_another(tmp_path: Path) -> None:
    """A table created through A is seen by B's very next read (sync reads)."""
    net = Network()
    net.servers["127.0.0.1:26000"], _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    a, b = client(net, "127.0.0.1:26000"), client(net, "127.0.0.1:26000")
    version = a.create_table(table("t"), if_not_exists=False)
    assert a.table("default", "t") is not None
    assert b.table("default", "t") is not None and b.version >= version
    a.add_files("default", "t", [DataFile("x.parq", 5)])
    t = b.table("default", "t")
    assert t is not None and [f.path for f in t.files] == ["x.parq"]


def test_catalog_errors_become_impala_errors(tmp_path: Path) -> None:
    """catalogd's in-band error is raised as the engine's ImpalaError, unchanged."""
    net = Network()
    net.servers["127.0.0.1:26000"], _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    a = client(net, "127.0.0.1:26000")
    with pytest.raises(ImpalaError) as err:
        a.drop_table("default", "missing", if_exists=False)
    assert str(err.value) == "AnalysisException: Table does not exist: default.missing"


def test_topic_feeds_the_cache_without_sync_reads(tmp_path: Path) -> None:
    """With sync reads off, objects come from the catalog-update topic alone."""
    net = Network()
    server, pub = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    net.servers["127.0.0.1:26000"] = server
    a = client(net, "127.0.0.1:26000")
    b = client(net, "127.0.0.1:26000", sync_reads=False)
    a.create_database(Database("sales", "", "/w/sales.db"), if_not_exists=False)
    assert b.database("sales") is None
    b.topic_updated(pub.view(CATALOG_TOPIC))
    assert b.database("sales") is not None
    assert not any(c[1] == "GetCatalogDelta" for c in net.calls[-1:])


def test_standby_refusal_is_retried_on_the_newly_designated_active(tmp_path: Path) -> None:
    """A DDL refused by a standby (or a dead address) reaches the active the topic names."""
    net = Network()
    standby, _ = server_at(tmp_path / "s", "127.0.0.1:26000", ha=True)
    active, _ = server_at(tmp_path, "127.0.0.1:26001", ha=True)
    active.designated(Designation(1, "127.0.0.1:26001", "b"))
    net.servers["127.0.0.1:26000"] = standby
    net.servers["127.0.0.1:26001"] = active
    a = client(net, "127.0.0.1:26000", retries=3)
    seen: list[str] = []

    def switch(_: float) -> None:
        seen.append("slept")
        value = Designation(1, "127.0.0.1:26001", "b").to_bytes()
        a.designated({DESIGNATION_KEY: value})

    a._sleep = switch
    a.create_table(table("t"), if_not_exists=False)
    assert seen == ["slept"] and a.active_address == "127.0.0.1:26001"
    assert a.table("default", "t") is not None


def test_unreachable_catalogd_fails_the_change_but_reads_serve_the_cache(tmp_path: Path) -> None:
    """With no catalogd, a change fails after its retries and reads answer from the cache."""
    net = Network()
    server, _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    net.servers["127.0.0.1:26000"] = server
    a = client(net, "127.0.0.1:26000", retries=2)
    a.create_table(table("t"), if_not_exists=False)
    del net.servers["127.0.0.1:26000"]
    with pytest.raises(ImpalaError, match="cannot reach catalogd"):
        a.create_table(table("u"), if_not_exists=False)
    assert a.table("default", "t") is not None
    assert a.num_rpc_retries == 2


def test_sync_ddl_waits_for_every_acknowledgement(tmp_path: Path) -> None:
    """SYNC_DDL returns once every impalad's ack reaches the version, else times out."""
    net = Network()
    net.servers["127.0.0.1:26000"], _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    a = client(net, "127.0.0.1:26000")
    version = a.create_table(table("t"), if_not_exists=False)
    a.attached = True
    a.acks_updated({"impalad-a": str(version).encode(), "impalad-b": str(version).encode()})
    a.wait_synced(version, timeout=0.5)
    a.acks_updated({"impalad-a": str(version).encode(), "impalad-b": b"1"})
    with pytest.raises(ImpalaError, match="not every coordinator"):
        a.wait_synced(version, timeout=0.2)


class _Engine:
    def __init__(self, catalog: RemoteCatalog) -> None:
        self.catalog = catalog

    def execute(self, session: Any, sql: str) -> str:
        self.catalog.create_table(table(sql), if_not_exists=False)
        return "done"

    def query_options(self, session: Any) -> list[tuple[str, str, str]]:
        return []

    def close(self) -> None:
        pass


@dataclasses.dataclass
class _Session:
    options: dict[str, str]


def test_sync_ddl_engine_waits_only_with_the_option(tmp_path: Path) -> None:
    """Without SYNC_DDL a change returns at once; with SYNC_DDL=1 it waits for the acks."""
    net = Network()
    net.servers["127.0.0.1:26000"], _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    catalog = client(net, "127.0.0.1:26000")
    engine = SyncDdlEngine(_Engine(catalog), catalog, timeout=0.2)
    catalog.attached = True
    assert engine.execute(_Session({}), "t1") == "done"
    with pytest.raises(ImpalaError, match="SYNC_DDL"):
        engine.execute(_Session({"sync_ddl": "1"}), "t2")
    catalog.acks_updated({"x": str(catalog.version + 10).encode()})
    assert engine.execute(_Session({"SYNC_DDL": "true"}), "t3") == "done"


class _FakeSubscriber:
    """The four members of StatestoreSubscriber that attach() uses."""

    subscriber_id = "impalad@127.0.0.21:27000"

    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}
        self.published: dict[tuple[str, str], bytes] = {}

    def add_topic_callback(self, topic: str, fn: Any) -> None:
        self.callbacks[topic] = fn

    def publish(self, topic: str, key: str, value: bytes) -> None:
        self.published[(topic, key)] = value

    def entries(self, topic: str) -> dict[str, bytes]:
        return {k: v for (t, k), v in self.published.items() if t == topic}


@dataclasses.dataclass
class _Update:
    entries: dict[str, bytes]


def test_attach_applies_topics_and_acknowledges_the_applied_version(tmp_path: Path) -> None:
    """A catalog-update delivery is applied and acknowledged on catalog-acks; the
    designation topic moves the RPC target."""
    net = Network()
    server, pub = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    net.servers["127.0.0.1:26000"] = server
    writer = client(net, "127.0.0.1:26000")
    version = writer.create_table(table("t"), if_not_exists=False)
    reader = client(net, "127.0.0.1:26000", sync_reads=False)
    sub = _FakeSubscriber()
    attach(reader, sub)
    sub.callbacks[CATALOG_TOPIC](_Update(pub.view(CATALOG_TOPIC)))
    assert reader.table("default", "t") is not None
    assert sub.published[(ACK_TOPIC, sub.subscriber_id)] == str(version).encode()
    value = Designation(3, "127.0.0.1:26001", "b").to_bytes()
    sub.callbacks["catalogd-designation"](_Update({DESIGNATION_KEY: value}))
    assert reader.active_address == "127.0.0.1:26001"


def test_without_a_statestore_sync_ddl_does_not_wait(tmp_path: Path) -> None:
    """A catalog no subscriber feeds has no other coordinator to wait for."""
    net = Network()
    net.servers["127.0.0.1:26000"], _ = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    catalog = client(net, "127.0.0.1:26000")
    catalog.wait_synced(10**9, timeout=5)
    assert not catalog.attached


def test_reads_wait_for_the_first_catalog_and_it_makes_the_daemon_ready(
    tmp_path: Path,
) -> None:
    """A freshly started member (attached to a statestore, nothing received yet) is not
    loaded; a read waits instead of answering from an empty catalog, and returns once
    the first catalog-update arrives (Impala's frontend waits for its catalog too)."""
    import threading

    net = Network()
    server, pub = server_at(tmp_path, "127.0.0.1:26000", ha=False)
    net.servers["127.0.0.1:26000"] = server
    writer = client(net, "127.0.0.1:26000")
    writer.create_database(Database("sales", "", "/w/sales.db"), if_not_exists=False)
    fresh = client(net, "127.0.0.1:26000", sync_reads=False)
    fresh.attached = True
    assert not fresh.loaded
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(fresh.database("sales")))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and got == [], "a read answered from an empty catalog"
    fresh.topic_updated(pub.view(CATALOG_TOPIC))
    reader.join(5)
    assert fresh.loaded and got and got[0] is not None
