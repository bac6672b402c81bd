"""What TLS termination costs: handshakes and bytes through the balancer vs direct TLS.

Run::

    .venv/bin/python -m bench.bench_tls            # 3 rounds, about 40 s
    .venv/bin/python -m bench.bench_tls --quick    # 1 round, about 15 s

Targets, measured in interleaved rounds:

- ``direct``: the client does TLS with the server itself (an asyncio TLS echo
  server, uvloop when installed);
- ``haproxy``: HAProxy 2.6 (``nbthread 1``) with ``bind ... ssl crt``, plain TCP
  to an echo server (TLS offload);
- ``impala-lb``: this project with the same config (TLS offload).

Workloads (the client is a separate process; Python's ``ssl``, the same for every
target; EC P-256 certificates, TLS 1.3):

- sequential handshakes: connect, handshake, one 100-byte round trip, close; p50
  and p99 of the whole, in microseconds (what one impala-shell start pays);
- concurrent handshakes: the same with 16 in flight, handshakes per second;
- bulk: one TLS stream of server -> client bytes, MB/s.

Every run is bounded in count and time; every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.procs import Children, free_port, wait_port

REQ = 100
CHUNK = 256 * 1024
TARGETS = ("direct", "haproxy", "impala-lb")


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# --- roles (separate processes) -------------------------------------------------------


async def _serve(port: int, bulk_port: int, pem: str | None) -> None:
    ctx: ssl.SSLContext | None = None
    if pem:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
    zeros = bytes(CHUNK)

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    async def firehose(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                w.write(zeros)
                await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    s1 = await asyncio.start_server(echo, "127.0.0.1", port, ssl=ctx, backlog=1024)
    s2 = await asyncio.start_server(firehose, "127.0.0.1", bulk_port, ssl=ctx, backlog=64)
    print("ready", flush=True)
    async with s1, s2:
        await asyncio.gather(s1.serve_forever(), s2.serve_forever())


def _client_ctx(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the bench certificate names 127.0.0.1; skip the lookup
    return ctx


def _one(ctx: ssl.SSLContext, port: int) -> float:
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"x" * REQ)
            got = 0
            while got < REQ:
                chunk = s.recv(REQ)
                if not chunk:
                    raise ConnectionError("closed early")
                got += len(chunk)
    return time.perf_counter() - t0


def client_sequential(ca: str, port: int, count: int, duration: float) -> dict[str, float]:
    ctx = _client_ctx(ca)
    times: list[float] = []
    end = time.monotonic() + duration
    while len(times) < count and time.monotonic() < end:
        times.append(_one(ctx, port))
    times.sort()
    return {
        "p50_us": times[len(times) // 2] * 1e6,
        "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6,
        "n": len(times),
    }


async def _concurrent(ca: str, port: int, inflight: int, duration: float) -> dict[str, float]:
    ctx = _client_ctx(ca)
    done = 0
    errors = 0
    end = time.monotonic() + duration

    async def worker() -> None:
        nonlocal done, errors
        while time.monotonic() < end:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
                w.write(b"x" * REQ)
                await r.readexactly(REQ)
                w.close()
                done += 1
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return {"per_s": done / (time.monotonic() - t0), "errors": errors}


async def _bulk(ca: str, port: int, duration: float) -> dict[str, float]:
    ctx = _client_ctx(ca)
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, limit=CHUNK)
    total = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration:
        total += len(await r.read(CHUNK))
    elapsed = time.monotonic() - t0
    w.close()
    return {"mb_s": total / elapsed / 1e6}


def role_client(kind: str, ca: str, port: int, duration: float, count: int) -> None:
    if kind == "seq":
        out = client_sequential(ca, port, count, duration)
    elif kind == "conc":
        out = _loop().run_until_complete(_concurrent(ca, port, 16, duration))
    else:
        out = _loop().run_until_complete(_bulk(ca, port, duration))
    print(json.dumps(out), flush=True)


# --- the driver -----------------------------------------------------------------------


def proxy_config(kind: str, pem: Path, fe: int, be: int, fe_bulk: int, be_bulk: int) -> str:
    glob = "    nbthread 1\n" if kind == "haproxy" else ""
    return (
        f"global\n    maxconn 2000\n{glob}"
        "defaults\n    mode tcp\n    timeout connect 5s\n"
        "    timeout client 60s\n    timeout server 60s\n"
        f"listen hs\n    bind 127.0.0.1:{fe} ssl crt {pem}\n    server s 127.0.0.1:{be}\n"
        f"listen bulk\n    bind 127.0.0.1:{fe_bulk} ssl crt {pem}\n"
        f"    server b 127.0.0.1:{be_bulk}\n"
    )


class Bench:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix="bench_tls_"))
        self.children = Children()
        self.ports: dict[str, tuple[int, int]] = {}

    def server(self, pem: Path | None) -> tuple[int, int]:
        port, bulk = free_port(), free_port()
        argv = [sys.executable, "-m", "bench.bench_tls", "--role", "server", str(port), str(bulk)]
        self.children.ready([*argv, str(pem or "")])
        return port, bulk

    def start(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.support.certs import make_ca

        ca = make_ca(self.tmp / "ca")
        leaf = ca.issue(self.tmp / "ca", "server", ["127.0.0.1"])
        self.ca = str(ca.cert)
        self.ports["direct"] = self.server(leaf.combined)
        plain = self.server(None)
        for kind in ("haproxy", "impala-lb"):
            fe, fe_bulk = free_port(), free_port()
            cfg = self.tmp / f"{kind}.cfg"
            cfg.write_text(proxy_config(kind, leaf.combined, fe, plain[0], fe_bulk, plain[1]))
            if kind == "haproxy":
                argv = ["haproxy", "-q", "-f", str(cfg)]
            else:
                argv = [str(Path(sys.executable).parent / "impala-lb"), "-f", str(cfg)]
            self.children.popen(argv, stderr=subprocess.DEVNULL)
            wait_port(fe, 15.0)
            wait_port(fe_bulk, 15.0)
            self.ports[kind] = (fe, fe_bulk)

    def stop(self) -> None:
        self.children.stop()

    def client(self, kind: str, port: int, duration: float, count: int) -> dict[str, float]:
        argv = [sys.executable, "-m", "bench.bench_tls", "--role", "client", kind, self.ca]
        out = subprocess.run(
            [*argv, str(port), str(duration), str(count)],
            capture_output=True,
            timeout=duration + 60,
            check=True,
        )
        result: dict[str, float] = json.loads(out.stdout.decode().strip().splitlines()[-1])
        return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="1 round, short runs")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role:
        role, *rest = args.role
        if role == "server":
            _loop().run_until_complete(_serve(int(rest[0]), int(rest[1]), rest[2] or None))
        else:
            kind, ca, port, duration, count = rest
            role_client(kind, ca, int(port), float(duration), int(count))
        return 0
    rounds = args.rounds or (1 if args.quick else 3)
    duration = 1.0 if args.quick else 2.0
    count = 300 if args.quick else 1000
    bench = Bench(args.quick)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        bench.start()
        for r in range(rounds):
            for target in TARGETS:
                hs, bulk = bench.ports[target]
                row = results.setdefault(target, {})
                seq = bench.client("seq", hs, duration * 2, count)
                conc = bench.client("conc", hs, duration, 0)
                mb = bench.client("bulk", bulk, duration, 0)
                row.setdefault("handshake + round trip, sequential, p50 us", []).append(
                    seq["p50_us"]
                )
                row.setdefault("handshake + round trip, sequential, p99 us", []).append(
                    seq["p99_us"]
                )
                row.setdefault("handshakes/s, 16 in flight", []).append(conc["per_s"])
                row.setdefault("bulk over TLS, 1 stream, MB/s", []).append(mb["mb_s"])
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    finally:
        bench.stop()
    print(f"\n{rounds} interleaved round(s), medians; TLS 1.3, EC P-256, offload at the proxies\n")
    print(f"| workload | {' | '.join(TARGETS)} | impala-lb / direct | impala-lb / haproxy |")
    print("|---|" + "---|" * (len(TARGETS) + 2))
    for workload in results["direct"]:
        med = {t: statistics.median(results[t][workload]) for t in TARGETS}
        cells = " | ".join(f"{med[t]:,.1f}" for t in TARGETS)
        lb = med["impala-lb"]
        print(f"| {workload} | {cells} | {lb / med['direct']:.2f} | {lb / med['haproxy']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
