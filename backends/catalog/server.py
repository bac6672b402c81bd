"""catalogd's core: the metastore, the change operations, the topic, the HA role.

**Where the state lives, and why a failover loses nothing that returned success.**
The metastore is one DuckDB file beside the warehouse (``--catalog_db_path``, by
default ``<warehouse>/.catalogd/metastore.duckdb``), shared by both catalogds the way
Impala's two catalogds share one Hive Metastore. Every change is committed to that
file *before* ``ExecDdl`` answers, and INSERT's new files are already in the shared
warehouse, so whatever an impalad was told succeeded is on disk. A DuckDB file can
be opened read-write by one process only, and that rule is put to work: only the
active catalogd holds the file open; a standby never opens it, and a catalogd that
is promoted opens it, retrying until the previous holder has let go (the kernel drops
the lock of a killed process at once; a demoted or self-fenced one closes it). Two
catalogds therefore never write at the same time, even if the statestore briefly
designates two. We rejected the alternatives: the topic alone reaches the standby
only on the next statestore cycle, so a change acknowledged just before the active
died would be lost; a second DuckDB copy per catalogd would need synchronous
replication between catalogds and a resync protocol after every absence.

The standby still keeps warm: it applies the ``catalog-update`` topic to an
:class:`~backends.catalog.objects.ObjectCache` (what ``/catalog`` shows), and at
promotion it reads the file (the truth) and publishes every object at the file's
version, plus tombstones for topic keys the file no longer has (a drop the old
active committed but had no time to publish). Versions are the file's persisted
counter, so they only grow across failovers and receivers can merge by version.

HA roles follow spec 4.4: a designation naming this catalogd makes it active with a
new service id; one naming the other makes it standby with a new service id; with
HA, a catalogd that loses every statestore steps down (closing the file) rather
than keep writing while the statestore may have promoted the other one.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from backends.catalog.objects import (
    CATALOG_TOPIC,
    DATABASE,
    SERVICE_ID_KEY,
    CatalogEntry,
    DecodeError,
    ObjectCache,
    database_key,
    decode_topic,
    encode_topic,
    key_of,
    table_key,
)
from backends.catalog.protocol import (
    CATALOG_IN_STANDBY_MODE,
    CATALOG_NOT_READY,
    ExecDdl,
    GetCatalogDelta,
    decode_op,
    error_result,
    standby_message,
)
from backends.common.rpc import Clock, GuardedAMP
from backends.impalad.sql import Catalog, ImpalaError, LocalCatalog, Table, scan_files

log = Logger()
REGISTRATION_TOPIC = "catalogd-registration"
DESIGNATION_TOPIC = "catalogd-designation"
DESIGNATION_KEY = "active"


class Role(enum.Enum):
    STANDBY = "standby"
    ACTIVE = "active"


@dataclasses.dataclass(frozen=True)
class Registration:
    """What a catalogd tells the statestore about itself (``TCatalogRegistration``)."""

    subscriber_id: str
    address: str
    enable_catalogd_ha: bool
    force_catalogd_active: bool

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Registration:
        try:
            raw = json.loads(data)
            return cls(
                str(raw["subscriber_id"]),
                str(raw["address"]),
                bool(raw["enable_catalogd_ha"]),
                bool(raw["force_catalogd_active"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise DecodeError(f"bad catalogd registration: {e!r}") from None


@dataclasses.dataclass(frozen=True)
class Designation:
    """The statestore's choice of active catalogd, with its monotonic version."""

    version: int
    address: str
    subscriber_id: str

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Designation:
        try:
            raw = json.loads(data)
            version = raw["version"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise TypeError("version must be an integer")
            return cls(version, str(raw["address"]), str(raw["subscriber_id"]))
        except (ValueError, KeyError, TypeError) as e:
            raise DecodeError(f"bad catalogd designation: {e!r}") from None


class Publisher(Protocol):
    """Where topic writes go: the statestore subscriber (or a list, in tests)."""

    def publish(self, topic: str, key: str, value: bytes) -> None: ...


OpenStore = Callable[[], Catalog]
Runner = Callable[[Callable[[], Any]], "defer.Deferred[Any]"]
"""Runs blocking metastore work: one thread in ``main`` (``deferToThreadPool``), inline in tests."""


def run_inline(fn: Callable[[], Any]) -> defer.Deferred[Any]:
    """The :data:`Runner` for tests: call at once, answer an already-fired Deferred."""
    return defer.maybeDeferred(fn)


class CatalogServer:
    """One catalogd: role, service id, the open metastore (active only), the topic."""

    def __init__(
        self,
        clock: Clock,
        open_store: OpenStore,
        publisher: Publisher,
        *,
        address: str,
        enable_ha: bool,
        load_in_background: bool = False,
        open_retry_interval: float = 0.2,
        run: Runner = run_inline,
    ) -> None:
        self.clock = clock
        self._open_store = open_store
        self._publisher = publisher
        self.address = address
        self.enable_ha = enable_ha
        self.load_in_background = load_in_background
        self.open_retry_interval = open_retry_interval
        self._run = run
        self.role = Role.STANDBY
        self.service_id = str(uuid.uuid4())
        self.store: Catalog | None = None
        self.cache = ObjectCache()
        self.designation: Designation | None = None
        self.loaded = False
        self.num_active_status_changes = 0
        self.num_ddl = 0
        self.num_refused = 0
        self._base_version = 0
        self._retry: Any = None
        self._unloaded: list[tuple[str, str]] = []
        self._topic_view: dict[str, bytes] = {}

    # ---------------------------------------------------------------- views

    @property
    def is_active(self) -> bool:
        return self.role is Role.ACTIVE

    @property
    def version(self) -> int:
        return self.store.version if self.store is not None else self.cache.max_version

    def metrics(self) -> dict[str, Any]:
        return {
            "catalog-server.active-status": self.is_active,
            "catalog-server.ha-number-active-status-change": self.num_active_status_changes,
            "catalog-server.ready": self.is_active and self.loaded,
            "catalog-server.service-id": self.service_id,
            "catalog-server.version": self.version,
            "catalog-server.num-ddl": self.num_ddl,
            "catalog-server.num-refused-requests": self.num_refused,
            "catalog.num-databases": len(self.cache.databases()),
            "catalog.num-tables": sum(
                len(self.cache.tables(d.name)) for d in self.cache.databases()
            ),
        }

    def catalog_view(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "service_id": self.service_id,
            "version": self.version,
            "databases": [
                {
                    "name": d.name,
                    "version": self._version_of(database_key(d.name)),
                    "tables": [
                        {
                            "name": t.name,
                            "version": self._version_of(table_key(t.db, t.name)),
                            "num_files": len(t.files),
                        }
                        for t in self.cache.tables(d.name)
                    ],
                }
                for d in self.cache.databases()
            ],
        }

    def _version_of(self, key: str) -> int:
        entry = self.cache.entry(key)
        return 0 if entry is None else entry.version

    # ---------------------------------------------------------------- roles

    def start(self) -> None:
        """Without HA a catalogd is active from the start; with HA it waits to be told."""
        if not self.enable_ha:
            self._become_active("HA is off")

    def stop(self) -> defer.Deferred[None]:
        self._cancel_retry()
        return self._close_store()

    def designated(self, designation: Designation) -> None:
        """The statestore named the active catalogd (spec 4.4)."""
        self.designation = designation
        if not self.enable_ha:
            return
        if designation.address == self.address:
            if not self.is_active:
                self._become_active(f"designated active (version {designation.version})")
        elif self.is_active:
            self._become_standby(f"{designation.address} is designated active")

    def lost_statestore(self) -> None:
        """With HA, an active that reaches no statestore steps down (self-fencing)."""
        if self.enable_ha and self.is_active:
            self._become_standby("no statestore is reachable")

    def _become_active(self, why: str) -> None:
        self.role = Role.ACTIVE
        self.service_id = str(uuid.uuid4())
        self.num_active_status_changes += 1
        log.info(
            "catalogd {addr} is ACTIVE ({why}); service id {sid}",
            addr=self.address,
            why=why,
            sid=self.service_id,
        )
        self._try_open()

    def _become_standby(self, why: str) -> None:
        self.role = Role.STANDBY
        self.service_id = str(uuid.uuid4())
        self.num_active_status_changes += 1
        self._cancel_retry()
        self._close_store()
        log.info("catalogd {addr} is STANDBY ({why})", addr=self.address, why=why)

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _close_store(self) -> defer.Deferred[None]:
        """Close the file after the work already queued (one worker thread keeps order)."""
        store, self.store = self.store, None
        self.loaded = False
        self._unloaded = []
        close = getattr(store, "close", None)
        if close is None:
            return defer.succeed(None)
        d: defer.Deferred[Any] = self._run(close)
        d.addErrback(lambda f: log.warn("closing the metastore: {e}", e=f.getErrorMessage()))
        return d.addCallback(lambda _: None)

    def _try_open(self) -> None:
        self._retry = None
        if not self.is_active or self.store is not None:
            return
        try:
            store = self._open_store()
        except Exception as e:
            log.warn("cannot open the metastore yet ({e}); retrying", e=str(e).splitlines()[0])
            self._retry = self.clock.callLater(self.open_retry_interval, self._try_open)
            return
        self.store = store
        self._publish_snapshot()
        self._unloaded = [(t.db, t.name) for d in store.databases() for t in store.tables(d.name)]
        # In the background: requests are served while tables load; otherwise they wait.
        self.loaded = self.load_in_background
        self._load_next()

    def _publish_snapshot(self) -> None:
        """At activation: every object at the file's version, tombstones for stale keys."""
        store = self.store
        assert store is not None
        version = store.version
        self._base_version = version
        cache = ObjectCache()
        for d in store.databases():
            cache.apply(CatalogEntry(key_of(d), version, d))
            for t in store.tables(d.name):
                cache.apply(CatalogEntry(key_of(t), version, t))
        stale, _, _ = decode_topic(self._topic_view)
        for e in stale:
            if cache.entry(e.key) is None:
                cache.apply(CatalogEntry(e.key, version, None))
        self.cache = cache
        self._publish(cache.entries(), version)

    def _load_next(self) -> None:
        """Load table file lists from the warehouse one at a time (the start-up reset)."""
        store = self.store
        if store is None:
            return
        if not self._unloaded:
            self.loaded = True
            return
        db, name = self._unloaded.pop(0)

        def work() -> tuple[int, Table | None] | None:
            t = store.table(db, name)
            if t is None:
                return None
            files = scan_files(t)
            if {(f.path, f.size) for f in files} == {(f.path, f.size) for f in t.files}:
                return None
            version = store.replace_files(db, name, files)
            return version, store.table(db, name)

        def done(result: tuple[int, Table | None] | None) -> None:
            if result is not None and self.store is store:
                version, t = result
                entry = CatalogEntry(table_key(db, name), version, t)
                self.cache.apply(entry)
                self._publish([entry], version)

        def failed(reason: Any) -> None:
            log.warn("loading {db}.{name}: {e}", db=db, name=name, e=reason.getErrorMessage())

        d = self._run(work)
        d.addCallbacks(done, failed)
        d.addCallback(lambda _: self._load_next())

    # ---------------------------------------------------------------- the topic

    def _publish(self, entries: list[CatalogEntry], version: int) -> None:
        for key, value in encode_topic(entries, self.service_id, version):
            self._publisher.publish(CATALOG_TOPIC, key, value)

    def topic_updated(self, entries: dict[str, bytes]) -> None:
        """The ``catalog-update`` topic as the statestore has it (warms the standby)."""
        self._topic_view = entries
        if self.is_active:
            if self.loaded and SERVICE_ID_KEY not in entries:
                # The statestore restarted or failed over: its topics start empty, so
                # publish everything again (Impala's full recollection, spec 3.3).
                log.info("catalog topic is empty at the statestore; publishing it all again")
                self._publish(self.cache.entries(), self.version)
            return
        objects, _, errors = decode_topic(entries)
        for e in objects:
            self.cache.apply(e)
        for err in errors:
            log.warn("ignoring catalog topic entry {err}", err=err)

    # ---------------------------------------------------------------- requests

    def _refusal(self) -> dict[str, Any] | None:
        if not self.is_active:
            self.num_refused += 1
            return error_result(CATALOG_IN_STANDBY_MODE, standby_message(self.address))
        if self.store is None or not self.loaded:
            self.num_refused += 1
            return error_result(
                CATALOG_NOT_READY, f"catalogd {self.address} is still loading the metastore"
            )
        return None

    def exec_ddl(self, op: str, args: Any) -> defer.Deferred[dict[str, Any]]:
        """Apply one change; the answer carries the new version and the changed objects.

        The change is committed to the file (in the worker thread) before the answer;
        the cache and the topic are updated in the reactor thread afterwards."""
        refused = self._refusal()
        if refused is not None:
            return defer.succeed(refused)
        try:
            kwargs = decode_op(op, args)
        except DecodeError as e:
            return defer.succeed(error_result("AnalysisException", f"bad catalog request: {e}"))
        store = self.store
        assert store is not None
        service_id = self.service_id

        def work() -> tuple[int, list[tuple[str, Any]]] | dict[str, Any]:
            before = store.version
            touched = _touched(store, op, kwargs)
            if op == "add_files":
                t = store.table(kwargs["db"], kwargs["name"])
                if t is not None:
                    # A retried INSERT must not count its files twice.
                    known = {f.path for f in t.files}
                    kwargs["files"] = [f for f in kwargs["files"] if f.path not in known]
                    if not kwargs["files"]:
                        return before, []
            try:
                version = int(getattr(store, op)(**kwargs))
            except ImpalaError as e:
                return error_result(e.kind, e.message)
            except Exception as e:
                log.failure("catalog operation {op} failed", op=op)
                return error_result("CatalogException", f"{type(e).__name__}: {e}")
            if version == before:
                return version, []
            return version, [(key, _read(store, key)) for key in dict.fromkeys(touched)]

        def done(outcome: tuple[int, list[tuple[str, Any]]] | dict[str, Any]) -> dict[str, Any]:
            if isinstance(outcome, dict):
                return outcome
            version, objects = outcome
            self.num_ddl += 1
            entries = [CatalogEntry(key, version, obj) for key, obj in objects]
            if entries and self.store is store:
                for entry in entries:
                    self.cache.apply(entry)
                self._publish(entries, version)
            return self._answer(version, entries, service_id)

        d: defer.Deferred[Any] = self._run(work)
        return d.addCallback(done)

    def _answer(self, version: int, entries: list[CatalogEntry], service_id: str) -> dict[str, Any]:
        return {
            "ok": True,
            "version": version,
            "service_id": service_id,
            "entries": [e.to_json() for e in entries],
        }

    def get_delta(self, from_version: int) -> dict[str, Any]:
        """Every object newer than ``from_version``, or the whole live set if that is older
        than this activation."""
        refused = self._refusal()
        if refused is not None:
            return refused
        full = from_version < self._base_version
        entries = [
            e for e in self.cache.entries() if (not e.deleted if full else e.version > from_version)
        ]
        return {
            "ok": True,
            "full": full,
            "version": self.version,
            "service_id": self.service_id,
            "entries": [e.to_json() for e in entries],
        }


class CatalogServiceProtocol(GuardedAMP):
    """The ``--catalog_service_port`` listener."""

    def __init__(self, server: CatalogServer) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.server = server

    @ExecDdl.responder
    def exec_ddl(self, op: str, args: Any) -> defer.Deferred[dict[str, Any]]:
        return self.server.exec_ddl(op, args).addCallback(lambda r: {"result": r})

    @GetCatalogDelta.responder
    def get_delta(self, from_version: int) -> dict[str, Any]:
        return {"result": self.server.get_delta(from_version)}


def _touched(store: Catalog, op: str, kwargs: dict[str, Any]) -> list[str]:
    """The keys an operation may change (read before it runs: a drop removes them)."""
    if op == "create_database":
        return [key_of(kwargs["database"])]
    if op == "drop_database":
        name = kwargs["name"]
        return [database_key(name)] + [key_of(t) for t in store.tables(name)]
    if op == "create_table":
        return [key_of(kwargs["table"])]
    keys = [table_key(kwargs["db"], kwargs["name"])]
    if op == "alter_table":
        keys.append(key_of(kwargs["table"]))
    return keys


def _read(store: Catalog, key: str) -> Any:
    """The object under ``key`` now, or None."""
    kind, _, name = key.partition(":")
    if kind == DATABASE:
        return store.database(name)
    db, _, tbl = name.partition(".")
    return store.table(db, tbl)


def open_local_store(warehouse: pathlib.Path, path: pathlib.Path) -> OpenStore:
    def opener() -> Catalog:
        return LocalCatalog(warehouse, path)

    return opener
