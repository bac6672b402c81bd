"""Thrift wire formats on bytes alone: message scanning, SASL negotiation, frames.

Nothing here touches a socket. The connection protocol feeds received bytes in
and gets back complete Thrift messages (as raw bytes) or a :class:`WireError`.

- :class:`MessageScanner` finds the end of back-to-back unframed strict
  TBinaryProtocol messages by walking their structure. It is resumable: bytes
  already walked are not walked again when more arrive. It never decodes
  strings (HS2 handles are raw bytes), it only counts them.
- :class:`SaslFramer` parses the Thrift SASL negotiation messages
  (``u8 status | u32 length | payload``) and, once negotiation is complete,
  ``u32 length | message`` frames.
"""

from __future__ import annotations

import dataclasses
import enum
import struct

# TBinaryProtocol type ids.
T_STOP = 0
T_BOOL = 2
T_BYTE = 3
T_DOUBLE = 4
T_I16 = 6
T_I32 = 8
T_I64 = 10
T_STRING = 11
T_STRUCT = 12
T_MAP = 13
T_SET = 14
T_LIST = 15

_FIXED_SIZE = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8}

STRICT_VERSION_1 = 0x80010000
MSG_CALL = 1
MSG_REPLY = 2
MSG_EXCEPTION = 3
MSG_ONEWAY = 4

# TApplicationException types.
APP_UNKNOWN_METHOD = 1
APP_INVALID_MESSAGE_TYPE = 2
APP_INTERNAL_ERROR = 6
APP_PROTOCOL_ERROR = 7

DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
MAX_DEPTH = 64


class WireError(Exception):
    """The peer sent bytes that are not a valid message; the connection must end."""


class _Need(Exception):
    """Internal: the buffer ends before the item being walked."""


@dataclasses.dataclass(frozen=True)
class MessageHeader:
    """The strict TBinaryProtocol message header."""

    name: str
    type: int
    seqid: int
    size: int  # header length in bytes


def parse_header(data: bytes) -> MessageHeader:
    """Parse a complete message's header; raises :class:`WireError` if it is not strict binary."""
    if len(data) < 12:
        raise WireError("truncated Thrift message header")
    (version,) = struct.unpack_from(">I", data, 0)
    if version & 0xFFFF0000 != STRICT_VERSION_1:
        raise WireError(f"not a strict TBinaryProtocol message (version 0x{version:08x})")
    (name_len,) = struct.unpack_from(">i", data, 4)
    if name_len < 0 or 8 + name_len + 4 > len(data):
        raise WireError("bad method name length")
    raw = data[8 : 8 + name_len]
    (seqid,) = struct.unpack_from(">i", data, 8 + name_len)
    return MessageHeader(raw.decode("utf-8", "replace"), version & 0xFF, seqid, 12 + name_len)


def application_exception(name: str, seqid: int, kind: int, message: str) -> bytes:
    """A complete EXCEPTION message carrying a TApplicationException."""
    raw_name = name.encode()
    raw_msg = message.encode()
    out = bytearray(struct.pack(">Ii", STRICT_VERSION_1 | MSG_EXCEPTION, len(raw_name)))
    out += raw_name
    out += struct.pack(">i", seqid)
    out += struct.pack(">bhi", T_STRING, 1, len(raw_msg)) + raw_msg  # 1: message
    out += struct.pack(">bhi", T_I32, 2, kind)  # 2: type
    out += b"\x00"
    return bytes(out)


class MessageScanner:
    """Splits a byte stream of unframed strict binary Thrift messages into messages.

    ``feed(data)`` returns every message completed by ``data`` (raw bytes, in
    order). Raises :class:`WireError` on bytes that cannot be a message; after
    that the scanner must not be used again.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._max = max_message
        self._buf = bytearray()
        self._pos = 0  # how far the current message has been walked
        # Work stack, innermost last. Items:
        #   ("header",)                 the message header is next
        #   ("value", ttype)            one value of ttype is next
        #   ("fields",)                 a struct's next field header (or STOP)
        #   ("list", etype, remaining)  elements of a list/set
        #   ("map", ktype, vtype, remaining)  key/value pairs of a map
        self._stack: list[tuple[int, ...]] = []
        self._depth = 0

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            if not self._stack:
                self._stack.append((0,))  # header
                self._pos = 0
            try:
                self._walk()
            except _Need:
                if len(self._buf) > self._max:
                    raise WireError(f"message larger than {self._max} bytes") from None
                break
            end = self._pos
            if end > self._max:
                raise WireError(f"message larger than {self._max} bytes")
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._pos = 0
        return out

    def _take(self, n: int) -> int:
        """Reserve ``n`` bytes at the walk position; returns their offset."""
        start = self._pos
        if start + n > len(self._buf):
            raise _Need
        self._pos = start + n
        return start

    def _i32(self, at: int) -> int:
        value: int = struct.unpack_from(">i", self._buf, at)[0]
        return value

    def _walk(self) -> None:
        stack = self._stack
        buf = self._buf
        while stack:
            item = stack[-1]
            tag = item[0]
            if tag == 0:  # header
                if len(buf) < 4:
                    raise _Need
                if buf[0] != 0x80 or buf[1] != 0x01:
                    raise WireError(
                        f"not a strict TBinaryProtocol message (first bytes {bytes(buf[:2]).hex()})"
                    )
                if buf[3] not in (MSG_CALL, MSG_ONEWAY, MSG_REPLY, MSG_EXCEPTION):
                    raise WireError(f"bad Thrift message type {buf[3]}")
                if len(buf) < 8:
                    raise _Need
                name_len = self._i32(4)
                if name_len < 0 or name_len > 1024:
                    raise WireError(f"bad method name length {name_len}")
                self._pos = 0
                self._take(8 + name_len + 4)
                stack[-1] = (1, T_STRUCT)
                self._depth = 0
            elif tag == 1:  # one value
                ttype = item[1]
                size = _FIXED_SIZE.get(ttype)
                if size is not None:
                    self._take(size)
                    stack.pop()
                elif ttype == T_STRING:
                    at = self._take(4)
                    length = self._i32(at)
                    if length < 0 or length > self._max:
                        self._pos = at
                        raise WireError(f"bad string length {length}")
                    try:
                        self._take(length)
                    except _Need:
                        self._pos = at
                        raise
                    stack.pop()
                elif ttype == T_STRUCT:
                    stack[-1] = (2,)
                    self._enter()
                elif ttype in (T_LIST, T_SET):
                    at = self._take(5)
                    etype = buf[at]
                    count = self._i32(at + 1)
                    self._check_container(etype, count)
                    stack[-1] = (3, etype, count)
                    self._enter()
                elif ttype == T_MAP:
                    at = self._take(6)
                    ktype, vtype = buf[at], buf[at + 1]
                    count = self._i32(at + 2)
                    self._check_container(ktype, count)
                    self._check_container(vtype, count)
                    stack[-1] = (4, ktype, vtype, count)
                    self._enter()
                else:
                    raise WireError(f"unknown Thrift type {ttype}")
            elif tag == 2:  # struct fields
                at = self._take(1)
                ftype = buf[at]
                if ftype == T_STOP:
                    stack.pop()
                    self._depth -= 1
                    continue
                try:
                    self._take(2)
                except _Need:
                    self._pos = at
                    raise
                if ftype not in _FIXED_SIZE and ftype not in (
                    T_STRING,
                    T_STRUCT,
                    T_MAP,
                    T_SET,
                    T_LIST,
                ):
                    raise WireError(f"unknown Thrift type {ftype}")
                stack.append((1, ftype))
            elif tag == 3:  # list / set
                _, etype, remaining = item
                if remaining == 0:
                    stack.pop()
                    self._depth -= 1
                    continue
                stack[-1] = (3, etype, remaining - 1)
                stack.append((1, etype))
            else:  # map
                _, ktype, vtype, remaining = item
                if remaining == 0:
                    stack.pop()
                    self._depth -= 1
                    continue
                stack[-1] = (4, ktype, vtype, remaining - 1)
                stack.append((1, vtype))
                stack.append((1, ktype))

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise WireError("Thrift message nests too deeply")

    def _check_container(self, etype: int, count: int) -> None:
        if etype not in _FIXED_SIZE and etype not in (T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST):
            raise WireError(f"unknown Thrift type {etype}")
        if count < 0 or count > self._max:
            raise WireError(f"bad container size {count}")


# --- Thrift SASL -------------------------------------------------------------------------


class SaslStatus(enum.IntEnum):
    START = 1
    OK = 2
    BAD = 3
    ERROR = 4
    COMPLETE = 5


def sasl_message(status: SaslStatus, payload: bytes = b"") -> bytes:
    """One SASL negotiation message: status byte, big-endian length, payload."""
    return struct.pack(">BI", status, len(payload)) + payload


def frame(message: bytes) -> bytes:
    """A Thrift frame: big-endian length, then the message."""
    return struct.pack(">I", len(message)) + message


@dataclasses.dataclass(frozen=True)
class SaslToken:
    """A negotiation message received from the client."""

    status: SaslStatus
    payload: bytes


class SaslFramer:
    """Parses the client side of a Thrift SASL connection.

    Before :meth:`negotiated` it yields :class:`SaslToken` items; after, complete
    frame payloads (bytes). Payload sizes are bounded.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, max_token: int = 65536) -> None:
        self._buf = bytearray()
        self._negotiated = False
        self._max_message = max_message
        self._max_token = max_token

    def negotiated(self) -> None:
        """Negotiation is over: what follows are frames."""
        self._negotiated = True

    @property
    def is_negotiated(self) -> bool:
        return self._negotiated

    def feed(self, data: bytes) -> list[SaslToken | bytes]:
        self._buf += data
        out: list[SaslToken | bytes] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)
            if isinstance(item, SaslToken) and item.status in (SaslStatus.BAD, SaslStatus.ERROR):
                return out

    def _next(self) -> SaslToken | bytes | None:
        buf = self._buf
        if self._negotiated:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from(">I", buf, 0)
            if length > self._max_message:
                raise WireError(f"frame of {length} bytes exceeds {self._max_message}")
            if len(buf) < 4 + length:
                return None
            payload = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            return payload
        if len(buf) < 5:
            return None
        status = buf[0]
        if status not in SaslStatus.__members__.values():
            raise WireError(f"bad SASL status byte {status}")
        (length,) = struct.unpack_from(">I", buf, 1)
        if length > self._max_token:
            raise WireError(f"SASL message of {length} bytes exceeds {self._max_token}")
        if len(buf) < 5 + length:
            return None
        payload = bytes(buf[5 : 5 + length])
        del buf[: 5 + length]
        return SaslToken(SaslStatus(status), payload)
