"""Where impala-lb's CPU goes, per workload: py-spy over the balancer, CPU per operation.

Run (py-spy is not a dependency: ``.venv/bin/pip install py-spy`` first)::

    .venv/bin/python -m bench.profile_proxy cps      # new connections (connect, 1 RPC, close)
    .venv/bin/python -m bench.profile_proxy rt64     # round trips on 64 connections
    .venv/bin/python -m bench.profile_proxy cps --no-spy   # CPU per operation only
    .venv/bin/python -m bench.profile_proxy cps --strace [--haproxy]  # system calls per operation

It starts the benchmark's backends and one impala-lb (``bench.bench_proxy``'s config),
runs the workload for ``--seconds``, and prints the balancer's CPU time per operation
(user + system, from ``/proc``: what the process itself spent, whatever else the
machine does) and, with py-spy sampling it, the functions by their own time and by
their time including callees. Every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.bench_proxy import CLIENT, proxy_config
from tests.support.procs import Children, free_port, wait_port

WORKLOADS = {
    # name: (client kind, which frontend: 0 source / 1 rpc, client argument, ops key)
    "cps": ("cps", 1, 32, "cps"),
    "rt64": ("rt", 1, 64, "rps"),
    "rt1": ("rt", 1, 1, "rps"),
    "bulk": ("bulk", 0, 1, "MBps"),
}


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU of ``pid`` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def top(raw: Path, n: int) -> str:
    """The ``n`` functions with the most samples, by own time and with callees."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "no samples\n"
    out = [f"{samples} samples\n", "own time:\n"]
    out += [f"  {100 * c / samples:5.1f}%  {f}\n" for f, c in own.most_common(n)]
    out.append("including callees:\n")
    out += [f"  {100 * c / samples:5.1f}%  {f}\n" for f, c in total.most_common(n)]
    return "".join(out)


def per_operation(table: str, ops: float, n: int) -> str:
    """strace -c's table as calls per operation, the most frequent first."""
    rows = []
    for line in table.splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(fields) >= 5 and fields[3].isdigit() and not fields[-1].startswith("-"):
            errors = int(fields[4]) if len(fields) == 6 else 0
            rows.append((int(fields[3]), errors, fields[-1]))
    rows = [r for r in rows if r[2] != "total"]
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    out = [f"{total / max(1.0, ops):.2f} system calls per operation\n"]
    for calls, errors, name in rows[:n]:
        failed = f" ({errors / max(1.0, ops):.2f} failed)" if errors else ""
        out.append(f"  {calls / max(1.0, ops):6.2f}  {name}{failed}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-spy", action="store_true", help="CPU per operation only")
    ap.add_argument(
        "--haproxy", action="store_true", help="measure HAProxy (nbthread 1) instead, no py-spy"
    )
    ap.add_argument(
        "--strace",
        action="store_true",
        help="count the balancer's system calls per operation instead (strace -c; no py-spy)",
    )
    args = ap.parse_args(argv)
    kind, which, arg, key = WORKLOADS[args.workload]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not (args.no_spy or args.strace or args.haproxy) and not Path(spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy (or use --no-spy)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="profile_proxy_"))
    children = Children()
    try:
        src, rpc = free_port(), free_port()
        children.ready([sys.executable, "-m", "bench.bench_proxy", "--role", "backends",
                        str(src), str(rpc)])  # fmt: skip
        fe = (free_port(), free_port())
        cfg = tmp / "impala-lb.cfg"
        kind_name = "haproxy" if args.haproxy else "impala-lb"
        cfg.write_text(proxy_config(kind_name, src, rpc, *fe))
        lb_argv = [str(Path(sys.executable).parent / "impala-lb"), "-f", str(cfg)]
        if args.haproxy:
            lb_argv = ["haproxy", "-db", "-q", "-f", str(cfg)]
            args.no_spy = True
        raw = tmp / "profile.txt"
        lb = children.popen(lb_argv, stderr=subprocess.DEVNULL)
        lb_pid = lb.pid
        wait_port(fe[which])
        sampler = None
        tracer = None
        if args.strace:
            args.no_spy = True
            tracer = children.popen(
                ["strace", "-c", "-f", "-qq", "-o", str(raw), "-p", str(lb_pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # strace attaches
        if not args.no_spy:
            # attached once it listens: the profile holds the workload, not the start
            argv_spy = [spy, "record", "--pid", str(lb_pid), "--rate", "499", "--format",
                        "raw", "--nonblocking", "--duration", str(int(args.seconds)),
                        "-o", str(raw)]  # fmt: skip
            sampler = children.popen(argv_spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # py-spy attaches; the balancer's last imports are done
        before = cpu_times(lb_pid)
        out = subprocess.run(
            [*CLIENT, kind, str(fe[which]), str(arg), str(args.seconds)],
            capture_output=True,
            timeout=args.seconds + 60,
            check=True,
        )
        after = cpu_times(lb_pid)
        user, system = after[0] - before[0], after[1] - before[1]
        spent = user + system
        result = json.loads(out.stdout.decode().strip().splitlines()[-1])
        ops = result[key] * args.seconds
        print(f"{args.workload}: {result[key]:,.1f} {key}; {kind_name} CPU {spent:.2f} s")
        if key in ("cps", "rps"):
            per = 1e6 / max(1.0, ops)
            print(
                f"  {per * spent:.1f} us of {kind_name} CPU per operation "
                f"({per * user:.1f} user, {per * system:.1f} system)"
            )
        if sampler is not None:
            sampler.wait(60)
            print(top(raw, args.top))
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(60)
            print(per_operation(raw.read_text(), ops, args.top))
    finally:
        children.stop()
        if os.environ.get("PROFILE_KEEP"):
            print(f"raw profile kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
