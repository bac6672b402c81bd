"""balance source: HAProxy's map-based hash of IPv4/IPv6 and the consistent-hash ring."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.balance import HASH_TYPES, REGISTRY, build
from proxy.balance.source import SourceConsistent, SourceMap, full_hash, source_hash
from proxy.pool import BackendPool, QueueFull
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


def name(algo: object, ip: str, avoid: Server | None = None) -> str:
    return algo.pick(ip, avoid).name  # type: ignore[attr-defined,no-any-return]


def test_ipv4_hash_is_the_address_and_ipv6_xors_its_words() -> None:
    """h = ntohl(IPv4); IPv6 = XOR of the four big-endian 32-bit words."""
    assert source_hash("127.0.0.1") == 0x7F000001
    assert source_hash("::1") == 1
    assert source_hash("2001:db8::1:0:0:1") == 0x20010DB8 ^ 0 ^ 0x00010000 ^ 0x00000001
    assert source_hash("not an ip") == 0


def test_three_equal_servers_measured_mapping() -> None:
    """127.0.0.1 -> c, .2 -> a, .3 -> b, .4 -> c (0x7f000001 mod 3 = 2)."""
    algo = build("source", servers((1, 1, 1)))
    assert [name(algo, f"127.0.0.{i}") for i in range(1, 5)] == ["c", "a", "b", "c"]


def test_weighted_two_to_one_measured_mapping() -> None:
    """Map `a a b`: .1 -> b, .2 -> a, .3 -> a, .4 -> b."""
    algo = build("source", servers((2, 1)))
    assert [name(algo, f"127.0.0.{i}") for i in range(1, 5)] == ["b", "a", "a", "b"]


def test_same_client_always_same_server_and_avoid_is_ignored_by_the_map() -> None:
    """A client sticks to its server; map-based lookup even ignores `avoid` (spec 1.9)."""
    ss = servers((1, 1, 1))
    algo = build("source", ss)
    assert {name(algo, "127.0.0.1") for _ in range(5)} == {"c"}
    assert name(algo, "127.0.0.1", avoid=ss[2]) == "c"


def test_single_usable_server_is_always_chosen() -> None:
    """With one usable server left every client goes there."""
    ss = servers((1, 1, 1))
    pool = BackendPool("src", ss, "source", timeout_queue=None, clock=rt(Clock()))
    ss[0].set_operational("down")
    ss[2].set_admin("maint")
    assert {name(pool.balancer, f"10.0.0.{i}") for i in range(1, 20)} == {"b"}


def test_down_server_remaps_clients_to_usable_ones() -> None:
    """A DOWN server's clients (and most others) are remapped over the rest."""
    ss = servers((1, 1, 1))
    pool = BackendPool("src", ss, "source", timeout_queue=None, clock=rt(Clock()))
    ss[2].set_operational("down")
    assert name(pool.balancer, "127.0.0.1") == "b"  # 0x7f000001 mod 2 = 1


def test_weight_changes_have_no_effect_on_map_weights_until_rebuild() -> None:
    """Static: slowstart does not scale a map algorithm's weight."""
    ss = servers((1, 1), slowstart=10)
    pool = BackendPool("src", ss, "source", timeout_queue=None, clock=rt(Clock()))
    assert not pool.balancer.dynamic and ss[0].dynamic_weights is False
    for s in ss:
        s.stop()


def test_registry_and_hash_types() -> None:
    """`source` builds map-based by default and consistent on request; bad types fail."""
    assert "source" in REGISTRY and set(HASH_TYPES) == {"map-based", "consistent"}
    assert isinstance(build("source", servers((1,))), SourceMap)
    assert isinstance(build("source", servers((1,)), hash_type="consistent"), SourceConsistent)
    with pytest.raises(ValueError, match="hash-type"):
        build("source", servers((1,)), hash_type="ring-based")
    with pytest.raises(ValueError, match="hash-type word"):
        build("source", servers((1,)), hash_type="consistent fnv")
    assert build("source", servers((1,)), hash_type="map-based sdbm avalanche").avalanche  # type: ignore[attr-defined]


def test_full_hash_is_bob_jenkins_32bit() -> None:
    """The mixer stays in 32 bits, spreads neighbouring inputs, and ends with HAProxy's prime."""
    values = {full_hash(i) for i in range(1000)}
    assert len(values) == 1000 and max(values) < 2**32
    assert full_hash(0) == 0xAB4ED927  # pinned; validated by the measured vectors below


def _clients() -> list[str]:
    # spread over the whole IPv4 space so the ring's distance rule matters
    return [
        f"{(i * 37) % 223 + 1}.{(i * 11) % 256}.{(i * 7) % 256}.{i % 250 + 1}" for i in range(400)
    ]


def test_consistent_hash_moves_only_the_failed_servers_clients() -> None:
    """hash-type consistent: when one server fails, only its own clients move."""
    ss = servers((1, 1, 1, 1))
    pool = BackendPool(
        "ch", ss, "source", hash_type="consistent", timeout_queue=None, clock=rt(Clock())
    )
    before = {ip: name(pool.balancer, ip) for ip in _clients()}
    assert set(before.values()) == {"a", "b", "c", "d"}
    ss[1].set_operational("down")
    after = {ip: name(pool.balancer, ip) for ip in _clients()}
    moved = {ip for ip in before if before[ip] != after[ip]}
    assert moved == {ip for ip, s in before.items() if s == "b"}
    assert "b" not in after.values()
    ss[1].set_operational("up")
    assert {ip: name(pool.balancer, ip) for ip in _clients()} == before


def test_consistent_hash_honours_avoid() -> None:
    """The ring lookup steps past the server to avoid (redispatch works with consistent)."""
    ss = servers((1, 1, 1))
    algo = build("source", ss, hash_type="consistent")
    for ip in _clients()[:50]:
        first = algo.pick(ip)
        assert first is not None
        other = algo.pick(ip, avoid=first)
        assert other is not None and other is not first


# Measured on HAProxy 2.6.12 (loopback, `listen` with servers a b c, weight 1, ids 1..3):
# the server each client address was sent to.
MEASURED_IPS = [f"127.0.0.{i}" for i in range(1, 21)] + [
    f"127.{i * 13 % 256}.{i * 7 % 256}.{i % 250 + 1}" for i in range(1, 13)
]
MEASURED_CONSISTENT = "bacabacaacbcccaaacaa" + "aaccbcbaacba"
MEASURED_MAP_AVALANCHE = "baaabaccabaabbacaaca" + "ccaabacabaab"


@pytest.mark.parametrize("hash_type", ["consistent", "consistent sdbm avalanche"])
def test_consistent_matches_haproxy_measurements(hash_type: str) -> None:
    """hash-type consistent sends 32 measured clients where HAProxy 2.6 did, avalanche or not."""
    algo = build("source", servers((1, 1, 1)), hash_type=hash_type)
    assert "".join(name(algo, ip) for ip in MEASURED_IPS) == MEASURED_CONSISTENT


def test_map_based_avalanche_matches_haproxy_measurements() -> None:
    """hash-type map-based sdbm avalanche mixes the address before `mod T`, as measured."""
    algo = build("source", servers((1, 1, 1)), hash_type="map-based sdbm avalanche")
    assert "".join(name(algo, ip) for ip in MEASURED_IPS) == MEASURED_MAP_AVALANCHE
    raw = build("source", servers((1, 1, 1)))
    assert "".join(name(raw, ip) for ip in MEASURED_IPS[:6]) == "cabcab"


def test_hashed_full_server_queues_there_until_maxqueue() -> None:
    """source picks the hashed server whatever its load: queue there, then QueueFull."""
    ss = servers((1, 1, 1), maxconn=1, maxqueue=1)
    pool = BackendPool("src", ss, "source", timeout_queue=None, clock=rt(Clock()))
    c = ss[2]
    pool.acquire("127.0.0.1")
    queued = pool.acquire("127.0.0.1")
    assert c.served == 1 and c.queued == 1 and not queued.called
    failures: list[object] = []
    pool.acquire("127.0.0.1").addErrback(lambda f: failures.append(f.trap(QueueFull)))
    assert failures == [QueueFull]
    got: list[Server] = []
    queued.addCallback(got.append)
    pool.release(c)
    assert got == [c] and c.queued == 0
