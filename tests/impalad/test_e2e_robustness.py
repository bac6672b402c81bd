"""Bad input on the HS2 ports ends only the offending connection; the daemon lives on."""

from __future__ import annotations

import json
import socket
import struct

from backends.impalad.gen.TCLIService import ttypes as t
from tests.impalad.thriftmsg import call, reply
from tests.support.impalad import Impalad, run_shell


def raw(d: Impalad, data: bytes, *, read: bool = True) -> bytes:
    """Send ``data`` on a fresh HS2 connection; return what came back until close/timeout."""
    with socket.create_connection((d.host, d.hs2_port), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                s.settimeout(0.5)  # a reply came: collect the rest, then stop
        except TimeoutError:
            pass
        return out


def still_serves(d: Impalad) -> None:
    done = run_shell(["-i", d.hs2_address, "-B", "-q", "select 42"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_garbage_bytes_are_dropped(impalad: Impalad) -> None:
    """An HTTP request or random bytes on the binary port get the connection closed."""
    assert raw(impalad, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert raw(impalad, bytes(range(256)) * 4) == b""
    still_serves(impalad)


def test_truncated_message_then_close(impalad: Impalad) -> None:
    """A message cut off mid-way followed by a close leaves no trace."""
    message = call("OpenSession", t.TOpenSessionReq(client_protocol=5, username="x"))
    raw(impalad, message[: len(message) // 2], read=False)
    raw(impalad, b"\x01\x00\x00\x00\x05PLA", read=False)  # SASL START cut short
    still_serves(impalad)
    sessions = json.loads(impalad.get("/sessions?json")[1])["sessions"]
    assert sessions == []  # the half message opened nothing


def test_unknown_method_gets_an_exception(impalad: Impalad) -> None:
    """An unknown method with binary arguments is answered UNKNOWN_METHOD."""
    handle = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=b"\xff" * 16, secret=b"\x80" * 16))
    message = call("GetInfo", t.TGetInfoReq(sessionHandle=handle, infoType=0))
    message = message.replace(b"GetInfo", b"Unknown", 1)
    answer = raw(impalad, message)
    try:
        reply("Unknown", answer)
        raise AssertionError("expected an exception")
    except Exception as e:
        assert "Invalid method name" in str(e)
    still_serves(impalad)


def test_malformed_handle_gets_an_error_status(impalad: Impalad) -> None:
    """A 3-byte session guid is answered 'Malformed THandleIdentifier'."""
    handle = t.TSessionHandle(sessionId=t.THandleIdentifier(guid=b"abc", secret=b"def"))
    message = call("ExecuteStatement", t.TExecuteStatementReq(sessionHandle=handle, statement="x"))
    resp = reply("ExecuteStatement", raw(impalad, message))
    assert resp.status.statusCode == t.TStatusCode.INVALID_HANDLE_STATUS
    assert "Malformed THandleIdentifier" in resp.status.errorMessage


def test_huge_length_is_refused(impalad: Impalad) -> None:
    """A SASL frame or string claiming gigabytes is refused without waiting for it."""
    header = struct.pack(">Ii", 0x80010001, 11) + b"OpenSession" + struct.pack(">i", 1)
    assert raw(impalad, header + struct.pack(">bhi", 11, 1, 2**31 - 1)) == b""
    assert raw(impalad, b"\x01" + struct.pack(">I", 2**31)) == b""
    still_serves(impalad)
