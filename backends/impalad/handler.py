"""The Thrift ``Iface`` for one client connection (or one HTTP request): it knows who
authenticated and turns each HS2 RPC into a coroutine on :class:`ImpalaServer`,
every failure into the RPC's own error response."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer  # type: ignore[import-untyped]

from backends.impalad import metadata
from backends.impalad.engine_api import (
    error_text,
)
from backends.impalad.gen.ImpalaService import ImpalaHiveServer2Service
from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.state import HandleError, _status_error

if TYPE_CHECKING:
    from backends.impalad.server import ImpalaServer
    from backends.impalad.state import SessionState

log = Logger()


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
