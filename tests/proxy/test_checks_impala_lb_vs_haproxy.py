"""``impala-lb -f`` and HAProxy 2.6 run the same config: same health states, same traffic
effect, same ``show stat`` columns over their stats sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.stats import FIELDS

BIN = Path(sys.executable).parent / "impala-lb"
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
global
    stats socket {sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:{a} check inter 200 rise 2 fall 2
    server b 127.0.0.1:{b} check inter 200 rise 2 fall 2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Procs:
    """Processes started by the test, stopped by PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def backend(self, port: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.checks.testing", "tcp", str(port)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        self.procs.append(proc)
        return proc

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.stop_all()


def ask(path: str, command: bytes) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(command)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def rows(path: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in ask(path, b"show stat\n").splitlines():
        cells = line.split(",")
        if len(cells) > 40 and cells[0] == "be":
            rec = dict(zip(FIELDS, cells, strict=False))
            rec["check_status"] = rec["check_status"].removeprefix("* ")
            out[cells[1]] = rec
    return out


def wait_for(cond: Callable[[], bool], limit: float = 10.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.03)
    raise TimeoutError("condition not reached")


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
    for name, argv0 in (("haproxy", ["haproxy", "-db", "-f"]), ("ours", [str(BIN), "-f"])):
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
    wait_for(lambda: all(Path(s).exists() for s in socks))
    wait_for(both("a", up))
    wait_for(both("b", up))

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
    procs.start([str(BIN), "-f", str(cfg)])
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

    wait_for(lambda: get("/stats")[0] == 200)
    assert get("/stats", auth=False)[0] == 401
    wait_for(lambda: b",L4OK," in get("/stats;csv")[1])
    status, body = get("/metrics", auth=False)
    assert status == 200
    assert b'haproxy_server_check_status{proxy="be",server="a",state="L4OK"} 1' in body
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
