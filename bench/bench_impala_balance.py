"""Balancing by Impala's own load versus leastconn and roundrobin, on a skewed workload.

    .venv/bin/python -m bench.bench_impala_balance [--seconds 15]

Starts the local cluster (``impala-lb cluster up``: three impalads on 127.0.21.x), an
Impala agent and one impala-lb with four frontends on the same three coordinators:
``roundrobin``, ``leastconn``, and each of them with the agent's weights from the
coordinators' registered queries (``agent-send "impalad-N weight\n"``, servers at
weight 100). For each in turn, the same skewed workload:

- LONG clients each hold one connection and run a long query after another (they
  land first, so on some coordinators only);
- IDLE clients then open pooled connections that run nothing (as Hue and JDBC pools
  do): leastconn counts them, Impala does not;
- SHORT clients open a connection per short query: their latency p50/p95 is measured,
  and every 0.1 s each coordinator's ``impala-server.num-queries-registered`` is
  sampled, for the largest concurrency any coordinator had.

Every phase is bounded by ``--seconds``; every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

NET = "127.0.21"
BIND = f"{NET}.1"
PORTS = {
    "roundrobin": 5711,
    "leastconn": 5712,
    "roundrobin + Impala load (agent)": 5713,
    "leastconn + Impala load (agent)": 5714,
}
AGENT_PORT = 5799
LONG_SQL = "select count(*) from range(5000000) t where hash(t.range) % 7 = 0"
SHORT_SQL = "select count(*) from sample.customers"
LONG_CLIENTS, IDLE_CLIENTS, SHORT_CLIENTS = 2, 12, 4
COORDINATORS = [f"{NET}.{11 + i}" for i in range(3)]


def _config(run: Path) -> str:
    head = (
        "global\n    maxconn 2000\n"
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n"
        "    timeout server 1h\n    option redispatch\n    retries 3\n"
    )
    out = [head]
    for name, port in PORTS.items():
        algo = "leastconn" if name.startswith("leastconn") else "roundrobin"
        out.append(f"listen p{port}\n    bind {BIND}:{port}\n    balance {algo}\n")
        out.append("    option httpchk GET /healthz\n")
        for i, host in enumerate(COORDINATORS, start=1):
            line = f"    server impalad-{i} {host}:21050 check port 25000 inter 1s"
            if "Impala load" in name:
                line += (
                    f" weight 100 agent-check agent-addr {BIND} agent-port {AGENT_PORT}"
                    f' agent-send "impalad-{i} weight\\n" agent-inter 500'
                )
            out.append(line + "\n")
    return "".join(out)


def _registered(host: str) -> int:
    try:
        url = f"http://{host}:25000/jsonmetrics?json"
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(json.loads(r.read()).get("impala-server.num-queries-registered", 0))
    except (OSError, ValueError):
        return 0


def _phase(port: int, seconds: float) -> dict[str, float]:
    from impala.dbapi import connect

    stop = threading.Event()
    short: list[float] = []
    peak = dict.fromkeys(COORDINATORS, 0)
    held: list[Any] = []

    def long_client() -> None:
        conn = connect(host=BIND, port=port, timeout=120)
        cur = conn.cursor()
        while not stop.is_set():
            cur.execute(LONG_SQL)
            cur.fetchall()
        conn.close()

    def short_client() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            conn = connect(host=BIND, port=port, timeout=120)
            cur = conn.cursor()
            cur.execute(SHORT_SQL)
            cur.fetchall()
            conn.close()
            short.append(time.perf_counter() - t0)

    def sampler() -> None:
        while not stop.is_set():
            for host in COORDINATORS:
                peak[host] = max(peak[host], _registered(host))
            time.sleep(0.1)

    threads = [threading.Thread(target=long_client, daemon=True) for _ in range(LONG_CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the long queries are on their coordinators before the pool opens
    for _ in range(IDLE_CLIENTS):
        conn = connect(host=BIND, port=port, timeout=60)
        conn.cursor()  # opens the session: an idle pooled connection
        held.append(conn)
    others = [threading.Thread(target=short_client, daemon=True) for _ in range(SHORT_CLIENTS)]
    others.append(threading.Thread(target=sampler, daemon=True))
    for t in others:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads + others:
        t.join(120)
    for conn in held:
        conn.close()
    short.sort()
    return {
        "queries": len(short),
        "p50_ms": short[len(short) // 2] * 1000 if short else float("nan"),
        "p95_ms": short[int(len(short) * 0.95)] * 1000 if short else float("nan"),
        "peak": max(peak.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args(argv)
    bins = Path(sys.executable).parent
    run = Path(tempfile.mkdtemp(prefix="bench_impala_balance_"))
    cluster = [str(bins / "impala-lb"), "cluster", "--dir", str(run)]
    up = subprocess.run(
        [*cluster, "up", "--net", NET, "--bind", BIND, "--port", "5700"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if up.returncode != 0:
        print(up.stdout + up.stderr, file=sys.stderr)
        return 1
    procs: list[subprocess.Popen[bytes]] = []
    try:
        agent = [str(bins / "impala-lb"), "agent", f"--listen={BIND}:{AGENT_PORT}"]
        agent += ["--interval", "0.5"]
        agent += [
            f"--coordinator=impalad-{i}=http://{h}:25000" for i, h in enumerate(COORDINATORS, 1)
        ]
        procs.append(subprocess.Popen(agent, stderr=subprocess.DEVNULL))
        cfg = run / "bench.cfg"
        cfg.write_text(_config(run))
        procs.append(
            subprocess.Popen([str(bins / "impala-lb"), "-f", str(cfg)], stderr=subprocess.DEVNULL)
        )
        time.sleep(3.0)  # checks come up (rise 2 at 1 s)
        results = {name: _phase(port, args.seconds) for name, port in PORTS.items()}
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        subprocess.run([*cluster, "stop"], capture_output=True, timeout=120)
    print(
        f"\n{LONG_CLIENTS} long-query clients, {IDLE_CLIENTS} idle pooled connections, "
        f"{SHORT_CLIENTS} short-query clients (new connection each), {args.seconds:g} s each\n"
    )
    print("| balance | short queries | p50 ms | p95 ms | most queries on one coordinator |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {int(r['queries'])} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{int(r['peak'])} |"
        )
    print("\n(one run: the figures drift on a shared machine; run it again to compare)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
