"""Idle sessions and queries expire as Impala's do (backends/impalad/expiry.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from impala.dbapi import connect
from twisted.internet import task

from backends.impalad import expiry
from backends.impalad.gen.TCLIService import ttypes as t
from tests.impalad.test_protocol import OK, Harness
from tests.support.impalad import Impalad
from tests.support.procs import wait_for

ERROR = t.TStatusCode.ERROR_STATUS


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0"), (5, "5s000ms"), (59, "59s000ms"), (60, "1m"), (90, "1m30s"), (3661, "1h1m")],
)
def test_timeouts_print_as_impalas_pretty_printer(seconds: int, text: str) -> None:
    assert expiry.pretty_seconds(seconds) == text


def test_the_idle_query_timeout_is_impalas_rule() -> None:
    """Both set: the smaller; one set: that one; neither: never."""
    assert expiry.idle_query_timeout(10, 3) == 3
    assert expiry.idle_query_timeout(2, 30) == 2
    assert expiry.idle_query_timeout(0, 7) == 7
    assert expiry.idle_query_timeout(4, 0) == 4
    assert expiry.idle_query_timeout(0, 0) == 0


def _tick(h: Harness, seconds: int) -> None:
    for _ in range(seconds):
        h.clock.advance(1)
        h.server.expiry.check()


def test_an_idle_session_expires_and_says_so() -> None:
    """IDLE_SESSION_TIMEOUT given at open: untouched for longer, the session expires; the
    next call is refused with Impala's message, the metric counts it, close still works."""
    h = Harness()
    s = h.open(configuration={"idle_session_timeout": "3"})
    _tick(h, 3)
    assert h.execute(s, "select 1").status.statusCode == OK  # activity resets the clock
    _tick(h, 3)
    assert h.server.metrics()["impala-server.num-sessions-expired"] == 0
    _tick(h, 1)
    assert h.server.metrics()["impala-server.num-sessions-expired"] == 1
    resp = h.execute(s, "select 1")
    assert resp.status.statusCode == ERROR
    assert resp.status.errorMessage.startswith(
        "Client session expired due to more than 3s of inactivity (last activity was at: "
    )
    closed = h.rpc("CloseSession", t.TCloseSessionReq(sessionHandle=s))
    assert closed.status.statusCode == OK


def test_the_flag_applies_without_the_option_and_the_option_overrides_it() -> None:
    """--idle_session_timeout for every session; the option at open wins over it."""
    h = Harness()
    h.server.idle_session_timeout = 2
    plain = h.open()
    longer = h.open(configuration={"IDLE_SESSION_TIMEOUT": "5"})
    never = h.open(configuration={"IDLE_SESSION_TIMEOUT": "0"})
    _tick(h, 3)
    assert [h.server._session(x, active=False).expired for x in (plain, longer, never)] == [
        True,
        False,
        False,
    ]
    _tick(h, 3)
    assert [h.server._session(x, active=False).expired for x in (plain, longer, never)] == [
        True,
        True,
        False,
    ]


def test_an_idle_query_expires_and_its_session_lives_on() -> None:
    """QUERY_TIMEOUT_S: a query not fetched for longer is cancelled; later calls on it get
    Impala's message; a query fetched in time is not; the session keeps working."""
    h = Harness()
    s = h.open()
    req = t.TExecuteStatementReq(
        sessionHandle=s, statement="select 1 x 50", confOverlay={"QUERY_TIMEOUT_S": "2"}
    )
    idle = h.rpc("ExecuteStatement", req).operationHandle
    busy = h.rpc("ExecuteStatement", req).operationHandle
    for _ in range(4):
        _tick(h, 1)
        assert h.fetch(busy, 1).status.statusCode == OK
    resp = h.fetch(idle, 10)
    qid = h.server.closed_operations[idle.operationId.guid].id
    assert resp.status.statusCode == ERROR
    assert resp.status.errorMessage == (
        f"Query {qid} expired due to client inactivity (timeout is 2s000ms)\n"
    )
    assert h.server.metrics()["impala-server.num-queries-expired"] == 1
    assert h.execute(s, "select 1").status.statusCode == OK
    close = h.rpc("CloseImpalaOperation", _close_req(idle))
    assert close.status.statusCode == OK


def _close_req(handle: Any) -> Any:
    from backends.impalad.gen.ImpalaService import ttypes as imp

    return imp.TCloseImpalaOperationReq(operationHandle=handle)


@dataclasses.dataclass
class _Item:
    id: str
    idle_timeout: int
    last_access: float = 0.0


class _Server:
    def __init__(self, items: list[_Item]) -> None:
        self.items = items
        self.sessions: list[_Item] = []
        self.queries: list[_Item] = []

    def live_sessions(self) -> list[_Item]:
        return [i for i in self.items if i not in self.sessions]

    def live_queries(self) -> list[_Item]:
        return []

    def expire_session(self, item: _Item) -> None:
        self.sessions.append(item)

    def expire_query(self, item: _Item, message: str) -> None:
        self.queries.append(item)


@settings(max_examples=200, deadline=None)
@given(
    timeout=st.integers(0, 4),
    schedule=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=25),
)
def test_expiry_over_generated_schedules_matches_the_oracle(
    timeout: int, schedule: list[tuple[int, bool]]
) -> None:
    """Over any schedule of clock steps and client calls, an item expires exactly when
    some stretch without a call lasted longer than its timeout (checked every second),
    and never when the timeout is 0."""
    clock = task.Clock()
    item = _Item("s", timeout)
    server = _Server([item])
    check = expiry.Expiry(server, clock)
    oracle = False
    for step, touch in schedule:
        for _ in range(step):
            clock.advance(1)
            check.check()
            if timeout and not oracle and clock.seconds() - item.last_access > timeout:
                oracle = True
        if touch and not oracle:
            item.last_access = clock.seconds()
        assert (item in server.sessions) == oracle
    assert server.sessions.count(item) <= 1


def test_impalad_expires_an_idle_session_for_a_real_client(tmp_path: Any) -> None:
    """impalad --idle_session_timeout=1: an impyla session left alone expires (the
    metric says so on /jsonmetrics) and its next query fails with Impala's message."""
    d = Impalad.start(tmp_path, flags=["--idle_session_timeout=1", "--idle_query_timeout=30"])
    try:
        conn = connect(host=d.host, port=d.hs2_port, timeout=30)
        cur = conn.cursor()
        cur.execute("select 1")
        cur.fetchall()

        def expired() -> bool:
            status, body = d.get("/jsonmetrics?json")
            return status == 200 and b'"impala-server.num-sessions-expired": 1' in body

        wait_for("the session to expire", expired, timeout=20)
        with pytest.raises(Exception, match="Client session expired due to more than 1s"):
            cur.execute("select 1")
        conn.close()
    finally:
        d.stop()
