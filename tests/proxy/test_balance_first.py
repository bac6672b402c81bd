"""balance first: id order, fill each server to maxconn, then queue."""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from proxy.balance import build
from proxy.pool import BackendPool, QueueTimeout
from proxy.server import Server


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def test_fills_servers_in_order_then_queues_then_times_out() -> None:
    """maxconn 2 x 3: `a a b b c c`; the 7th waits and fails with sQ after timeout queue."""
    clock = Clock()
    ss = [Server(n, clock=rt(clock), puid=i + 1, maxconn=2) for i, n in enumerate("abc")]
    pool = BackendPool("first", ss, "first", timeout_queue=5.0, clock=rt(clock))
    got: list[Server] = []
    for _ in range(6):
        pool.acquire("127.0.0.1").addCallback(got.append)
    assert " ".join(s.name for s in got) == "a a b b c c"
    seventh = pool.acquire("127.0.0.1")
    errors: list[Failure] = []
    seventh.addErrback(errors.append)
    assert pool.queued == 1 and not errors
    clock.advance(4.9)
    assert not errors
    clock.advance(0.1)
    assert len(errors) == 1 and errors[0].check(QueueTimeout)
    assert pool.queued == 0 and pool.counters.queue_timeouts == 1
    assert clock.getDelayedCalls() == []


def test_id_order_not_config_order_and_weight_ignored() -> None:
    """Servers are ordered by numeric id; weights do not matter."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=3, maxconn=1, weight=100),
        Server("b", clock=rt(clock), puid=1, maxconn=1),
        Server("c", clock=rt(clock), puid=2, maxconn=1),
    ]
    algo = build("first", ss)
    order = []
    for _ in range(3):
        s = algo.pick("x")
        assert s is not None
        s.take_slot()
        order.append(s.name)
    assert order == ["b", "c", "a"] and algo.pick("x") is None


def test_server_without_maxconn_absorbs_everything() -> None:
    """A server with no maxconn is never full, so the first one takes all."""
    clock = Clock()
    ss = [Server("a", clock=rt(clock), puid=1), Server("b", clock=rt(clock), puid=2)]
    algo = build("first", ss)
    for _ in range(10):
        s = algo.pick("x")
        assert s is ss[0]
        s.take_slot()


def test_freed_slot_goes_back_to_the_lowest_id() -> None:
    """When the first server has room again new connections return to it."""
    clock = Clock()
    ss = [Server(n, clock=rt(clock), puid=i + 1, maxconn=1) for i, n in enumerate("ab")]
    pool = BackendPool("first", ss, "first", timeout_queue=None, clock=rt(clock))
    got: list[Server] = []
    for _ in range(2):
        pool.acquire("x").addCallback(got.append)
    pool.release(ss[0])
    pool.acquire("x").addCallback(got.append)
    assert [s.name for s in got] == ["a", "b", "a"]


def test_down_first_server_is_skipped() -> None:
    """A DOWN server is out of the order; the next id takes its place."""
    clock = Clock()
    ss = [Server(n, clock=rt(clock), puid=i + 1, maxconn=1) for i, n in enumerate("ab")]
    pool = BackendPool("first", ss, "first", timeout_queue=None, clock=rt(clock))
    ss[0].set_operational("down")
    assert pool.balancer.pick("x") is ss[1]
