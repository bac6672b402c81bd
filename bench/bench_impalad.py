"""Benchmark impalad with impyla, direct and through the balancer: small-query QPS and
latency, and large-result rows/s.

    .venv/bin/python -m bench.bench_impalad [--seconds 5] [--rows 1000000]

Starts its own impalad on 127.0.0.1 (free ports) and an ``impala-lb -f`` in front of it,
runs ``select 1`` from 1, 8 and 32 concurrent impyla clients (one process each, one
session each) for a bounded time, directly and through the balancer one after the
other, then fetches a large result with ``fetchmany`` both ways. Each phase is bounded by
``--seconds`` (the large fetch by its row count and a 120 s cap). Ratios are
balancer / direct.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.impalad import Balancer, Impalad

QUERY = "select 1"


def _client(host: str, port: int, seconds: float) -> list[float]:
    """One client process: run QUERY in a loop for ``seconds``; return latencies (s)."""
    from impala.dbapi import connect

    conn = connect(host=host, port=port, timeout=60)
    cur = conn.cursor()
    latencies: list[float] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            cur.execute(QUERY)
            cur.fetchall()
            latencies.append(time.perf_counter() - t0)
    finally:
        cur.close()
        conn.close()
    return latencies


def small_queries(host: str, port: int, clients: int, seconds: float) -> tuple[float, float, float]:
    """(queries/s, p50 ms, p99 ms) of QUERY with ``clients`` concurrent sessions."""
    with concurrent.futures.ProcessPoolExecutor(clients) as pool:
        started = time.monotonic()
        futures = [pool.submit(_client, host, port, seconds) for _ in range(clients)]
        latencies = [x for f in futures for x in f.result(timeout=seconds + 120)]
        elapsed = time.monotonic() - started
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / elapsed, p50, p99


def large_fetch(d: Impalad, host: str, port: int, rows: int) -> tuple[float, int]:
    """(rows/s, daemon RSS growth KiB) fetching ``rows`` rows of (BIGINT, STRING)."""
    from impala.dbapi import connect

    conn = connect(host=host, port=port, timeout=120)
    cur = conn.cursor()
    before = d.rss_kb()
    peak = before
    started = time.monotonic()
    seen = 0
    try:
        cur.execute(f"select range, 'payload-' || range from range({rows})")
        while time.monotonic() - started < 120:
            batch = cur.fetchmany(10_000)
            if not batch:
                break
            seen += len(batch)
            if seen % 200_000 == 0:
                peak = max(peak, d.rss_kb())
    finally:
        cur.close()
        conn.close()
    return seen / (time.monotonic() - started), peak - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the large fetch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Impalad.start(Path(tmp) / "impalad")
        try:
            lb = Balancer.start(Path(tmp) / "lb", [(d.host, d.hs2_port, d.webserver_port)])
            try:
                run(d, lb, args.seconds, args.rows)
            finally:
                lb.stop()
        finally:
            d.stop()


def run(d: Impalad, lb: Balancer, seconds: float, rows: int) -> None:
    """Every phase, direct and through ``lb``, printed as a table."""
    ways = {"direct": (d.host, d.hs2_port), "balancer": ("127.0.0.1", lb.port)}
    print(f"impalad {d.hs2_address}, query {QUERY!r}, {seconds:g}s per phase")
    print(f"{'clients':>8} {'way':>9} {'qps':>10} {'p50 ms':>10} {'p99 ms':>10}")
    for clients in (1, 8, 32):
        result = {}
        for way, (host, port) in ways.items():
            result[way] = small_queries(host, port, clients, seconds)
            qps, p50, p99 = result[way]
            print(f"{clients:>8} {way:>9} {qps:>10.1f} {p50:>10.2f} {p99:>10.2f}")
        ratio = result["balancer"][0] / result["direct"][0]
        print(f"{clients:>8} {'ratio':>9} {ratio:>10.2f}")
    for way, (host, port) in ways.items():
        rate, growth = large_fetch(d, host, port, rows)
        print(
            f"large fetch {way}: {rows} rows at {rate:,.0f} rows/s, impalad RSS growth {growth} KiB"
        )


if __name__ == "__main__":
    main()
