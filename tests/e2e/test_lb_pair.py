"""The balancer pair behind one virtual IP, for real: two impala-lb + keepalived pairs in
network namespaces on one bridge, an impalad in a third, impyla clients in a fourth.

With a client opening a new connection and running ``select 1`` every 100 ms through
the VIP, the test kills impala-lb on the active balancer, brings it back (the address
must not move back: nopreempt), SIGKILLs keepalived on the new active, then cuts the
link of the last active's namespace; each time it measures how long until new
connections succeed again, and checks that connections fail only inside those windows.
Namespaces, links and processes are removed at the end, even when the test fails."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haconfig.pair import LbPair, PairBalancer, render_keepalived
from proxy.appliance import netns
from tests.support.procs import wait_for

ROOT = Path(__file__).resolve().parents[2]
VIP = f"{netns.SUBNET}.100"
PORT = 5000
CLIENT = r"""
import json, sys, time
from impala.dbapi import connect
vip, port, stop, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
end = time.monotonic() + limit
import os
while time.monotonic() < end and not os.path.exists(stop):
    t = time.time()
    try:
        conn = connect(host=vip, port=port, timeout=1)
        cur = conn.cursor()
        cur.execute("select 1")
        ok = cur.fetchall() == [(1,)]
        conn.close()
        print(json.dumps({"t": t, "ok": ok}), flush=True)
    except Exception as e:
        print(json.dumps({"t": t, "ok": False, "error": str(e)[:120]}), flush=True)
    time.sleep(0.1)
"""


def _config(impalad: str, stats: Path) -> str:
    return f"""global
    stats socket {stats} mode 600 level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 1m
    timeout server 1m
listen impala
    bind *:{PORT}
    balance leastconn
    server impalad {impalad}:21050 check
"""


class Pair:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = netns.Net(f"ilb{os.getpid() % 100000}")
        self.lbs: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        net, tmp = self.net, self.tmp
        svc = net.host("svc", 21)
        net.host("cl", 50)
        pair = LbPair(
            vip=f"{VIP}/24",
            interface="eth0",
            balancers=(
                PairBalancer("lb1", net.host("lb1", 11), 100),
                PairBalancer("lb2", net.host("lb2", 12), 90),
            ),
        )
        py = sys.executable
        net.spawn(
            "svc",
            [py, "-m", "backends.impalad.main", f"--listen_host={svc}", "--hs2_http_port=0",
             "--beeswax_port=0", "--state_store_host=", f"--warehouse_dir={tmp / 'wh'}"],
            tmp / "impalad.log",
            cwd=ROOT,
        )  # fmt: skip
        for b in pair.balancers:
            stats = tmp / f"{b.name}.sock"
            cfg = tmp / f"{b.name}.cfg"
            cfg.write_text(_config(svc, stats))
            conf = tmp / f"{b.name}-keepalived.conf"
            conf.write_text(
                render_keepalived(
                    LbPair(pair.vip, pair.interface, pair.balancers, stats_socket=str(stats)),
                    b.name,
                )
            )
            self.lbs[b.name] = {"cfg": cfg, "stats": stats, "conf": conf}
            self.start_lb(b.name)
            self.start_keepalived(b.name)

    def start_lb(self, name: str) -> None:
        lb = self.lbs[name]
        lb["lb"] = self.net.spawn(
            name,
            [str(Path(sys.executable).parent / "impala-lb"), "-f", str(lb["cfg"])],
            self.tmp / f"{name}.log",
            cwd=ROOT,
        )

    def start_keepalived(self, name: str) -> None:
        lb, tmp = self.lbs[name], self.tmp
        lb["keepalived"] = self.net.spawn(
            name,
            ["keepalived", "-n", "-l", "-D", "-P", "-f", str(lb["conf"]),
             f"--pid={tmp / name}.pid", f"--vrrp_pid={tmp / name}.vrrp.pid"],
            tmp / f"{name}-keepalived.log",
        )  # fmt: skip

    def crash_keepalived(self, name: str) -> None:
        """SIGKILL keepalived's whole process group (the parent and its VRRP child), wait
        for it to be gone and drop the pid files it left."""
        proc = self.lbs[name]["keepalived"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

        def gone() -> bool:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(f"{name}'s keepalived processes to be gone", gone, timeout=10)
        for pid_file in (f"{name}.pid", f"{name}.vrrp.pid"):
            (self.tmp / pid_file).unlink(missing_ok=True)

    def holders(self) -> list[str]:
        return [n for n in self.lbs if f"{VIP}/24" in self.net.addresses(n)]

    def holder(self) -> str | None:
        """The one balancer holding the VIP (None: none, or both)."""
        held = self.holders()
        return held[0] if len(held) == 1 else None

    def close(self) -> None:
        self.net.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    why = netns.available()
    assert not why, why  # CI runs as root, where namespaces work: no skipping
    p = Pair(tmp_path)
    try:
        p.start()
        yield p
    finally:
        p.close()


def _outcomes(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _recovered(log: Path, since: float) -> float | None:
    """Seconds from ``since`` to the first successful query started after it."""
    for o in _outcomes(log):
        if o["t"] >= since and o["ok"]:
            return float(o["t"] - since)
    return None


def test_the_vip_moves_on_every_failure_and_never_back(pair: Pair, tmp_path: Path) -> None:
    net = pair.net
    # both start BACKUP with nopreempt: the first whose check passes takes the address
    first = wait_for("one balancer to hold the VIP", pair.holder, timeout=30)
    other = "lb2" if first == "lb1" else "lb1"
    stop = tmp_path / "stop-client"
    log = tmp_path / "client.log"
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    client = net.spawn("cl", [sys.executable, str(script), VIP, str(PORT), str(stop), "150"],
                       log, cwd=ROOT)  # fmt: skip
    wait_for("queries through the VIP", lambda: any(o["ok"] for o in _outcomes(log)), 60)
    windows: list[tuple[str, float, float]] = []

    def fault(what: str, act: Any, then: str, *, both_ok: bool = False) -> None:
        t0 = time.time()
        act()
        wait_for(
            f"{then} to hold the VIP after {what}",
            lambda: then in pair.holders() if both_ok else pair.holder() == then,
            20,
        )
        wait_for(
            f"a query to succeed after {what}",
            lambda: _recovered(log, t0) is not None,
            timeout=20,
        )
        windows.append((what, t0, t0 + float(_recovered(log, t0) or 0)))

    def entered(name: str, state: str) -> int:
        return (tmp_path / f"{name}-keepalived.log").read_text().count(f"Entering {state} STATE")

    # 1. impala-lb dies on the active: keepalived's check fails, the other takes over
    fault("impala-lb killed", lambda: os.kill(pair.lbs[first]["lb"].pid, signal.SIGKILL), other)
    # 2. it comes back: its balancer serves again but, nopreempt, the VIP stays
    backups = entered(first, "BACKUP")
    pair.start_lb(first)
    wait_for(f"{first} back as BACKUP", lambda: entered(first, "BACKUP") > backups, 20)
    deadline = time.monotonic() + 4  # a bounded look: four adverts, and it must not move
    while time.monotonic() < deadline:
        assert pair.holder() == other, "the returning balancer took the VIP back"
        time.sleep(0.2)
    # 3. keepalived crashes on the active, its VRRP child too (no goodbye advert): the
    # other takes over once three adverts are missed (the dead keepalived leaves the
    # address on its interface until it starts again)
    fault("keepalived SIGKILLed", lambda: pair.crash_keepalived(other), first, both_ok=True)
    pair.start_keepalived(other)
    wait_for(f"{other}'s keepalived to drop the stale VIP", lambda: pair.holder() == first, 20)
    # 4. the active's whole namespace loses its link
    fault("link cut", lambda: net.link(first, up=False), other)
    stop.touch()
    client.wait(timeout=30)
    outcomes = _outcomes(log)
    failed = [o for o in outcomes if not o["ok"]]
    outside = [o for o in failed if not any(a - 1.5 <= o["t"] <= b for _, a, b in windows)]
    report = {what: round(b - a, 2) for what, a, b in windows}
    print(f"recovery seconds: {report}; {len(failed)} of {len(outcomes)} queries failed")
    assert not outside, f"queries failed outside the failover windows: {outside[:5]}"
    # A balancer whose check fails sends priority 0 and the peer takes over at once (2
    # failed checks, 1 s apart: measured 2.2-2.3 s); one that dies silently or loses its
    # link is declared down after 3 missed adverts plus skew (VRRP's master-down
    # interval: the link cut measured 4.2-4.5 s). The bounds leave room for a loaded
    # machine; the figures are printed above and reported in the README.
    assert report["impala-lb killed"] < 6.0, report
    assert report["keepalived SIGKILLed"] < 10.0, report
    assert report["link cut"] < 10.0, report
