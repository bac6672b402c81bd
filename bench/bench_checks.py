"""What 1,000 servers checked every second cost the balancer: CPU and reactor latency.

Run: ``.venv/bin/python -m bench.bench_checks [--servers 1000] [--inter 1000]
[--seconds 5] [--kind tcp|http]``.

The servers point at one backend process on loopback (a TCP echo server, or a
twisted.web ``/healthz`` for ``--kind http``) started and stopped by PID, so its
accept cost is not counted. Checks are spread over the first interval as at
start-up; after one interval of warm-up the script measures, over ``--seconds``
(bounded), the checks completed, this process's CPU time (user+sys) as a share
of one core, and the worst lateness of a 10 ms timer (does a check ever block
the reactor?).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from typing import Any

from haconfig import model
from proxy.checks import CheckStatus, start_checks
from proxy.pool import BackendPool
from proxy.server import Server
from tests.support.procs import free_port, kill_pid


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--inter", type=int, default=1000, help="ms")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--kind", choices=("tcp", "http"), default="tcp")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 60.0)

    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    port = free_port()
    backend = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy.checks.testing",
            "healthz" if args.kind == "http" else "tcp",
            str(port),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert backend.stdout is not None
        if backend.stdout.readline().strip() != b"ready":
            print("backend did not start", file=sys.stderr)
            return 1
        options: tuple[model.Option, ...] = ()
        if args.kind == "http":
            options = (model.Option("httpchk", True, ("GET", "/healthz")),)
        params = model.ServerParams(check=True, inter=args.inter)
        proxy = model.Proxy(
            kind=model.SectionKind.BACKEND,
            name="bench",
            servers=tuple(
                model.Server(f"s{i}", "127.0.0.1", port, params=params) for i in range(args.servers)
            ),
            options=options,
        )
        servers = [
            Server(f"s{i}", clock=reactor, backend="bench", puid=i + 1, host="127.0.0.1", port=port)
            for i in range(args.servers)
        ]
        pool = BackendPool("bench", servers, "roundrobin", timeout_queue=None, clock=reactor)
        service = start_checks(pool, proxy, reactor)
        done = 0
        failed = 0
        lateness = [0.0]

        for checker in service.checkers:
            original = checker.apply

            def counting(result: Any, _orig: Any = original) -> Any:
                nonlocal done, failed
                done += 1
                if not result.passed:
                    failed += 1
                return _orig(result)

            checker.apply = counting  # type: ignore[method-assign]

        tick = [time.monotonic()]

        def heartbeat() -> None:
            now = time.monotonic()
            lateness[0] = max(lateness[0], now - tick[0] - 0.010)
            tick[0] = now
            reactor.callLater(0.010, heartbeat)

        result: dict[str, float] = {}

        def start_measure() -> None:
            nonlocal done, failed
            done = failed = 0
            lateness[0] = 0.0
            tick[0] = time.monotonic()
            result["cpu0"], result["wall0"] = _cpu(), time.monotonic()
            reactor.callLater(seconds, stop_measure)

        def stop_measure() -> None:
            result["cpu"] = _cpu() - result["cpu0"]
            result["wall"] = time.monotonic() - result["wall0"]
            result["done"], result["failed"] = done, failed
            result["late"] = lateness[0]
            service.stopService()
            reactor.stop()

        service.startService()
        reactor.callLater(0.010, heartbeat)
        reactor.callLater(args.inter / 1000 * 1.5, start_measure)
        reactor.run()
    finally:
        kill_pid(backend)
    statuses = {c.last.status for c in service.checkers}
    rate = result["done"] / result["wall"]
    print(
        f"kind={args.kind} servers={args.servers} inter={args.inter}ms "
        f"measured={result['wall']:.1f}s (pid {os.getpid()})"
    )
    print(
        f"checks completed: {int(result['done'])} ({rate:.0f}/s), failed: "
        f"{int(result['failed'])}, last statuses: {sorted(s.name for s in statuses)}"
    )
    print(
        f"CPU: {result['cpu']:.2f}s over {result['wall']:.1f}s = "
        f"{100 * result['cpu'] / result['wall']:.1f}% of one core, "
        f"{1e6 * result['cpu'] / max(1, result['done']):.0f} us per check"
    )
    print(f"worst 10 ms timer lateness: {1000 * result['late']:.1f} ms")
    ok = statuses <= {CheckStatus.L4OK, CheckStatus.L7OK}
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
