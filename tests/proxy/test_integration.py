"""The balancer as a real process on loopback: bytes, memory, maxconn, retries, logs, -c."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.balancer import IMPALA_LB
from tests.support.procs import Children, free_port, wait_for, wait_port

SERVERS = Path(__file__).with_name("_servers.py")


class Procs(Children):
    """Processes started by one test, stopped by PID at the end."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.tmp = tmp

    def backend(self, mode: str) -> int:
        port = free_port()
        self.ready([sys.executable, str(SERVERS), mode, str(port)])
        return port

    def balancer(
        self, config: str, port: int, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        cfg = self.tmp / f"lb{len(self.procs)}.cfg"
        cfg.write_text(config)
        p = self.popen(
            [IMPALA_LB, "-f", str(cfg), *extra],
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        wait_port(port)
        return p


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    ps = Procs(tmp_path)
    yield ps
    ps.stop()


class Syslog:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def lines(self, count: int, timeout: float = 5.0) -> list[str]:
        out: list[str] = []
        end = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                out.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        return out


def config(lb_port: int, servers: str, extra: str = "", log_port: int | None = None) -> str:
    log = f"    log 127.0.0.1:{log_port} local2\n" if log_port else ""
    return (
        f"global\n    maxconn 2000\n{log}"
        "defaults\n    mode tcp\n    log global\n    option tcplog\n"
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
        f"listen lb\n    bind 127.0.0.1:{lb_port}\n{extra}{servers}"
    )


def _wait_stderr(p: subprocess.Popen[bytes], text: bytes, timeout: float = 10.0) -> None:
    """Poll the balancer's stderr (a pipe) until ``text`` shows in it."""
    assert p.stderr is not None
    os.set_blocking(p.stderr.fileno(), False)
    seen = bytearray()

    def found() -> bool:
        chunk = p.stderr.read() if p.stderr is not None else None
        if chunk:
            seen.extend(chunk)
        return text in seen

    wait_for(f"{text!r} in the balancer's log", found, timeout=timeout)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@dataclass
class Stream:
    i: int
    seq: int = 0
    out: bytes = b""
    sent_crc: int = 0
    recv_crc: int = 0
    got: int = 0


def _piece(conn: int, seq: int, base: bytes) -> bytes:
    return conn.to_bytes(4, "big") + seq.to_bytes(4, "big") + base[8:]


def state_key(obj: object) -> socket.socket:
    assert isinstance(obj, socket.socket)
    return obj


def test_gigabyte_through_64_connections_arrives_unchanged(procs: Procs) -> None:
    """1 GiB sent over 64 concurrent proxied connections to echo backends comes back intact."""
    echo1, echo2 = procs.backend("echo"), procs.backend("echo")
    lb = free_port()
    procs.balancer(
        config(
            lb,
            f"    server e1 127.0.0.1:{echo1}\n    server e2 127.0.0.1:{echo2}\n",
            "    balance leastconn\n",
        ),
        lb,
    )
    conns, per_conn, piece = 64, 16 << 20, 64 << 10
    base = os.urandom(piece)
    sel = selectors.DefaultSelector()
    state: dict[socket.socket, Stream] = {}
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", lb))
        s.setblocking(False)
        state[s] = Stream(i)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    open_conns = conns
    deadline = time.monotonic() + 60
    while open_conns and time.monotonic() < deadline:
        for key, ev in sel.select(1.0):
            s = state_key(key.fileobj)
            st = state[s]
            if ev & selectors.EVENT_WRITE:
                if not st.out and st.seq * piece < per_conn:
                    st.out = _piece(st.i, st.seq, base)
                    st.sent_crc = zlib.crc32(st.out, st.sent_crc)
                    st.seq += 1
                if st.out:
                    try:
                        n = s.send(st.out)
                        st.out = st.out[n:]
                    except BlockingIOError:
                        pass
                if not st.out and st.seq * piece >= per_conn:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                data = s.recv(1 << 20)
                if not data:
                    sel.unregister(s)
                    open_conns -= 1
                    continue
                st.recv_crc = zlib.crc32(data, st.recv_crc)
                st.got += len(data)
    assert open_conns == 0, "transfer did not finish within 60 s"
    for s, st in state.items():
        assert st.got == per_conn
        assert st.recv_crc == st.sent_crc
        s.close()


def test_slow_reader_does_not_grow_balancer_memory(procs: Procs) -> None:
    """Clients reading slowly from a firehose server keep the balancer's RSS bounded."""
    hose = procs.backend("firehose")
    lb = free_port()
    p = procs.balancer(config(lb, f"    server f 127.0.0.1:{hose}\n"), lb)
    before = rss_kib(p.pid)
    clients = [socket.create_connection(("127.0.0.1", lb)) for _ in range(8)]
    for c in clients:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    got = 0
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        for c in clients:
            got += len(c.recv(16384))
        time.sleep(0.01)
    after = rss_kib(p.pid)
    for c in clients:
        c.close()
    assert got > 0
    # 8 sessions x (one 256 KiB chunk per direction) + allocator slack: far below 40 MiB.
    assert after - before < 40 * 1024, (before, after)


def test_frontend_maxconn_leaves_extra_client_in_backlog(procs: Procs) -> None:
    """With maxconn 2 a third client waits unserved until one of the first two leaves."""
    echo = procs.backend("echo")
    lb = free_port()
    log = Syslog()
    procs.balancer(config(lb, f"    server e 127.0.0.1:{echo}\n", "    maxconn 2\n", log.port), lb)
    log.lines(1)  # wait_port's probe connection has ended (its line follows the release)
    first = [socket.create_connection(("127.0.0.1", lb)) for _ in range(2)]
    for c in first:
        c.sendall(b"x")
        assert c.recv(10) == b"x"
    third = socket.create_connection(("127.0.0.1", lb), timeout=5)
    third.sendall(b"y")
    third.settimeout(0.5)
    with pytest.raises(TimeoutError):
        third.recv(10)
    first[0].close()
    third.settimeout(5)
    assert third.recv(10) == b"y"
    for c in (*first[1:], third):
        c.close()


def test_redispatch_from_refused_port_and_syslog_line(procs: Procs) -> None:
    """roundrobin + redispatch skips a refused server; syslog gets a ``+1`` line. (That it
    does so at once, with no turn-around, is proven on a clock in test_connect.py.)"""
    echo = procs.backend("echo")
    refused = free_port()
    lb = free_port()
    log = Syslog()
    servers = f"    server bad 127.0.0.1:{refused}\n    server good 127.0.0.1:{echo}\n"
    procs.balancer(config(lb, servers, "    option redispatch\n", log.port), lb)
    log.lines(1, timeout=0.5)  # the readiness probe's line
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
            c.sendall(b"ping")
            assert c.recv(10) == b"ping"
    lines = log.lines(2)
    assert any(" lb lb/good " in ln and "/+1 " in ln for ln in lines), lines
    assert all(ln.startswith("<150>") for ln in lines)


def test_retries_without_redispatch_close_with_SC(procs: Procs) -> None:
    """retries 1 against a refused port: one more attempt, then the client is closed, ``SC``
    (the 1 s turn-around between them is proven on a clock in test_connect.py)."""
    refused = free_port()
    lb = free_port()
    log = Syslog()
    procs.balancer(
        config(lb, f"    server bad 127.0.0.1:{refused}\n", "    retries 1\n", log.port), lb
    )
    log.lines(1, timeout=1.5)
    with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
        assert c.recv(10) == b""
    (line,) = log.lines(1)
    assert " lb/bad " in line and " SC " in line and line.rstrip().endswith("/1 0/0")


def test_server_that_never_answers_is_closed_sC(procs: Procs) -> None:
    """A server whose SYNs go unanswered: each attempt ends at timeout connect, then ``sC``
    with the retry counted (the times themselves: test_connect.py, on a clock)."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue: later SYNs are dropped
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    lb = free_port()
    log = Syslog()
    cfg = config(lb, f"    server dead 127.0.0.1:{port}\n", "    retries 1\n", log.port)
    procs.balancer(cfg.replace("timeout connect 2s", "timeout connect 300ms"), lb)
    log.lines(1, timeout=1.5)
    with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
        assert c.recv(10) == b""
    (line,) = log.lines(1)
    for f in fillers:
        f.close()
    blackhole.close()
    assert line.rstrip().endswith("/1 0/0"), line  # one retry
    assert " lb/dead " in line and " sC " in line and "/-1/" in line


def test_sigusr1_drains_then_exits_and_removes_pidfile(procs: Procs, tmp_path: Path) -> None:
    """SIGUSR1 closes the listeners, keeps established sessions, exits when they end."""
    echo = procs.backend("echo")
    lb = free_port()
    pidfile = tmp_path / "lb.pid"
    p = procs.balancer(config(lb, f"    server e 127.0.0.1:{echo}\n"), lb, "-p", str(pidfile))
    end = time.monotonic() + 5
    while not pidfile.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert pidfile.read_text().strip() == str(p.pid)
    c = socket.create_connection(("127.0.0.1", lb), timeout=5)
    c.sendall(b"a")
    assert c.recv(10) == b"a"
    os.kill(p.pid, signal.SIGUSR1)
    end = time.monotonic() + 5
    refused = False
    while time.monotonic() < end and not refused:
        try:
            socket.create_connection(("127.0.0.1", lb), timeout=1).close()
            time.sleep(0.05)
        except (ConnectionRefusedError, ConnectionResetError):
            # refused once closed; reset if it was still in the backlog as it closed
            refused = True
    assert refused
    c.sendall(b"b")
    assert c.recv(10) == b"b"
    assert p.poll() is None
    c.close()
    assert p.wait(5) == 0
    assert not pidfile.exists()


def test_sighup_keeps_serving_on_running_config(procs: Procs) -> None:
    """SIGHUP (systemctl reload) neither kills the balancer nor its sessions."""
    echo = procs.backend("echo")
    lb = free_port()
    p = procs.balancer(config(lb, f"    server e 127.0.0.1:{echo}\n"), lb)
    with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
        c.sendall(b"1")
        assert c.recv(10) == b"1"
        os.kill(p.pid, signal.SIGHUP)
        _wait_stderr(p, b"reload applied")
        c.sendall(b"2")
        assert c.recv(10) == b"2"
    assert p.poll() is None
    with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
        c.sendall(b"3")
        assert c.recv(10) == b"3"


def test_systemd_ready_notification(procs: Procs, tmp_path: Path) -> None:
    """Under Type=notify the balancer sends READY=1 once its listeners are open."""
    path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    notify.settimeout(10)
    lb = free_port()
    procs.balancer(config(lb, "    server e 127.0.0.1:1\n"), lb, env={"NOTIFY_SOCKET": path})
    assert b"READY=1" in notify.recv(1024)
    notify.close()


def test_check_mode_exit_codes(tmp_path: Path) -> None:
    """``impala-lb -c`` exits 0 for a valid config and 1 for a fatal error."""
    good = tmp_path / "good.cfg"
    good.write_text(config(free_port(), "    server a 127.0.0.1:1\n"))
    bad = tmp_path / "bad.cfg"
    bad.write_text("frontend main *:5000\n")
    ok = subprocess.run([IMPALA_LB, "-c", "-f", str(good)], capture_output=True, timeout=30)
    ko = subprocess.run([IMPALA_LB, "-c", "-f", str(bad)], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert ko.returncode == 1
    run_bad = subprocess.run([IMPALA_LB, "-f", str(bad)], capture_output=True, timeout=30)
    assert run_bad.returncode == 1 and b"bind" in run_bad.stderr
