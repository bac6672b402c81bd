"""The backend pool: acquire/release, server and backend queues, timeouts, state changes."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from proxy.pool import BackendPool, NoServerAvailable, QueueTimeout
from proxy.server import Server


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def make(
    n: int = 2,
    algorithm: str = "roundrobin",
    *,
    clock: Clock | None = None,
    timeout_queue: float | None = None,
    redispatch: bool = False,
    **kw: object,
) -> tuple[BackendPool, list[Server], Clock]:
    clock = clock or Clock()
    ss = [
        Server(name, clock=rt(clock), puid=i + 1, **kw)  # type: ignore[arg-type]
        for i, name in enumerate("abcdef"[:n])
    ]
    pool = BackendPool(
        "be",
        ss,
        algorithm,
        redispatch=redispatch,
        timeout_queue=timeout_queue,
        clock=rt(clock),
    )
    return pool, ss, clock


class Client:
    """A connection's view of acquire: what it got, or why it failed."""

    def __init__(self, pool: BackendPool, ip: str = "127.0.0.1") -> None:
        self.server: Server | None = None
        self.failure: Failure | None = None
        self.d: Deferred[Server] = pool.acquire(ip)
        self.d.addCallbacks(self._got, self._failed)

    def _got(self, s: Server) -> Server:
        self.server = s
        return s

    def _failed(self, f: Failure) -> None:
        self.failure = f


def test_acquire_fires_at_once_with_the_slot_taken() -> None:
    """A free server is handed over synchronously, served already counted."""
    pool, ss, _ = make()
    c = Client(pool)
    assert c.server is ss[0] and ss[0].served == 1
    assert pool.counters.cum_sessions == 1 and pool.counters.lbtot == 1
    pool.release(ss[0])
    assert ss[0].served == 0 and pool.sessions == 0


def test_no_usable_server_fails_at_once() -> None:
    """All servers DOWN: NoServerAvailable immediately (HAProxy <NOSRV>), nothing queued."""
    pool, ss, clock = make(timeout_queue=5)
    for s in ss:
        s.set_operational("down")
    assert pool.status == "DOWN" and pool.counters.chkdown == 1
    c = Client(pool)
    assert c.failure is not None and c.failure.check(NoServerAvailable)
    assert pool.queued == 0 and clock.getDelayedCalls() == []


def test_backend_queue_is_fifo_and_measured_timing_matches() -> None:
    """rr, 2 servers maxconn 1, 5 clients holding 1.5 s: served at 0, .1, 1.5, 1.6, 3.0."""
    pool, ss, clock = make(maxconn=1)
    clients: list[Client] = []
    served_at: dict[int, float] = {}

    def arrive(i: int) -> None:
        c = Client(pool)
        clients.append(c)

        def start(s: Server) -> None:
            served_at[i] = clock.seconds()
            clock.callLater(1.5, pool.release, s)

        c.d.addCallback(start)

    for i in range(5):
        clock.callLater(i / 10, arrive, i)
    for step in range(61):
        clock.advance(step / 10 - clock.seconds())
        if step == 4:
            assert pool.queued == 3 and [s.queued for s in ss] == [0, 0]
    assert pool.counters.max_queue == 3
    assert [round(served_at[i], 1) for i in range(5)] == [0.0, 0.1, 1.5, 1.6, 3.0]
    assert clock.getDelayedCalls() == [] and pool.sessions == 0


def test_new_connections_wait_behind_the_backend_queue() -> None:
    """While the backend queue is not empty roundrobin newcomers queue too (no overtaking)."""
    pool, ss, _ = make(1, maxconn=1)
    Client(pool)
    first = Client(pool)
    second = Client(pool)
    pool.release(ss[0])
    assert first.server is ss[0] and second.server is None and pool.queued == 1
    pool.release(ss[0])
    assert second.server is ss[0]


def test_queue_timeout_fails_with_queue_timeout_and_clears() -> None:
    """A queued client gets QueueTimeout after timeout queue; no timer is left behind."""
    pool, _, clock = make(1, maxconn=1, timeout_queue=2.0)
    Client(pool)
    c = Client(pool)
    clock.advance(2.0)
    assert c.failure is not None and c.failure.check(QueueTimeout)
    assert pool.queued == 0 and clock.getDelayedCalls() == []


def test_served_before_timeout_cancels_the_timer() -> None:
    """A client dequeued in time has its queue timer cancelled; its wait is sampled once,
    by the session when it ends (test_connect), never by the pool at dequeue."""
    pool, ss, clock = make(1, maxconn=1, timeout_queue=5.0)
    Client(pool)
    c = Client(pool)
    clock.advance(1.25)
    pool.release(ss[0])
    assert c.server is ss[0] and clock.getDelayedCalls() == []
    assert pool.counters.qtime.count == 0 and ss[0].counters.qtime.count == 0


def test_cancel_while_queued_removes_the_entry() -> None:
    """d.cancel() (client gone) takes it out of the queue; the slot goes to the next one."""
    pool, ss, clock = make(1, maxconn=1, timeout_queue=5.0)
    Client(pool)
    gone = Client(pool)
    nxt = Client(pool)
    gone.d.cancel()
    assert gone.failure is not None and gone.failure.check(CancelledError)
    assert pool.queued == 1
    pool.release(ss[0])
    assert nxt.server is ss[0] and pool.queued == 0
    assert clock.getDelayedCalls() == []


def test_server_down_with_redispatch_requeues_its_queue() -> None:
    """With redispatch a DOWN server's queued clients go elsewhere (here: a free server)."""
    pool, ss, clock = make(2, "source", maxconn=1, redispatch=True, timeout_queue=9)
    c = ss[1]  # 127.0.0.1 hashes to b over 2 servers
    Client(pool)
    waiting = Client(pool)
    assert c.queued == 1
    c.set_operational("down")
    assert pool.requeued(c) == 1
    assert waiting.server is ss[0] and c.queued == 0
    assert clock.getDelayedCalls() == []


def test_server_down_without_redispatch_keeps_its_queue_until_it_returns() -> None:
    """Without redispatch the queue waits for the server to come back (or times out)."""
    pool, ss, clock = make(2, "source", maxconn=1, timeout_queue=9)
    b = ss[1]
    Client(pool)
    waiting = Client(pool)
    b.set_operational("down")
    assert b.queued == 1 and pool.requeued(b) == 0 and waiting.server is None
    pool.release(b)  # the established session ends while DOWN: nobody is sent there
    assert waiting.server is None
    b.set_operational("up")
    assert waiting.server is b
    assert clock.getDelayedCalls() == []


def test_requeued_clients_wait_on_the_new_hashed_server_when_it_is_full() -> None:
    """Redispatched from a server put in maint, a source client re-hashes and waits on its new
    server, as measured on HAProxy 2.6.12 (qcur moved from b to a)."""
    pool, ss, clock = make(2, "source", maxconn=1, redispatch=True, timeout_queue=9)
    Client(pool, "127.0.0.2")  # -> a
    Client(pool, "127.0.0.1")  # -> b
    w = Client(pool, "127.0.0.1")  # queued on b
    ss[1].set_operational("down")
    assert ss[0].queued == 1 and ss[1].queued == 0 and w.server is None
    pool.release(ss[0])
    assert w.server is ss[0]
    assert clock.getDelayedCalls() == []


def test_requeued_clients_go_to_the_backend_queue_when_no_server_is_left() -> None:
    """If the DOWN server was the last one, its queue waits in the backend queue."""
    pool, ss, clock = make(1, "source", maxconn=1, redispatch=True, timeout_queue=9)
    Client(pool)
    w = Client(pool)
    ss[0].set_operational("down")
    assert pool.queued == 1 and ss[0].queued == 0 and w.server is None
    clock.advance(9)
    assert w.failure is not None and w.failure.check(QueueTimeout)


def test_server_coming_up_takes_from_the_backend_queue() -> None:
    """A server coming UP grabs backend-queue entries up to its maxconn."""
    pool, ss, _ = make(2, maxconn=1)
    ss[1].set_admin("maint")
    Client(pool)
    waiting = [Client(pool) for _ in range(3)]
    assert pool.queued == 3
    ss[1].set_admin("ready")
    assert waiting[0].server is ss[1] and pool.queued == 2


def test_maxconn_raised_at_runtime_starts_queued_clients() -> None:
    """set maxconn higher: the queue drains into the new slots."""
    pool, ss, _ = make(1, maxconn=1)
    Client(pool)
    waiting = [Client(pool) for _ in range(2)]
    ss[0].set_maxconn(3)
    assert all(c.server is ss[0] for c in waiting) and ss[0].served == 3


def test_backup_serves_queue_only_when_no_active() -> None:
    """Backend-queue entries go to the backup once the actives are gone."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=1, maxconn=1),
        Server("bk", clock=rt(clock), puid=2, backup=True, maxconn=1),
    ]
    pool = BackendPool("be", ss, "roundrobin", timeout_queue=None, clock=rt(clock))
    Client(pool)
    w = Client(pool)
    assert pool.queued == 1 and ss[1].served == 0
    ss[0].set_operational("down")
    assert w.server is ss[1]


def test_backend_status_and_counts() -> None:
    """Backend is UP while one server is usable; act/bck/weight count usable ones."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=1, weight=2),
        Server("b", clock=rt(clock), puid=2),
        Server("bk", clock=rt(clock), puid=3, backup=True, weight=5),
    ]
    pool = BackendPool("be", ss, "leastconn", timeout_queue=None, clock=rt(clock))
    assert (pool.status, pool.active_usable, pool.backup_usable, pool.weight) == ("UP", 2, 1, 3)
    ss[1].set_admin("drain")
    assert (pool.active_usable, pool.weight, pool.uweight) == (1, 2, 2)
    ss[0].set_operational("down")
    assert pool.status == "UP" and pool.weight == 5
    ss[2].set_admin("maint")
    assert pool.status == "DOWN"
    clock.advance(4)
    assert pool.downtime() == 4
    ss[2].set_admin("ready")
    assert pool.status == "UP" and pool.downtime() == 4


def test_add_and_remove_server_keep_state_of_others() -> None:
    """Reload: add/remove servers; kept servers keep counters; queued clients move on."""
    pool, ss, clock = make(2, maxconn=1, timeout_queue=9)
    Client(pool)
    Client(pool)
    assert ss[0].counters.cum_sessions == 1
    new = Server("c", clock=rt(clock), puid=3, maxconn=1)
    w = Client(pool)
    assert pool.queued == 1
    pool.add_server(new)
    assert w.server is new and pool.server("c") is new
    removed = pool.remove_server("a")
    assert removed is ss[0] and pool.server("a") is None
    pool.release(removed)  # its connection ends after the reload: no error
    assert ss[1].counters.cum_sessions == 1 and [s.name for s in pool.servers] == ["b", "c"]
    with pytest.raises(ValueError):
        pool.add_server(Server("b", clock=rt(clock)))
    with pytest.raises(KeyError):
        pool.remove_server("zz")
    assert clock.getDelayedCalls() == []


def test_close_fails_queued_clients_and_leaves_no_timers() -> None:
    """close() errbacks every waiting client and cancels every timer."""
    pool, ss, clock = make(1, maxconn=1, timeout_queue=9, slowstart=10)
    ss[0].set_operational("down")
    ss[0].set_operational("up")  # slowstart timer running
    Client(pool)
    w = Client(pool)
    pool.close()
    assert w.failure is not None and w.failure.check(NoServerAvailable)
    assert clock.getDelayedCalls() == []


def test_bad_arguments_are_refused() -> None:
    """Unknown algorithms, duplicate names and negative timeouts raise clearly."""
    clock = Clock()
    with pytest.raises(ValueError, match="unknown balance"):
        BackendPool("be", [], "random-ish", timeout_queue=None, clock=rt(clock))
    dup = [Server("a", clock=rt(clock)), Server("a", clock=rt(clock))]
    with pytest.raises(ValueError, match="duplicate"):
        BackendPool("be", dup, "roundrobin", timeout_queue=None, clock=rt(clock))
    with pytest.raises(ValueError, match="timeout"):
        BackendPool("be", [], "roundrobin", timeout_queue=-1, clock=rt(clock))


def test_redispatch_acquire_avoids_the_failed_server() -> None:
    """acquire(avoid=s) picks another server and does not count a new backend session."""
    pool, ss, _ = make(2)
    c = Client(pool)
    assert c.server is ss[0]
    pool.release(ss[0])
    got: list[Server] = []
    pool.acquire("127.0.0.1", avoid=ss[0]).addCallback(got.append)
    pool.acquire("127.0.0.1", avoid=ss[0]).addCallback(got.append)
    assert got == [ss[1], ss[1]]
    assert pool.counters.cum_sessions == 1 and pool.counters.lbtot == 3


def test_slowstart_steps_let_queued_clients_in() -> None:
    """During slowstart maxconn grows each step and the queue drains as it does."""
    pool, ss, clock = make(1, maxconn=10, slowstart=10)
    s = ss[0]
    s.set_operational("down")
    s.set_operational("up")
    assert s.dynamic_maxconn == 1
    clients = [Client(pool) for _ in range(5)]
    assert s.served == 1 and pool.queued == 4
    clock.advance(3)
    assert s.served == 3 and sum(c.server is s for c in clients) == 3
    clock.advance(10)
    assert s.served == 5 and clock.getDelayedCalls() == []


def test_session_totals_follow_assignments_queues_and_releases() -> None:
    """served / queued_total / sessions track every move, and smax keeps the peak."""
    pool, ss, _ = make(2, "leastconn", maxconn=1, maxqueue=1)
    clients = [Client(pool) for _ in range(5)]
    assert (pool.served, pool.queued_total, pool.queued, pool.sessions) == (2, 3, 1, 5)
    clients[2].d.cancel()
    assert pool.sessions == 4
    for s in ss:
        pool.release(s)
    assert (pool.served, pool.queued_total) == (2, 0)
    for s in ss:
        pool.release(s)
    assert pool.sessions == 0 and pool.counters.max_sessions == 5
