"""What the balancer costs, side by side with a direct connection and HAProxy 2.6.

Run::

    .venv/bin/python -m bench.bench_proxy            # 3 rounds, about 2 minutes
    .venv/bin/python -m bench.bench_proxy --quick    # 1 round, short runs, about 30 s

Three targets, measured in interleaved rounds (direct, HAProxy, impala-lb for each
workload in turn, so drifts of the machine hit all three alike):

- ``direct``: the client talks to the backends themselves;
- ``haproxy``: Debian's HAProxy 2.6 with ``nbthread 1``, ``mode tcp``;
- ``impala-lb``: this project, ``impala-lb -f``.

Workloads (one process per role: backends, load generator, proxy; the
backends and the generator run on uvloop when it is installed, so that they are
not the bottleneck):

- bulk: one and eight streams of server -> client bytes, MB/s;
- round trips: 100-byte request, 1 KiB reply (a small Thrift RPC) on 1
  connection (p50 and p99 latency in us) and on 64 connections (round trips/s,
  p50 and p99);
- new connections per second: connect, one round trip, close (32 at a time);
- idle connections: open N proxied connections (N = 9,900 by default: with
  ``ulimit -n`` 20000 a proxy cannot hold 10,000 pairs of sockets), one round trip
  each, then the proxy's resident memory per connection and whether all are held;
- slow readers: N sessions to a server that sends without end, whose clients never
  read: the proxy's resident memory per session once it stops growing (what
  ``tune.bufsize`` bounds).

Every run is bounded in time; every process is stopped by PID. Medians over
rounds are printed with the ratio to HAProxy (for latency, lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from tests.support.procs import Children, free_port, wait_port

REQ = 100
REPLY = 1024
CHUNK = 256 * 1024


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------------------
# backends


class _Source(asyncio.Protocol):
    """Streams zeros as fast as the peer takes them."""

    data = bytes(CHUNK)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = cast(Any, transport)  # uvloop's transports do not subclass asyncio's
        self.paused = False
        self.t.set_write_buffer_limits(CHUNK * 4)
        self._fill()

    def _fill(self) -> None:
        while not self.paused and not self.t.is_closing():
            self.t.write(self.data)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._fill()

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.paused = True


class _Rpc(asyncio.Protocol):
    """Answers every 100-byte request with 1 KiB."""

    reply = b"r" * REPLY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = cast(Any, transport)  # uvloop's transports do not subclass asyncio's
        self.n = 0

    def data_received(self, data: bytes) -> None:
        self.n += len(data)
        k, self.n = divmod(self.n, REQ)
        if k:
            self.t.write(self.reply * k)


def run_backends(source_port: int, rpc_port: int) -> None:
    _raise_nofile()
    loop = _loop()
    loop.run_until_complete(loop.create_server(_Source, "127.0.0.1", source_port, backlog=4096))
    loop.run_until_complete(loop.create_server(_Rpc, "127.0.0.1", rpc_port, backlog=4096))
    print("ready", flush=True)
    loop.run_forever()


# --------------------------------------------------------------------------------------
# load generator


class _Sink(asyncio.Protocol):
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter

    def data_received(self, data: bytes) -> None:
        self.counter[0] += len(data)


async def bulk(port: int, streams: int, duration: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    counter = [0]
    conns = [
        await loop.create_connection(lambda: _Sink(counter), "127.0.0.1", port)
        for _ in range(streams)
    ]
    await asyncio.sleep(0.3)  # ramp up
    start, c0 = time.perf_counter(), counter[0]
    await asyncio.sleep(duration)
    mbs = (counter[0] - c0) / (time.perf_counter() - start) / 1e6
    for t, _ in conns:
        t.close()
    return {"MBps": mbs}


class _Caller(asyncio.Protocol):
    """Closed-loop RPC client: sends the next request as soon as the reply is complete."""

    req = b"q" * REQ

    def __init__(self, lat: list[float], stop_at: float, done: asyncio.Future[None]) -> None:
        self.lat, self.stop_at, self.done = lat, stop_at, done
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = cast(Any, transport)  # uvloop's transports do not subclass asyncio's
        self.sent = time.perf_counter()
        self.t.write(self.req)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < REPLY:
            return
        self.got -= REPLY
        now = time.perf_counter()
        self.lat.append(now - self.sent)
        if now >= self.stop_at:
            self.t.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent = now
        self.t.write(self.req)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _const(protocol: _Caller) -> Callable[[], _Caller]:
    return lambda: protocol


async def roundtrips(port: int, conns: int, duration: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    start = time.perf_counter()
    stop_at = start + duration
    futures = []
    for _ in range(conns):
        fut: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(_const(_Caller(lat, stop_at, fut)), "127.0.0.1", port)
        futures.append(fut)
    await asyncio.wait_for(asyncio.gather(*futures), duration + 10)
    elapsed = time.perf_counter() - start
    lat.sort()
    return {
        "rps": len(lat) / elapsed,
        "p50_us": lat[len(lat) // 2] * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
    }


async def new_connections(port: int, workers: int, duration: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    stop_at = time.perf_counter() + duration
    count = [0]

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            fut: asyncio.Future[None] = loop.create_future()
            lat: list[float] = []
            await loop.create_connection(_const(_Caller(lat, 0.0, fut)), "127.0.0.1", port)
            await fut
            if lat:
                count[0] += 1

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), duration + 20)
    return {"cps": count[0] / (time.perf_counter() - start)}


async def idle(port: int, n: int) -> dict[str, float]:
    """Open ``n`` connections with one round trip each, report, wait for a line on
    stdin, then do one more round trip on each and report how many are still held."""
    loop = asyncio.get_running_loop()
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    sem = asyncio.Semaphore(256)

    async def one() -> None:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"q" * REQ)
            await r.readexactly(REPLY)
            held.append((r, w))

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    opened = sum(1 for x in results if x is None)
    print(json.dumps({"opened": opened}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)

    async def again(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        async with sem:
            w.write(b"q" * REQ)
            await asyncio.wait_for(r.readexactly(REPLY), 10)

    again_results = await asyncio.gather(*(again(r, w) for r, w in held), return_exceptions=True)
    for _, w in held:
        w.close()
    return {"opened": opened, "held": sum(1 for x in again_results if x is None)}


class _Stalled(asyncio.Protocol):
    """A client that never reads: the server's bytes pile up behind it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(Any, transport).pause_reading()


async def slow(port: int, n: int) -> dict[str, float]:
    """Open ``n`` connections to the firehose port that never read, report, wait for a
    line on stdin, then close them."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(256)
    held: list[Any] = []

    async def one() -> None:
        async with sem:
            t, _ = await loop.create_connection(_Stalled, "127.0.0.1", port)
            held.append(t)

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    opened = sum(1 for x in results if x is None)
    print(json.dumps({"opened": opened}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    for t in held:
        t.close()
    return {"opened": opened}


def run_client(kind: str, port: int, a: int, duration: float) -> None:
    _raise_nofile()
    loop = _loop()
    coro: Any
    if kind == "bulk":
        coro = bulk(port, a, duration)
    elif kind == "rt":
        coro = roundtrips(port, a, duration)
    elif kind == "cps":
        coro = new_connections(port, a, duration)
    elif kind == "slow":
        coro = slow(port, a)
    else:
        coro = idle(port, a)
    print(json.dumps(loop.run_until_complete(coro)), flush=True)


# --------------------------------------------------------------------------------------
# orchestration


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def proxy_config(kind: str, src_be: int, rpc_be: int, src_fe: int, rpc_fe: int) -> str:
    glob = "    nbthread 1\n" if kind == "haproxy" else ""
    # HAProxy needs 2 descriptors per connection plus a few under the hard limit.
    maxconn = min(10000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 32) // 2)
    return (
        f"global\n    maxconn {maxconn}\n{glob}"
        "defaults\n    mode tcp\n    timeout connect 5s\n"
        "    timeout client 60s\n    timeout server 60s\n"
        f"listen source\n    bind 127.0.0.1:{src_fe}\n    server s 127.0.0.1:{src_be}\n"
        f"listen rpc\n    bind 127.0.0.1:{rpc_fe}\n    server r 127.0.0.1:{rpc_be}\n"
    )


class Bench:
    def __init__(self, quick: bool, idle_n: int, lb_cmd: list[str] | None = None) -> None:
        self.lb_cmd = lb_cmd or [str(Path(sys.executable).parent / "impala-lb")]
        self.quick = quick
        self.idle_n = idle_n
        self.tmp = Path(tempfile.mkdtemp(prefix="bench_proxy_"))
        self.children = Children()
        self.ports: dict[str, tuple[int, int]] = {}
        self.pids: dict[str, int] = {}

    def start(self) -> None:
        src, rpc = free_port(), free_port()
        self.children.ready(
            [sys.executable, "-m", "bench.bench_proxy", "--role", "backends", str(src), str(rpc)]
        )
        self.ports["direct"] = (src, rpc)
        for kind in ("haproxy", "impala-lb"):
            fe_src, fe_rpc = free_port(), free_port()
            cfg = self.tmp / f"{kind}.cfg"
            cfg.write_text(proxy_config(kind, src, rpc, fe_src, fe_rpc))
            if kind == "haproxy":
                argv = ["haproxy", "-q", "-f", str(cfg)]
            else:
                argv = [*self.lb_cmd, "-f", str(cfg)]
            p = self.children.popen(argv, stderr=subprocess.DEVNULL)
            wait_port(fe_src)
            wait_port(fe_rpc)
            self.ports[kind] = (fe_src, fe_rpc)
            self.pids[kind] = p.pid

    def stop(self) -> None:
        self.children.stop()

    def client(self, kind: str, port: int, a: int, duration: float) -> dict[str, float]:
        out = subprocess.run(
            [*CLIENT, kind, str(port), str(a), str(duration)],
            capture_output=True,
            timeout=duration + 60,
            check=True,
        )
        result: dict[str, float] = json.loads(out.stdout.decode().strip().splitlines()[-1])
        return result

    def _holding_client(self, kind: str, port: int) -> subprocess.Popen[bytes]:
        """A client that opens ``idle_n`` connections, reports, and holds them until it
        reads a line on stdin."""
        return subprocess.Popen(
            [*CLIENT, kind, str(port), str(self.idle_n), "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def slow_readers(self, target: str) -> dict[str, float]:
        """``idle_n`` sessions whose client never reads while the server sends without
        end: the proxy's resident memory per session once it stops growing."""
        port = self.ports[target][0]
        pid = self.pids[target]
        before = rss_kib(pid)
        p = self._holding_client("slow", port)
        try:
            assert p.stdin is not None and p.stdout is not None
            opened = json.loads(p.stdout.readline())["opened"]
            # settled: RSS moved by less than 0.5% over the last second (at most 30 s)
            last, end = rss_kib(pid), time.monotonic() + 30
            while time.monotonic() < end:
                time.sleep(1.0)
                now = rss_kib(pid)
                if abs(now - last) <= last * 0.005:
                    break
                last = now
            after = rss_kib(pid)
            p.stdin.write(b"go\n")
            p.stdin.flush()
            p.stdout.readline()
        finally:
            p.wait(60)
        return {"opened": opened, "kib_per_session": (after - before) / max(1, opened)}

    def idle(self, target: str) -> dict[str, float]:
        port = self.ports[target][1]
        pid = self.pids.get(target)
        before = rss_kib(pid) if pid else 0
        p = self._holding_client("idle", port)
        try:
            assert p.stdin is not None and p.stdout is not None
            json.loads(p.stdout.readline())
            time.sleep(0.5)
            after = rss_kib(pid) if pid else 0
            p.stdin.write(b"go\n")
            p.stdin.flush()
            result: dict[str, float] = json.loads(p.stdout.readline())
        finally:
            p.wait(60)
        if pid:
            result["kib_per_conn"] = (after - before) / max(1, result["opened"])
        return result


TARGETS = ("direct", "haproxy", "impala-lb")
CLIENT = (sys.executable, "-m", "bench.bench_proxy", "--role", "client")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round, short runs")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--idle", type=int, default=9900, help="idle connections (default 9900)")
    ap.add_argument(
        "--impala-lb", dest="lb_cmd", help="command to run instead of impala-lb (e.g. a wrapper)"
    )
    ap.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role:
        role = args.role
        if role[0] == "backends":
            run_backends(int(role[1]), int(role[2]))
        else:
            run_client(role[1], int(role[2]), int(role[3]), float(role[4]))
        return 0
    _raise_nofile()
    rounds = args.rounds or (1 if args.quick else 3)
    duration = 1.0 if args.quick else 2.0
    idle_n = min(args.idle, 2000) if args.quick else args.idle
    bench = Bench(args.quick, idle_n, args.lb_cmd.split() if args.lb_cmd else None)
    workloads: list[tuple[str, str, int, int, Callable[[dict[str, float]], dict[str, float]]]] = [
        ("bulk, 1 stream, MB/s", "bulk", 0, 1, lambda r: {"": r["MBps"]}),
        ("bulk, 8 streams, MB/s", "bulk", 0, 8, lambda r: {"": r["MBps"]}),
        ("round trip, 1 conn, p50 us", "rt", 1, 1, lambda r: {"": r["p50_us"], "p99": r["p99_us"]}),
        ("round trips/s, 64 conns", "rt", 1, 64,
         lambda r: {"": r["rps"], "p50": r["p50_us"], "p99": r["p99_us"]}),
        ("new connections/s", "cps", 1, 32, lambda r: {"": r["cps"]}),
    ]  # fmt: skip
    results: dict[tuple[str, str, str], list[float]] = {}
    try:
        bench.start()
        for rnd in range(rounds):
            for label, kind, which, a, pick in workloads:
                for target in TARGETS:
                    port = bench.ports[target][which]
                    values = pick(bench.client(kind, port, a, duration))
                    for key, v in values.items():
                        results.setdefault((label, key, target), []).append(v)
            print(f"round {rnd + 1}/{rounds} done", file=sys.stderr, flush=True)
        idle_res = {t: bench.idle(t) for t in TARGETS}
    finally:
        bench.stop()
    # On fresh proxies: HAProxy keeps freed buffers in its pools, so after the other
    # workloads its RSS would not grow at all.
    fresh = Bench(args.quick, idle_n, args.lb_cmd.split() if args.lb_cmd else None)
    try:
        fresh.start()
        slow_res = {t: fresh.slow_readers(t) for t in ("haproxy", "impala-lb")}
    finally:
        fresh.stop()
    print(f"\n{rounds} interleaved round(s), medians; ratio = target / HAProxy nbthread 1\n")
    print(f"| workload | {' | '.join(TARGETS)} | impala-lb / haproxy |")
    print("|---|---|---|---|---|")
    for label, _, _, _, _ in workloads:
        keys = sorted({k for (lb, k, _) in results if lb == label}, key=lambda k: (k != "", k))
        for key in keys:
            med = {t: statistics.median(results[(label, key, t)]) for t in TARGETS}
            name = label if not key else f"{label}: {key} latency, us"
            ratio = med["impala-lb"] / med["haproxy"] if med["haproxy"] else float("nan")
            cells = " | ".join(f"{med[t]:,.1f}" for t in TARGETS)
            print(f"| {name} | {cells} | {ratio:.2f} |")
    cells = " | ".join(
        "-" if "kib_per_conn" not in idle_res[t] else f"{idle_res[t]['kib_per_conn']:.2f}"
        for t in TARGETS
    )
    held = " | ".join(f"{int(idle_res[t]['held'])}/{idle_n}" for t in TARGETS)
    hk, ik = idle_res["haproxy"].get("kib_per_conn"), idle_res["impala-lb"].get("kib_per_conn")
    idle_ratio = f"{ik / hk:.2f}" if hk and ik else "-"
    print(f"| {idle_n} idle connections, KiB each | {cells} | {idle_ratio} |")
    print(f"| {idle_n} idle connections held | {held} | |")
    hs, is_ = (slow_res[t]["kib_per_session"] for t in ("haproxy", "impala-lb"))
    opened = " | ".join(f"{int(slow_res[t]['opened'])}" for t in ("haproxy", "impala-lb"))
    print(
        f"| {idle_n} sessions behind slow readers, KiB each | - | {hs:.2f} | {is_:.2f} | "
        f"{is_ / hs:.2f} |"
        if hs
        else "| slow readers | - | - | - | - |"
    )
    print(f"| {idle_n} sessions behind slow readers, opened | - | {opened} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
