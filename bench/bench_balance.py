"""Picks per second of each balancing algorithm, with 3 and with 100 servers.

Run: ``.venv/bin/python -m bench.bench_balance``. Two numbers per case:

- ``pick``: the algorithm alone (``Algorithm.pick``), servers without maxconn;
- ``acquire+release``: the whole pool path a connection takes (Deferred, slot
  accounting, leastconn re-keying), connections released at once.

Each case is the best of three runs of a fixed number of picks, each stopping
early after 0.4 s, so the whole run is bounded (24 measurements, under 30 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.pool import BackendPool
from proxy.server import Server

CASES = [
    ("roundrobin", "map-based"),
    ("static-rr", "map-based"),
    ("leastconn", "map-based"),
    ("source", "map-based"),
    ("source", "consistent"),
    ("first", "map-based"),
]
SIZES = (3, 100)
MAX_PICKS = 100_000
MAX_SECONDS = 0.4
ROUNDS = 3  # best of: the machine may be busy with other work


def _pool(algorithm: str, hash_type: str, n: int) -> BackendPool:
    clock = cast(IReactorTime, Clock())
    servers = [Server(f"s{i}", clock=clock, puid=i + 1, weight=1 + i % 4) for i in range(n)]
    return BackendPool(
        "bench", servers, algorithm, hash_type=hash_type, timeout_queue=None, clock=clock
    )


def _clients(count: int) -> list[str]:
    return [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(count)]


def _rate(call: Callable[[str], object], ips: list[str]) -> float:
    return max(_one_rate(call, ips) for _ in range(ROUNDS))


def _one_rate(call: Callable[[str], object], ips: list[str]) -> float:
    done = 0
    start = time.perf_counter()
    deadline = start + MAX_SECONDS
    while done < MAX_PICKS:
        for ip in ips:
            call(ip)
        done += len(ips)
        if time.perf_counter() > deadline:
            break
    return done / (time.perf_counter() - start)


def measure(algorithm: str, hash_type: str, n: int) -> tuple[float, float]:
    ips = _clients(1000)
    pool = _pool(algorithm, hash_type, n)
    algo = pool.balancer
    pick_rate = _rate(algo.pick, ips)

    def acquire_release(ip: str) -> None:
        pool.acquire(ip).addCallback(pool.release)

    return pick_rate, _rate(acquire_release, ips)


def main() -> None:
    print(f"{'algorithm':<24}{'servers':>8}{'pick/s':>14}{'acquire+release/s':>20}")
    for algorithm, hash_type in CASES:
        label = algorithm if algorithm != "source" else f"source ({hash_type})"
        for n in SIZES:
            picks, pool_rate = measure(algorithm, hash_type, n)
            print(f"{label:<24}{n:>8}{picks:>14,.0f}{pool_rate:>20,.0f}")


if __name__ == "__main__":
    main()
