"""A bounded chaos soak over ``cluster up``, with the real clients through the balancer.

impyla clients run queries (a new connection each) and INSERT streams (one row per
statement, each with a sequence number never reused) through the balancer, and an
impala-shell run lands in every phase, while impalads are SIGKILLed, SIGSTOPped (hung,
not dead: the health checks must catch it by timeout), resumed, shut down gracefully
(SIGRTMIN) and restarted, and the balancer is reloaded twice. It reports, and asserts:

- failed queries other than those in flight on a daemon when its fault began, or
  started before the balancer had marked it down: must be 0;
- rows lost (an acknowledged INSERT missing) or duplicated (a sequence number twice,
  which a replayed connection would cause): must be 0;
- the balancer's descriptors and RSS before and after: no growth past a small bound.

Each phase waits for conditions (server DOWN/UP in ``show stat``, a number of further
queries done), never for a fixed time; the whole run is bounded by DEADLINE.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from impala.dbapi import connect

from proxy.appliance import cluster, daemon
from tests.support.balancer import stat_rows
from tests.support.cluster import cli, cluster_up, shell
from tests.support.procs import wait_for

NET = "127.0.12"
BIND = f"{NET}.1"
PORT = 5300
BACKEND = "impala_shell"
DEADLINE = 240.0
#: queries that must complete in each phase before it moves on
PER_PHASE = 12
QUERY_THREADS = 3
WRITERS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from cluster_up(
        tmp_path_factory,
        net=NET,
        port=PORT,
        bind=BIND,
        impalad_flags=("--shutdown_grace_period_s=2",),
    )


@dataclasses.dataclass
class Call:
    start: float
    end: float
    ok: bool
    error: str = ""


@dataclasses.dataclass
class Fault:
    what: str
    began: float
    marked_down: float = float("inf")


class Traffic:
    """The client threads and what they saw."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.calls: list[Call] = []
        self.acked: dict[int, set[int]] = {w: set() for w in range(WRITERS)}
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._queries, daemon=True) for _ in range(QUERY_THREADS)
        ] + [threading.Thread(target=self._writes, args=(w,), daemon=True) for w in range(WRITERS)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def done(self) -> int:
        with self.lock:
            return sum(1 for c in self.calls if c.ok)

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def _one(self, sql: str, check: Callable[[list[tuple[object, ...]]], bool] | None) -> Call:
        t0 = time.monotonic()
        try:
            conn = connect(host=BIND, port=PORT, timeout=60)
            try:
                cur = conn.cursor()
                cur.execute(sql)
                rows = cur.fetchall() if check is not None else []
                cur.close()
            finally:
                conn.close()
            if check is not None and not check(rows):
                return Call(t0, time.monotonic(), False, f"wrong answer {rows!r}")
            return Call(t0, time.monotonic(), True)
        except Exception as e:
            return Call(t0, time.monotonic(), False, f"{type(e).__name__}: {e}"[:300])

    def _queries(self) -> None:
        while not self.stop.is_set():
            self._record(
                self._one("select count(*) from sample.orders", lambda rows: rows == [(100000,)])
            )

    def _writes(self, writer: int) -> None:
        seq = 0
        while not self.stop.is_set():
            seq += 1  # never reused, whatever happened to the last one
            call = self._one(f"insert into chaos.t values ({writer}, {seq})", None)
            self._record(call)
            if call.ok:
                with self.lock:
                    self.acked[writer].add(seq)


def stat_field(run: Path, server: str, field: str = "status") -> str:
    """One field of the impala-shell backend's ``show stat`` row for ``server``."""
    rows = stat_rows(cluster.admin_command(run, "show stat"), backend=BACKEND)
    assert server in rows, f"{server} not in show stat"
    return rows[server][field]


def lb_usage(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return fds, int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_chaos_soak_loses_nothing(run: Path) -> None:
    """Through kills, a hang, a graceful shutdown, restarts and two reloads: no query
    fails that the balancer could have saved, no row is lost or duplicated, and the
    balancer ends with the descriptors and memory it started with."""
    t_end = time.monotonic() + DEADLINE
    daemons = {d.name: d for d in cluster.load(run)[0]}
    lb = daemons[cluster.LB_NAME]
    assert lb.pid is not None
    shell(BIND, PORT, "create database if not exists chaos")
    shell(BIND, PORT, "create table chaos.t (writer int, seq int)")
    # Faster checks than the appliance's 5 s, so that a hung impalad is caught in about
    # two seconds: the first reload of the run.
    cfg = run / "haproxy.cfg"
    text = cfg.read_text()
    fast = text.replace("timeout check 5s", "timeout check 1s").replace(
        "default-server inter 5s fastinter 1s downinter 5s rise 2 fall 3",
        "default-server inter 500 fastinter 250 downinter 500 rise 2 fall 2",
    )
    assert fast != text
    lb_log = run / "logs" / f"{cluster.LB_NAME}.out"

    def reload() -> None:
        applied = lb_log.read_text().count("reload applied")
        os.kill(lb.pid, signal.SIGHUP)  # type: ignore[arg-type]
        wait_for("reload applied", lambda: lb_log.read_text().count("reload applied") > applied)

    traffic = Traffic()
    faults: list[Fault] = []

    def more_queries(n: int = PER_PHASE) -> None:
        target = traffic.done() + n
        wait_for(f"{n} more queries", lambda: traffic.done() >= target, timeout=90)
        assert time.monotonic() < t_end, "the soak ran past its deadline"

    def fault(what: str, server: str, act: Callable[[], None]) -> Fault:
        f = Fault(what, time.monotonic())
        faults.append(f)
        act()
        # DOWN (killed, hung) or DRAIN (quiescing, told by the Impala agent)
        wait_for(f"{server} out", lambda: stat_field(run, server).startswith(("DOWN", "DRAIN")), 30)
        f.marked_down = time.monotonic()
        more_queries()
        assert "| 1 " in shell(BIND, PORT, "select 1")  # impala-shell lands elsewhere
        return f

    def back_up(server: str) -> None:
        wait_for(f"{server} UP", lambda: stat_field(run, server) == "UP", 60)
        more_queries()

    def pid(name: str) -> int:
        p = {d.name: d for d in cluster.load(run)[0]}[name].pid
        assert p is not None
        return p

    traffic.start()
    try:
        more_queries()
        before = lb_usage(lb.pid)
        reload()
        more_queries()
        # SIGKILL: connections refused, redispatched at once
        fault("SIGKILL impalad-1", "impalad-1", lambda: os.kill(pid("impalad-1"), 9))
        assert cli(run, "start", "impalad-1")[0] == 0
        back_up("impalad-1")
        # SIGSTOP: hung, not dead; caught by the check timeout
        hung = pid("impalad-2")
        fault("SIGSTOP impalad-2", "impalad-2", lambda: os.kill(hung, signal.SIGSTOP))
        os.kill(hung, signal.SIGCONT)
        back_up("impalad-2")
        # graceful shutdown: quiesces, then exits after its grace period
        leaving = pid("impalad-3")
        fault("SIGRTMIN impalad-3", "impalad-3", lambda: os.kill(leaving, signal.SIGRTMIN))
        wait_for("impalad-3 exited", lambda: not daemon.alive(leaving), 60)
        assert cli(run, "start", "impalad-3")[0] == 0
        back_up("impalad-3")
        reload()
        more_queries()
    finally:
        traffic.stop.set()
        for t in traffic.threads:
            t.join(90)
    assert not any(t.is_alive() for t in traffic.threads)

    def excused(call: Call) -> bool:
        # in flight as a fault began, or started before the balancer knew of it
        return any(call.end >= f.began and call.start <= f.marked_down for f in faults)

    failed = [c for c in traffic.calls if not c.ok]
    unexcused = [c for c in failed if not excused(c)]
    rows = shell(BIND, PORT, "select writer, seq from chaos.t")
    seen: dict[int, list[int]] = {w: [] for w in range(WRITERS)}
    for line in rows.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit() and cells[1].isdigit():
            seen[int(cells[0])].append(int(cells[1]))
    lost = {w: traffic.acked[w] - set(seen[w]) for w in seen}
    duplicated = {w: len(seen[w]) - len(set(seen[w])) for w in seen}
    wait_for("no session left", lambda: stat_field(run, "BACKEND", "scur") == "0")
    after = lb_usage(lb.pid)
    print(
        f"\nchaos soak: {len(traffic.calls)} calls, {len(failed)} failed "
        f"({len(unexcused)} after the server was marked down), "
        f"rows acknowledged {sum(map(len, traffic.acked.values()))}, "
        f"lost {sum(map(len, lost.values()))}, duplicated {sum(duplicated.values())}; "
        f"balancer fds {before[0]} -> {after[0]}, RSS {before[1] >> 20} -> {after[1] >> 20} MiB"
    )
    by_fault = {f.what: sum(1 for c in failed if c.end >= f.began and c.start <= f.marked_down)
                for f in faults}  # fmt: skip
    kinds: dict[str, int] = {}
    for c in failed:
        kinds[c.error[:70]] = kinds.get(c.error[:70], 0) + 1
    print(f"failed calls by fault window: {by_fault}; by error: {kinds}")
    assert unexcused == [], unexcused[:5]
    assert all(not v for v in lost.values()), lost
    assert all(v == 0 for v in duplicated.values()), duplicated
    assert sum(map(len, traffic.acked.values())) > PER_PHASE
    assert after[0] <= before[0] + 2, (before, after)
    assert after[1] - before[1] < 32 << 20, (before, after)
