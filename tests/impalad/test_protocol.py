"""The HS2 server in memory: the binary protocol, SASL PLAIN and every RPC's rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from thrift.Thrift import TApplicationException
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport

from backends.impalad import _wire, results, sasl
from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.server import ImpalaServer
from backends.impalad.shutdown import ShutdownController
from backends.impalad.state import ServerIdentity
from backends.impalad.testing import FakeEngine, fake_session
from backends.impalad.transport import HS2Protocol
from tests.impalad.thriftmsg import call, reply

OK = t.TStatusCode.SUCCESS_STATUS


class CountingTransport(StringTransport):
    """A StringTransport that counts write() calls (one reply = one write)."""

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        StringTransport.write(self, data)


def run_now(fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(fn, *args)


class Harness:
    """One server, one connection, and helpers to make RPCs over it."""

    def __init__(self, mechanisms: Any = None, grace: float = 5.0) -> None:
        self.engine = FakeEngine()
        self.clock = task.Clock()
        self.server = ImpalaServer(
            self.engine,
            fake_session,
            run_now,
            self.clock,
            ServerIdentity("host-a", 21050, 28000, "http://host-a:25000"),
        )
        self.exits: list[int] = []
        self.server.shutdown = ShutdownController(
            self.clock,
            grace,
            60.0,
            lambda: len(self.server.operations),
            lambda: None,
            self.exits.append,
        )
        self.server.ready = True
        self.mechanisms = mechanisms or sasl.default_mechanisms()
        self.tr: Any
        self.proto, self.tr = self.connect()
        self.sasl = False

    def connect(self) -> tuple[HS2Protocol, Any]:
        proto = HS2Protocol(self.server, self.mechanisms)
        tr: Any = CountingTransport()  # type: ignore[no-untyped-call]
        proto.makeConnection(tr)  # type: ignore[no-untyped-call]
        return proto, tr

    def rpc(self, name: str, req: Any) -> Any:
        self.tr.clear()
        self.tr.writes = 0
        message = call(name, req)
        self.proto.dataReceived(_wire.frame(message) if self.sasl else message)
        data = self.tr.value()
        assert self.tr.writes == 1, "one reply must be one write"
        if self.sasl:
            assert int.from_bytes(data[:4], "big") == len(data) - 4
            data = data[4:]
        return reply(name, data)

    def open(self, **kw: Any) -> t.TSessionHandle:
        resp = self.rpc("OpenSession", t.TOpenSessionReq(client_protocol=5, **kw))
        assert resp.status.statusCode == OK
        return resp.sessionHandle

    def execute(self, session: t.TSessionHandle, sql: str) -> Any:
        return self.rpc(
            "ExecuteStatement", t.TExecuteStatementReq(sessionHandle=session, statement=sql)
        )

    def fetch(self, op: t.TOperationHandle, n: int) -> Any:
        return self.rpc(
            "FetchResults", t.TFetchResultsReq(operationHandle=op, orientation=0, maxRows=n)
        )


def test_open_session_answers_v6_and_a_16_byte_handle() -> None:
    """OpenSession answers protocol V6 (even to V7), a 16+16 byte handle and http_addr."""
    h = Harness()
    resp = h.rpc("OpenSession", t.TOpenSessionReq(client_protocol=6, username="ann"))
    assert resp.serverProtocolVersion == t.TProtocolVersion.HIVE_CLI_SERVICE_PROTOCOL_V6
    ident = resp.sessionHandle.sessionId
    assert len(ident.guid) == 16 and len(ident.secret) == 16
    assert resp.configuration["http_addr"] == "http://host-a:25000"
    assert next(iter(h.server.sessions.values())).engine_session.user == "ann"


def test_open_session_honours_database_and_options() -> None:
    """use:database and set:hiveconf: keys from OpenSession configure the session."""
    h = Harness()
    h.open(configuration={"use:database": "sales", "set:hiveconf:mem_limit": "1g"})
    session = next(iter(h.server.sessions.values())).engine_session
    assert session.database == "sales" and session.options["MEM_LIMIT"] == "1g"


def test_query_schema_then_batches_of_requested_size() -> None:
    """A query's schema is ready after ExecuteStatement and rows come in requested batches."""
    h = Harness()
    s = h.open()
    ex = h.execute(s, "select 1 x 10")
    assert ex.status.statusCode == OK and ex.operationHandle.hasResultSet
    meta = h.rpc("GetResultSetMetadata", t.TGetResultSetMetadataReq(ex.operationHandle))
    assert [c.columnName for c in meta.schema.columns] == ["n"]
    assert meta.schema.columns[0].typeDesc.types[0].primitiveEntry.type == t.TTypeId.BIGINT_TYPE
    got, flags = [], []
    for _ in range(4):
        resp = h.fetch(ex.operationHandle, 3)
        got.extend(resp.results.columns[0].i64Val.values)
        flags.append(resp.hasMoreRows)
    assert got == list(range(10)) and flags == [True, True, True, False]
    after = h.fetch(ex.operationHandle, 3)
    assert after.status.statusCode == OK and after.hasMoreRows is False
    assert after.results.columns[0].i64Val.values == []


def test_operation_status_is_finished_when_rows_are_ready() -> None:
    """GetOperationStatus reports FINISHED once the first rows exist."""
    h = Harness()
    ex = h.execute(h.open(), "select 1 x 2")
    st = h.rpc("GetOperationStatus", t.TGetOperationStatusReq(ex.operationHandle))
    assert st.operationState == t.TOperationState.FINISHED_STATE and st.hasResultSet


def test_typed_columns_and_lsb_first_null_bitmap() -> None:
    """Every type goes in its own TColumn member and NULLs set LSB-first bits."""
    h = Harness()
    ex = h.execute(h.open(), "typed")
    meta = h.rpc("GetResultSetMetadata", t.TGetResultSetMetadataReq(ex.operationHandle))
    dec = meta.schema.columns[12].typeDesc.types[0].primitiveEntry
    assert dec.typeQualifiers.qualifiers["precision"].i32Value == 10
    assert dec.typeQualifiers.qualifiers["scale"].i32Value == 2
    cols = h.fetch(ex.operationHandle, 100).results.columns
    members = [
        "boolVal", "byteVal", "i16Val", "i32Val", "i64Val", "doubleVal", "doubleVal",
        "stringVal", "stringVal", "stringVal", "stringVal", "stringVal", "stringVal", "binaryVal",
    ]  # fmt: skip
    for col, member in zip(cols, members, strict=True):
        typed = getattr(col, member)
        assert typed is not None and len(typed.values) == 2
        assert typed.nulls == b"\x02"  # row 1 is NULL: bit 1 of byte 0
    assert cols[7].stringVal.values == [b"str", b""]
    assert cols[13].binaryVal.values == [b"\x00\xff", b""]


def test_null_bitmap_is_lsb_first() -> None:
    """Row i is NULL iff bit i%8 of byte i//8 is set."""
    values: list[object] = [None, 1, 1, 1, 1, 1, 1, 1, 1, None]
    assert results.null_bitmap(values) == bytes([0b00000001, 0b00000010])
    assert results.null_bitmap([1, 2]) == b"\x00"


def test_set_all_has_three_string_columns() -> None:
    """'set all' answers the engine's options as (option, value, level) strings."""
    h = Harness()
    ex = h.execute(h.open(), "set all")
    cols = h.fetch(ex.operationHandle, 8192).results.columns
    assert cols[0].stringVal.values == [b"MEM_LIMIT", b"CLIENT_IDENTIFIER"]
    assert cols[2].stringVal.values == [b"REGULAR", b"ADVANCED"]


def test_conf_overlay_applies_to_one_query_only() -> None:
    """confOverlay options are visible to that statement and gone afterwards."""
    h = Harness()
    s = h.open()
    req = t.TExecuteStatementReq(
        sessionHandle=s, statement="set all", confOverlay={"mem_limit": "5"}
    )
    ex = h.rpc("ExecuteStatement", req)
    assert h.fetch(ex.operationHandle, 10).results.columns[1].stringVal.values[0] == b"5"
    ex = h.execute(s, "set all")
    assert h.fetch(ex.operationHandle, 10).results.columns[1].stringVal.values[0] == b"0"


def test_analysis_error_is_returned_by_execute_statement() -> None:
    """An engine error fails ExecuteStatement with Impala's 'Kind: message' text."""
    h = Harness()
    ex = h.execute(h.open(), "nonsense")
    assert ex.status.statusCode == t.TStatusCode.ERROR_STATUS
    assert ex.status.errorMessage.startswith("AnalysisException: Syntax error")
    assert ex.status.sqlState == "HY000"


def test_runtime_error_reaches_status_and_log() -> None:
    """A failure while fetching sets ERROR_STATE, errorMessage and GetLog alike."""
    h = Harness()
    ex = h.execute(h.open(), "fail at fetch")
    st = h.rpc("GetOperationStatus", t.TGetOperationStatusReq(ex.operationHandle))
    assert st.operationState == t.TOperationState.ERROR_STATE
    assert "RuntimeException: boom at fetch" in st.errorMessage
    assert st.errorMessage.startswith("Query ") and " failed:\n" in st.errorMessage
    logged = h.rpc("GetLog", t.TGetLogReq(ex.operationHandle))
    assert logged.log == st.errorMessage


def test_dml_close_returns_rows_modified() -> None:
    """CloseImpalaOperation of a DML statement carries dml_result.rows_modified."""
    h = Harness()
    ex = h.execute(h.open(), "dml 7")
    assert not ex.operationHandle.hasResultSet
    closed = h.rpc("CloseImpalaOperation", imp.TCloseImpalaOperationReq(ex.operationHandle))
    assert closed.status.statusCode == OK
    assert sum(closed.dml_result.rows_modified.values()) == 7


def test_close_operation_then_profile_and_summary_still_work() -> None:
    """Profile and exec summary are answered for a query closed just before."""
    h = Harness()
    s = h.open()
    ex = h.execute(s, "select 1 x 2")
    h.fetch(ex.operationHandle, 10)
    h.rpc("CloseOperation", t.TCloseOperationReq(ex.operationHandle))
    assert h.engine.statements[-1].closed
    prof = h.rpc(
        "GetRuntimeProfile",
        imp.TGetRuntimeProfileReq(operationHandle=ex.operationHandle, sessionHandle=s),
    )
    assert prof.status.statusCode == OK and "Sql Statement: select 1 x 2" in prof.profile
    summ = h.rpc(
        "GetExecSummary",
        imp.TGetExecSummaryReq(operationHandle=ex.operationHandle, sessionHandle=s),
    )
    assert summ.summary.state == 4 and summ.summary.nodes[0].exec_stats[0].cardinality == 2
    assert summ.summary.progress.num_completed_fragment_instances == 1


def test_cancel_interrupts_the_statement() -> None:
    """CancelOperation calls Statement.cancel and the state becomes CANCELED."""
    h = Harness()
    s = h.open()
    ex = h.execute(s, "select 1 x 5")
    op = h.server.operations[ex.operationHandle.operationId.guid]
    op.state = t.TOperationState.RUNNING_STATE
    h.rpc("CancelOperation", t.TCancelOperationReq(ex.operationHandle))
    assert h.engine.statements[-1].cancelled.is_set()
    st = h.rpc("GetOperationStatus", t.TGetOperationStatusReq(ex.operationHandle))
    assert st.operationState == t.TOperationState.CANCELED_STATE


def test_close_session_closes_its_operations() -> None:
    """CloseSession closes open operations and forgets the session."""
    h = Harness()
    s = h.open()
    h.execute(s, "select 1 x 5")
    assert h.rpc("CloseSession", t.TCloseSessionReq(s)).status.statusCode == OK
    assert h.server.sessions == {} and h.server.operations == {}
    assert h.engine.statements[-1].closed


def test_ping_reports_version_and_webserver() -> None:
    """PingImpalaHS2Service answers the version and webserver_address."""
    h = Harness()
    resp = h.rpc("PingImpalaHS2Service", imp.TPingImpalaHS2ServiceReq(h.open()))
    assert resp.version.startswith("impalad version ")
    assert resp.webserver_address == "http://host-a:25000"


def test_get_info_server_name() -> None:
    """GetInfo(CLI_SERVER_NAME) is Impala, and an unknown type still sets infoValue."""
    h = Harness()
    s = h.open()
    resp = h.rpc("GetInfo", t.TGetInfoReq(sessionHandle=s, infoType=t.TGetInfoType.CLI_SERVER_NAME))
    assert resp.infoValue.stringValue == "Impala"
    bad = h.rpc("GetInfo", t.TGetInfoReq(sessionHandle=s, infoType=t.TGetInfoType.CLI_TXN_CAPABLE))
    assert bad.status.statusCode == t.TStatusCode.ERROR_STATUS and bad.infoValue is not None


def test_metadata_calls_answer_from_the_engine() -> None:
    """GetSchemas/GetTables/GetColumns run SHOW/DESCRIBE through the engine."""
    h = Harness()
    s = h.open()
    sch = h.rpc("GetSchemas", t.TGetSchemasReq(sessionHandle=s, schemaName="sal%"))
    cols = h.fetch(sch.operationHandle, 100).results.columns
    assert cols[0].stringVal.values == [b"sales"]
    tab = h.rpc("GetTables", t.TGetTablesReq(sessionHandle=s, schemaName="default"))
    cols = h.fetch(tab.operationHandle, 100).results.columns
    assert cols[2].stringVal.values == [b"t1"]
    col = h.rpc(
        "GetColumns", t.TGetColumnsReq(sessionHandle=s, schemaName="default", tableName="t1")
    )
    cols = h.fetch(col.operationHandle, 100).results.columns
    assert cols[3].stringVal.values == [b"id", b"name"] and cols[4].i32Val.values == [4, 12]
    for name, req in [
        ("GetTypeInfo", t.TGetTypeInfoReq(sessionHandle=s)),
        ("GetCatalogs", t.TGetCatalogsReq(sessionHandle=s)),
        ("GetFunctions", t.TGetFunctionsReq(sessionHandle=s, functionName="%")),
    ]:
        assert h.rpc(name, req).status.statusCode == OK


def test_unknown_method_gets_application_exception_and_connection_lives() -> None:
    """An unknown method with binary args is answered UNKNOWN_METHOD; the next call works."""
    h = Harness()
    s = h.open()
    bogus = call("ExecuteStatement", t.TExecuteStatementReq(sessionHandle=s, statement="x"))
    bogus = bogus.replace(b"ExecuteStatement", b"ExecuteStatemenX")
    h.tr.clear()
    h.proto.dataReceived(bogus)
    with pytest.raises(TApplicationException) as info:
        reply("ExecuteStatemenX", h.tr.value())
    assert info.value.type == TApplicationException.UNKNOWN_METHOD
    assert not h.tr.disconnecting
    assert h.execute(s, "select 1").status.statusCode == OK


def test_malformed_and_unknown_handles_get_invalid_handle_status() -> None:
    """Short guids are 'Malformed THandleIdentifier', unknown ones INVALID_HANDLE."""
    h = Harness()
    short = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=b"\x01", secret=b"\x02"))
    resp = h.execute(short, "select 1")
    assert resp.status.statusCode == t.TStatusCode.INVALID_HANDLE_STATUS
    assert "Malformed THandleIdentifier" in resp.status.errorMessage
    unknown = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=b"\x01" * 16, secret=b"\2" * 16))
    resp = h.execute(unknown, "select 1")
    assert resp.status.statusCode == t.TStatusCode.INVALID_HANDLE_STATUS
    assert not h.tr.disconnecting


def test_wrong_secret_is_refused() -> None:
    """A session handle with the right guid but another secret is not accepted."""
    h = Harness()
    s = h.open()
    forged = t.TSessionHandle(
        sessionId=t.THandleIdentifier(guid=s.sessionId.guid, secret=b"\0" * 16)
    )
    assert h.execute(forged, "select 1").status.statusCode == t.TStatusCode.INVALID_HANDLE_STATUS


def test_garbage_first_bytes_close_only_that_connection() -> None:
    """A connection starting with neither 0x80 nor 0x01 is closed; others go on."""
    h = Harness()
    s = h.open()
    bad, bad_tr = h.connect()
    bad.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
    assert bad_tr.disconnecting
    assert h.execute(s, "select 1").status.statusCode == OK


def test_garbage_after_a_good_message_closes_the_connection() -> None:
    """Bytes that cannot start a message after a valid one close that connection."""
    h = Harness()
    h.open()
    h.proto.dataReceived(b"\x80\x01\x00\x09garbage-garbage")
    assert h.tr.disconnecting


def test_undecodable_arguments_get_protocol_error() -> None:
    """A call whose statement is not UTF-8 is answered, and the connection goes on."""
    h = Harness()
    s = h.open()
    message = call("ExecuteStatement", t.TExecuteStatementReq(sessionHandle=s, statement="AAAA"))
    message = message.replace(b"AAAA", b"\xff\xfe\xfd\xfc")
    h.tr.clear()
    h.proto.dataReceived(message)
    try:
        answer = reply("ExecuteStatement", h.tr.value())
        assert answer.status.statusCode == t.TStatusCode.ERROR_STATUS
    except TApplicationException as e:
        assert e.type == TApplicationException.PROTOCOL_ERROR
    assert not h.tr.disconnecting
    assert h.execute(s, "select 1").status.statusCode == OK


def sasl_start(h: Harness, mech: bytes, token: bytes) -> Any:
    h.tr.clear()
    h.proto.dataReceived(
        _wire.sasl_message(_wire.SaslStatus.START, mech)
        + _wire.sasl_message(_wire.SaslStatus.OK, token)
    )
    return h.tr.value()


def test_sasl_plain_authenticates_and_frames() -> None:
    """SASL PLAIN completes, frames follow, and the SASL user is the session user."""
    h = Harness()
    assert sasl_start(h, b"PLAIN", b"\0carol\0secret") == _wire.sasl_message(
        _wire.SaslStatus.COMPLETE
    )
    h.sasl = True
    h.open(username="someone-else")
    assert next(iter(h.server.sessions.values())).engine_session.user == "carol"


def test_sasl_unknown_mechanism_is_bad() -> None:
    """An unsupported mechanism gets BAD 'Unsupported mechanism type' and a close."""
    h = Harness()
    out = sasl_start(h, b"DIGEST-MD5", b"")
    assert out.startswith(b"\x03") and b"Unsupported mechanism type DIGEST-MD5" in out
    assert h.tr.disconnecting


def test_sasl_refused_password_closes() -> None:
    """A password the checker refuses gets BAD and the connection is closed."""
    h = Harness(mechanisms=sasl.default_mechanisms(lambda u, p: p == "right"))
    out = sasl_start(h, b"PLAIN", b"\0carol\0wrong")
    assert out[:1] == b"\x03" and h.tr.disconnecting


def test_plain_mechanism_parses_authzid_and_authcid() -> None:
    """Cyrus' 'alice\\0alice\\0pw' and pure-sasl's '\\0carol\\0pw' both authenticate."""
    mech = sasl.PlainMechanism()
    assert mech.step(b"alice\0alice\0pw").user == "alice"
    assert sasl.PlainMechanism().step(b"\0carol\0pw").user == "carol"
    with pytest.raises(sasl.AuthenticationError):
        sasl.PlainMechanism().step(b"nonsense")


def test_shutdown_statement_refuses_new_work_then_exits() -> None:
    """:shutdown() refuses new sessions/queries and exits 0 after the grace period."""
    h = Harness(grace=5.0)
    s = h.open()
    ex = h.execute(s, ":shutdown()")
    assert ex.status.statusCode == OK
    row = h.fetch(ex.operationHandle, 10).results.columns[0].stringVal.values[0]
    assert b"shutdown grace period left: 5s" in row
    refused = h.execute(s, "select 1")
    assert refused.status.errorMessage.startswith("Server is being shut down: ")
    opened = h.rpc("OpenSession", t.TOpenSessionReq(client_protocol=5))
    assert "Server is being shut down" in opened.status.errorMessage
    h.clock.advance(6)
    assert h.exits == []  # the :shutdown() query is still registered
    h.rpc("CloseImpalaOperation", imp.TCloseImpalaOperationReq(ex.operationHandle))
    h.clock.advance(1)
    assert h.exits == [0]


def test_shutdown_deadline_cancels_and_exits() -> None:
    """When the deadline passes, running queries are cancelled and the daemon exits."""
    h = Harness(grace=0.0)
    s = h.open()
    h.execute(s, "select 1 x 100000")
    h.execute(s, ":shutdown(3)")
    h.clock.advance(2)
    assert h.exits == []
    h.clock.advance(2)
    assert h.exits == [0]


def test_connection_loss_closes_its_sessions() -> None:
    """When a binary connection drops, the sessions it opened and their queries close."""
    h = Harness()
    s = h.open()
    other_proto, _ = h.connect()
    other_proto.dataReceived(call("OpenSession", t.TOpenSessionReq(client_protocol=5)))
    assert len(h.server.sessions) == 2
    h.execute(s, "select 1 x 5")
    h.proto.connectionLost(None)
    assert len(h.server.sessions) == 1  # the other connection's session stays
    assert h.server.operations == {} and h.engine.statements[-1].closed
