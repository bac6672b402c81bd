"""Beeswax on ``--beeswax_port`` (21000): Impala's legacy client protocol.

Older impala-shells (``--protocol=beeswax``) and the sample HAProxy config in Impala's
documentation use it. It is the ``ImpalaService`` Thrift service (Beeswax plus Impala's
extensions), on the same transports as HS2's binary port (unframed, or SASL PLAIN /
GSSAPI), and it runs on the same server as HS2: one session per connection (Beeswax has
no session calls; the session opens with the connection's first call and closes with
the connection, as Impala's), the same SQL, errors, query options, expiry and shutdown
rules. What differs is only the wire:

- a query is submitted with ``query`` (or ``executeAndWait``) and named by its query id
  (``QueryHandle.id``, also its ``log_context``); ``get_state`` says CREATED ..
  FINISHED or EXCEPTION;
- ``fetch`` returns rows as text, one string per row with tab-separated values and
  ``NULL`` for a null, as Impala's Beeswax server prints them;
- errors are ``BeeswaxException`` (message and SQLSTATE), an unknown or closed handle is
  ``QueryNotFoundException``;
- the query options of a query travel with it (``Query.configuration``, ``key=value``);
  ``get_default_configuration`` lists them with their levels.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from twisted.internet import defer, task
from zope.interface import implementer  # type: ignore[import-untyped]

from backends.impalad.gen.beeswax import ttypes as bw
from backends.impalad.gen.hive_metastore import ttypes as hms
from backends.impalad.gen.ImpalaService import ImpalaService
from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.Status import ttypes as st
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.server import MAX_FETCH_ROWS, ImpalaServer
from backends.impalad.state import HandleError, Operation

_OK = (t.TStatusCode.SUCCESS_STATUS, t.TStatusCode.SUCCESS_WITH_INFO_STATUS)
_STATES = {
    t.TOperationState.INITIALIZED_STATE: bw.QueryState.INITIALIZED,
    t.TOperationState.PENDING_STATE: bw.QueryState.COMPILED,
    t.TOperationState.RUNNING_STATE: bw.QueryState.RUNNING,
    t.TOperationState.FINISHED_STATE: bw.QueryState.FINISHED,
    t.TOperationState.ERROR_STATE: bw.QueryState.EXCEPTION,
    t.TOperationState.CANCELED_STATE: bw.QueryState.EXCEPTION,
    t.TOperationState.CLOSED_STATE: bw.QueryState.EXCEPTION,
}
_LEVELS = {name: value for value, name in bw.TQueryOptionLevel._VALUES_TO_NAMES.items()}


def _deferred(coro: Coroutine[Any, Any, Any]) -> defer.Deferred[Any]:
    return defer.Deferred.fromCoroutine(coro)


def beeswax_error(status: t.TStatus) -> bw.BeeswaxException:
    text = (status.errorMessage or "").rstrip("\n")
    return bw.BeeswaxException(message=text, SQLState=status.sqlState or "HY000")


def text_value(value: object) -> str:
    """One value as Impala's Beeswax server prints it in a row."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def type_text(column: Any) -> str:
    """A result column's type as the metastore's FieldSchema writes it (lower case)."""
    name = str(column.type).lower()
    if name == "decimal":
        return f"decimal({column.precision},{column.scale})"
    if name in ("char", "varchar") and column.length:
        return f"{name}({column.length})"
    return name


@implementer(ImpalaService.Iface)
class BeeswaxHandler:
    """The Beeswax calls of one client connection; its session opens with the first call."""

    def __init__(self, server: ImpalaServer, auth_user: str | None, client: str) -> None:
        self.server = server
        self.auth_user = auth_user
        self.client = client
        self._session: t.TSessionHandle | None = None
        self._handles: dict[str, t.TOperationHandle] = {}
        #: the session this connection opened (closed with it: :meth:`connection_lost`)
        self.opened: set[bytes] = set()

    def connection_lost(self) -> None:
        self.server.connection_closed(self.opened)

    # -- the session and the handles --------------------------------------------------

    async def _session_handle(self, user: str = "") -> t.TSessionHandle:
        if self._session is None:
            req = t.TOpenSessionReq(
                client_protocol=t.TProtocolVersion.HIVE_CLI_SERVICE_PROTOCOL_V6,
                username=user or None,
            )
            resp = await self.server.open_session(req, self.auth_user, self.client, "BEESWAX")
            if resp.status.statusCode not in _OK:
                raise beeswax_error(resp.status)
            self._session = resp.sessionHandle
            self.opened.add(resp.sessionHandle.sessionId.guid)
        return self._session

    def _handle(self, query: bw.QueryHandle | str | None) -> t.TOperationHandle:
        key = query if isinstance(query, str) else getattr(query, "id", None)
        handle = self._handles.get(key or "")
        if handle is None:
            raise bw.QueryNotFoundException()
        return handle

    def _op(self, query: bw.QueryHandle | str | None, *, closed_ok: bool = False) -> Operation:
        try:
            return self.server._operation(self._handle(query), closed_ok=closed_ok)
        except HandleError as e:
            if e.status == t.TStatusCode.INVALID_HANDLE_STATUS:
                raise bw.QueryNotFoundException() from None
            raise bw.BeeswaxException(message=str(e), SQLState="HY000") from None

    # -- BeeswaxService ---------------------------------------------------------------

    def query(self, query: bw.Query) -> defer.Deferred[bw.QueryHandle]:
        return _deferred(self._query(query))

    async def _query(self, query: bw.Query) -> bw.QueryHandle:
        session = await self._session_handle(query.hadoop_user or "")
        state = self.server._session(session, active=False)
        if self.auth_user is None and query.hadoop_user:
            state.engine_session.user = query.hadoop_user  # unauthenticated: the user it names
        overlay = {}
        for item in query.configuration or []:
            key, sep, value = str(item).partition("=")
            if sep and key.strip():
                overlay[key.strip().upper()] = value.strip()
        resp = await self.server.execute_statement(
            t.TExecuteStatementReq(
                sessionHandle=session, statement=query.query or "", confOverlay=overlay
            )
        )
        if resp.status.statusCode not in _OK:
            raise beeswax_error(resp.status)
        op = self.server.operations.get(resp.operationHandle.operationId.guid)
        query_id = op.id if op is not None else ""
        self._handles[query_id] = resp.operationHandle
        return bw.QueryHandle(id=query_id, log_context=query_id)

    def executeAndWait(self, query: bw.Query, clientCtx: str) -> defer.Deferred[bw.QueryHandle]:
        async def run() -> bw.QueryHandle:
            handle = await self._query(query)
            while True:
                state = await self._state(handle)  # long-polls while RUNNING
                if state == bw.QueryState.COMPILED:
                    await task.deferLater(self.server._clock, 0.01, lambda: None)
                elif state != bw.QueryState.RUNNING:
                    return handle

        return _deferred(run())

    def explain(self, query: bw.Query) -> defer.Deferred[bw.QueryExplanation]:
        async def run() -> bw.QueryExplanation:
            handle = await self._query(bw.Query(query=f"explain {query.query}"))
            lines: list[str] = []
            while True:
                results = await self._fetch(handle, MAX_FETCH_ROWS)
                lines += results.data
                if not results.has_more:
                    break
            await self._close(handle)
            return bw.QueryExplanation(textual="\n".join(lines))

        return _deferred(run())

    def fetch(
        self, query_id: bw.QueryHandle, start_over: bool, fetch_size: int
    ) -> defer.Deferred[bw.Results]:
        return _deferred(self._fetch(query_id, fetch_size))

    async def _fetch(self, query_id: bw.QueryHandle, fetch_size: int | None) -> bw.Results:
        op = self._op(query_id)
        if op.schema is None:
            return bw.Results(ready=True, columns=[], data=[], start_row=0, has_more=False)
        want = max(1, min(fetch_size if fetch_size and fetch_size > 0 else 1024, MAX_FETCH_ROWS))
        got = await self.server.take_rows(op, want)
        if isinstance(got, str):
            raise bw.BeeswaxException(message=got.rstrip("\n"), SQLState="HY000")
        columns, offset, more = got
        data = ["\t".join(text_value(v) for v in row) for row in zip(*columns, strict=False)]
        names = [str(c.name) for c in op.schema]
        return bw.Results(ready=True, columns=names, data=data, start_row=offset, has_more=more)

    def get_state(self, handle: bw.QueryHandle) -> defer.Deferred[int]:
        return _deferred(self._state(handle))

    async def _state(self, handle: bw.QueryHandle) -> int:
        op = self._op(handle)
        resp = await self.server.get_operation_status(
            t.TGetOperationStatusReq(operationHandle=self._handle(handle))
        )
        exception: int = bw.QueryState.EXCEPTION
        if resp.status.statusCode not in _OK:
            return exception
        state = resp.operationState if resp.operationState is not None else op.state
        return int(_STATES.get(state, exception))

    def get_results_metadata(self, handle: bw.QueryHandle) -> bw.ResultsMetadata:
        op = self._op(handle)
        fields = [
            hms.FieldSchema(name=str(c.name), type=type_text(c), comment=None)
            for c in op.schema or []
        ]
        return bw.ResultsMetadata(
            schema=hms.Schema(fieldSchemas=fields, properties=None),
            table_dir="",
            in_tablename="",
            delim="\t",
        )

    def echo(self, s: str) -> str:
        return s

    def dump_config(self) -> str:
        return ""

    def get_log(self, context: str) -> defer.Deferred[str]:
        async def run() -> str:
            self._op(context, closed_ok=True)
            resp = await self.server.get_log(t.TGetLogReq(operationHandle=self._handle(context)))
            return str(resp.log or "")

        return _deferred(run())

    def get_default_configuration(self, include_hadoop: bool) -> defer.Deferred[list[Any]]:
        async def run() -> list[Any]:
            session = await self._session_handle()
            state = self.server._session(session)
            options = await self.server._run(self.server.engine.query_options, state.engine_session)
            return [
                bw.ConfigVariable(
                    key=name, value=value, description="", level=_LEVELS.get(level.upper())
                )
                for name, value, level in options
            ]

        return _deferred(run())

    def close(self, handle: bw.QueryHandle) -> defer.Deferred[None]:
        return _deferred(self._close(handle))

    async def _close(self, handle: bw.QueryHandle) -> imp.TDmlResult | None:
        self._op(handle, closed_ok=True)
        resp = await self.server.close_operation(self._handle(handle))
        self._handles.pop(handle.id, None)
        if resp.status.statusCode not in _OK:
            raise beeswax_error(resp.status)
        return resp.dml_result

    def clean(self, log_context: str) -> None:
        self._handles.pop(log_context, None)

    # -- ImpalaService ----------------------------------------------------------------

    def Cancel(self, query_id: bw.QueryHandle) -> defer.Deferred[st.TStatus]:
        async def run() -> st.TStatus:
            self._op(query_id)
            resp = await self.server.cancel_operation(
                t.TCancelOperationReq(operationHandle=self._handle(query_id))
            )
            if resp.status.statusCode not in _OK:
                raise beeswax_error(resp.status)
            return st.TStatus(status_code=0, error_msgs=[])

        return _deferred(run())

    def CloseInsert(self, handle: bw.QueryHandle) -> defer.Deferred[imp.TDmlResult]:
        async def run() -> imp.TDmlResult:
            result = await self._close(handle)
            return result if result is not None else imp.TDmlResult(rows_modified={})

        return _deferred(run())

    def GetRuntimeProfile(self, query_id: bw.QueryHandle) -> str:
        return self.server.profile_text(self._op(query_id, closed_ok=True))

    def GetExecSummary(self, handle: bw.QueryHandle) -> Any:
        return self.server.exec_summary(self._op(handle, closed_ok=True))

    def PingImpalaService(self) -> imp.TPingImpalaServiceResp:
        return imp.TPingImpalaServiceResp(
            version=self.server.version,
            webserver_address=self.server.identity.webserver_address,
        )

    def ResetCatalog(self) -> defer.Deferred[st.TStatus]:
        return _deferred(self._statement("invalidate metadata"))

    def ResetTable(self, request: Any) -> defer.Deferred[st.TStatus]:
        name = getattr(request, "table_name", None)
        db = getattr(request, "db_name", None) or "default"
        return _deferred(self._statement(f"invalidate metadata `{db}`.`{name}`"))

    async def _statement(self, sql: str) -> st.TStatus:
        try:
            handle = await self._query(bw.Query(query=sql))
            await self._close(handle)
        except bw.BeeswaxException as e:
            return st.TStatus(status_code=1, error_msgs=[str(e.message)])
        return st.TStatus(status_code=0, error_msgs=[])
