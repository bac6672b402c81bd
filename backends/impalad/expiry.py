"""Idle sessions and idle queries expire, as in Impala's ``impala-server.cc``.

- A session expires after ``--idle_session_timeout`` seconds without a client call,
  or after the ``IDLE_SESSION_TIMEOUT`` query option given when it was opened (which
  overrides the flag; 0: never). Its running queries are cancelled ("Session
  expired due to inactivity"); the session stays known, and any later call on it is
  answered "Client session expired due to more than 5s of inactivity (last activity
  was at: ...)". ``impala-server.num-sessions-expired`` counts them.
- A query expires after its idle timeout without a client call on it: the smaller
  of ``--idle_query_timeout`` and the query's ``QUERY_TIMEOUT_S`` when both are set,
  else whichever is (Impala's ``GetIdleTimeout``). It is cancelled and every later
  call on it is answered "Query <id> expired due to client inactivity (timeout is
  5s000ms)". ``impala-server.num-queries-expired`` counts them.
- A session or query in use is not expired: a statement still being planned or
  executed (``ExecuteStatement`` not answered), or a fetch in progress (Impala keeps
  the same rule with its reference counts).

Checked once a second, the period of Impala's maintenance threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from twisted.internet import task

SESSION_EXPIRED = "Session expired due to inactivity"
CHECK_INTERVAL_S = 1.0


def idle_query_timeout(flag_s: int, option_s: int) -> int:
    """Impala's GetIdleTimeout: both set, the smaller; else the one that is set."""
    if flag_s > 0 and option_s > 0:
        return min(flag_s, option_s)
    return max(flag_s, option_s)


def pretty_seconds(seconds: int) -> str:
    """Impala's PrettyPrinter for TIME_S: ``5s000ms``, ``1m30s``, ``1h2m``."""
    value = seconds * 1000
    if value == 0:
        return "0"
    out = ""
    hour = minute = second = False
    if value >= 3_600_000:
        out += f"{value // 3_600_000}h"
        value %= 3_600_000
        hour = True
    if value >= 60_000:
        out += f"{value // 60_000}m"
        value %= 60_000
        minute = True
    if not hour and value >= 1000:
        out += f"{value // 1000}s"
        value %= 1000
        second = True
    if not hour and not minute:
        out += f"{value:03d}ms" if second else f"{value}ms"
    return out


def unix_time_text(seconds: float) -> str:
    """Impala's ToStringFromUnixMillis: ``2026-12-02 13:55:01.123000000`` (local time)."""
    millis = int(seconds * 1000)
    base = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis // 1000))
    return f"{base}.{millis % 1000:03d}000000"


def session_expired_message(timeout_s: int, last_access: float) -> str:
    return (
        f"Client session expired due to more than {timeout_s}s of inactivity "
        f"(last activity was at: {unix_time_text(last_access)})."
    )


def query_expired_message(query_id: str, timeout_s: int) -> str:
    timeout = pretty_seconds(timeout_s)
    return f"Query {query_id} expired due to client inactivity (timeout is {timeout})"


class Expirable(Protocol):
    """What the check reads of a session or a query: when the client last used it
    (clock seconds) and its timeout (0: never)."""

    last_access: float
    idle_timeout: int


class Server(Protocol):
    """The server's side: the sessions and queries that may expire (open, not in use),
    and what expiring one does."""

    def live_sessions(self) -> Iterable[Any]: ...

    def live_queries(self) -> Iterable[Any]: ...

    def expire_session(self, session: Any) -> None: ...

    def expire_query(self, op: Any, message: str) -> None: ...


def due(item: Expirable, now: float) -> bool:
    """Whether ``item`` has been idle for longer than its timeout."""
    return item.idle_timeout > 0 and now - item.last_access > item.idle_timeout


class Expiry:
    """The once-a-second check of one impalad's sessions and queries."""

    def __init__(self, server: Server, clock: Any) -> None:
        self.server = server
        self.clock = clock
        self._loop: task.LoopingCall | None = None

    def start(self) -> None:
        if self._loop is None:
            self._loop = task.LoopingCall(self.check)
            self._loop.clock = self.clock
            self._loop.start(CHECK_INTERVAL_S, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def check(self) -> None:
        now = self.clock.seconds()
        for session in list(self.server.live_sessions()):
            if due(session, now):
                self.server.expire_session(session)
        for op in list(self.server.live_queries()):
            if due(op, now):
                self.server.expire_query(op, query_expired_message(op.id, op.idle_timeout))
