"""The Thrift byte parsers: unframed message scanning, SASL negotiation and frames."""

from __future__ import annotations

import struct

import pytest

from backends.impalad import _wire
from backends.impalad.gen.TCLIService import ttypes as t
from tests.impalad.thriftmsg import call

BINARY_GUID = bytes(range(256))[128:144]  # not valid UTF-8
HANDLE = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=BINARY_GUID, secret=b"\xff" * 16))


def execute_call(statement: str = "select 1", seqid: int = 1) -> bytes:
    req = t.TExecuteStatementReq(
        sessionHandle=HANDLE, statement=statement, confOverlay={"A": "1", "B": "2"}, runAsync=True
    )
    return call("ExecuteStatement", req, seqid)


def test_scanner_splits_back_to_back_messages() -> None:
    """Two messages arriving in one chunk come out as two messages, byte for byte."""
    one, two = execute_call(seqid=1), execute_call("select 2", seqid=2)
    assert _wire.MessageScanner().feed(one + two) == [one, two]


def test_scanner_reassembles_byte_by_byte() -> None:
    """A message fed one byte at a time is returned once, when its last byte arrives."""
    message = execute_call()
    scanner = _wire.MessageScanner()
    out: list[bytes] = []
    for i in range(len(message)):
        got = scanner.feed(message[i : i + 1])
        if i < len(message) - 1:
            assert got == []
        out.extend(got)
    assert out == [message]
    assert scanner.buffered == 0


def test_scanner_is_binary_safe_with_non_utf8_handles() -> None:
    """Handles holding bytes that are not UTF-8 are counted, never decoded."""
    req = t.TFetchResultsReq(
        operationHandle=t.TOperationHandle(
            operationId=t.THandleIdentifier(guid=b"\x80\xfe" * 8, secret=b"\xc3" * 16),
            operationType=0,
            hasResultSet=True,
        ),
        orientation=0,
        maxRows=10,
    )
    message = call("FetchResults", req)
    assert _wire.MessageScanner().feed(message[:7]) == []
    scanner = _wire.MessageScanner()
    assert scanner.feed(message[:20]) == [] and scanner.feed(message[20:]) == [message]


def test_scanner_walks_every_container_type() -> None:
    """Maps, lists, sets and nested structs of every primitive type are walked exactly."""
    body = bytearray()
    body += struct.pack(">bh", _wire.T_MAP, 1) + struct.pack(">bbi", _wire.T_STRING, _wire.T_I64, 2)
    for key in (b"a", b"bb"):
        body += struct.pack(">i", len(key)) + key + struct.pack(">q", 7)
    body += struct.pack(">bh", _wire.T_SET, 2) + struct.pack(">bi", _wire.T_DOUBLE, 2) + b"\0" * 16
    body += struct.pack(">bh", _wire.T_LIST, 3) + struct.pack(">bi", _wire.T_STRUCT, 1)
    body += struct.pack(">bh", _wire.T_BOOL, 1) + b"\x01" + struct.pack(">bhb", _wire.T_BYTE, 2, 5)
    body += struct.pack(">bhh", _wire.T_I16, 3, 9) + struct.pack(">bhi", _wire.T_I32, 4, 9) + b"\0"
    body += b"\0"
    header = struct.pack(">Ii", 0x80010001, 1) + b"x" + struct.pack(">i", 3)
    message = header + bytes(body)
    scanner = _wire.MessageScanner()
    assert scanner.feed(message + message[:5]) == [message]
    assert scanner.feed(message[5:]) == [message]


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x80\x01\x00\x09" + b"\0" * 20,  # bad message type
        struct.pack(">Ii", 0x80010001, -5),  # negative name length
        struct.pack(">Ii", 0x80010001, 1) + b"x" + struct.pack(">i", 1) + b"\x63\x00\x01",
    ],
)
def test_scanner_rejects_garbage(garbage: bytes) -> None:
    """Bytes that cannot be a strict binary message raise WireError instead of waiting."""
    with pytest.raises(_wire.WireError):
        _wire.MessageScanner().feed(garbage)


def test_scanner_bounds_message_size() -> None:
    """A message claiming a string larger than the limit is refused, not buffered."""
    header = struct.pack(">Ii", 0x80010001, 1) + b"x" + struct.pack(">i", 1)
    huge = header + struct.pack(">bhi", _wire.T_STRING, 1, 10_000_000)
    with pytest.raises(_wire.WireError):
        _wire.MessageScanner(max_message=1_000_000).feed(huge)


def test_scanner_bounds_nesting() -> None:
    """Structs nested deeper than MAX_DEPTH are refused."""
    header = struct.pack(">Ii", 0x80010001, 1) + b"x" + struct.pack(">i", 1)
    deep = header + struct.pack(">bh", _wire.T_STRUCT, 1) * (_wire.MAX_DEPTH + 2)
    with pytest.raises(_wire.WireError):
        _wire.MessageScanner().feed(deep)


def test_parse_header_reads_name_and_seqid() -> None:
    """The header parser names the method and sequence id of a CALL."""
    header = _wire.parse_header(execute_call(seqid=42))
    assert (header.name, header.type, header.seqid) == ("ExecuteStatement", _wire.MSG_CALL, 42)


def test_application_exception_is_decodable() -> None:
    """The UNKNOWN_METHOD exception we write decodes with thrift's own reader."""
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException
    from thrift.transport.TTransport import TMemoryBuffer

    data = _wire.application_exception("Nope", 7, _wire.APP_UNKNOWN_METHOD, "Invalid method")
    proto = TBinaryProtocol(TMemoryBuffer(data))
    assert proto.readMessageBegin() == ("Nope", 3, 7)
    exc = TApplicationException()
    exc.read(proto)
    assert (exc.type, exc.message) == (TApplicationException.UNKNOWN_METHOD, "Invalid method")


def test_sasl_framer_parses_start_then_ok_then_frames() -> None:
    """START and OK tokens split anywhere are parsed, then frames after negotiated()."""
    data = _wire.sasl_message(_wire.SaslStatus.START, b"PLAIN")
    data += _wire.sasl_message(_wire.SaslStatus.OK, b"\0alice\0pw")
    framer = _wire.SaslFramer()
    items = framer.feed(data[:3]) + framer.feed(data[3:11]) + framer.feed(data[11:])
    assert items == [
        _wire.SaslToken(_wire.SaslStatus.START, b"PLAIN"),
        _wire.SaslToken(_wire.SaslStatus.OK, b"\0alice\0pw"),
    ]
    framer.negotiated()
    message = execute_call()
    framed = _wire.frame(message)
    assert framer.feed(framed[:2]) == []
    assert framer.feed(framed[2:] + framed) == [message, message]


def test_sasl_framer_rejects_bad_status_and_huge_tokens() -> None:
    """An unknown status byte or an oversized token is a WireError."""
    with pytest.raises(_wire.WireError):
        _wire.SaslFramer().feed(b"\x09\0\0\0\0")
    with pytest.raises(_wire.WireError):
        _wire.SaslFramer(max_token=10).feed(b"\x01\0\0\1\0")
    framer = _wire.SaslFramer(max_message=100)
    framer.negotiated()
    with pytest.raises(_wire.WireError):
        framer.feed(struct.pack(">I", 101))
