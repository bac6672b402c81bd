"""The HiveServer2 service: sessions, operations and the RPCs' rules (spec section 5).

:class:`ImpalaServer` owns the session and operation tables and runs every
engine call through ``run_blocking`` (the daemon's thread pool), never on the
reactor. The records it keeps are :mod:`backends.impalad.state`'s; the Thrift ``Iface`` of one
client connection is :mod:`backends.impalad.handler`'s; what a profile and an exec
summary say is :mod:`backends.impalad.profile`'s.
"""

from __future__ import annotations

import collections
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from backends.impalad import expiry, profile, results
from backends.impalad.engine_api import (
    EngineLike,
    SessionFactory,
    StatementLike,
    error_text,
)
from backends.impalad.gen.ExecStats import ttypes as es
from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.metadata import Col
from backends.impalad.state import (
    ExpiredError,
    HandleError,
    Operation,
    SessionState,
    StaticStatement,
    _check_handle,
    _in_use,
    _new_id,
    _safe_summary,
    _seconds,
    _status_error,
    _status_ok,
    print_id,
)

if TYPE_CHECKING:
    from backends.impalad.state import ServerIdentity


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
        return profile.profile_text(op, self.identity, self.version, self._now())

    async def get_exec_summary(self, req: imp.TGetExecSummaryReq) -> imp.TGetExecSummaryResp:
        self._session(req.sessionHandle)
        op = self._operation(req.operationHandle, closed_ok=True)
        return imp.TGetExecSummaryResp(status=_status_ok(), summary=self.exec_summary(op))

    def exec_summary(self, op: Operation) -> es.TExecSummary:
        return profile.exec_summary(op, self._now())

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
