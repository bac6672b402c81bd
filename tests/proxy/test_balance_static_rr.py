"""balance static-rr: the weight map, measured sequences, rebuilds on state changes."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.balance import build
from proxy.balance._map import build_map, weight_gcd
from proxy.pool import BackendPool
from proxy.server import Server


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def servers(weights: tuple[int, ...], **kw: object) -> list[Server]:
    clock = Clock()
    return [
        Server(n, clock=rt(clock), puid=i + 1, weight=w, **kw)  # type: ignore[arg-type]
        for i, (n, w) in enumerate(zip("abcdefgh", weights, strict=False))
    ]


def names(seq: list[Server]) -> str:
    return " ".join(s.name for s in seq)


@pytest.mark.parametrize(
    ("weights", "cycle"),
    [
        ((3, 2, 1), "a a b a b c"),
        ((2, 1), "a a b"),
        ((100, 50, 25), "a a b a b a c"),
        ((1, 1, 1), "a b c"),
    ],
)
def test_measured_sequences(weights: tuple[int, ...], cycle: str) -> None:
    """static-rr repeats HAProxy's measured map order (spec 1.6)."""
    algo = build("static-rr", servers(weights))
    n = len(cycle.split())
    got = " ".join(algo.pick("x").name for _ in range(2 * n))  # type: ignore[union-attr]
    assert got == f"{cycle} {cycle}"


def test_map_divides_weights_by_their_gcd() -> None:
    """100:50:25 builds the same 7-slot map as 4:2:1."""
    ss = servers((100, 50, 25))
    assert weight_gcd(ss) == 25
    assert names(build_map(ss, 25)) == "a a b a b a c"


def test_server_going_down_rebuilds_and_returning_is_used_at_once() -> None:
    """DOWN removes a server from the map; back UP it is in the very next cycle."""
    ss = servers((1, 1, 1))
    pool = BackendPool("s", ss, "static-rr", timeout_queue=None, clock=rt(Clock()))
    algo = pool.balancer
    ss[0].set_operational("down")
    assert {algo.pick("x").name for _ in range(4)} == {"b", "c"}  # type: ignore[union-attr]
    ss[0].set_operational("up")
    assert "a" in [algo.pick("x").name for _ in range(3)]  # type: ignore[union-attr]


def test_saturated_servers_are_skipped_in_map_order() -> None:
    """The index moves past full servers; all full gives None."""
    ss = servers((1, 1), maxconn=1)
    algo = build("static-rr", ss)
    ss[0].take_slot()
    assert [algo.pick("x") for _ in range(2)] == [ss[1], ss[1]]
    ss[1].take_slot()
    assert algo.pick("x") is None


def test_weight_zero_and_drain_leave_the_map() -> None:
    """set weight 0 (the only runtime change static-rr allows besides 100%) empties a slot."""
    ss = servers((1, 1, 1))
    pool = BackendPool("s", ss, "static-rr", timeout_queue=None, clock=rt(Clock()))
    ss[1].set_weight(0)
    ss[2].set_admin("drain")
    assert {pool.balancer.pick("x").name for _ in range(3)} == {"a"}  # type: ignore[union-attr]


def test_backups_first_only_unless_allbackups() -> None:
    """No active usable: the first backup, or all backups by weight with allbackups."""
    clock = Clock()

    def make() -> list[Server]:
        return [
            Server("a", clock=rt(clock), puid=1),
            Server("bk1", clock=rt(clock), puid=2, backup=True),
            Server("bk2", clock=rt(clock), puid=3, backup=True),
        ]

    ss = make()
    pool = BackendPool("s", ss, "static-rr", timeout_queue=None, clock=rt(clock))
    ss[0].set_operational("down")
    assert {pool.balancer.pick("x").name for _ in range(4)} == {"bk1"}  # type: ignore[union-attr]
    ss = make()
    pool = BackendPool("s", ss, "static-rr", allbackups=True, timeout_queue=None, clock=rt(clock))
    ss[0].set_operational("down")
    got = [pool.balancer.pick("x").name for _ in range(4)]  # type: ignore[union-attr]
    assert got == ["bk1", "bk2", "bk1", "bk2"]


def test_maint_ready_and_weight_zero_match_haproxy() -> None:
    """Measured on HAProxy 2.6.12: 3:2:1, a to maint and back, then b to weight 0."""
    ss = servers((3, 2, 1))
    pool = BackendPool("l", ss, "static-rr", timeout_queue=None, clock=rt(Clock()))

    def run(n: int) -> str:
        got: list[str] = []

        def use(s: Server) -> None:
            got.append(s.name)
            pool.release(s)

        for _ in range(n):
            pool.acquire("127.0.0.1").addCallback(use)
        return " ".join(got)

    assert run(8) == "a a b a b c a a"
    ss[0].set_admin("maint")
    assert run(4) == "c b b c"
    ss[0].set_admin("ready")
    assert run(12) == "a b c a a b a b c a a b"
    ss[1].set_weight(0)
    assert run(4) == "c a a a"
