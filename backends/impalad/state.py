"""The impalad's records: a client session, an operation (a query and its result
buffer), the daemon's identity, a statement with fixed rows, and the HS2 handles and
statuses they are named by."""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from backends.impalad.engine_api import (
    SessionLike,
    StatementLike,
)
from backends.impalad.gen.TCLIService import ttypes as t


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


def _safe_summary(statement: StatementLike) -> dict[str, object]:
    try:
        return dict(statement.summary or {})
    except Exception:
        return {}


def _in_use(op: Operation) -> bool:
    """A statement still being executed, or a fetch in progress: not idle."""
    return op.executing or op.lock.locked


def _seconds(text: object, default: int) -> int:
    """A timeout query option's value in seconds (``default`` when unset or not a number)."""
    try:
        return int(str(text).strip()) if text is not None and str(text).strip() else default
    except ValueError:
        return default
