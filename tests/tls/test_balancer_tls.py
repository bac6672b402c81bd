"""The balancer as a real process terminating and re-encrypting TLS on loopback.

One ``impala-lb`` runs five frontends: offload (TLS -> plain echo), bridge (TLS ->
TLS echo, ``verify required ca-file``), a bridge to a server whose certificate
another CA signed, ``verify none`` towards that same server, and passthrough.
The same config is checked by the real ``haproxy -c``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from OpenSSL import SSL

from tests.support.certs import make_ca
from tests.support.procs import accepts, free_port, stop_pid, wait_for

BIN = Path(sys.executable).parent / "impala-lb"


def wait_port(port: int, deadline: float = 10.0) -> None:
    wait_for(f"something listening on {port}", lambda: accepts("127.0.0.1", port, 0.5), deadline)


class EchoServer:
    """A threaded echo server on loopback, plain or TLS (stdlib ``ssl``); EOF -> close."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.alpn: list[str | None] = []
        self.sni: list[str | None] = []
        self.errors = 0
        self._stop = False
        if context is not None:
            context.sni_callback = self._on_sni
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _on_sni(self, sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
                self.alpn.append(conn.selected_alpn_protocol())
            while data := conn.recv(65536):
                conn.sendall(data)
        except (OSError, ssl.SSLError):
            self.errors += 1
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.thread.join(2)


class Syslog:
    """The balancer's UDP log target."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.seen: list[str] = []

    def wait_for(self, pattern: str, timeout: float = 5.0) -> str:
        rx = re.compile(pattern)
        for line in self.seen:
            if rx.search(line):
                return line
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                line = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.seen.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no log line matching {pattern!r} in {self.seen}")


@dataclass
class Setup:
    ports: dict[str, int]
    ca: Path
    other_ca: Path
    config: Path
    log: Syslog
    tls_echo: EchoServer
    plain_echo: EchoServer


def server_ctx(pem: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def render(tmp: Path, ports: dict[str, int], log_port: int, leaf: Path, ca: Path) -> str:
    p = ports
    return f"""global
    maxconn 200
    log 127.0.0.1:{log_port} local2
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend offload
    bind 127.0.0.1:{p["offload"]} ssl crt {leaf} ssl-min-ver TLSv1.2 alpn h2,http/1.1
    default_backend plain
backend plain
    server e1 127.0.0.1:{p["plain_echo"]}
frontend bridge
    bind 127.0.0.1:{p["bridge"]} ssl crt {leaf}
    default_backend reencrypt
backend reencrypt
    server t1 127.0.0.1:{p["tls_echo"]} ssl verify required ca-file {ca} sni str(srv.test)
frontend badbridge
    bind 127.0.0.1:{p["badbridge"]} ssl crt {leaf}
    default_backend untrusted
backend untrusted
    retries 0
    server u1 127.0.0.1:{p["bad_echo"]} ssl verify required ca-file {ca}
frontend trustall
    bind 127.0.0.1:{p["trustall"]}
    default_backend noverify
backend noverify
    server n1 127.0.0.1:{p["bad_echo"]} ssl verify none
frontend passthrough
    bind 127.0.0.1:{p["passthrough"]}
    default_backend tlsdirect
backend tlsdirect
    server d1 127.0.0.1:{p["tls_echo"]}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = make_ca(tmp / "ca")
    lb = ca.issue(tmp / "ca", "lb", ["localhost", "127.0.0.1"])
    srv = ca.issue(tmp / "ca", "srv", ["srv.test", "127.0.0.1"])
    other = make_ca(tmp / "other", "another CA")
    bad = other.issue(tmp / "other", "bad", ["srv.test", "127.0.0.1"])
    tls_echo = EchoServer(server_ctx(srv.combined))
    bad_echo = EchoServer(server_ctx(bad.combined))
    plain_echo = EchoServer()
    log = Syslog()
    ports = {n: free_port() for n in ("offload", "bridge", "badbridge", "trustall", "passthrough")}
    ports |= {"tls_echo": tls_echo.port, "bad_echo": bad_echo.port, "plain_echo": plain_echo.port}
    cfg = tmp / "lb.cfg"
    cfg.write_text(render(tmp, ports, log.port, lb.combined, ca.cert))
    proc = subprocess.Popen([str(BIN), "-f", str(cfg)], stderr=subprocess.PIPE)
    try:
        for name in ("offload", "bridge", "badbridge", "trustall", "passthrough"):
            wait_port(ports[name])
        # wait_port's probes are logged as handshake failures or empty sessions: skip them
        time.sleep(0.3)
        with contextlib.suppress(TimeoutError, OSError):
            log.sock.settimeout(0.2)
            while True:
                log.sock.recv(4096)
        yield Setup(ports, ca.cert, other.cert, cfg, log, tls_echo, plain_echo)
    finally:
        stop_pid(proc, signal.SIGTERM, timeout=5, kill_timeout=5)
        for server in (tls_echo, bad_echo, plain_echo):
            server.close()
        log.sock.close()


def tls_client(setup: Setup, port: int, *, alpn: list[str] | None = None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(setup.ca))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_offload_decrypts_to_a_plain_server(setup: Setup) -> None:
    """`bind ... ssl crt` terminates TLS and the plain echo server gets and returns the bytes."""
    payload = os.urandom(300_000)
    with tls_client(setup, setup.ports["offload"], alpn=["h2"]) as s:
        assert s.selected_alpn_protocol() == "h2"
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        assert echo_roundtrip(s, payload) == payload
    line = setup.log.wait_for(r"offload~ plain/e1 ")
    # %B counts clear bytes (server -> client), as HAProxy does
    assert f" {len(payload)} -- " in line


def test_offload_half_close_passes_on(setup: Setup) -> None:
    """A TLS client's write shutdown reaches the plain server, whose reply still arrives."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.load_verify_locations(str(setup.ca))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *a: bool(a[-1]))
    raw = socket.create_connection(("127.0.0.1", setup.ports["offload"]))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
    conn = SSL.Connection(ctx, raw)
    conn.set_connect_state()
    conn.do_handshake()
    conn.sendall(b"last words")
    conn.sock_shutdown(socket.SHUT_WR)  # TCP half-close, no close_notify
    got = b""
    with contextlib.suppress(SSL.ZeroReturnError):
        while chunk := conn.recv(4096):
            got += chunk
    raw.close()
    assert got == b"last words"
    line = setup.log.wait_for(r"offload~ plain/e1 \S+ 10 -- ")
    assert " 10 -- " in line


def test_bridge_reencrypts_with_verify_and_sni(setup: Setup) -> None:
    """`server ... ssl verify required ca-file sni str()` re-encrypts to a trusted TLS server."""
    before = len(setup.tls_echo.sni)
    with tls_client(setup, setup.ports["bridge"]) as s:
        assert echo_roundtrip(s, b"bridged" * 1000) == b"bridged" * 1000
    assert setup.tls_echo.sni[before:] == ["srv.test"]
    line = setup.log.wait_for(r"bridge~ reencrypt/t1 ")
    assert " 7000 -- " in line


def test_bridge_refuses_a_server_cert_from_another_ca(setup: Setup) -> None:
    """A server certificate not signed by `ca-file` fails the connect: closed and logged `SC`."""
    with tls_client(setup, setup.ports["badbridge"]) as s:
        s.sendall(b"hello")
        assert s.recv(100) == b""
    line = setup.log.wait_for(r"badbridge~ untrusted/u1 ")
    assert re.search(r" \d+/-1/\d+ 0 SC ", line), line


def test_verify_none_accepts_any_server_cert(setup: Setup) -> None:
    """`ssl verify none` re-encrypts to the untrusted server from a plain client."""
    with socket.create_connection(("127.0.0.1", setup.ports["trustall"]), timeout=5) as s:
        assert echo_roundtrip(s, b"anyone" * 10) == b"anyone" * 10
    line = setup.log.wait_for(r"trustall noverify/n1 ")
    assert " 60 -- " in line


def test_passthrough_leaves_tls_to_the_server(setup: Setup) -> None:
    """Without `ssl` the client's TLS reaches the server untouched (its own cert and SNI)."""
    before = len(setup.tls_echo.sni)
    ctx = ssl.create_default_context(cafile=str(setup.ca))
    raw = socket.create_connection(("127.0.0.1", setup.ports["passthrough"]), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="srv.test") as s:
        cert = s.getpeercert()
        assert cert is not None
        assert ("DNS", "srv.test") in cert["subjectAltName"]
        assert echo_roundtrip(s, b"opaque") == b"opaque"
    assert setup.tls_echo.sni[before:] == ["srv.test"]
    line = setup.log.wait_for(r"passthrough tlsdirect/d1 ")
    # bytes on the wire, TLS records included: more than the 6 clear bytes
    match = re.search(r"tlsdirect/d1 \S+ (\d+) ", line)
    assert match is not None and int(match[1]) > 6, line


def test_plain_client_on_tls_bind_is_logged_as_handshake_failure(setup: Setup) -> None:
    """Plain bytes on an `ssl` bind are logged like HAProxy 2.6 and close that connection only."""
    with tls_client(setup, setup.ports["offload"]) as good:
        with socket.create_connection(("127.0.0.1", setup.ports["offload"]), timeout=5) as bad:
            bad.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                rest = bad.recv(100)  # closed: maybe a TLS alert record, then EOF
                assert rest == b"" or rest[:1] == b"\x15"
            except ConnectionResetError:
                pass  # closed with our unread bytes still queued: a reset
        line = setup.log.wait_for(r"offload/1: SSL handshake failure")
        assert re.search(r"127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:[\d:.]+\] offload/1: ", line)
        assert echo_roundtrip(good, b"still here") == b"still here"


def test_client_closing_mid_handshake_is_logged(setup: Setup) -> None:
    """A client that connects to an `ssl` bind and closes is logged as closed during handshake."""
    socket.create_connection(("127.0.0.1", setup.ports["bridge"]), timeout=5).close()
    setup.log.wait_for(r"bridge/1: Connection closed during SSL handshake")


def test_real_haproxy_accepts_the_same_config(setup: Setup) -> None:
    """`haproxy -c` validates the very file the balancer runs (same TLS keywords)."""
    out = subprocess.run(
        ["haproxy", "-c", "-f", str(setup.config)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Configuration file is valid" in out.stdout
