"""Benchmark impalad directly with impyla: small-query QPS/latency and large-result rows/s.

    .venv/bin/python -m bench.bench_impalad [--seconds 5] [--rows 1000000]

Starts its own impalad on 127.0.0.1 (free ports), runs ``select 1`` from 1, 8
and 32 concurrent impyla clients (one process each, one session each) for a
bounded time, then fetches a large result with ``fetchmany``. Each phase is
bounded by ``--seconds`` (the large fetch by its row count and a 120 s cap).
The balancer column is added when the balancer exists.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.impalad import Impalad

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


def small_queries(d: Impalad, clients: int, seconds: float) -> tuple[float, float, float]:
    """(queries/s, p50 ms, p99 ms) of QUERY with ``clients`` concurrent sessions."""
    with concurrent.futures.ProcessPoolExecutor(clients) as pool:
        started = time.monotonic()
        futures = [pool.submit(_client, d.host, d.hs2_port, seconds) for _ in range(clients)]
        latencies = [x for f in futures for x in f.result(timeout=seconds + 120)]
        elapsed = time.monotonic() - started
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / elapsed, p50, p99


def large_fetch(d: Impalad, rows: int) -> tuple[float, int]:
    """(rows/s, daemon RSS growth KiB) fetching ``rows`` rows of (BIGINT, STRING)."""
    from impala.dbapi import connect

    conn = connect(host=d.host, port=d.hs2_port, timeout=120)
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
        d = Impalad.start(Path(tmp))
        try:
            print(f"impalad {d.hs2_address}, query {QUERY!r}, {args.seconds:g}s per phase")
            print(f"{'clients':>8} {'qps':>10} {'p50 ms':>10} {'p99 ms':>10}")
            for clients in (1, 8, 32):
                qps, p50, p99 = small_queries(d, clients, args.seconds)
                print(f"{clients:>8} {qps:>10.1f} {p50:>10.2f} {p99:>10.2f}")
            rate, growth = large_fetch(d, args.rows)
            print(f"large fetch: {args.rows} rows at {rate:,.0f} rows/s, RSS growth {growth} KiB")
        finally:
            d.stop()


if __name__ == "__main__":
    main()
