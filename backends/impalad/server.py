"""The HiveServer2 service: sessions, operations and the RPCs' rules (spec section 5).

:class:`ImpalaServer` owns the session and operation tables and runs every
engine call through ``run_blocking`` (the daemon's thread pool), never on the
reactor. :class:`ConnectionHandler` is the Thrift ``Iface`` for one client
connection (or one HTTP request): it knows who authenticated and turns each
RPC into a coroutine on the server.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import struct
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer  # type: ignore[import-untyped]

from backends.impalad import expiry, metadata, results
from backends.impalad.engine_api import (
    EngineLike,
    SessionFactory,
    SessionLike,
    StatementLike,
    error_text,
)
from backends.impalad.gen.ExecStats import ttypes as es
from backends.impalad.gen.ImpalaService import ImpalaHiveServer2Service
from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.metadata import Col

log = Logger()

T = TypeVar("T")
RunBlocking = Callable[..., "defer.Deferred[Any]"]

IMPALA_VERSION = "4.5.0"
SERVER_VERSION = f"impalad version {IMPALA_VERSION}-impala-lb RELEASE (build impala-lb 0.1.0)"
PREFETCH_ROWS = 1024
STATUS_LONG_POLL_S = 0.1
MAX_FETCH_ROWS = 1 << 20
QUERY_LOG_SIZE = 100
_SHUTDOWN_RE = re.compile(r"^\s*:\s*shutdown\s*\((.*)\)\s*;?\s*$", re.IGNORECASE | re.DOTALL)


class ShutdownRequested(Exception):
    """Raised internally when a statement asks the server to shut down."""


def _status_ok() -> t.TStatus:
    return t.TStatus(statusCode=t.TStatusCode.SUCCESS_STATUS)


def _status_error(message: str, code: int = t.TStatusCode.ERROR_STATUS) -> t.TStatus:
    if not message.endswith("\n"):
        message += "\n"
    return t.TStatus(statusCode=code, errorMessage=message, sqlState="HY000", errorCode=0)


class HandleError(Exception):
    """A handle that is malformed or names nothing; answered with INVALID_HANDLE_STATUS."""

    status = t.TStatusCode.INVALID_HANDLE_STATUS


class ExpiredError(HandleError):
    """A call on an expired session or query (:mod:`expiry`): ERROR_STATUS, as Impala."""

    status = t.TStatusCode.ERROR_STATUS


def _new_id() -> tuple[bytes, str]:
    """A fresh 16-byte guid and Impala's printed form ``hi:lo`` of it."""
    hi, lo = struct.unpack("<QQ", os.urandom(16))
    return struct.pack("<QQ", hi, lo), f"{hi:016x}:{lo:016x}"


def print_id(guid: bytes) -> str:
    """Impala's ``hi:lo`` form of a 16-byte handle guid."""
    if len(guid) != 16:
        return guid.hex()
    hi, lo = struct.unpack("<QQ", guid)
    return f"{hi:016x}:{lo:016x}"


def _check_handle(handle: Any) -> tuple[bytes, bytes]:
    ident = getattr(handle, "operationId", None) or getattr(handle, "sessionId", None)
    guid = getattr(ident, "guid", None)
    secret = getattr(ident, "secret", None)
    if not isinstance(guid, bytes) or not isinstance(secret, bytes):
        raise HandleError("Malformed THandleIdentifier")
    if len(guid) != 16 or len(secret) != 16:
        raise HandleError("Malformed THandleIdentifier")
    return guid, secret


@dataclasses.dataclass
class SessionState:
    guid: bytes
    secret: bytes
    id: str
    engine_session: SessionLike
    connected_user: str
    client: str
    session_type: str
    start_time: float
    last_access: float
    operations: set[bytes] = dataclasses.field(default_factory=set)
    closed: bool = False
    #: seconds without a call until the session expires (0: never) and whether it has
    idle_timeout: int = 0
    expired: bool = False


@dataclasses.dataclass
class Operation:
    """One statement or metadata request, from ExecuteStatement to Close."""

    guid: bytes
    id: str
    session: SessionState
    sql: str
    start_time: float
    state: int = t.TOperationState.PENDING_STATE
    statement: StatementLike | None = None
    schema: list[Any] | None = None
    statement_type: str = ""
    rows_modified: int | None = None
    error: str | None = None
    buffer: list[list[object]] | None = None
    exhausted: bool = False
    rows_fetched: int = 0
    end_time: float | None = None
    closed: bool = False
    lock: defer.DeferredLock = dataclasses.field(default_factory=defer.DeferredLock)
    summary_extra: dict[str, object] = dataclasses.field(default_factory=dict)
    waiters: list[defer.Deferred[None]] = dataclasses.field(default_factory=list)
    #: the client's last call on it (clock seconds), its idle timeout (0: never), whether
    #: ExecuteStatement is still running it, and whether it expired (:mod:`expiry`)
    last_access: float = 0.0
    idle_timeout: int = 0
    executing: bool = False
    expired: bool = False
    #: CPU time of the threads that ran its engine calls (planning, execution, fetches)
    cpu_ns: int = 0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` counting the CPU time of the thread it runs on into :attr:`cpu_ns`."""

        def run(*args: Any) -> Any:
            started = time.thread_time_ns()
            try:
                return fn(*args)
            finally:
                self.cpu_ns += time.thread_time_ns() - started

        return run

    def wake(self) -> None:
        """Tell GetOperationStatus long-pollers that the state may have changed."""
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    @property
    def has_result_set(self) -> bool:
        return self.schema is not None

    @property
    def buffered_rows(self) -> int:
        return len(self.buffer[0]) if self.buffer else 0

    def state_name(self) -> str:
        return {
            t.TOperationState.PENDING_STATE: "PENDING",
            t.TOperationState.RUNNING_STATE: "RUNNING",
            t.TOperationState.FINISHED_STATE: "FINISHED",
            t.TOperationState.ERROR_STATE: "EXCEPTION",
            t.TOperationState.CANCELED_STATE: "CANCELLED",
            t.TOperationState.CLOSED_STATE: "CLOSED",
        }.get(self.state, "UNKNOWN")


@dataclasses.dataclass(frozen=True)
class ServerIdentity:
    """How this daemon names itself to clients and on its web pages."""

    hostname: str
    hs2_port: int
    hs2_http_port: int
    webserver_address: str  # "http://host:25000" or "" to hide
    krpc_port: int = 27000


class StaticStatement:
    """A small result computed by the protocol layer (metadata calls, :shutdown())."""

    def __init__(self, schema: list[Any], rows: list[list[object]], stype: str = "QUERY") -> None:
        self.schema: list[Any] | None = schema
        self.statement_type = stype
        self.rows_modified: int | None = None
        self.summary: dict[str, object] = {}
        self._rows = rows

    def fetch(self, max_rows: int) -> list[list[object]]:
        take, self._rows = self._rows[:max_rows], self._rows[max_rows:]
        assert self.schema is not None
        return [[row[i] for row in take] for i in range(len(self.schema))]

    def cancel(self) -> None:
        self._rows = []

    def close(self) -> None:
        self._rows = []


class ImpalaServer:
    """Sessions, operations, metrics and shutdown state of one impalad."""

    def __init__(
        self,
        engine: EngineLike,
        session_factory: SessionFactory,
        run_blocking: RunBlocking,
        clock: Any,  # IReactorTime
        identity: ServerIdentity,
        version: str = SERVER_VERSION,
    ) -> None:
        self.engine = engine
        self.version = version
        self._new_session = session_factory
        self._run = run_blocking
        self._clock = clock
        self.identity = identity
        self.sessions: dict[bytes, SessionState] = {}
        self.operations: dict[bytes, Operation] = {}
        self.closed_operations: collections.OrderedDict[bytes, Operation] = (
            collections.OrderedDict()
        )
        self.ready = False  # the client ports listen
        #: more conditions of readiness (the first catalog update, for a cluster member)
        self.catalog_loaded: Callable[[], bool] = lambda: True
        self.shutdown: Any = None  # a ShutdownController once wired
        self.counters: collections.Counter[str] = collections.Counter()
        self.start_time = time.time()
        #: --idle_session_timeout and --idle_query_timeout, in seconds (0: never)
        self.idle_session_timeout = 0
        self.idle_query_timeout = 0
        self.expiry = expiry.Expiry(self, clock)

    # -- helpers -------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time()

    def shutdown_error(self) -> str | None:
        if self.shutdown is None or not self.shutdown.started:
            return None
        return str(self.shutdown.error_message())

    def _session(self, handle: Any, *, active: bool = True) -> SessionState:
        """The session of ``handle``; ``active``: a client call that uses it (refused on
        an expired session, and it counts as activity)."""
        guid, secret = _check_handle(handle)
        session = self.sessions.get(guid)
        if session is None or session.secret != secret:
            raise HandleError(f"Invalid session id: {print_id(guid)}")
        if active:
            if session.expired:
                raise ExpiredError(
                    expiry.session_expired_message(session.idle_timeout, session.last_access)
                )
            session.last_access = self._clock.seconds()
        return session

    def _operation(self, handle: Any, *, closed_ok: bool = False) -> Operation:
        """The operation of ``handle``; ``closed_ok``: also a closed or expired one (for
        its log and profile)."""
        guid, secret = _check_handle(handle)
        op = self.operations.get(guid)
        if op is None:
            gone = self.closed_operations.get(guid)
            if gone is not None and (closed_ok or gone.expired):
                op = gone  # an expired query answers why, as Impala keeps its status
        if op is None or op.session.secret != secret:
            raise HandleError(f"Invalid or unknown query handle: {print_id(guid)}.")
        if op.expired and not closed_ok:
            raise ExpiredError(op.error or "expired")
        now = self._clock.seconds()
        op.last_access = now
        if not op.session.expired:
            op.session.last_access = now
        return op

    # -- expiry (expiry.py) --------------------------------------------------------------

    def live_sessions(self) -> list[SessionState]:
        """Sessions that may expire: open, not expired, none of their queries in use."""
        out = []
        for session in self.sessions.values():
            if session.closed or session.expired or not session.idle_timeout:
                continue
            ops = (self.operations.get(guid) for guid in session.operations)
            if not any(op is not None and _in_use(op) for op in ops):
                out.append(session)
        return out

    def live_queries(self) -> list[Operation]:
        """Queries that may expire: registered, with a timeout, not in use."""
        return [
            op
            for op in self.operations.values()
            if op.idle_timeout and not op.closed and not op.expired and not _in_use(op)
        ]

    def expire_session(self, session: SessionState) -> None:
        """Expire ``session`` (Impala's session maintenance): its queries are cancelled."""
        session.expired = True
        self.counters["sessions-expired"] += 1
        log.info(
            "expiring session {sid} of {user}: idle for over {n}s",
            sid=session.id,
            user=session.connected_user,
            n=session.idle_timeout,
        )
        for guid in list(session.operations):
            op = self.operations.get(guid)
            if op is not None:
                self._expire(op, expiry.SESSION_EXPIRED)

    def expire_query(self, op: Operation, message: str) -> None:
        """Expire ``op`` (Impala's ExpireQuery): cancelled, and later calls get ``message``."""
        self.counters["queries-expired"] += 1
        log.info("expiring query {qid}: {why}", qid=op.id, why=message)
        self._expire(op, message)

    def _expire(self, op: Operation, message: str) -> None:
        if op.expired or op.closed:
            return
        op.expired = True
        if op.state in (t.TOperationState.RUNNING_STATE, t.TOperationState.PENDING_STATE):
            op.state = t.TOperationState.ERROR_STATE
            op.end_time = self._now()
        op.error = message
        if op.statement is not None:
            op.statement.cancel()
        op.wake()
        defer.ensureDeferred(self._close_operation(op, cancel=True))

    @property
    def is_ready(self) -> bool:
        """Impala's ``impala-server.ready``: listening, with a catalog to answer from."""
        return self.ready and self.catalog_loaded()

    def metrics(self) -> dict[str, float | int | bool]:
        executing = sum(
            1
            for op in self.operations.values()
            if op.state in (t.TOperationState.RUNNING_STATE, t.TOperationState.PENDING_STATE)
        )
        shutting = self.shutdown is not None and self.shutdown.started
        return {
            "impala-server.ready": self.is_ready,
            "impala-server.shutting-down": shutting,
            "impala-server.num-open-hiveserver2-sessions": sum(
                1 for s in self.sessions.values() if s.session_type == "HIVESERVER2"
            ),
            "impala-server.num-open-hs2-http-sessions": sum(
                1 for s in self.sessions.values() if s.session_type == "HIVESERVER2_HTTP"
            ),
            "impala-server.num-sessions-opened": self.counters["sessions"],
            "impala-server.num-queries-registered": len(self.operations),
            "impala-server.num-queries": self.counters["queries"],
            "impala-server.num-queries-executing": executing,
            "impala-server.backend-num-queries-executing": executing,
            "impala-server.num-fragments-in-flight": executing,
            "impala-server.num-open-beeswax-sessions": sum(
                1 for s in self.sessions.values() if s.session_type == "BEESWAX"
            ),
            "impala-server.num-queries-failed": self.counters["queries-failed"],
            "impala-server.num-sessions-expired": self.counters["sessions-expired"],
            "impala-server.num-queries-expired": self.counters["queries-expired"],
            "impala-server.num-queries-cancelled": self.counters["queries-cancelled"],
            "impala.thrift-server.hiveserver2-frontend.connections-in-use": self.counters[
                "hs2-conn-open"
            ],
            "impala.thrift-server.hiveserver2-frontend.total-connections": self.counters[
                "hs2-conn-total"
            ],
            "impala.thrift-server.hiveserver2-http-frontend.total-connections": self.counters[
                "hs2-http-conn-total"
            ],
            "impala.thrift-server.hiveserver2-http-frontend.total-cookie-auth-success": (
                self.counters["hs2-http-cookie-auth-success"]
            ),
            "impala.thrift-server.hiveserver2-http-frontend.total-cookie-auth-failure": (
                self.counters["hs2-http-cookie-auth-failure"]
            ),
            "impala-server.hash-table.total-bytes": 0,
        }

    # -- RPCs ----------------------------------------------------------------------------

    async def open_session(
        self, req: t.TOpenSessionReq, auth_user: str | None, client: str, session_type: str
    ) -> t.TOpenSessionResp:
        version = min(
            req.client_protocol
            if req.client_protocol is not None
            else t.TProtocolVersion.HIVE_CLI_SERVICE_PROTOCOL_V6,
            t.TProtocolVersion.HIVE_CLI_SERVICE_PROTOCOL_V6,
        )
        error = self.shutdown_error()
        if error is not None:
            return t.TOpenSessionResp(status=_status_error(error), serverProtocolVersion=version)
        config = dict(req.configuration or {})
        user = auth_user or req.username or "anonymous"
        effective = config.pop("impala.doas.user", None) or user
        engine_session = self._new_session(effective)
        for key, value in config.items():
            if key == "use:database":
                engine_session.database = value
                continue
            if key.startswith("set:hiveconf:"):
                key = key[len("set:hiveconf:") :]
            elif key.startswith("set:hivevar:"):
                continue
            engine_session.options[key.upper()] = value
        guid, sid = _new_id()
        secret = os.urandom(16)
        now = self._now()
        session = SessionState(
            guid, secret, sid, engine_session, user, client, session_type, now, now
        )
        session.last_access = self._clock.seconds()
        # the IDLE_SESSION_TIMEOUT given at open overrides --idle_session_timeout
        session.idle_timeout = _seconds(
            engine_session.options.get("IDLE_SESSION_TIMEOUT"), self.idle_session_timeout
        )
        self.sessions[guid] = session
        self.counters["sessions"] += 1
        log.info("opened session {sid} for {user} from {client}", sid=sid, user=user, client=client)
        answer_config = {"http_addr": self.identity.webserver_address}
        try:
            for name, value, _level in await self._run(self.engine.query_options, engine_session):
                answer_config[name] = value
        except Exception as e:
            log.warn("could not list query options: {err}", err=error_text(e))
        handle = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=guid, secret=secret))
        return t.TOpenSessionResp(
            status=_status_ok(),
            serverProtocolVersion=version,
            sessionHandle=handle,
            configuration=answer_config,
        )

    async def close_session(self, req: t.TCloseSessionReq) -> t.TCloseSessionResp:
        await self._close_session(self._session(req.sessionHandle, active=False))
        return t.TCloseSessionResp(status=_status_ok())

    async def _close_session(self, session: SessionState) -> None:
        if session.closed:
            return
        session.closed = True
        self.sessions.pop(session.guid, None)
        for guid in list(session.operations):
            op = self.operations.get(guid)
            if op is not None:
                await self._close_operation(op, cancel=True)
        log.info("closed session {sid}", sid=session.id)

    def connection_closed(self, session_guids: set[bytes]) -> None:
        """A binary HS2 connection ended: close the sessions it opened, as Impala does."""
        for guid in session_guids:
            session = self.sessions.get(guid)
            if session is not None:
                defer.ensureDeferred(self._close_session(session))

    async def ping(self, req: imp.TPingImpalaHS2ServiceReq) -> imp.TPingImpalaHS2ServiceResp:
        self._session(req.sessionHandle)
        return imp.TPingImpalaHS2ServiceResp(
            status=_status_ok(),
            version=self.version,
            webserver_address=self.identity.webserver_address,
            timestamp=int(self._now() * 1000),
        )

    async def execute_statement(self, req: t.TExecuteStatementReq) -> t.TExecuteStatementResp:
        session = self._session(req.sessionHandle)
        error = self.shutdown_error()
        if error is not None:
            return t.TExecuteStatementResp(status=_status_error(error))
        sql = req.statement or ""
        shutdown = _SHUTDOWN_RE.match(sql)
        if shutdown is not None:
            return self._start_shutdown_statement(session, sql, shutdown.group(1))
        overlay = {k.upper(): v for k, v in (req.confOverlay or {}).items()}
        return await self._execute(session, sql, overlay)

    async def _execute(
        self, session: SessionState, sql: str, overlay: Mapping[str, str]
    ) -> t.TExecuteStatementResp:
        guid, qid = _new_id()
        op = Operation(guid, qid, session, sql, self._now())
        self._register(op)
        options = session.engine_session.options
        before = {k: options.get(k) for k in overlay}
        options.update(overlay)
        op.idle_timeout = expiry.idle_query_timeout(
            self.idle_query_timeout, _seconds(options.get("QUERY_TIMEOUT_S"), 0)
        )
        op.executing = True
        try:
            statement = await self._run(op.timed(self.engine.execute), session.engine_session, sql)
        except Exception as e:
            self.counters["queries-failed"] += 1
            op.error = error_text(e)
            op.state = t.TOperationState.ERROR_STATE
            self._retire(op)
            log.info("query {qid} failed: {err}", qid=qid, err=op.error)
            return t.TExecuteStatementResp(status=_status_error(op.error))
        finally:
            op.executing = False
            op.last_access = session.last_access = self._clock.seconds()
            for key, value in overlay.items():
                if options.get(key) == value:  # untouched by the statement (not a SET)
                    if before[key] is None:
                        options.pop(key, None)
                    else:
                        options[key] = before[key]  # type: ignore[assignment]
        self._attach(op, statement)
        return t.TExecuteStatementResp(status=_status_ok(), operationHandle=self._handle(op))

    def _register(self, op: Operation) -> None:
        self.operations[op.guid] = op
        op.session.operations.add(op.guid)
        self.counters["queries"] += 1

    def _attach(self, op: Operation, statement: StatementLike) -> None:
        op.statement = statement
        op.schema = statement.schema
        op.statement_type = statement.statement_type
        op.rows_modified = statement.rows_modified
        if op.schema is None:
            op.state = t.TOperationState.FINISHED_STATE
            op.exhausted = True
            op.end_time = self._now()
        else:
            op.state = t.TOperationState.RUNNING_STATE
            op.buffer = [[] for _ in op.schema]
            defer.ensureDeferred(self._prefetch(op))

    def _handle(self, op: Operation) -> t.TOperationHandle:
        return t.TOperationHandle(
            operationId=t.THandleIdentifier(guid=op.guid, secret=op.session.secret),
            operationType=t.TOperationType.EXECUTE_STATEMENT,
            hasResultSet=op.has_result_set,
        )

    def _retire(self, op: Operation) -> None:
        """Move an operation from the live table to the recent-query log."""
        self.operations.pop(op.guid, None)
        op.session.operations.discard(op.guid)
        if op.end_time is None:
            op.end_time = self._now()
        self.closed_operations[op.guid] = op
        while len(self.closed_operations) > QUERY_LOG_SIZE:
            self.closed_operations.popitem(last=False)

    async def _prefetch(self, op: Operation) -> None:
        """Run the query until its first rows exist; then it is FINISHED (or ERROR)."""
        await op.lock.acquire()
        try:
            await self._fill(op, PREFETCH_ROWS)
            if op.state == t.TOperationState.RUNNING_STATE:
                op.state = t.TOperationState.FINISHED_STATE
        finally:
            op.lock.release()
            op.wake()

    async def _fill(self, op: Operation, want: int) -> None:
        """Fetch from the engine until ``want`` rows are buffered or the result ends."""
        statement = op.statement
        assert statement is not None and op.buffer is not None
        while not op.exhausted and op.buffered_rows < want and not op.closed:
            if op.state in (t.TOperationState.ERROR_STATE, t.TOperationState.CANCELED_STATE):
                return
            try:
                batch = await self._run(op.timed(statement.fetch), want - op.buffered_rows)
            except Exception as e:
                if op.state == t.TOperationState.CANCELED_STATE or op.closed:
                    return
                op.error = f"Query {op.id} failed:\n{error_text(e)}\n"
                op.state = t.TOperationState.ERROR_STATE
                op.end_time = self._now()
                self.counters["queries-failed"] += 1
                log.info("query {qid} failed: {err}", qid=op.id, err=error_text(e))
                return
            if not batch or not batch[0]:
                op.exhausted = True
                op.end_time = op.end_time or self._now()
                return
            for column, values in zip(op.buffer, batch, strict=False):
                column.extend(values)

    async def get_result_set_metadata(
        self, req: t.TGetResultSetMetadataReq
    ) -> t.TGetResultSetMetadataResp:
        op = self._operation(req.operationHandle)
        if op.schema is None:
            return t.TGetResultSetMetadataResp(
                status=_status_ok(), schema=t.TTableSchema(columns=[])
            )
        return t.TGetResultSetMetadataResp(
            status=_status_ok(), schema=results.table_schema(op.schema)
        )

    async def get_operation_status(
        self, req: t.TGetOperationStatusReq
    ) -> t.TGetOperationStatusResp:
        ident = getattr(req.operationHandle, "operationId", None)
        if ident is not None and getattr(ident, "guid", None) == b"":
            return t.TGetOperationStatusResp(
                status=_status_ok(), operationState=t.TOperationState.FINISHED_STATE
            )
        op = self._operation(req.operationHandle)
        if op.state == t.TOperationState.RUNNING_STATE:
            # Long-poll briefly, so a client polling at once sees FINISHED without a
            # 100 ms sleep (impala-shell polls right after GetResultSetMetadata).
            waiter: defer.Deferred[None] = defer.Deferred()
            op.waiters.append(waiter)
            waiter.addTimeout(STATUS_LONG_POLL_S, self._clock, lambda *_: None)
            await waiter
        resp = t.TGetOperationStatusResp(
            status=_status_ok(), operationState=op.state, hasResultSet=op.has_result_set
        )
        if op.state == t.TOperationState.ERROR_STATE:
            resp.errorMessage = op.error
            resp.sqlState = "HY000"
            resp.errorCode = 0
        return resp

    async def fetch_results(self, req: t.TFetchResultsReq) -> t.TFetchResultsResp:
        op = self._operation(req.operationHandle)
        if req.fetchType == 1:  # the log, for clients without GetLog
            log_text = self._log_text(op)
            lines: list[object] = list(log_text.splitlines())
            column = results.to_tcolumn("STRING", lines)
            return t.TFetchResultsResp(
                status=_status_ok(),
                hasMoreRows=False,
                results=t.TRowSet(startRowOffset=0, rows=[], columns=[column]),
            )
        if op.schema is None:
            return t.TFetchResultsResp(
                status=_status_error(f"Query {op.id} has no result set."), hasMoreRows=False
            )
        if req.orientation not in (None, t.TFetchOrientation.FETCH_NEXT):
            return t.TFetchResultsResp(
                status=_status_error("Unsupported TFetchOrientation: only FETCH_NEXT is supported.")
            )
        want = max(1, min(int(req.maxRows or 1024), MAX_FETCH_ROWS))
        got = await self.take_rows(op, want)
        if isinstance(got, str):
            return t.TFetchResultsResp(status=_status_error(got))
        take, offset, more = got
        rowset = await self._run(results.row_set, op.schema, take, offset)
        return t.TFetchResultsResp(status=_status_ok(), hasMoreRows=more, results=rowset)

    async def take_rows(
        self, op: Operation, want: int
    ) -> tuple[list[list[object]], int, bool] | str:
        """The next ``want`` rows of ``op`` as columns (HS2 and Beeswax fetches alike):
        (columns, offset of the first row, whether more follow), or the error text."""
        await op.lock.acquire()
        try:
            await self._fill(op, want)
            if op.state == t.TOperationState.ERROR_STATE:
                return op.error or "failed"
            if op.state == t.TOperationState.CANCELED_STATE or op.closed:
                return f"Cancelled: query {op.id} was cancelled"
            if op.state == t.TOperationState.RUNNING_STATE:
                op.state = t.TOperationState.FINISHED_STATE
            assert op.buffer is not None
            take = [column[:want] for column in op.buffer]
            op.buffer = [column[want:] for column in op.buffer]
            offset = op.rows_fetched
            op.rows_fetched += len(take[0]) if take else 0
            return take, offset, not op.exhausted or op.buffered_rows > 0
        finally:
            op.lock.release()

    def _log_text(self, op: Operation) -> str:
        if op.state == t.TOperationState.ERROR_STATE and op.error:
            return op.error
        return ""

    async def get_log(self, req: t.TGetLogReq) -> t.TGetLogResp:
        op = self._operation(req.operationHandle, closed_ok=True)
        return t.TGetLogResp(status=_status_ok(), log=self._log_text(op))

    async def close_operation(self, handle: Any) -> imp.TCloseImpalaOperationResp:
        op = self._operation(handle, closed_ok=True)
        await self._close_operation(op, cancel=False)
        resp = imp.TCloseImpalaOperationResp(status=_status_ok())
        if op.rows_modified is not None or op.statement_type == "DML":
            resp.dml_result = imp.TDmlResult(rows_modified={"": int(op.rows_modified or 0)})
        return resp

    async def _close_operation(self, op: Operation, *, cancel: bool) -> None:
        """Close ``op``: a query still running is cancelled first, then its statement closed."""
        if op.closed:
            return
        op.closed = True
        statement = op.statement
        if op.state in (t.TOperationState.RUNNING_STATE, t.TOperationState.PENDING_STATE):
            op.state = t.TOperationState.CANCELED_STATE
            if statement is not None:
                statement.cancel()
        if statement is not None:
            op.summary_extra.update(_safe_summary(statement))
            await op.lock.acquire()  # let an in-flight fetch return before closing
            try:
                await self._run(statement.close)
            except Exception as e:
                log.warn("closing query {qid}: {err}", qid=op.id, err=error_text(e))
            finally:
                op.lock.release()
        op.buffer = None
        self._retire(op)

    async def cancel_operation(self, req: t.TCancelOperationReq) -> t.TCancelOperationResp:
        op = self._operation(req.operationHandle)
        if op.state in (t.TOperationState.RUNNING_STATE, t.TOperationState.PENDING_STATE):
            op.state = t.TOperationState.CANCELED_STATE
            op.error = f"Cancelled: query {op.id} was cancelled by the client"
            op.end_time = self._now()
            self.counters["queries-cancelled"] += 1
            if op.statement is not None:
                op.statement.cancel()
            op.wake()
        return t.TCancelOperationResp(status=_status_ok())

    async def get_runtime_profile(
        self, req: imp.TGetRuntimeProfileReq
    ) -> imp.TGetRuntimeProfileResp:
        self._session(req.sessionHandle)
        op = self._operation(req.operationHandle, closed_ok=True)
        return imp.TGetRuntimeProfileResp(
            status=_status_ok(), profile=self.profile_text(op), failed_profiles=None
        )

    def profile_text(self, op: Operation) -> str:
        fmt = "%Y-%m-%d %H:%M:%S"
        end = time.strftime(fmt, time.localtime(op.end_time)) if op.end_time else ""
        summary = dict(op.summary_extra)
        if op.statement is not None and not op.closed:
            summary.update(_safe_summary(op.statement))
        plan = str(summary.get("plan", "")).rstrip()
        lines = [
            f"Query (id={op.id}):",
            "  Summary:",
            f"    Session ID: {op.session.id}",
            f"    Session Type: {op.session.session_type}",
            f"    Start Time: {time.strftime(fmt, time.localtime(op.start_time))}",
            f"    End Time: {end}",
            f"    Query Type: {op.statement_type or 'QUERY'}",
            f"    Query State: {op.state_name()}",
            f"    Impala Version: {self.version}",
            f"    User: {op.session.engine_session.user}",
            f"    Connected User: {op.session.connected_user}",
            f"    Network Address: {op.session.client}",
            f"    Default Db: {op.session.engine_session.database}",
            f"    Sql Statement: {op.sql}",
            f"    Coordinator: {self.identity.hostname}:{self.identity.krpc_port}",
            f"    Rows Produced: {summary.get('rows_produced', op.rows_fetched)}",
        ]
        if op.error:
            lines.append(f"    Query Status: {op.error.strip()}")
        else:
            lines.append("    Query Status: OK")
        if plan:
            lines.append("    Plan: ")
            lines.append("----------------")
            lines.extend(plan.splitlines())
            lines.append("----------------")
        lines.append(f"  Execution Profile {op.id}:(Total: {self._duration_text(op)})")
        return "\n".join(lines) + "\n"

    def _duration_text(self, op: Operation) -> str:
        end = op.end_time if op.end_time is not None else self._now()
        return f"{(end - op.start_time) * 1000:.3f}ms"

    async def get_exec_summary(self, req: imp.TGetExecSummaryReq) -> imp.TGetExecSummaryResp:
        self._session(req.sessionHandle)
        op = self._operation(req.operationHandle, closed_ok=True)
        return imp.TGetExecSummaryResp(status=_status_ok(), summary=self.exec_summary(op))

    def exec_summary(self, op: Operation) -> es.TExecSummary:
        state = {
            t.TOperationState.PENDING_STATE: es.TExecState.PLANNING,
            t.TOperationState.RUNNING_STATE: es.TExecState.RUNNING,
            t.TOperationState.FINISHED_STATE: es.TExecState.FINISHED,
            t.TOperationState.ERROR_STATE: es.TExecState.FAILED,
            t.TOperationState.CANCELED_STATE: es.TExecState.CANCELLED,
        }.get(op.state, es.TExecState.FINISHED)
        done = op.state != t.TOperationState.RUNNING_STATE
        end = op.end_time if op.end_time is not None else self._now()
        latency = int((end - op.start_time) * 1e9)
        rows = int(str(op.summary_extra.get("rows_produced", op.rows_fetched)) or 0)
        # measured: wall time and the CPU time of the threads that ran it; the peak
        # memory is not known (DuckDB keeps no per-query figure) and is left unset
        stats = es.TExecStats(latency_ns=latency, cpu_time_ns=op.cpu_ns, cardinality=rows)
        node = es.TPlanNodeExecSummary(
            node_id=0,
            fragment_idx=0,
            label="00:DUCKDB",
            label_detail=op.statement_type or "QUERY",
            num_children=0,
            estimated_stats=es.TExecStats(cardinality=-1, memory_used=-1),  # no estimates
            exec_stats=[stats],
            is_broadcast=False,
            num_hosts=1,
        )
        return es.TExecSummary(
            state=state,
            nodes=[node] if op.statement is not None else [],
            progress=es.TExecProgress(
                total_scan_ranges=1,
                num_completed_scan_ranges=1 if done else 0,
                total_fragment_instances=1,
                num_completed_fragment_instances=1 if done else 0,
            ),
            is_queued=False,
            error_logs=[op.error] if op.error else [],
        )

    async def get_info(self, req: t.TGetInfoReq) -> t.TGetInfoResp:
        try:
            session = self._session(req.sessionHandle)
        except HandleError as e:
            return t.TGetInfoResp(
                status=_status_error(str(e), t.TStatusCode.INVALID_HANDLE_STATUS),
                infoValue=t.TGetInfoValue(stringValue=""),
            )
        info = req.infoType
        values: dict[int, t.TGetInfoValue] = {
            t.TGetInfoType.CLI_SERVER_NAME: t.TGetInfoValue(stringValue="Impala"),
            t.TGetInfoType.CLI_DBMS_NAME: t.TGetInfoValue(stringValue="Impala"),
            t.TGetInfoType.CLI_DBMS_VER: t.TGetInfoValue(stringValue=IMPALA_VERSION),
            t.TGetInfoType.CLI_IDENTIFIER_QUOTE_CHAR: t.TGetInfoValue(stringValue="`"),
            t.TGetInfoType.CLI_USER_NAME: t.TGetInfoValue(stringValue=session.engine_session.user),
            t.TGetInfoType.CLI_MAX_IDENTIFIER_LEN: t.TGetInfoValue(lenValue=128),
        }
        value = values.get(info)
        if value is None:
            return t.TGetInfoResp(
                status=_status_error(f"Unsupported TGetInfoType: {info}"),
                infoValue=t.TGetInfoValue(stringValue=""),
            )
        return t.TGetInfoResp(status=_status_ok(), infoValue=value)

    # -- metadata RPCs: answered from the engine, materialised (they are small) ------

    async def metadata(
        self, handle: Any, schema: list[Col], rows_of: Callable[[SessionState], Any]
    ) -> tuple[t.TStatus, t.TOperationHandle | None]:
        session = self._session(handle)
        error = self.shutdown_error()
        if error is not None:
            return _status_error(error), None
        guid, qid = _new_id()
        op = Operation(guid, qid, session, "<metadata>", self._now())
        self._register(op)
        try:
            rows = await rows_of(session)
        except Exception as e:
            op.error = error_text(e)
            op.state = t.TOperationState.ERROR_STATE
            self._retire(op)
            return _status_error(op.error), None
        self._attach(op, StaticStatement(list(schema), rows))
        handle_out = self._handle(op)
        handle_out.operationType = t.TOperationType.GET_TABLES
        return _status_ok(), handle_out

    async def sql_rows(self, session: SessionState, sql: str) -> list[list[object]]:
        """Run ``sql`` through the engine and return every row (for small metadata answers)."""
        statement = await self._run(self.engine.execute, session.engine_session, sql)
        try:
            columns: list[list[object]] = []
            while True:
                batch = await self._run(statement.fetch, 4096)
                if not batch or not batch[0]:
                    break
                if not columns:
                    columns = [list(c) for c in batch]
                else:
                    for col, values in zip(columns, batch, strict=False):
                        col.extend(values)
            return [list(r) for r in zip(*columns, strict=False)] if columns else []
        finally:
            await self._run(statement.close)

    def _start_shutdown_statement(
        self, session: SessionState, sql: str, args: str
    ) -> t.TExecuteStatementResp:
        deadline: float | None = None
        for raw in [a.strip() for a in args.split(",") if a.strip()]:
            if raw[0] in "'\"":
                host = raw.strip("'\"").split(":")[0]
                if host not in ("", self.identity.hostname, "localhost", "127.0.0.1"):
                    return t.TExecuteStatementResp(
                        status=_status_error(
                            f"Remote shutdown of {host} is not supported by this impalad."
                        )
                    )
            else:
                try:
                    deadline = float(raw)
                except ValueError:
                    return t.TExecuteStatementResp(
                        status=_status_error(f"AnalysisException: Invalid deadline: {raw}")
                    )
                if deadline < 0:
                    return t.TExecuteStatementResp(
                        status=_status_error(
                            f"AnalysisException: Deadline must be a non-negative integer: {raw}"
                        )
                    )
        if self.shutdown is None:
            return t.TExecuteStatementResp(status=_status_error("Shutdown is not available."))
        text = self.shutdown.start(deadline)
        guid, qid = _new_id()
        op = Operation(guid, qid, session, sql, self._now())
        self._register(op)
        self._attach(op, StaticStatement([Col("summary")], [[text]]))
        return t.TExecuteStatementResp(status=_status_ok(), operationHandle=self._handle(op))


def _safe_summary(statement: StatementLike) -> dict[str, object]:
    try:
        return dict(statement.summary or {})
    except Exception:
        return {}


# -- the Thrift Iface for one connection ---------------------------------------------------


def _guard(
    make_error: Callable[[str, int], Any],
) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]], Callable[..., defer.Deferred[Any]]]:
    """Wrap a coroutine RPC: run it as a Deferred, answer handle errors with a status."""

    def wrap(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., defer.Deferred[Any]]:
        async def guarded(*args: Any) -> Any:
            try:
                return await fn(*args)
            except HandleError as e:
                return make_error(str(e), e.status)
            except Exception as e:
                log.failure("RPC {rpc} failed", rpc=fn.__name__)
                return make_error(error_text(e), t.TStatusCode.ERROR_STATUS)

        def run(*args: Any) -> defer.Deferred[Any]:
            return defer.Deferred.fromCoroutine(guarded(*args))

        run.__name__ = fn.__name__
        return run

    return wrap


def _in_use(op: Operation) -> bool:
    """A statement still being executed, or a fetch in progress: not idle."""
    return op.executing or op.lock.locked


def _seconds(text: object, default: int) -> int:
    """A timeout query option's value in seconds (``default`` when unset or not a number)."""
    try:
        return int(str(text).strip()) if text is not None and str(text).strip() else default
    except ValueError:
        return default


def _resp(cls: Any) -> Callable[[str, int], Any]:
    return lambda msg, code: cls(status=_status_error(msg, code))


async def _table_info(sql: Any, session: SessionState, db: str, table: str) -> metadata.TableInfo:
    """TABLE or VIEW and the table's comment, from DESCRIBE FORMATTED; TABLE when the
    engine cannot say."""
    try:
        rows = await sql(session, f"describe formatted {_quote(db)}.{_quote(table)}")
    except Exception:
        return metadata.TableInfo("TABLE", "")
    kind, comment = "TABLE", ""
    for row in rows:
        label = str(row[0] or "").strip()
        value = str(row[1] or "").strip() if len(row) > 1 else ""
        if label == "Table Type:" and value == "VIRTUAL_VIEW":
            kind = "VIEW"
        elif label == "" and value == "comment" and len(row) > 2:
            comment = str(row[2] or "").strip()
    return metadata.TableInfo(kind, comment)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@implementer(ImpalaHiveServer2Service.Iface)
class ConnectionHandler:
    """The HS2 RPCs of one client connection, delegated to the shared server."""

    def __init__(
        self,
        server: ImpalaServer,
        auth_user: str | None,
        client: str,
        session_type: str = "HIVESERVER2",
    ) -> None:
        self.server = server
        self.auth_user = auth_user
        self.client = client
        self.session_type = session_type
        self.opened: set[bytes] = set()  # guids of the sessions opened through this handler

    @_guard(lambda m, c: t.TOpenSessionResp(status=_status_error(m, c), serverProtocolVersion=5))
    async def OpenSession(self, req: t.TOpenSessionReq) -> t.TOpenSessionResp:
        resp = await self.server.open_session(req, self.auth_user, self.client, self.session_type)
        if resp.sessionHandle is not None:
            self.opened.add(resp.sessionHandle.sessionId.guid)
        return resp

    @_guard(_resp(t.TCloseSessionResp))
    async def CloseSession(self, req: t.TCloseSessionReq) -> t.TCloseSessionResp:
        return await self.server.close_session(req)

    @_guard(
        lambda m, c: t.TGetInfoResp(
            status=_status_error(m, c), infoValue=t.TGetInfoValue(stringValue="")
        )
    )
    async def GetInfo(self, req: t.TGetInfoReq) -> t.TGetInfoResp:
        return await self.server.get_info(req)

    @_guard(_resp(t.TExecuteStatementResp))
    async def ExecuteStatement(self, req: t.TExecuteStatementReq) -> t.TExecuteStatementResp:
        return await self.server.execute_statement(req)

    @_guard(_resp(t.TGetResultSetMetadataResp))
    async def GetResultSetMetadata(
        self, req: t.TGetResultSetMetadataReq
    ) -> t.TGetResultSetMetadataResp:
        return await self.server.get_result_set_metadata(req)

    @_guard(_resp(t.TGetOperationStatusResp))
    async def GetOperationStatus(self, req: t.TGetOperationStatusReq) -> t.TGetOperationStatusResp:
        return await self.server.get_operation_status(req)

    @_guard(_resp(t.TFetchResultsResp))
    async def FetchResults(self, req: t.TFetchResultsReq) -> t.TFetchResultsResp:
        return await self.server.fetch_results(req)

    @_guard(lambda m, c: t.TGetLogResp(status=_status_error(m, c), log=m))
    async def GetLog(self, req: t.TGetLogReq) -> t.TGetLogResp:
        return await self.server.get_log(req)

    @_guard(_resp(imp.TCloseImpalaOperationResp))
    async def CloseImpalaOperation(
        self, req: imp.TCloseImpalaOperationReq
    ) -> imp.TCloseImpalaOperationResp:
        return await self.server.close_operation(req.operationHandle)

    @_guard(_resp(t.TCloseOperationResp))
    async def CloseOperation(self, req: t.TCloseOperationReq) -> t.TCloseOperationResp:
        resp = await self.server.close_operation(req.operationHandle)
        return t.TCloseOperationResp(status=resp.status)

    @_guard(_resp(t.TCancelOperationResp))
    async def CancelOperation(self, req: t.TCancelOperationReq) -> t.TCancelOperationResp:
        return await self.server.cancel_operation(req)

    @_guard(_resp(imp.TPingImpalaHS2ServiceResp))
    async def PingImpalaHS2Service(
        self, req: imp.TPingImpalaHS2ServiceReq
    ) -> imp.TPingImpalaHS2ServiceResp:
        return await self.server.ping(req)

    @_guard(_resp(imp.TGetRuntimeProfileResp))
    async def GetRuntimeProfile(self, req: imp.TGetRuntimeProfileReq) -> imp.TGetRuntimeProfileResp:
        return await self.server.get_runtime_profile(req)

    @_guard(_resp(imp.TGetExecSummaryResp))
    async def GetExecSummary(self, req: imp.TGetExecSummaryReq) -> imp.TGetExecSummaryResp:
        return await self.server.get_exec_summary(req)

    # metadata

    def _reader(self, session: SessionState) -> metadata.Reader:
        """The catalog as the metadata calls read it: SHOW and DESCRIBE on the engine."""
        sql = self.server.sql_rows

        async def databases() -> list[str]:
            return [str(r[0]) for r in await sql(session, "show databases")]

        async def tables(db: str) -> list[str]:
            return [str(r[0]) for r in await sql(session, f"show tables in {_quote(db)}")]

        async def describe(db: str, table: str) -> metadata.TableInfo:
            return await _table_info(sql, session, db, table)

        async def columns(db: str, table: str) -> list[metadata.ColumnInfo]:
            rows = await sql(session, f"describe {_quote(db)}.{_quote(table)}")
            return [
                metadata.ColumnInfo(
                    str(r[0]),
                    metadata.ColumnType(str(r[1])),
                    str(r[2]) if len(r) > 2 and r[2] is not None else "",
                )
                for r in rows
            ]

        async def functions(db: str) -> list[tuple[str, str]]:
            out = []
            for row in await sql(session, f"show functions in {_quote(db)}"):
                signature = str(row[1]) if len(row) > 1 else str(row[0])
                out.append((signature.partition("(")[0], signature))
            return out

        return metadata.Reader(databases, tables, describe, columns, functions)

    async def _metadata(
        self, handle: Any, kind: str, rows: Callable[[metadata.Reader], Any]
    ) -> tuple[t.TStatus, t.TOperationHandle | None]:
        return await self.server.metadata(
            handle, metadata.SCHEMAS[kind], lambda session: rows(self._reader(session))
        )

    @_guard(_resp(t.TGetSchemasResp))
    async def GetSchemas(self, req: t.TGetSchemasReq) -> t.TGetSchemasResp:
        status, handle = await self._metadata(
            req.sessionHandle, "schemas", lambda r: metadata.schemas(r, req.schemaName)
        )
        return t.TGetSchemasResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetCatalogsResp))
    async def GetCatalogs(self, req: t.TGetCatalogsReq) -> t.TGetCatalogsResp:
        status, handle = await self._metadata(req.sessionHandle, "catalogs", metadata.catalogs)
        return t.TGetCatalogsResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetTableTypesResp))
    async def GetTableTypes(self, req: t.TGetTableTypesReq) -> t.TGetTableTypesResp:
        status, handle = await self._metadata(
            req.sessionHandle, "table_types", metadata.table_types
        )
        return t.TGetTableTypesResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetTablesResp))
    async def GetTables(self, req: t.TGetTablesReq) -> t.TGetTablesResp:
        status, handle = await self._metadata(
            req.sessionHandle,
            "tables",
            lambda r: metadata.tables(r, req.schemaName, req.tableName, req.tableTypes),
        )
        return t.TGetTablesResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetColumnsResp))
    async def GetColumns(self, req: t.TGetColumnsReq) -> t.TGetColumnsResp:
        status, handle = await self._metadata(
            req.sessionHandle,
            "columns",
            lambda r: metadata.columns(r, req.schemaName, req.tableName, req.columnName),
        )
        return t.TGetColumnsResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetTypeInfoResp))
    async def GetTypeInfo(self, req: t.TGetTypeInfoReq) -> t.TGetTypeInfoResp:
        status, handle = await self._metadata(req.sessionHandle, "type_info", metadata.type_info)
        return t.TGetTypeInfoResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetFunctionsResp))
    async def GetFunctions(self, req: t.TGetFunctionsReq) -> t.TGetFunctionsResp:
        status, handle = await self._metadata(
            req.sessionHandle,
            "functions",
            lambda r: metadata.functions(r, req.catalogName, req.schemaName, req.functionName),
        )
        return t.TGetFunctionsResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetPrimaryKeysResp))
    async def GetPrimaryKeys(self, req: t.TGetPrimaryKeysReq) -> t.TGetPrimaryKeysResp:
        status, handle = await self._metadata(
            req.sessionHandle,
            "primary_keys",
            lambda r: metadata.primary_keys(r, req.schemaName, req.tableName),
        )
        return t.TGetPrimaryKeysResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetCrossReferenceResp))
    async def GetCrossReference(self, req: t.TGetCrossReferenceReq) -> t.TGetCrossReferenceResp:
        status, handle = await self._metadata(
            req.sessionHandle, "cross_reference", metadata.cross_reference
        )
        return t.TGetCrossReferenceResp(status=status, operationHandle=handle)

    @_guard(_resp(t.TGetDelegationTokenResp))
    async def GetDelegationToken(self, req: Any) -> Any:
        return t.TGetDelegationTokenResp(status=_status_error("Not implemented"))

    @_guard(_resp(t.TCancelDelegationTokenResp))
    async def CancelDelegationToken(self, req: Any) -> Any:
        return t.TCancelDelegationTokenResp(status=_status_error("Not implemented"))

    @_guard(_resp(t.TRenewDelegationTokenResp))
    async def RenewDelegationToken(self, req: Any) -> Any:
        return t.TRenewDelegationTokenResp(status=_status_error("Not implemented"))
