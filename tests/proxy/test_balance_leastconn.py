"""balance leastconn (FWLC): key formula, FIFO ties, maxconn + maxqueue eligibility."""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.balance.leastconn import lc_key
from proxy.pool import BackendPool
from proxy.server import Server


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def pool_of(weights: tuple[int, ...], names: str = "abcdef", **kw: object) -> BackendPool:
    clock = Clock()
    ss = [
        Server(n, clock=rt(clock), puid=i + 1, weight=w, **kw)  # type: ignore[arg-type]
        for i, (n, w) in enumerate(zip(names, weights, strict=False))
    ]
    return BackendPool("lc", ss, "leastconn", timeout_queue=None, clock=rt(clock))


def hold(pool: BackendPool, n: int) -> list[Server]:
    """Open ``n`` connections and keep them open; return the servers in order."""
    got: list[Server] = []
    for _ in range(n):
        pool.acquire("127.0.0.1").addCallback(got.append)
    return got


def seq(got: list[Server]) -> str:
    return " ".join(s.name for s in got)


def test_key_formula() -> None:
    """Idle servers have key 0; otherwise (n+1)*4096 // (16*w)."""
    assert lc_key(0, 16) == 0 and lc_key(0, 4096) == 0
    assert lc_key(1, 16) == 512 and lc_key(1, 48) == 170 and lc_key(4, 48) == 426


def test_equal_weights_rotate_in_config_order() -> None:
    """1:1:1 with connections held open gives `a b c a b c a`."""
    assert seq(hold(pool_of((1, 1, 1)), 7)) == "a b c a b c a"


def test_weights_show_under_load() -> None:
    """3:1:1 with connections held open gives `a b c a a a a b c a a a`."""
    assert seq(hold(pool_of((3, 1, 1)), 12)) == "a b c a a a a b c a a a"


def test_ties_are_fifo() -> None:
    """2:1 with b first in the tree gives `b a a a b a a b a` (spec 1.6)."""
    assert seq(hold(pool_of((1, 2), names="ba"), 9)) == "b a a a b a a b a"


def test_two_to_one_in_config_order_matches_haproxy() -> None:
    """Measured on HAProxy 2.6.12, a:2 then b:1, held open: `a b a a b a a b a`."""
    assert seq(hold(pool_of((2, 1)), 9)) == "a b a a b a a b a"


def test_released_connections_make_a_server_least_loaded_again() -> None:
    """After a release the emptier server wins the next pick."""
    pool = pool_of((1, 1))
    a, b, a2 = hold(pool, 3)
    pool.release(b)
    assert seq(hold(pool, 1)) == "b"
    pool.release(a)
    pool.release(a2)
    assert seq(hold(pool, 1)) == "a"


def test_full_servers_are_not_eligible_and_all_full_queues_in_backend() -> None:
    """Without maxqueue a server at maxconn is skipped; all full -> backend queue."""
    pool = pool_of((1, 1), maxconn=1)
    assert seq(hold(pool, 2)) == "a b"
    d = pool.acquire("127.0.0.1")
    assert not d.called and pool.queued == 1
    got: list[Server] = []
    d.addCallback(got.append)
    pool.release(pool.servers[1])
    assert seq(got) == "b" and pool.queued == 0


def test_maxqueue_lets_leastconn_queue_on_a_full_server() -> None:
    """n < maxconn + maxqueue keeps a full server eligible: the client waits in its queue."""
    pool = pool_of((1,), maxconn=1, maxqueue=2)
    a = pool.servers[0]
    hold(pool, 1)
    waiting: list[Deferred[Server]] = [pool.acquire("127.0.0.1") for _ in range(2)]
    assert a.queued == 2 and pool.queued == 0
    third = pool.acquire("127.0.0.1")
    assert pool.queued == 1  # n == maxconn + maxqueue: no longer eligible
    got: list[Server] = []
    waiting[0].addCallback(got.append)
    pool.release(a)
    assert got == [a] and a.queued == 1
    for d in (waiting[1], third):
        d.addErrback(lambda f: None)
        d.cancel()
    assert a.queued == 0 and pool.queued == 0


def test_backup_takes_over_and_idle_active_wins_back() -> None:
    """With actives down leastconn serves the first backup; a returning active is used."""
    clock = Clock()
    ss = [Server("a", clock=rt(clock), puid=1), Server("bk", clock=rt(clock), puid=2, backup=True)]
    pool = BackendPool("lc", ss, "leastconn", timeout_queue=None, clock=rt(clock))
    ss[0].set_operational("down")
    assert seq(hold(pool, 2)) == "bk bk"
    ss[0].set_operational("up")
    assert seq(hold(pool, 2)) == "a a"


def test_weight_change_repositions_at_once() -> None:
    """A weight change re-keys the server immediately (dynamic algorithm)."""
    pool = pool_of((1, 1))
    hold(pool, 4)  # a b a b: both at n=2
    pool.servers[1].set_weight(4)
    assert seq(hold(pool, 3)) == "b b b"


def test_sequential_connections_with_maint_match_haproxy() -> None:
    """Measured on HAProxy 2.6.12: idle servers rotate; b to maint and back rejoins in turn."""
    pool = pool_of((1, 1, 1))
    b = pool.servers[1]

    def run(n: int) -> str:
        got: list[str] = []

        def use(s: Server) -> None:
            got.append(s.name)
            pool.release(s)

        for _ in range(n):
            pool.acquire("127.0.0.1").addCallback(use)
        return " ".join(got)

    assert run(5) == "a b c a b"
    b.set_admin("maint")
    assert run(4) == "c a c a"
    b.set_admin("ready")
    assert run(7) == "c a b c a b c"
