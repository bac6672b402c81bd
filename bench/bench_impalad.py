"""Impala's clients through the balancer: impyla ``select 1`` direct, through HAProxy
2.6 (``nbthread 1``) and through impala-lb, on one persistent connection per client and
with a new connection per query (a client pool that reconnects), then a large result.

    .venv/bin/python -m bench.bench_impalad [--rounds 3] [--seconds 3] [--rows 1000000]

Starts its own impalad on 127.0.0.1 (free ports), an ``impala-lb -f`` and a ``haproxy``
in front of it with the same config. For 1, 8 and 32 concurrent clients (one process
each) and both connection modes, each round runs the three targets one after the other
(interleaved, so drifts of the machine hit all alike); clients start together and run
for ``--seconds``. Medians over rounds are printed with impala-lb / direct and
impala-lb / HAProxy. The large fetch (``fetchmany``) runs once each way, bounded by its
row count and a 120 s cap. Every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.impalad import Balancer, Impalad, roundrobin_config
from tests.support.procs import accepts, free_ports, kill_pid

QUERY = "select 1"
TARGETS = ("direct", "haproxy", "impala-lb")
MODES = ("persistent", "reconnect")


def _client(host: str, port: int, start: float, seconds: float, reconnect: bool) -> list[float]:
    """One client process: from wall time ``start`` run QUERY for ``seconds``, on one
    connection or a new one per query; the latencies (s), connecting included."""
    from impala.dbapi import connect

    def session() -> tuple[object, object]:
        conn = connect(host=host, port=port, timeout=60)
        return conn, conn.cursor()

    conn, cur = (None, None) if reconnect else session()
    latencies: list[float] = []
    time.sleep(max(0.0, start - time.time()))
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            if reconnect:
                conn, cur = session()
            cur.execute(QUERY)  # type: ignore[attr-defined]
            cur.fetchall()  # type: ignore[attr-defined]
            if reconnect:
                cur.close()  # type: ignore[attr-defined]
                conn.close()  # type: ignore[attr-defined]
            latencies.append(time.perf_counter() - t0)
    finally:
        if not reconnect:
            cur.close()  # type: ignore[attr-defined]
            conn.close()  # type: ignore[attr-defined]
    return latencies


def small_queries(
    pool: concurrent.futures.ProcessPoolExecutor,
    host: str,
    port: int,
    clients: int,
    seconds: float,
    reconnect: bool,
) -> tuple[float, float, float]:
    """(queries/s, p50 ms, p99 ms) of QUERY with ``clients`` concurrent clients."""
    start = time.time() + 1.0  # every process has imported impyla by then
    futures = [pool.submit(_client, host, port, start, seconds, reconnect) for _ in range(clients)]
    latencies = sorted(x for f in futures for x in f.result(timeout=seconds + 120))
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / seconds, p50, p99


class HAProxy:
    """Debian's HAProxy on the same config as impala-lb, ``nbthread 1``."""

    def __init__(self, directory: Path, server: tuple[str, int, int]) -> None:
        self.port = free_ports("127.0.0.1")[0]
        cfg = directory / "haproxy.cfg"
        text = roundrobin_config(self.port, [server])
        cfg.write_text(text.replace("global\n", "global\n    nbthread 1\n", 1))
        self.proc = subprocess.Popen(["haproxy", "-db", "-q", "-f", str(cfg)])
        deadline = time.monotonic() + 20
        while not accepts("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("haproxy did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        kill_pid(self.proc)


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per phase")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the large fetch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Impalad.start(Path(tmp) / "impalad")
        server = (d.host, d.hs2_port, d.webserver_port)
        lb = ha = None
        try:
            lb = Balancer.start(Path(tmp) / "lb", [server])
            ha = HAProxy(Path(tmp), server)
            ways = {
                "direct": (d.host, d.hs2_port),
                "haproxy": ("127.0.0.1", ha.port),
                "impala-lb": ("127.0.0.1", lb.port),
            }
            run(d, ways, args.rounds, args.seconds, args.rows)
        finally:
            for proc in (lb, ha):
                if proc is not None:
                    proc.stop()
            d.stop()


def _medians(samples: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    qps, p50, p99 = (statistics.median(s[i] for s in samples) for i in range(3))
    return qps, p50, p99


def run(
    d: Impalad, ways: dict[str, tuple[str, int]], rounds: int, seconds: float, rows: int
) -> None:
    """Every phase through every way, interleaved, printed as a table of medians."""
    print(f"impalad {d.hs2_address}, query {QUERY!r}, {seconds:g}s per phase, {rounds} rounds")
    results: dict[tuple[int, str, str], list[tuple[float, float, float]]] = {}
    with concurrent.futures.ProcessPoolExecutor(32) as pool:
        for _ in range(rounds):
            for clients in (1, 8, 32):
                for mode in MODES:
                    for way in TARGETS:
                        host, port = ways[way]
                        got = small_queries(pool, host, port, clients, seconds, mode == MODES[1])
                        results.setdefault((clients, mode, way), []).append(got)
    print()
    print("| clients | connections | direct qps | HAProxy qps | impala-lb qps | p50 ms "
          "direct / HAProxy / impala-lb | impala-lb / direct | impala-lb / HAProxy |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for clients in (1, 8, 32):
        for mode in MODES:
            med = {w: _medians(results[(clients, mode, w)]) for w in TARGETS}
            qps = {w: med[w][0] for w in TARGETS}
            p50 = " / ".join(f"{med[w][1]:.2f}" for w in TARGETS)
            print(
                f"| {clients} | {mode} | {qps['direct']:,.0f} | {qps['haproxy']:,.0f} | "
                f"{qps['impala-lb']:,.0f} | {p50} | {qps['impala-lb'] / qps['direct']:.2f} | "
                f"{qps['impala-lb'] / qps['haproxy']:.2f} |"
            )
    print()
    for way in ("direct", "impala-lb"):
        host, port = ways[way]
        rate, growth = large_fetch(d, host, port, rows)
        print(
            f"large fetch {way}: {rows} rows at {rate:,.0f} rows/s, impalad RSS growth {growth} KiB"
        )


if __name__ == "__main__":
    main()
