"""Build Thrift CALL messages and decode replies with the generated code, for unit tests."""

from __future__ import annotations

from typing import Any

from thrift.protocol.TBinaryProtocol import TBinaryProtocol
from thrift.Thrift import TApplicationException, TMessageType
from thrift.transport.TTransport import TMemoryBuffer

from backends.impalad.gen.ImpalaService import ImpalaHiveServer2Service as svc
from backends.impalad.gen.TCLIService import TCLIService as cli


def call(name: str, req: Any, seqid: int = 1) -> bytes:
    """A complete strict-binary CALL message for RPC ``name`` with request struct ``req``."""
    mod = svc if hasattr(svc, f"{name}_args") else cli
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.writeMessageBegin(name, TMessageType.CALL, seqid)
    args = getattr(mod, f"{name}_args")(req=req)
    args.write(proto)
    proto.writeMessageEnd()
    data: bytes = buf.getvalue()
    return data


def reply(name: str, data: bytes) -> Any:
    """Decode a REPLY to ``name``; raises the TApplicationException of an EXCEPTION reply."""
    proto = TBinaryProtocol(TMemoryBuffer(data))
    rname, mtype, _ = proto.readMessageBegin()
    if mtype == TMessageType.EXCEPTION:
        exc = TApplicationException()
        exc.read(proto)
        raise exc
    assert rname == name
    mod = svc if hasattr(svc, f"{name}_result") else cli
    result = getattr(mod, f"{name}_result")()
    result.read(proto)
    return result.success
