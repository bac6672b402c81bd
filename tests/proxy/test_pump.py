"""The byte pump: forwarding, backpressure, half-close, timeouts and their flags."""

from __future__ import annotations

import contextlib
import socket
import struct

from twisted.internet.testing import MemoryReactorClock

from proxy.pump import PumpLoop, PumpTimeouts, Session


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected loopback TCP sockets (real TCP, so EOF and RST behave as in production)."""
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        a = socket.create_connection(lsock.getsockname())
        b, _ = lsock.accept()
    return a, b


class Harness:
    """A pump session between two loopback TCP pairs: ``cli`` is the client, ``srv`` the server."""

    def __init__(self, timeouts: PumpTimeouts | None = None, chunk: int = 65536) -> None:
        self.reactor = MemoryReactorClock()
        self.loop = PumpLoop(self.reactor, self.reactor, bufsize=chunk)
        self.cli, client_leg = tcp_pair()
        self.srv, server_leg = tcp_pair()
        for s in (self.cli, self.srv, client_leg, server_leg):
            s.setblocking(False)
        self.ended: list[str] = []
        self.session = Session(
            self.loop,
            client_leg,
            server_leg,
            timeouts or PumpTimeouts(),
            lambda _s, f: self.ended.append(f),
        )
        self.session.start()

    def spin(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            self.loop.doRead()

    def recv_all(self, sock: socket.socket) -> bytes:
        out = b""
        while True:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                return out
            if not data:
                return out + b"<EOF>"
            out += data

    def close(self) -> None:
        for s in (self.cli, self.srv):
            s.close()
        self.loop.close()


def test_bytes_flow_both_ways_and_are_counted() -> None:
    """Data from each side reaches the other unchanged and both byte counters add up."""
    h = Harness()
    h.cli.sendall(b"hello server")
    h.spin()
    assert h.recv_all(h.srv) == b"hello server"
    h.srv.sendall(b"hi client!")
    h.spin()
    assert h.recv_all(h.cli) == b"hi client!"
    assert (h.session.bytes_in, h.session.bytes_out) == (12, 10)
    h.close()


def test_slow_reader_pauses_the_fast_side_with_bounded_memory() -> None:
    """A client that does not read pauses the server side; at most one chunk waits."""
    h = Harness(chunk=65536)
    h.srv.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    blob = b"x" * (1 << 20)
    sent = 0
    for _ in range(200):
        with contextlib.suppress(BlockingIOError):
            sent += h.srv.send(blob)
        h.spin(5)
    client_side = h.session.client
    assert client_side.pending is not None and len(client_side.pending) <= 65536
    # The server leg is no longer polled for input: its data stays in the kernel.
    assert h.session.bytes_out < sent
    got = 0
    for _ in range(2000):
        got += len(h.recv_all(h.cli))
        h.spin(2)
        if got == sent:
            break
    assert got == sent and h.session.bytes_out == sent
    h.close()


def test_half_close_passes_eof_and_keeps_other_direction() -> None:
    """Client EOF becomes a shutdown towards the server; the reply still flows; then ``--``."""
    h = Harness()
    h.cli.sendall(b"query")
    h.cli.shutdown(socket.SHUT_WR)
    h.spin()
    assert h.recv_all(h.srv) == b"query<EOF>"
    h.srv.sendall(b"answer")
    h.spin()
    assert h.recv_all(h.cli) == b"answer"
    assert h.ended == []
    h.srv.shutdown(socket.SHUT_WR)
    h.spin()
    assert h.recv_all(h.cli) == b"<EOF>"
    assert h.ended == ["--"]
    h.close()


def test_client_timeout_closes_with_cD() -> None:
    """An idle session with timeout client 3 s / server 5 s ends at 3 s with ``cD``."""
    h = Harness(PumpTimeouts(client=3.0, server=5.0))
    h.reactor.advance(2.9)
    assert h.ended == []
    h.reactor.advance(0.2)
    assert h.ended == ["cD"]
    assert h.recv_all(h.cli) == b"<EOF>"
    assert h.reactor.getDelayedCalls() == []
    h.close()


def test_server_timeout_closes_with_sD_and_activity_refreshes() -> None:
    """Traffic refreshes both sides; then silence ends at timeout server with ``sD``."""
    h = Harness(PumpTimeouts(client=5.0, server=3.0))
    h.reactor.advance(2.0)
    h.cli.sendall(b"ping")
    h.spin()
    h.reactor.advance(2.0)
    assert h.ended == []
    h.reactor.advance(1.1)
    assert h.ended == ["sD"]
    h.close()


def test_tunnel_replaces_client_and_server_timeouts() -> None:
    """With timeout tunnel 4 s (client/server 2 s) an idle session ends at 4 s, logged ``cD``."""
    h = Harness(PumpTimeouts(client=2.0, server=2.0, tunnel=4.0))
    h.reactor.advance(3.0)
    assert h.ended == []
    h.reactor.advance(1.1)
    assert h.ended == ["cD"]
    h.close()


def test_client_fin_applies_once_half_closed() -> None:
    """After the client's EOF, timeout client-fin bounds the wait instead of timeout client."""
    h = Harness(PumpTimeouts(client=30.0, server=30.0, client_fin=1.0))
    h.cli.shutdown(socket.SHUT_WR)
    h.spin()
    h.reactor.advance(1.1)
    assert h.ended == ["cD"]
    h.close()


def test_reset_by_server_is_SD() -> None:
    """A server that resets the connection (RST) ends the session with ``SD``."""
    h = Harness()
    h.srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.srv.close()
    h.spin()
    assert h.ended == ["SD"]
    h.cli.close()
    h.loop.close()


class _RecordingSocket(socket.socket):
    """A real socket that remembers which TCP options were set on it."""

    options: list[int]

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:  # type: ignore[override]
        if level == socket.IPPROTO_TCP:
            self.options.append(option)
        super().setsockopt(level, option, value)


def test_session_start_acknowledges_at_once_then_leaves_acks_to_the_kernel() -> None:
    """Reads 2 to QUICKACK_READS of a leg set TCP_QUICKACK (no 40 ms delayed-ACK stall
    while SASL/TLS clients write small pieces with Nagle on); the first does not (the
    kernel acknowledges a connection's first data at once by itself), later ones do not."""
    from proxy.pump import _TCP_QUICKACK, QUICKACK_READS

    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor, bufsize=65536)
    cli, accepted = tcp_pair()
    leg = _RecordingSocket(accepted.family, accepted.type, accepted.proto, fileno=accepted.detach())
    leg.options = []
    srv, server_leg = tcp_pair()
    for s in (cli, srv, leg, server_leg):
        s.setblocking(False)
    Session(loop, leg, server_leg, PumpTimeouts(), lambda _s, _f: None).start()
    for i in range(QUICKACK_READS + 8):
        cli.sendall(b"m%d" % i)
        for _ in range(5):
            loop.doRead()
    assert leg.options.count(_TCP_QUICKACK) == QUICKACK_READS - 1
    for s in (cli, srv):
        s.close()
    loop.close()
