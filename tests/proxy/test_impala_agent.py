"""The Impala agent in memory: reading a coordinator's pages (real Impala's shapes and
ours), polling with bad answers, and the agent-check protocol with operator drains."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from proxy.impala import AgentFactory, Coordinator, CoordinatorState, State, Watch, read_state
from proxy.impala._state import UnreadableState

#: the fields of real Impala's /?json (default-path-handlers.cc) a balancer reads
IMPALA_ROOT = {
    "version": "impalad version 4.4.0-RELEASE RELEASE (build abc)",
    "process_start_time": "2026-12-01 10:00:00.000",
    "is_coordinator": True,
    "is_executor": True,
    "is_quiescing": False,
}
IMPALA_METRICS = {
    "impala-server.ready": True,
    "impala-server.num-queries-registered": 3,
    "impala-server.num-open-hiveserver2-sessions": 5,
}


def _b(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_real_impala_shapes_read_as_ready_quiescing_not_ready() -> None:
    """A ready coordinator, one quiescing (with its shutdown status), one not ready yet
    and an executor-only daemon, from the JSON shapes real Impala serves."""
    assert read_state(_b(IMPALA_ROOT), _b(IMPALA_METRICS)).state is State.READY
    quiescing = {**IMPALA_ROOT, "is_quiescing": True, "shutdown_status": "grace left: 1m"}
    got = read_state(_b(quiescing), _b(IMPALA_METRICS))
    assert got == CoordinatorState(State.QUIESCING, "grace left: 1m", "2026-12-01 10:00:00.000")
    starting = {**IMPALA_METRICS, "impala-server.ready": False}
    assert read_state(_b(IMPALA_ROOT), _b(starting)).state is State.NOT_READY
    executor = {**IMPALA_ROOT, "is_coordinator": False}
    assert read_state(_b(executor), _b(IMPALA_METRICS)).detail == "not a coordinator"


@pytest.mark.parametrize(
    ("root", "metrics"),
    [
        (b"<html>Impala</html>", _b(IMPALA_METRICS)),
        (b"\xff\xfe garbage", _b(IMPALA_METRICS)),
        (_b([1, 2]), _b(IMPALA_METRICS)),
        (_b({"is_coordinator": True}), _b(IMPALA_METRICS)),  # no is_quiescing
        (_b(IMPALA_ROOT), _b({})),  # no impala-server.ready
        (_b({**IMPALA_ROOT, "is_quiescing": "yes"}), _b(IMPALA_METRICS)),
    ],
)
def test_pages_impala_would_not_serve_are_unreadable(root: bytes, metrics: bytes) -> None:
    """HTML, garbage, a non-object, a missing or mistyped field: UnreadableState."""
    with pytest.raises(UnreadableState):
        read_state(root, metrics)


class Pages:
    """What each URL answers now: bytes, an exception, or a Deferred that never fires."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}

    def fetch(self, url: str) -> defer.Deferred[bytes]:
        answer = self.answers.get(url, ConnectionRefusedError())
        if isinstance(answer, defer.Deferred):
            return answer
        if isinstance(answer, Exception):
            return defer.fail(Failure(answer))
        return defer.succeed(answer)


def test_bad_answers_keep_the_last_state_with_one_line_per_change(events: list[Any]) -> None:
    """A 500, HTML, a hang or a refused connection keeps the state last read; the watch
    logs one line when reading starts failing and one when it reads again."""
    pages = Pages()
    url = "http://c1:25000"
    pages.answers = {url + "/?json": _b(IMPALA_ROOT), url + "/jsonmetrics?json": _b(IMPALA_METRICS)}
    clock = Clock()
    watch = Watch(clock, [Coordinator("c1", url)], interval=1.0, fetch=pages.fetch)
    watch.start()
    assert watch.state("c1") is not None and watch.state("c1").state is State.READY  # type: ignore[union-attr]
    for bad in (UnreadableState("HTTP 500"), b"<html/>", ConnectionRefusedError()):
        pages.answers[url + "/?json"] = bad
        clock.advance(1.0)
        assert watch.state("c1").state is State.READY  # type: ignore[union-attr]
    pages.answers[url + "/?json"] = defer.Deferred()  # hangs
    clock.advance(1.0)
    clock.advance(1.0)  # still busy: not polled twice at once
    warnings = [e for e in events if "cannot read its state" in e.get("log_format", "")]
    assert len(warnings) == 1
    pages.answers[url + "/?json"] = _b({**IMPALA_ROOT, "is_quiescing": True})
    watch._busy.clear()
    clock.advance(1.0)
    assert watch.state("c1").state is State.QUIESCING  # type: ignore[union-attr]
    assert sum("readable again" in e.get("log_format", "") for e in events) == 1
    watch.stop()


def _ask(factory: AgentFactory, line: bytes, peer: str = "127.0.0.1") -> bytes:
    from twisted.internet.address import IPv4Address

    proto: Any = factory.buildProtocol(None)
    tx = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
    proto.makeConnection(tx)
    proto.dataReceived(line)
    assert tx.disconnecting
    return bytes(tx.value())


def test_agent_answers_haproxy_words_and_nothing_when_it_knows_nothing() -> None:
    """ready -> 'ready up', quiescing -> 'drain', not ready -> 'ready down', each with
    why after '#' (the balancer's agent description); an unknown name or a coordinator
    never read gets no answer (the balancer changes nothing)."""
    states: dict[str, CoordinatorState] = {
        "a": CoordinatorState(State.READY),
        "b": CoordinatorState(State.QUIESCING),
        "c": CoordinatorState(State.NOT_READY),
    }
    factory = AgentFactory(states.get, Clock(), lambda: [*states, "d"])
    assert _ask(factory, b"a\n") == b"ready up\n"
    assert _ask(factory, b"b\n") == b"drain up #quiescing\n"
    assert _ask(factory, b"c\n") == b"ready down #not ready\n"
    assert _ask(factory, b"d\n") == b""
    assert _ask(factory, b"zz\n") == b""


def test_operator_drain_lasts_until_a_new_process_is_ready() -> None:
    """'drain NAME' answers drain while the same process runs, quiescing or gone; the
    drain ends by itself when a restarted process (another start time) is ready, or
    with 'ready NAME'. Commands come from loopback only."""
    states = {"a": CoordinatorState(State.READY, started="t1")}
    factory = AgentFactory(states.get, Clock(), lambda: states)
    assert _ask(factory, b"drain a\n", peer="10.0.0.5") == b""
    assert _ask(factory, b"a\n") == b"ready up\n"
    assert _ask(factory, b"drain a\n") == b"ok\n"
    assert _ask(factory, b"drain nobody\n") == b"unknown\n"
    drained = b"drain up #drained by the operator\n"
    assert _ask(factory, b"a\n") == drained
    states["a"] = CoordinatorState(State.QUIESCING, started="t1")
    assert _ask(factory, b"a\n") == drained
    states["a"] = CoordinatorState(State.NOT_READY, started="t2")
    assert _ask(factory, b"a\n") == drained
    states["a"] = CoordinatorState(State.READY, started="t2")
    assert _ask(factory, b"a\n") == b"ready up\n"
    assert _ask(factory, b"drain a\n") == b"ok\n"
    assert _ask(factory, b"ready a\n") == b"ok\n"
    assert _ask(factory, b"a\n") == b"ready up\n"


def test_agent_closes_a_silent_balancer_after_the_name_timeout() -> None:
    """A connection that never sends a name is closed after NAME_TIMEOUT, no timer left."""
    from proxy.impala._agent import NAME_TIMEOUT

    clock = Clock()
    factory = AgentFactory(lambda _: None, clock)
    proto: Any = factory.buildProtocol(None)
    tx = StringTransport()
    proto.makeConnection(tx)
    clock.advance(NAME_TIMEOUT)
    assert tx.disconnecting and clock.getDelayedCalls() == []


def test_weights_follow_registered_queries_not_connections() -> None:
    """Asked 'NAME weight', a ready coordinator answers 'ready up N%' with N = 100 idle
    and 100/(1+queries) loaded (at least 1); quiescing answers are unchanged, and a bare
    name gets no weight."""
    from proxy.impala._state import load_weight

    assert [load_weight(CoordinatorState(State.READY, load=q)) for q in (0, 1, 3, 500)] == [
        100,
        50,
        25,
        1,
    ]
    metrics = {**IMPALA_METRICS, "impala-server.num-queries-registered": 4}
    state = read_state(_b(IMPALA_ROOT), _b(metrics))
    assert state.load == 4
    states = {"a": state, "b": CoordinatorState(State.QUIESCING)}
    factory = AgentFactory(states.get, Clock(), lambda: states)
    assert _ask(factory, b"a weight\n") == b"ready up 20%\n"
    assert _ask(factory, b"a\n") == b"ready up\n"
    assert _ask(factory, b"b weight\n") == b"drain up #quiescing\n"


def test_the_reason_carries_impalas_shutdown_status() -> None:
    """A quiescing coordinator's answer names its shutdown status (grace and deadline
    left), on one line however Impala worded it."""
    state = CoordinatorState(State.QUIESCING, "shutdown grace period left: 1s,\ndeadline: 1h")
    assert state.reply == b"drain up #quiescing: shutdown grace period left: 1s, deadline: 1h\n"
