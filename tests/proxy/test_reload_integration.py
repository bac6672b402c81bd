"""SIGHUP reload of a real ``impala-lb`` process on loopback: bytes, listeners, sd_notify."""

from __future__ import annotations

import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.balancer import IMPALA_LB, ask
from tests.support.procs import Children, free_port, wait_for, wait_port

SERVERS = Path(__file__).with_name("_servers.py")

#: A backend that greets with its name, then echoes: tells which server a client reached.
BANNER = """
import socket, sys, threading
name, port = sys.argv[1].encode(), int(sys.argv[2])
srv = socket.create_server(("127.0.0.1", port), backlog=128)
print("ready", flush=True)
def serve(c):
    with c:
        c.sendall(name + b"\\n")
        while data := c.recv(65536):
            c.sendall(data)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


class Notify:
    """The unix datagram socket systemd would pass as NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def next(self, limit: float = 10.0) -> str:
        self.sock.settimeout(limit)
        return self.sock.recv(4096).decode()

    def wait_for(self, line: str, limit: float = 10.0) -> list[str]:
        """Datagrams up to and including the first holding ``line``."""
        seen = []
        end = time.monotonic() + limit
        while time.monotonic() < end:
            msg = self.next(max(0.05, end - time.monotonic()))
            seen.append(msg)
            if line in msg.split("\n"):
                return seen
        raise TimeoutError(f"no {line} in {seen}")


class Procs(Children):
    """Processes started by one test, stopped by PID at the end."""

    def __init__(self, tmp: Path) -> None:
        super().__init__()
        self.tmp = tmp
        self.notify = Notify(tmp / "notify.sock")
        self.cfg = tmp / "lb.cfg"

    def echo(self) -> int:
        port = free_port()
        self.ready([sys.executable, str(SERVERS), "echo", str(port)])
        return port

    def banner(self, name: str) -> int:
        port = free_port()
        self.ready([sys.executable, "-c", BANNER, name, str(port)])
        return port

    def balancer(self, config: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
        self.cfg.write_text(config)
        p = self.popen(
            [IMPALA_LB, "-f", str(self.cfg), *extra],
            stderr=subprocess.PIPE,
            env={**os.environ, "NOTIFY_SOCKET": str(self.notify.path)},
        )
        self.notify.wait_for("READY=1", 20)
        wait_port(port)
        return p

    def reload(self, p: subprocess.Popen[bytes], config: str) -> list[str]:
        """Write ``config``, SIGHUP, and wait for systemd's RELOADING=1 ... READY=1."""
        self.cfg.write_text(config)
        os.kill(p.pid, signal.SIGHUP)
        return self.notify.wait_for("READY=1", 20)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.notify.sock.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    ps = Procs(tmp_path)
    yield ps
    ps.stop()


HEAD = (
    "global\n    maxconn 500\n{glob}"
    "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n"
    "    timeout server 30s\n"
)


def config(body: str, glob: str = "") -> str:
    return HEAD.format(glob=glob) + body


class Stream:
    """One client connection that sends random bytes and checks the echo by CRC."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.rng = random.Random(4)
        self.sent = self.received = 0
        self.sent_crc = self.recv_crc = 0

    def exchange(self, nbytes: int, limit: float = 20.0) -> None:
        """Send ``nbytes`` more and read until every byte sent so far came back."""
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        todo = self.rng.randbytes(nbytes)
        end = time.monotonic() + limit
        target = self.sent + nbytes
        while self.received < target:
            if time.monotonic() > end:
                raise TimeoutError(f"echoed {self.received} of {target}")
            for _, events in sel.select(0.5):
                if events & selectors.EVENT_WRITE and todo:
                    n = self.sock.send(todo[:65536])
                    self.sent_crc = zlib.crc32(todo[:n], self.sent_crc)
                    self.sent += n
                    todo = todo[n:]
                    if not todo:
                        sel.modify(self.sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    data = self.sock.recv(262144)
                    if not data:
                        raise ConnectionError(f"closed after {self.received} bytes")
                    self.recv_crc = zlib.crc32(data, self.recv_crc)
                    self.received += len(data)
        sel.close()


def greet(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.settimeout(5)
        return c.recv(64).strip()


def test_stream_survives_five_reloads_byte_for_byte(procs: Procs) -> None:
    """One connection streams through five reloads (weights, a server and a frontend added
    and removed each time) and every byte comes back with the same CRC."""
    e1, e2, e3 = procs.echo(), procs.echo(), procs.echo()
    lb, extra = free_port(), free_port()

    def body(step: int) -> str:
        with_extra = step % 2 == 1
        text = f"frontend fe\n    bind 127.0.0.1:{lb}\n    default_backend be\n"
        if with_extra:
            text += f"frontend fe2\n    bind 127.0.0.1:{extra}\n    default_backend be\n"
        text += "backend be\n    balance roundrobin\n"
        text += f"    server s1 127.0.0.1:{e1} weight {1 + step}\n"
        text += f"    server s2 127.0.0.1:{e2} weight {10 - step}\n"
        if with_extra:
            text += f"    server s3 127.0.0.1:{e3} weight 5\n"
        return text

    p = procs.balancer(config(body(0)), lb)
    stream = Stream(lb)
    stream.exchange(1 << 20)
    for step in range(1, 6):
        sent = procs.reload(p, config(body(step)))
        assert sent[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
        stream.exchange(1 << 20)
        if step % 2 == 1:
            wait_port(extra)
        else:
            assert refused(extra)
        with socket.create_connection(("127.0.0.1", lb), timeout=5) as c:
            c.sendall(b"new")
            c.settimeout(5)
            assert c.recv(16) == b"new"
    assert stream.sent == stream.received == 6 << 20
    assert stream.sent_crc == stream.recv_crc
    stream.sock.close()
    assert p.poll() is None


def test_invalid_file_is_refused_with_file_line_and_old_config_serves(procs: Procs) -> None:
    """A broken file on SIGHUP is refused with the parser's file:line message; the old
    config keeps serving and a later good file is applied."""
    a, b = procs.banner("a"), procs.banner("b")
    lb = free_port()
    good = f"listen lb\n    bind 127.0.0.1:{lb}\n    server a 127.0.0.1:{a}\n"
    p = procs.balancer(config(good), lb)
    assert greet(lb) == b"a"
    procs.reload(p, config(good + "    server b 127.0.0.1:notaport\n"))
    assert greet(lb) == b"a" and p.poll() is None
    procs.reload(p, config(f"listen lb\n    bind 127.0.0.1:{lb}\n    server b 127.0.0.1:{b}\n"))
    assert greet(lb) == b"b"
    p.terminate()
    assert p.wait(5) == 0
    assert p.stderr is not None
    log = p.stderr.read().decode()
    assert f"[{procs.cfg}:11] : 'server lb/b' : invalid character 'n' in port number" in log
    assert "reload refused: invalid configuration, keeping the running one" in log
    assert "reload applied: servers added: lb/b; servers removed: lb/a" in log


def test_removed_backend_drains_until_hard_stop_after(procs: Procs) -> None:
    """A session on a removed backend keeps echoing, new clients reach the new backend, and
    ``hard-stop-after`` closes the old session at its limit."""
    a, b = procs.banner("a"), procs.banner("b")
    lb = free_port()
    fe = f"frontend fe\n    bind 127.0.0.1:{lb}\n"
    p = procs.balancer(
        config(fe + f"    default_backend old\nbackend old\n    server a 127.0.0.1:{a}\n"), lb
    )
    old = socket.create_connection(("127.0.0.1", lb), timeout=5)
    assert old.recv(64) == b"a\n"
    new_cfg = fe + f"    default_backend new\nbackend new\n    server b 127.0.0.1:{b}\n"
    procs.reload(p, config(new_cfg, glob="    hard-stop-after 1500ms\n"))
    old.sendall(b"still here")
    assert old.recv(64) == b"still here"  # the drain keeps it (it is not cut at once)
    assert greet(lb) == b"b"
    old.settimeout(30)
    assert old.recv(64) == b""  # and hard-stop-after ends it, without the client leaving
    old.close()


def test_sigterm_sends_stopping(procs: Procs) -> None:
    """SIGTERM makes the balancer send STOPPING=1 to systemd before it exits."""
    e = procs.echo()
    lb = free_port()
    p = procs.balancer(
        config(f"listen lb\n    bind 127.0.0.1:{lb}\n    server e 127.0.0.1:{e}\n"), lb
    )
    p.terminate()
    assert procs.notify.wait_for("STOPPING=1")[-1] == "STOPPING=1"
    assert p.wait(5) == 0


def test_pidfile_written_by_p_and_removed_at_exit(procs: Procs, tmp_path: Path) -> None:
    """``-p FILE`` writes the balancer's pid as HAProxy does; the file goes at exit."""
    e = procs.echo()
    lb = free_port()
    pidfile = tmp_path / "lb.pid"
    p = procs.balancer(
        config(f"listen lb\n    bind 127.0.0.1:{lb}\n    server e 127.0.0.1:{e}\n"),
        lb,
        "-p",
        str(pidfile),
    )
    assert pidfile.read_text() == f"{p.pid}\n"
    p.terminate()
    assert p.wait(5) == 0
    assert not pidfile.exists()


def statuses(path: Path) -> dict[str, str]:
    """``show stat`` status of each server of backend ``be``."""
    out = {}
    for line in ask(path, b"show stat\n").splitlines():
        cells = line.split(",")
        if len(cells) > 20 and cells[0] == "be" and cells[1] not in ("BACKEND", "FRONTEND"):
            out[cells[1]] = cells[17]
    return out


def wait_status(path: Path, want: dict[str, str], limit: float = 10.0) -> None:
    end = time.monotonic() + limit
    got: dict[str, str] = {}
    while time.monotonic() < end:
        got = statuses(path)
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"wanted {want}, last {got}")


def test_checks_and_stats_follow_reload_and_keep_state(procs: Procs, tmp_path: Path) -> None:
    """After a reload ``show stat`` lists the added server and not the removed one, a kept
    DOWN server stays DOWN (its check state carried), and a moved stats socket answers."""
    up = procs.echo()
    dead = free_port()
    lb = free_port()
    sock1, sock2 = tmp_path / "s1.sock", tmp_path / "s2.sock"
    chk = " check inter 100 rise 2 fall 2"

    def body(sock: Path, servers: str) -> str:
        return config(
            f"frontend fe\n    bind 127.0.0.1:{lb}\n    default_backend be\nbackend be\n{servers}",
            glob=f"    stats socket {sock} mode 600 level admin\n",
        )

    p = procs.balancer(
        body(sock1, f"    server up 127.0.0.1:{up}{chk}\n    server dead 127.0.0.1:{dead}{chk}\n"),
        lb,
    )
    wait_status(sock1, {"up": "UP", "dead": "DOWN"})
    procs.reload(
        p,
        body(sock2, f"    server dead 127.0.0.1:{dead}{chk}\n    server new 127.0.0.1:{up}{chk}\n"),
    )
    first = statuses(sock2)
    assert first["dead"] == "DOWN" and set(first) == {"dead", "new"}
    assert not sock1.exists()
    wait_status(sock2, {"dead": "DOWN", "new": "UP"})
    assert p.poll() is None


def test_sigusr1_soft_stop_bounded_by_hard_stop_after(procs: Procs) -> None:
    """SIGUSR1 closes the listeners at once; a session still open when ``hard-stop-after``
    expires is cut and the process exits then, as HAProxy's old process does."""
    e = procs.echo()
    lb = free_port()
    p = procs.balancer(
        config(
            f"listen lb\n    bind 127.0.0.1:{lb}\n    server e 127.0.0.1:{e}\n",
            glob="    hard-stop-after 1s\n",
        ),
        lb,
    )
    c = socket.create_connection(("127.0.0.1", lb), timeout=5)
    c.sendall(b"x")
    assert c.recv(4) == b"x"
    os.kill(p.pid, signal.SIGUSR1)
    wait_for("the listener to close", lambda: refused(lb), timeout=10)
    c.sendall(b"y")
    assert c.recv(4) == b"y"  # the established session outlives the closed listener
    assert p.wait(30) == 0  # hard-stop-after ends it: the process exits with it open
    c.close()


def test_removed_frontend_sessions_bounded_by_hard_stop_after(procs: Procs) -> None:
    """A session of a frontend removed by a reload keeps echoing until hard-stop-after."""
    e = procs.echo()
    lb, gone = free_port(), free_port()
    be = f"backend be\n    server e 127.0.0.1:{e}\n"
    keep = f"frontend fe\n    bind 127.0.0.1:{lb}\n    default_backend be\n"
    extra = f"frontend fe2\n    bind 127.0.0.1:{gone}\n    default_backend be\n"
    p = procs.balancer(config(keep + extra + be, glob="    hard-stop-after 1s\n"), lb)
    c = socket.create_connection(("127.0.0.1", gone), timeout=5)
    c.sendall(b"x")
    assert c.recv(4) == b"x"
    procs.reload(p, config(keep + be, glob="    hard-stop-after 1s\n"))
    assert refused(gone)
    c.sendall(b"y")
    assert c.recv(4) == b"y"
    c.settimeout(30)
    assert c.recv(4) == b""  # ended by hard-stop-after, the client never left
    assert p.poll() is None
    c.close()


def test_burst_of_sighups_is_coalesced_and_applies_last_file(procs: Procs) -> None:
    """Three SIGHUPs back to back leave the balancer running on the file's last version."""
    a, b = procs.banner("a"), procs.banner("b")
    lb = free_port()
    stats = procs.tmp / "stats.sock"
    glob = f"    stats socket {stats} mode 600 level admin\n"
    p = procs.balancer(
        config(f"listen lb\n    bind 127.0.0.1:{lb}\n    server a 127.0.0.1:{a}\n", glob), lb
    )
    procs.cfg.write_text(
        config(f"listen lb\n    bind 127.0.0.1:{lb}\n    server b 127.0.0.1:{b}\n", glob)
    )
    for _ in range(3):
        os.kill(p.pid, signal.SIGHUP)
    procs.notify.wait_for("READY=1")
    end = time.monotonic() + 10
    while greet(lb) != b"b" and time.monotonic() < end:
        time.sleep(0.05)
    assert greet(lb) == b"b" and p.poll() is None
    assert "lb,b," in ask(stats, b"show stat\n")


def test_stats_page_serves_after_reload(procs: Procs) -> None:
    """The ``listen stats`` page is served again right after a reload, with the new servers."""
    import urllib.request

    e = procs.echo()
    lb, page = free_port(), free_port()
    stats = (
        f"listen stats\n    bind 127.0.0.1:{page}\n    mode http\n    stats enable\n"
        "    stats uri /stats\n"
    )

    def body(servers: str) -> str:
        return config(f"listen lb\n    bind 127.0.0.1:{lb}\n{servers}" + stats)

    p = procs.balancer(body(f"    server e 127.0.0.1:{e}\n"), lb)
    wait_port(page)
    procs.reload(p, body(f"    server e 127.0.0.1:{e}\n    server f 127.0.0.1:{e}\n"))
    end = time.monotonic() + 10
    csv = ""
    while time.monotonic() < end and "lb,f," not in csv:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{page}/stats;csv", timeout=5) as r:
                csv = r.read().decode()
        except OSError:
            time.sleep(0.05)
    assert "lb,e," in csv and "lb,f," in csv
