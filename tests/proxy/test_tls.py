"""TLS in the balancer without a reactor: contexts from the model, handshakes, TLS legs.

Handshakes and the pump run on a real :class:`PumpLoop` (its own epoll) over
``socketpair``s, driven by calling ``doRead`` in bounded loops with a
``task.Clock``: no network, no reactor, no sleeping.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from haconfig.model import Bind, Proxy, SectionKind, Server, ServerParams, Timeouts
from proxy.connect import ConnectError
from proxy.pump import PumpLoop, PumpTimeouts, Session
from proxy.tls import (
    FrontendTLS,
    HandshakeError,
    TLSConfigError,
    TLSDialer,
    TLSSocket,
    client_context,
    handshake,
    hostname_matches,
    server_context,
    sni_value,
    tls_dialer,
)
from tests.support.certs import CA, Leaf, make_ca


class NoReactor:
    """The reactor's reader set, unused: the tests call ``PumpLoop.doRead`` themselves."""

    def addReader(self, reader: Any) -> None:
        pass

    def removeReader(self, reader: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CA, Leaf, Leaf]:
    tmp = tmp_path_factory.mktemp("pki")
    ca = make_ca(tmp / "ca")
    lb = ca.issue(tmp / "ca", "lb", ["lb.test", "127.0.0.1"])
    other = make_ca(tmp / "other", "other CA").issue(tmp / "other", "rogue", ["lb.test"])
    return ca, lb, other


@pytest.fixture
def loop() -> Iterator[PumpLoop]:
    lp = PumpLoop(NoReactor(), task.Clock())
    yield lp
    lp.close()


def drive(loop: PumpLoop, done: Callable[[], bool], rounds: int = 200) -> None:
    """Run the loop's ready events until ``done()``, at most ``rounds`` passes."""
    for _ in range(rounds):
        if done():
            return
        loop.doRead()
    assert done(), "did not settle"


def client_ctx(ca: CA, *, alpn: list[bytes] | None = None, max_ver: int | None = None) -> Any:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.load_verify_locations(str(ca.cert))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *a: bool(a[-1]))
    if alpn:
        ctx.set_alpn_protos(alpn)
    if max_ver is not None:
        ctx.set_max_proto_version(max_ver)
    return ctx


def results(d: Deferred[Any]) -> list[Any]:
    out: list[Any] = []
    d.addBoth(out.append)
    return out


# --- contexts -------------------------------------------------------------------------


def test_bind_ssl_without_crt_is_refused() -> None:
    """`bind ... ssl` without `crt` is refused with HAProxy's message."""
    with pytest.raises(TLSConfigError, match=r"no SSL certificate specified .* \(use 'crt'\)"):
        server_context(Bind("127.0.0.1", 443, ssl=True))


def test_missing_crt_file_is_refused(tmp_path: Path) -> None:
    """A `crt` path that does not exist is refused (`unable to stat SSL certificate`)."""
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(TLSConfigError, match="unable to stat SSL certificate from file"):
        server_context(Bind("127.0.0.1", 443, ssl=True, crt=(missing,)))


def test_crt_without_key_is_refused(pki: tuple[CA, Leaf, Leaf]) -> None:
    """A certificate-only PEM is refused (`No Private Key found`), as in HAProxy."""
    _, lb, _ = pki
    with pytest.raises(TLSConfigError, match="No Private Key found in"):
        server_context(Bind("127.0.0.1", 443, ssl=True, crt=(str(lb.cert),)))


def test_unknown_ssl_min_ver_is_refused(pki: tuple[CA, Leaf, Leaf]) -> None:
    """`ssl-min-ver` accepts only HAProxy's version names."""
    _, lb, _ = pki
    bind = Bind("127.0.0.1", 443, ssl=True, crt=(str(lb.combined),), ssl_min_ver="TLS1.3")
    with pytest.raises(TLSConfigError, match=r"unknown version 'TLS1\.3'"):
        server_context(bind)


def test_bind_asks_client_certificates_only_with_verify(pki: tuple[CA, Leaf, Leaf]) -> None:
    """`ca-file` alone asks no client certificate; `verify required` demands one."""
    ca, lb, _ = pki
    crt = (str(lb.combined),)
    plain = server_context(Bind("h", 1, ssl=True, crt=crt, ca_file=str(ca.cert)))
    assert plain.get_verify_mode() == SSL.VERIFY_NONE
    strict = Bind("h", 1, ssl=True, crt=crt, ca_file=str(ca.cert), verify="required")
    assert server_context(strict).get_verify_mode() == (
        SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    )
    with pytest.raises(TLSConfigError, match="verify is enabled but no CA file"):
        server_context(Bind("h", 1, ssl=True, crt=crt, verify="required"))


def test_server_ssl_verifies_by_default_and_needs_a_ca_file() -> None:
    """`server ... ssl` without `verify none` or `ca-file` is refused, as HAProxy does."""
    with pytest.raises(TLSConfigError, match="verify is enabled by default but no CA file"):
        client_context(ServerParams(ssl=True), "server be/s1")
    ctx = client_context(ServerParams(ssl=True, verify="none"), "server be/s1")
    assert ctx.get_verify_mode() == SSL.VERIFY_NONE


def test_sni_takes_a_constant_string() -> None:
    """`sni str(name)` gives the name; other sample fetches are refused clearly."""
    assert sni_value("str(impalad.test)", "s") == "impalad.test"
    assert sni_value(None, "s") is None
    with pytest.raises(TLSConfigError, match="only str"):
        sni_value("req.hdr(host)", "s")


def test_hostname_matching_follows_the_san(pki: tuple[CA, Leaf, Leaf], tmp_path: Path) -> None:
    """Names match SAN DNS entries (one wildcard label) and IP entries, nothing else."""
    from cryptography import x509

    ca, _, _ = pki
    leaf = ca.issue(tmp_path, "w", ["*.impala.test", "10.0.0.1"])
    cert = x509.load_pem_x509_certificate(leaf.cert.read_bytes())
    assert hostname_matches(cert, "a.impala.test")
    assert hostname_matches(cert, "A.Impala.Test.")
    assert not hostname_matches(cert, "a.b.impala.test")
    assert not hostname_matches(cert, "impala.test")
    assert hostname_matches(cert, "10.0.0.1")
    assert not hostname_matches(cert, "10.0.0.2")


# --- handshakes -----------------------------------------------------------------------


def pair(
    loop: PumpLoop, server_ctx: Any, client: Any
) -> tuple[Deferred[TLSSocket], Deferred[TLSSocket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    srv = TLSSocket.wrap(a, server_ctx, server_side=True)
    cli = TLSSocket.wrap(b, client, server_side=False)
    clock = loop.clock
    return handshake(srv, loop, clock, 5.0), handshake(cli, loop, clock, 5.0)


def test_handshake_completes_with_alpn(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """Both ends of a handshake driven by the pump's epoll complete and agree on ALPN."""
    ca, lb, _ = pki
    bind = Bind("127.0.0.1", 443, ssl=True, crt=(str(lb.combined),), alpn="h2,http/1.1")
    ds, dc = pair(loop, server_context(bind), client_ctx(ca, alpn=[b"http/1.1", b"h2"]))
    rs, rc = results(ds), results(dc)
    drive(loop, lambda: bool(rs and rc))
    assert isinstance(rs[0], TLSSocket) and isinstance(rc[0], TLSSocket)
    assert rs[0].tls.get_alpn_proto_negotiated() == b"h2"
    assert loop.watchers == {}
    for s in (rs[0], rc[0]):
        s.close()


def test_ssl_min_ver_refuses_an_older_client(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """`ssl-min-ver TLSv1.3` fails a TLS 1.2-only client's handshake."""
    ca, lb, _ = pki
    bind = Bind("127.0.0.1", 443, ssl=True, crt=(str(lb.combined),), ssl_min_ver="TLSv1.3")
    ds, dc = pair(loop, server_context(bind), client_ctx(ca, max_ver=SSL.TLS1_2_VERSION))
    rs, rc = results(ds), results(dc)
    drive(loop, lambda: bool(rs and rc))
    assert isinstance(rs[0], Failure) and rs[0].check(HandshakeError)
    assert str(rs[0].value) == "SSL handshake failure"
    assert isinstance(rc[0], Failure)


def test_handshake_times_out(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """A client that never speaks fails the handshake at the timeout, and is unwatched."""
    _, lb, _ = pki
    a, b = socket.socketpair()
    a.setblocking(False)
    srv = TLSSocket.wrap(
        a, server_context(Bind("h", 1, ssl=True, crt=(str(lb.combined),))), server_side=True
    )
    clock = loop.clock
    assert isinstance(clock, task.Clock)
    got = results(handshake(srv, loop, clock, 2.0))
    loop.doRead()
    assert got == []
    clock.advance(2.0)
    assert isinstance(got[0], Failure)
    assert isinstance(got[0].value, HandshakeError) and got[0].value.timeout
    assert str(got[0].value) == "Timeout during SSL handshake"
    assert loop.watchers == {} and clock.getDelayedCalls() == []
    srv.close()
    b.close()


# --- the frontend ---------------------------------------------------------------------


def tls_frontend(lb: Leaf, loop: PumpLoop, lines: list[str]) -> FrontendTLS:
    proxy = Proxy(
        SectionKind.FRONTEND,
        "fe",
        binds=(
            Bind("127.0.0.1", 5000),
            Bind("127.0.0.1", 5443, port_end=5444, ssl=True, crt=(str(lb.combined),)),
            Bind("*", 6443, name="tls6", ssl=True, crt=(str(lb.combined),)),
        ),
        timeouts=Timeouts(client=3000),
    )
    fe = FrontendTLS.build(proxy, loop, loop.clock, log=lines.append, wall=lambda: 0.0)
    assert fe is not None
    return fe


def test_frontend_without_ssl_binds_has_no_tls(loop: PumpLoop) -> None:
    """A frontend whose binds have no `ssl` gets no TLS stage at all (plain fast path)."""
    proxy = Proxy(SectionKind.FRONTEND, "fe", binds=(Bind("127.0.0.1", 5000),))
    assert FrontendTLS.build(proxy, loop, loop.clock, log=None, wall=lambda: 0.0) is None


def test_plain_bind_of_a_tls_frontend_is_handed_over_at_once(
    loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]
) -> None:
    """Connections on the frontend's plain bind skip the handshake."""
    _, lb, _ = pki
    fe = tls_frontend(lb, loop, [])
    accepted: list[socket.socket] = []
    on_accept = fe.acceptor(lambda s, peer, local: accepted.append(s))
    a, b = socket.socketpair()
    on_accept(a, ("127.0.0.1", 40000), ("127.0.0.1", 5000))
    assert accepted == [a] and fe.pending == {}
    a.close()
    b.close()


def test_failed_handshake_is_logged_like_haproxy(
    loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]
) -> None:
    """A plain client on a TLS bind is logged `<ip>:<port> [date] fe/<listener>: SSL
    handshake failure` (listener = bind name, else its number) and never accepted."""
    _, lb, _ = pki
    lines: list[str] = []
    fe = tls_frontend(lb, loop, lines)
    accepted: list[socket.socket] = []
    on_accept = fe.acceptor(lambda s, peer, local: accepted.append(s))
    for local, client in (((("127.0.0.1", 5444)), 40001), ((("127.0.0.9", 6443)), 40002)):
        a, b = socket.socketpair()
        a.setblocking(False)
        on_accept(a, ("127.0.0.1", client), local)
        b.sendall(b"GET / HTTP/1.0\r\n\r\n")
        drive(loop, lambda: not fe.pending)
        b.close()
    assert accepted == []
    assert lines == [
        "127.0.0.1:40001 [01/Jan/1970:00:00:00.000] fe/3: SSL handshake failure",
        "127.0.0.1:40002 [01/Jan/1970:00:00:00.000] fe/tls6: SSL handshake failure",
    ]
    assert fe.failed == 2


# --- the dialer and the pump ----------------------------------------------------------


class PairDialer:
    """A dialer whose "server" is the far end of a socketpair, kept in ``far``."""

    def __init__(self) -> None:
        self.far: list[socket.socket] = []
        self.dialled: list[tuple[str, int]] = []

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.far.append(b)
        self.dialled.append((host, port))
        d: Deferred[socket.socket] = Deferred()
        d.callback(a)
        return d


def backend(ca: CA, **params: Any) -> Proxy:
    return Proxy(
        SectionKind.BACKEND,
        "be",
        servers=(
            Server("tls", "10.0.0.1", 21050, params=ServerParams(**params)),
            Server("plain", "10.0.0.2", 21050),
        ),
    )


def serve_tls(loop: PumpLoop, far: socket.socket, leaf: Leaf) -> list[Any]:
    ctx = server_context(Bind("h", 1, ssl=True, crt=(str(leaf.combined),)))
    return results(handshake(TLSSocket.wrap(far, ctx, server_side=True), loop, loop.clock, 5.0))


def test_dialer_reencrypts_only_ssl_servers(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """`server ... ssl ca-file` gets a verified TLS leg; a server without `ssl` stays plain."""
    ca, lb, _ = pki
    inner = PairDialer()
    proxy = backend(ca, ssl=True, ca_file=str(ca.cert), sni="str(lb.test)")
    dialer = tls_dialer(proxy, inner, loop, loop.clock, lambda h: h)
    assert isinstance(dialer, TLSDialer)
    got = results(dialer.dial("10.0.0.1", 21050, 2.0))
    far = serve_tls(loop, inner.far[0], lb)
    drive(loop, lambda: bool(got and far))
    assert isinstance(got[0], TLSSocket), got
    assert far[0].tls.get_servername() == b"lb.test"
    plain = results(dialer.dial("10.0.0.2", 21050, 2.0))
    assert type(plain[0]) is socket.socket
    for s in (got[0], far[0], plain[0], *inner.far):
        s.close()


def test_dialer_refuses_a_cert_from_another_ca(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """A server certificate the `ca-file` did not sign is a connection error, not a session."""
    ca, _, rogue = pki
    inner = PairDialer()
    dialer = tls_dialer(backend(ca, ssl=True, ca_file=str(ca.cert)), inner, loop, loop.clock, str)
    got = results(dialer.dial("10.0.0.1", 21050, 2.0))
    far = serve_tls(loop, inner.far[0], rogue)
    drive(loop, lambda: bool(got and far))
    assert isinstance(got[0], Failure) and got[0].check(ConnectError)
    assert "certificate verify failed" in str(got[0].value)
    assert isinstance(got[0].value, ConnectError) and not got[0].value.timeout
    assert loop.watchers == {}


def test_dialer_checks_verifyhost(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """`verifyhost` must be covered by the server certificate's SAN."""
    ca, lb, _ = pki
    inner = PairDialer()
    proxy = backend(ca, ssl=True, ca_file=str(ca.cert), verifyhost="other.test")
    dialer = tls_dialer(proxy, inner, loop, loop.clock, str)
    got = results(dialer.dial("10.0.0.1", 21050, 2.0))
    far = serve_tls(loop, inner.far[0], lb)
    drive(loop, lambda: bool(got and far))
    assert isinstance(got[0], Failure) and "does not match 'other.test'" in str(got[0].value)


def test_pump_moves_clear_bytes_over_tls_legs(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """A session with a TLS client leg counts clear bytes and passes a half-close on."""
    ca, lb, _ = pki
    ds, dc = pair(
        loop,
        server_context(Bind("h", 1, ssl=True, crt=(str(lb.combined),))),
        client_ctx(ca),
    )
    rs, rc = results(ds), results(dc)
    drive(loop, lambda: bool(rs and rc))
    lb_client_leg, client = rs[0], rc[0]
    server_leg, server = socket.socketpair()
    server_leg.setblocking(False)
    server.setblocking(False)
    ended: list[str] = []
    session = Session(loop, lb_client_leg, server_leg, PumpTimeouts(), lambda s, f: ended.append(f))
    session.start()
    payload = bytes(range(256)) * 400  # 102400 bytes: several TLS records
    client.sendall(payload)
    got = b""

    def read_server() -> bool:
        nonlocal got
        with contextlib.suppress(BlockingIOError):
            got += server.recv(1 << 20)
        return len(got) >= len(payload)

    drive(loop, read_server)
    assert got == payload and session.bytes_in == len(payload)
    server.sendall(b"reply")
    server.shutdown(socket.SHUT_WR)
    echoed: list[bytes] = []

    def read_client() -> bool:
        with contextlib.suppress(BlockingIOError):
            echoed.append(client.recv(100))
        return b"" in echoed

    drive(loop, read_client)
    assert b"".join(echoed) == b"reply" and session.bytes_out == 5
    client.shutdown(socket.SHUT_WR)
    drive(loop, lambda: bool(ended))
    assert ended == ["--"]
    client.close()
    server.close()


def test_tls_leg_keeps_backpressure(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """A server that does not read stops the TLS client leg being read: one chunk held, no more."""
    ca, lb, _ = pki
    ds, dc = pair(
        loop,
        server_context(Bind("h", 1, ssl=True, crt=(str(lb.combined),))),
        client_ctx(ca),
    )
    rs, rc = results(ds), results(dc)
    drive(loop, lambda: bool(rs and rc))
    client: TLSSocket = rc[0]
    server_leg, server = socket.socketpair()
    server_leg.setblocking(False)
    server.setblocking(False)
    session = Session(loop, rs[0], server_leg, PumpTimeouts(), lambda s, f: None)
    session.start()
    block = bytes(range(256)) * 64  # 16 KiB
    sent = 0
    for _ in range(2000):  # fill the client's socket, the pump and the server's socket
        try:
            sent += client.send(block)
        except BlockingIOError:
            loop.doRead()
            try:
                sent += client.send(block)
            except BlockingIOError:
                break
    for _ in range(50):
        loop.doRead()
    assert session.server.pending is not None  # one chunk waits for the server
    held = session.bytes_in
    for _ in range(50):
        loop.doRead()
    assert session.bytes_in == held  # nothing more read from the client meanwhile
    assert sent > held  # the rest waits in the client's socket, not in our memory
    got = 0
    for _ in range(5000):
        try:
            got += len(server.recv(1 << 20))
        except BlockingIOError:
            loop.doRead()
        if got >= sent:
            break
    assert got == sent == session.bytes_in
    session.end("--")
    client.close()
    server.close()


def test_idle_tls_session_times_out(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """`timeout client` ends an idle session whose client leg is TLS with `cD`."""
    ca, lb, _ = pki
    ds, dc = pair(
        loop,
        server_context(Bind("h", 1, ssl=True, crt=(str(lb.combined),))),
        client_ctx(ca),
    )
    rs, rc = results(ds), results(dc)
    drive(loop, lambda: bool(rs and rc))
    server_leg, server = socket.socketpair()
    server_leg.setblocking(False)
    ended: list[str] = []
    session = Session(
        loop, rs[0], server_leg, PumpTimeouts(client=1.0), lambda s, f: ended.append(f)
    )
    session.start()
    clock = loop.clock
    assert isinstance(clock, task.Clock)
    clock.advance(0.9)
    assert ended == []
    clock.advance(0.2)
    assert ended == ["cD"] and loop.sessions == 0 and clock.getDelayedCalls() == []
    rc[0].close()
    server.close()


def test_close_abandons_handshakes_in_progress(loop: PumpLoop, pki: tuple[CA, Leaf, Leaf]) -> None:
    """Stopping the frontend drops a client still in its handshake: never accepted, no timer."""
    _, lb, _ = pki
    fe = tls_frontend(lb, loop, [])
    accepted: list[socket.socket] = []
    on_accept = fe.acceptor(lambda s, peer, local: accepted.append(s))
    a, b = socket.socketpair()
    a.setblocking(False)
    on_accept(a, ("127.0.0.1", 40003), ("127.0.0.1", 5443))
    assert len(fe.pending) == 1  # the client has sent nothing: the handshake waits
    fe.close()
    assert fe.pending == {}
    assert accepted == []
    clock = loop.clock
    assert isinstance(clock, task.Clock)
    assert clock.getDelayedCalls() == []
    b.close()
