"""impalad's side of catalogd: a ``Catalog`` fed by the topic and changed by RPC.

:class:`RemoteCatalog` implements the engine's ``Catalog`` Protocol (see
``backends/impalad/sql/_catalog.py``):

- **changes** (DDL, INSERT's new files, REFRESH's rescans) are sent to the active
  catalogd with ``ExecDdl``; the answer's objects are applied at once
  (read-your-writes, spec 3.5 step 4). Refusals by a standby and broken links are
  retried (``retries`` x ``retry_interval``), each time towards the catalogd the
  statestore designates *now*, so a statement issued during a failover lands on the
  new active. catalogd ignores files an INSERT already recorded, so a retry after a
  lost answer does not count rows twice;
- **reads** are served from an :class:`~backends.catalog.objects.ObjectCache` that the
  ``catalog-update`` topic keeps current. With ``sync_reads`` (the default) a read
  first asks the active catalogd for anything newer than the cache
  (``GetCatalogDelta``, one loopback round trip) so a table created or filled through
  another coordinator is visible *at once*; Impala needs ``SYNC_DDL`` for that. If
  catalogd cannot be reached the cache answers (Impala's coordinators keep serving
  from their cached catalog too) and probing pauses for ``probe_backoff`` seconds;
- **SYNC_DDL**: every impalad publishes the catalog version it has applied as a
  transient entry of the ``catalog-acks`` topic; :class:`SyncDdlEngine` makes a
  statement with ``SYNC_DDL=1`` return only when every live impalad's entry has
  reached the statement's version (Impala uses ``min_subscriber_topic_version``; our
  statestore does not carry it). The wait ends with an error after
  ``sync_ddl_timeout`` or when the catalog service id changes (a failover).

The engine calls the catalog from its query threads, the topic callbacks run in the
reactor thread; one lock guards the cache.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from twisted.logger import Logger

from backends.catalog.objects import (
    CATALOG_TOPIC,
    CatalogEntry,
    DecodeError,
    ObjectCache,
    database_key,
    decode_topic,
    table_key,
)
from backends.catalog.protocol import (
    CATALOG_IN_STANDBY_MODE,
    CATALOG_NOT_READY,
    ExecDdl,
    GetCatalogDelta,
    encode_op,
)
from backends.catalog.server import DESIGNATION_KEY, DESIGNATION_TOPIC, Designation
from backends.common.rpc import RpcError, TopicRegistration, call_blocking, parse_host_port
from backends.impalad.sql import ColumnStats, Database, DataFile, ImpalaError, Table

log = Logger()
ACK_TOPIC = "catalog-acks"
_RETRYABLE = (CATALOG_IN_STANDBY_MODE, CATALOG_NOT_READY)

Caller = Callable[..., dict[str, Any]]
"""``call(host, port, command, timeout, **kwargs)``: one blocking RPC (tests inject)."""


class RemoteCatalog:
    """A ``Catalog`` whose truth is the active catalogd."""

    def __init__(
        self,
        active_address: str,
        *,
        call: Caller = call_blocking,
        sync_reads: bool = True,
        retries: int = 10,
        retry_interval: float = 0.5,
        rpc_timeout: float = 30.0,
        probe_timeout: float = 2.0,
        probe_backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Condition()
        self._cache = ObjectCache()
        self._call = call
        self.sync_reads = sync_reads
        self.retries = retries
        self.retry_interval = retry_interval
        self.rpc_timeout = rpc_timeout
        self.probe_timeout = probe_timeout
        self.probe_backoff = probe_backoff
        self._sleep = sleep
        self._monotonic = monotonic
        self.active_address = active_address
        self.designation_version = -1
        self.service_id = ""
        self._version = 0
        self._probe_paused_until = 0.0
        self._local = threading.local()
        self.acks: dict[str, int] = {}
        self.num_probes = 0
        self.num_rpc_retries = 0
        self.attached = False
        """True once a statestore subscriber feeds this catalog (see :func:`attach`)."""
        self.loaded = False
        """True once a whole catalog came (the topic, or a delta from the active catalogd):
        until then the daemon is not ready and reads wait, as Impala's frontend waits for
        its first catalog update instead of failing a query on an empty catalog."""

    # ---------------------------------------------------------------- applying

    def _apply(self, entries: Iterable[CatalogEntry], version: int, service_id: str) -> None:
        with self._lock:
            for e in entries:
                self._cache.apply(e)
            self._version = max(self._version, version, self._cache.max_version)
            if service_id and service_id != self.service_id:
                self.service_id = service_id
            if service_id and not self.loaded:
                self.loaded = True
                log.info("catalog loaded at version {version}", version=self._version)
            self._lock.notify_all()

    def _wait_loaded(self) -> None:
        """Block a read (on the query thread pool) until the first catalog came, up to
        ``rpc_timeout``; then it answers from what it has."""
        if self.loaded or not self.attached:
            return
        deadline = self._monotonic() + self.rpc_timeout
        with self._lock:
            while not self.loaded:
                left = deadline - self._monotonic()
                if left <= 0:
                    return
                self._lock.wait(min(left, 0.1))

    def _apply_result(self, result: Mapping[str, Any]) -> None:
        entries = [CatalogEntry.from_json(e) for e in result.get("entries", [])]
        version = int(result.get("version", 0))
        if result.get("full"):
            with self._lock:
                self._cache.apply_full(entries, version)
        self._apply(entries, version, str(result.get("service_id", "")))

    def topic_updated(self, entries: Mapping[str, bytes]) -> None:
        """The ``catalog-update`` topic as the statestore has it (reactor thread)."""
        objects, service, errors = decode_topic(entries)
        for err in errors:
            log.warn("ignoring catalog topic entry {err}", err=err)
        if service is None:
            return
        self._apply(objects, service.catalog_version, service.service_id)

    def designated(self, entries: Mapping[str, bytes]) -> None:
        """The ``catalogd-designation`` topic: follow the statestore's active catalogd."""
        value = entries.get(DESIGNATION_KEY)
        if value is None:
            return
        try:
            d = Designation.from_bytes(value)
        except DecodeError as e:
            log.warn("ignoring designation: {e}", e=str(e))
            return
        with self._lock:
            if d.address != self.active_address:
                log.info("active catalogd is now {addr}", addr=d.address)
            self.active_address = d.address
            self.designation_version = d.version
            self._probe_paused_until = 0.0

    def acks_updated(self, entries: Mapping[str, bytes]) -> None:
        acks = {}
        for key, value in entries.items():
            try:
                acks[key] = int(value)
            except ValueError:
                log.warn("ignoring catalog ack {key}", key=key)
        with self._lock:
            self.acks = acks
            self._lock.notify_all()

    # ---------------------------------------------------------------- RPC

    def _target(self) -> tuple[str, int]:
        with self._lock:
            address = self.active_address
        return parse_host_port(address, "active catalogd address")

    def _exec(self, op: str, **kwargs: Any) -> int:
        args = encode_op(**kwargs)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.num_rpc_retries += 1
                self._sleep(self.retry_interval)
            try:
                host, port = self._target()
                answer = self._call(host, port, ExecDdl, self.rpc_timeout, op=op, args=args)
            except (OSError, RpcError) as e:
                last = f"cannot reach catalogd {self.active_address}: {e}"
                continue
            result = answer["result"]
            if not result.get("ok"):
                kind = str(result.get("error_kind", "CatalogException"))
                message = str(result.get("error_message", ""))
                if kind in _RETRYABLE:
                    last = message
                    continue
                raise ImpalaError(kind, message)
            self._apply_result(result)
            version = int(result["version"])
            self._local.last_write = max(getattr(self._local, "last_write", 0), version)
            return version
        raise ImpalaError("CatalogException", f"catalog request {op} failed: {last}")

    def _sync(self) -> None:
        """Catch up with the active catalogd before a read (see the module docstring)."""
        self._wait_loaded()
        if not self.sync_reads:
            return
        now = self._monotonic()
        with self._lock:
            if now < self._probe_paused_until:
                return
            since = self._version
        try:
            host, port = self._target()
            self.num_probes += 1
            answer = self._call(host, port, GetCatalogDelta, self.probe_timeout, from_version=since)
        except (OSError, RpcError) as e:
            with self._lock:
                self._probe_paused_until = now + self.probe_backoff
            # reads are served from the topic meanwhile: say so, for whoever finds one
            # that missed a change made on another coordinator
            log.info(
                "catalog probe to {address} failed ({err}); reads come from the "
                "catalog topic for {backoff}s",
                address=self.active_address,
                err=str(e) or type(e).__name__,
                backoff=self.probe_backoff,
            )
            return
        result = answer["result"]
        if result.get("ok"):
            try:
                self._apply_result(result)
            except DecodeError as e:
                log.warn("bad catalog delta: {e}", e=str(e))

    # ---------------------------------------------------------------- SYNC_DDL

    def reset_last_write(self) -> None:
        self._local.last_write = 0

    def last_write(self) -> int:
        return int(getattr(self._local, "last_write", 0))

    def wait_synced(self, version: int, timeout: float) -> None:
        """Block until every impalad acknowledged ``version`` (SYNC_DDL).

        Without a statestore there is no other coordinator to wait for.
        """
        if not self.attached:
            return
        deadline = self._monotonic() + timeout
        with self._lock:
            service_id = self.service_id
            while not (self.acks and min(self.acks.values()) >= version):
                if self.service_id != service_id:
                    raise ImpalaError(
                        "CatalogException",
                        "SYNC_DDL wait ended: the catalog service id changed (failover)",
                    )
                left = deadline - self._monotonic()
                if left <= 0:
                    raise ImpalaError(
                        "CatalogException",
                        f"SYNC_DDL: not every coordinator reached catalog version {version} "
                        f"within {timeout:g}s",
                    )
                self._lock.wait(min(left, 0.1))

    @property
    def applied_version(self) -> int:
        with self._lock:
            return self._version

    # ---------------------------------------------------------------- Catalog reads

    @property
    def version(self) -> int:
        return self.applied_version

    def databases(self) -> list[Database]:
        self._sync()
        with self._lock:
            return self._cache.databases()

    def database(self, name: str) -> Database | None:
        self._sync()
        with self._lock:
            obj = self._cache.get(database_key(name))
        return obj if isinstance(obj, Database) else None

    def tables(self, db: str) -> list[Table]:
        self._sync()
        with self._lock:
            return self._cache.tables(db)

    def table(self, db: str, name: str) -> Table | None:
        self._sync()
        with self._lock:
            obj = self._cache.get(table_key(db, name))
        return obj if isinstance(obj, Table) else None

    # ---------------------------------------------------------------- Catalog changes

    def create_database(self, database: Database, *, if_not_exists: bool) -> int:
        return self._exec("create_database", database=database, if_not_exists=if_not_exists)

    def drop_database(self, name: str, *, if_exists: bool, cascade: bool) -> int:
        return self._exec("drop_database", name=name, if_exists=if_exists, cascade=cascade)

    def create_table(self, table: Table, *, if_not_exists: bool) -> int:
        return self._exec("create_table", table=table, if_not_exists=if_not_exists)

    def alter_table(self, db: str, name: str, table: Table) -> int:
        return self._exec("alter_table", db=db, name=name, table=table)

    def drop_table(self, db: str, name: str, *, if_exists: bool) -> int:
        return self._exec("drop_table", db=db, name=name, if_exists=if_exists)

    def add_files(self, db: str, name: str, files: Sequence[DataFile]) -> int:
        return self._exec("add_files", db=db, name=name, files=list(files))

    def replace_files(
        self,
        db: str,
        name: str,
        files: Sequence[DataFile],
        partitions: Iterable[tuple[tuple[str, str], ...]] | None = None,
    ) -> int:
        parts = None if partitions is None else [list(p) for p in partitions]
        return self._exec("replace_files", db=db, name=name, files=list(files), partitions=parts)

    def set_row_count(
        self, db: str, name: str, rows: int, column_stats: Sequence[ColumnStats] | None = None
    ) -> int:
        stats = None if column_stats is None else [dataclasses.asdict(s) for s in column_stats]
        return self._exec("set_row_count", db=db, name=name, rows=rows, column_stats=stats)


_TRUE = ("1", "true", "yes")


class SyncDdlEngine:
    """Wraps the engine: with ``SYNC_DDL=1`` a change returns once every impalad has it."""

    def __init__(self, engine: Any, catalog: RemoteCatalog, *, timeout: float = 60.0) -> None:
        self._engine = engine
        self._catalog = catalog
        self.timeout = timeout

    def execute(self, session: Any, sql: str) -> Any:
        self._catalog.reset_last_write()
        stmt = self._engine.execute(session, sql)
        version = self._catalog.last_write()
        options = {k.upper(): v for k, v in getattr(session, "options", {}).items()}
        if version and str(options.get("SYNC_DDL", "0")).lower() in _TRUE:
            self._catalog.wait_synced(version, self.timeout)
        return stmt

    def query_options(self, session: Any) -> Any:
        return self._engine.query_options(session)

    def close(self) -> None:
        self._engine.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


# ----------------------------------------------------------------------------- wiring

TOPICS = (
    TopicRegistration(CATALOG_TOPIC, is_transient=False),
    TopicRegistration(DESIGNATION_TOPIC, is_transient=False),
    TopicRegistration(ACK_TOPIC, is_transient=True),
)


def attach(catalog: RemoteCatalog, subscriber: Any) -> None:
    """Feed ``catalog`` from ``subscriber`` (which registered :data:`TOPICS`) and publish acks."""
    key = str(subscriber.subscriber_id)
    published = [-1]

    def ack() -> None:
        version = catalog.applied_version
        if version != published[0] or str(version).encode() != subscriber.entries(ACK_TOPIC).get(
            key
        ):
            published[0] = version
            subscriber.publish(ACK_TOPIC, key, str(version).encode())

    def on_catalog(update: Any) -> None:
        catalog.topic_updated(update.entries)
        ack()

    def on_acks(update: Any) -> None:
        catalog.acks_updated(update.entries)
        ack()

    subscriber.add_topic_callback(CATALOG_TOPIC, on_catalog)
    subscriber.add_topic_callback(DESIGNATION_TOPIC, lambda u: catalog.designated(u.entries))
    subscriber.add_topic_callback(ACK_TOPIC, on_acks)
    catalog.attached = True


def remote_catalog(flags: Mapping[str, Any]) -> RemoteCatalog:
    """A :class:`RemoteCatalog` configured by impalad's flags (:mod:`backends.impalad.flags`)."""
    return RemoteCatalog(
        f"{flags['catalog_service_host']}:{flags['catalog_service_port']}",
        sync_reads=bool(flags.get("catalog_sync_reads", True)),
        retries=int(flags.get("catalog_client_connection_num_retries", 10)),
        retry_interval=int(flags.get("catalog_client_rpc_retry_interval_ms", 500)) / 1000.0,
        rpc_timeout=int(flags.get("catalog_client_rpc_timeout_ms", 30000)) / 1000.0,
    )
