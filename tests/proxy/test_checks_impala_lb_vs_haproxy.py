"""``impala-lb -f`` and HAProxy 2.6 run the same config: same health states, same traffic
effect, same ``show stat`` columns over their stats sockets."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.balancer import HAPROXY, OURS, STATS_HEAD, ask, check_backend, spawn, stat_rows
from tests.support.procs import free_port, kill_pid, wait_for

CONFIG = (
    STATS_HEAD
    + """frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} check inter 200 rise 2 fall 2
    server b 127.0.0.1:{b} check inter 200 rise 2 fall 2
"""
)


class Procs:
    """Processes started by the test, SIGKILLed by PID at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def backend(self, port: int) -> subprocess.Popen[bytes]:
        proc = check_backend(port)
        self.procs.append(proc)
        return proc

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = spawn(argv)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        kill_pid(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.stop_all()


def rows(path: str) -> dict[str, dict[str, str]]:
    return stat_rows(ask(path, b"show stat\n"))


def echo_once(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"ping")
        return c.recv(16)


def test_impala_lb_matches_haproxy(tmp_path: Path, procs: Procs) -> None:
    """Kill and restart a backend: both balancers walk a through the same statuses, send
    new connections to b only while a is DOWN, and end with equal ``show stat`` columns."""
    ports = {"a": free_port(), "b": free_port()}
    backend_a = procs.backend(ports["a"])
    procs.backend(ports["b"])
    sides = {}
    for name, argv0 in (("haproxy", HAPROXY), ("ours", OURS)):
        sock, fe = str(tmp_path / f"{name}.sock"), free_port()
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(CONFIG.format(sock=sock, fe=fe, **ports))
        procs.start([*argv0, str(cfg)])
        sides[name] = (sock, fe)
    socks = [sock for sock, _ in sides.values()]

    def statuses(server: str) -> list[tuple[str, str]]:
        return [(r[server]["status"], r[server]["check_status"]) for r in map(rows, socks)]

    def both(server: str, want: tuple[str, str]) -> Callable[[], bool]:
        return lambda: statuses(server) == [want, want]

    up = ("UP", "L4OK")
    wait_for(
        "both stats sockets",
        lambda: all(Path(s).exists() for s in socks),
        tolerate=(OSError,),
        interval=0.03,
    )
    wait_for("a UP on both", both("a", up), tolerate=(OSError,), interval=0.03)
    wait_for("b UP on both", both("b", up), tolerate=(OSError,), interval=0.03)

    def walk(target: tuple[str, str]) -> list[list[tuple[str, str]]]:
        """Sample server a on both sides until both are at ``target``; the deduplicated
        sequence of (status, check_status) each side went through."""
        seen: list[list[tuple[str, str]]] = [[], []]
        end = time.monotonic() + 10
        while time.monotonic() < end:
            sample = statuses("a")
            for side, now in zip(seen, sample, strict=True):
                if not side or side[-1] != now:
                    side.append(now)
            if sample == [target, target]:
                break
            time.sleep(0.02)
        return seen

    procs.stop(backend_a)
    theirs, ours = walk(("DOWN", "L4CON"))
    # the first sample may already be past the UP both started from
    falling = [("UP 1/2", "L4CON"), ("DOWN", "L4CON")]
    assert [x for x in theirs if x != up] == falling
    assert [x for x in ours if x != up] == falling

    before = [rows(s) for s in socks]
    for _, fe in sides.values():
        for _ in range(4):
            assert echo_once(fe) == b"ping"
    after = [rows(s) for s in socks]
    for old, new in zip(before, after, strict=True):
        assert int(new["b"]["stot"]) - int(old["b"]["stot"]) == 4
        assert new["a"]["stot"] == old["a"]["stot"]

    procs.backend(ports["a"])
    theirs, ours = walk(up)
    rising = [("DOWN 1/2", "L4OK"), up]
    assert [s for s in theirs if s != ("DOWN", "L4CON")] == rising
    assert [s for s in ours if s != ("DOWN", "L4CON")] == rising

    same = [
        "status",
        "weight",
        "act",
        "bck",
        "chkfail",
        "chkdown",
        "check_status",
        "check_code",
        "check_desc",
        "last_chk",
        "check_rise",
        "check_fall",
        "check_health",
        "stot",
        "lbtot",
        "scur",
        "uweight",
        "mode",
    ]
    ha, mine = (rows(s) for s in socks)
    for server in ("a", "b", "BACKEND"):
        assert {k: mine[server][k] for k in same} == {k: ha[server][k] for k in same}, server


STATS_CONFIG = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
backend be
    server a 127.0.0.1:{a} check inter 200
listen stats
    bind 127.0.0.1:{port}
    mode http
    stats enable
    stats uri /stats
    stats refresh 10s
    stats auth ops:pw
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


def test_impala_lb_serves_stats_page_and_metrics(tmp_path: Path, procs: Procs) -> None:
    """``impala-lb -f`` serves a ``listen stats`` section: page with auth, ``;csv``, and
    ``/metrics`` that passes ``promtool check metrics``."""
    import base64
    import urllib.error
    import urllib.request

    port, a = free_port(), free_port()
    procs.backend(a)
    cfg = tmp_path / "stats.cfg"
    cfg.write_text(STATS_CONFIG.format(port=port, a=a))
    procs.start([*OURS, str(cfg)])
    base = f"http://127.0.0.1:{port}"

    def get(path: str, auth: bool = True) -> tuple[int, bytes]:
        request = urllib.request.Request(base + path)
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(b"ops:pw").decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    wait_for("the stats page", lambda: get("/stats")[0] == 200, tolerate=(OSError,), interval=0.03)
    assert get("/stats", auth=False)[0] == 401
    wait_for(
        "L4OK in ;csv",
        lambda: b",L4OK," in get("/stats;csv")[1],
        tolerate=(OSError,),
        interval=0.03,
    )
    status, body = get("/metrics", auth=False)
    assert status == 200
    assert b'haproxy_server_check_status{proxy="be",server="a",state="L4OK"} 1' in body
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
