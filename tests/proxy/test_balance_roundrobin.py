"""balance roundrobin (FWRR): HAProxy 2.6's measured sequences, dynamic weights, backups."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.balance import REGISTRY, Algorithm, build
from proxy.balance.roundrobin import RoundRobin
from proxy.pool import BackendPool
from proxy.server import Server


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def servers(weights: tuple[int, ...], names: str = "abcdefgh", **kw: object) -> list[Server]:
    clock = Clock()
    return [
        Server(n, clock=rt(clock), puid=i + 1, weight=w, **kw)  # type: ignore[arg-type]
        for i, (n, w) in enumerate(zip(names, weights, strict=False))
    ]


def picks(algo: Algorithm, n: int) -> str:
    got = [algo.pick("127.0.0.1") for _ in range(n)]
    return " ".join(s.name if s else "-" for s in got)


@pytest.mark.parametrize(
    ("weights", "cycle"),
    [
        ((1, 1, 1), "a b c"),
        ((2, 1), "a a b"),
        ((1, 2), "b b a"),
        ((3, 1), "a a a b"),
        ((5, 1), "a a a a a b"),
        ((3, 2, 1), "a b a c a b"),
        ((4, 3, 2, 1), "a b a c b a d a b c"),
        ((100, 50, 25), "a a b a c a b"),
    ],
)
def test_measured_sequences(weights: tuple[int, ...], cycle: str) -> None:
    """Each weight set repeats exactly the sequence HAProxy 2.6 produced (spec 1.6)."""
    rr = build("roundrobin", servers(weights))
    n = len(cycle.split())
    assert picks(rr, 3 * n) == " ".join([cycle] * 3)


def test_registry_builds_fwrr() -> None:
    """The registry maps `roundrobin` to the FWRR class."""
    assert REGISTRY["roundrobin"] is RoundRobin


def test_dynamic_set_weight_applies_at_once() -> None:
    """kill 1 -> 3 next to keep (1) gives `kill keep kill kill kill keep kill kill`."""
    kill, keep = servers((1, 1), names=["kill", "keep"])  # type: ignore[arg-type]
    pool = BackendPool("dyn", [kill, keep], "roundrobin", timeout_queue=None, clock=rt(Clock()))
    for _ in range(4):
        pool.acquire("127.0.0.1").addCallback(pool.release)
    kill.set_weight(3)
    got: list[str] = []

    def use(s: Server) -> None:
        got.append(s.name)
        pool.release(s)

    for _ in range(8):
        pool.acquire("127.0.0.1").addCallback(use)
    assert got == ["kill", "keep", "kill", "kill", "kill", "keep", "kill", "kill"]


def test_weight_proportions_hold_over_many_picks() -> None:
    """Over whole windows every server gets exactly its weight's share."""
    rr = build("roundrobin", servers((7, 3, 2, 1)))
    counts: dict[str, int] = {}
    for _ in range(13 * 50):
        s = rr.pick("x")
        assert s is not None
        counts[s.name] = counts.get(s.name, 0) + 1
    assert counts == {"a": 350, "b": 150, "c": 100, "d": 50}


def run_script(weights: tuple[int, ...], script: list[int | str]) -> list[str]:
    """Run sequential connections (ints) and runtime commands (strings) through a pool."""
    ss = servers(weights)
    pool = BackendPool("l", ss, "roundrobin", timeout_queue=None, clock=rt(Clock()))
    out: list[str] = []
    for step in script:
        if isinstance(step, int):
            seq: list[str] = []

            def use(s: Server, seq: list[str] = seq) -> None:
                seq.append(s.name)
                pool.release(s)

            for _ in range(step):
                pool.acquire("127.0.0.1").addCallback(use)
            out.append(" ".join(seq))
        else:
            srv, what, arg = step.split()
            server = pool.server(srv)
            assert server is not None
            if what == "state":
                server.set_admin(arg)
            else:
                server.set_weight(int(arg))
    return out


# Measured on HAProxy 2.6.12 (sequential connections; commands on the stats socket).
@pytest.mark.parametrize(
    ("weights", "script", "expected"),
    [
        (
            (1, 1, 1),
            [5, "b state maint", 4, "b state ready", 15],
            ["a b c a b", "c a c a", "c a b c a b c a b c a b c a b"],
        ),
        (
            (3, 2, 1),
            [7, "a state maint", 5, "a state ready", 24],
            [
                "a b a c a b a",
                "b b c b b",
                "c a b a b a c a b a b a c a b a b a c a b a b a",
            ],
        ),
        (
            (1, 1, 1),
            [4, "c weight 4", 14, "a weight 0", 6],
            ["a b c a", "b c c a c c b c c a c c b c", "c c c c b c"],
        ),
    ],
)
def test_maint_ready_and_set_weight_match_haproxy(
    weights: tuple[int, ...], script: list[int | str], expected: list[str]
) -> None:
    """Leaving/returning servers and runtime weights give HAProxy 2.6's exact sequences."""
    assert run_script(weights, script) == expected


def test_drain_maint_and_weight_zero_are_skipped() -> None:
    """DRAIN, MAINT and weight 0 servers are never picked; `ready` brings them back."""
    ss = servers((1, 1, 1, 1))
    pool = BackendPool("rr", ss, "roundrobin", timeout_queue=None, clock=rt(Clock()))
    ss[0].set_admin("drain")
    ss[1].set_admin("maint")
    ss[2].set_weight(0)
    assert set(picks(pool.balancer, 6).split()) == {"d"}
    ss[0].set_admin("ready")
    ss[2].set_weight(1)
    assert set(picks(pool.balancer, 12).split()) == {"a", "c", "d"}


def test_disabled_server_starts_out_of_rotation() -> None:
    """A server `disabled` in the config is not picked until enabled."""
    clock = Clock()
    ss = [Server("a", clock=rt(clock), puid=1), Server("b", clock=rt(clock), puid=2, disabled=True)]
    pool = BackendPool("rr", ss, "roundrobin", timeout_queue=None, clock=rt(clock))
    assert picks(pool.balancer, 3) == "a a a"
    ss[1].set_admin("ready")
    assert "b" in picks(pool.balancer, 4)


def test_backups_only_when_no_active_and_first_backup_only() -> None:
    """With all actives DOWN every pick goes to the first backup (spec 2.5)."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=1),
        Server("b", clock=rt(clock), puid=2),
        Server("bk1", clock=rt(clock), puid=3, backup=True),
        Server("bk2", clock=rt(clock), puid=4, backup=True),
    ]
    pool = BackendPool("rr", ss, "roundrobin", timeout_queue=None, clock=rt(clock))
    assert "bk" not in picks(pool.balancer, 6)
    ss[0].set_operational("down")
    ss[1].set_operational("down")
    assert picks(pool.balancer, 4) == "bk1 bk1 bk1 bk1"
    ss[2].set_admin("maint")
    assert picks(pool.balancer, 2) == "bk2 bk2"
    ss[1].set_operational("up")
    assert picks(pool.balancer, 2) == "b b"


def test_allbackups_balances_over_usable_backups() -> None:
    """With `option allbackups` the backups share the load by weight."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=1),
        Server("bk1", clock=rt(clock), puid=2, backup=True, weight=2),
        Server("bk2", clock=rt(clock), puid=3, backup=True),
    ]
    pool = BackendPool("rr", ss, "roundrobin", allbackups=True, timeout_queue=None, clock=rt(clock))
    ss[0].set_operational("down")
    assert picks(pool.balancer, 6) == "bk1 bk1 bk2 bk1 bk1 bk2"


def test_saturated_server_is_skipped_and_avoid_is_honoured() -> None:
    """A server at maxconn is passed over; `avoid` picks another server when one exists."""
    clock = Clock()
    ss = [Server("a", clock=rt(clock), puid=1, maxconn=1), Server("b", clock=rt(clock), puid=2)]
    rr = build("roundrobin", ss)
    ss[0].take_slot()
    assert picks(rr, 3) == "b b b"
    ss[0].release_slot()
    assert {rr.pick("x", avoid=ss[0]).name for _ in range(4)} == {"b"}  # type: ignore[union-attr]
    only = build("roundrobin", ss[:1])
    assert only.pick("x", avoid=ss[0]) is ss[0]  # nothing else: the avoided one


def test_all_saturated_returns_none() -> None:
    """When every server is at maxconn pick gives None (the backend queue's cue)."""
    clock = Clock()
    ss = [
        Server("a", clock=rt(clock), puid=1, maxconn=1),
        Server("b", clock=rt(clock), puid=2, maxconn=1),
    ]
    rr = build("roundrobin", ss)
    ss[0].take_slot()
    ss[1].take_slot()
    assert rr.pick("x") is None
    ss[1].release_slot()
    assert rr.pick("x") is ss[1]
