"""TLS in the balancer, in HAProxy's syntax: offload, bridging, and the contexts behind them.

- ``bind ... ssl crt <pem> [alpn ...] [ssl-min-ver ...] [ca-file ... verify ...]``:
  the balancer completes the client's handshake *before* the session exists, as
  HAProxy does (a failed handshake never reaches a backend and is logged
  ``<ip>:<port> [<date>] <frontend>/<listener>: SSL handshake failure``, measured
  on HAProxy 2.6.12), then the session runs with a :class:`TLSSocket` client leg.
- ``server ... ssl [verify none|required] [ca-file ...] [sni str(...)]
  [verifyhost ...] [crt ...]``: :class:`TLSDialer` dials TCP, then does the
  handshake inside ``timeout connect``; a handshake or verification failure is a
  connection failure (retries, redispatch, ``SC`` with ``Tc`` -1, as measured).
- Without ``ssl`` nothing here runs: passthrough is the plain pump.

Handshakes are driven by the pump's ``epoll`` (``PumpLoop.watch``); after that the
pump moves the bytes and counts them on the clear side.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from haconfig.model import Bind, Proxy, ServerParams
from proxy._reactor import Clock
from proxy._tls_socket import TLSSocket
from proxy.connect import ConnectError, Dialer
from proxy.pump import PumpLoop
from proxy.tcplog import format_accept_date

__all__ = [
    "FrontendTLS",
    "HandshakeError",
    "TLSConfigError",
    "TLSDialer",
    "TLSSocket",
    "client_context",
    "handshake",
    "server_context",
    "tls_dialer",
]

_log = Logger()

_EPOLLIN = 1
_EPOLLOUT = 4

#: ``ssl-min-ver`` / ``ssl-max-ver`` keywords (HAProxy) -> OpenSSL versions.
VERSIONS = {
    "TLSv1.0": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}


class TLSConfigError(ValueError):
    """A TLS setting cannot be used; the message follows HAProxy's where it has one."""


class HandshakeError(Exception):
    """A handshake did not complete; ``str()`` is HAProxy's reason text."""

    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


# --- contexts --------------------------------------------------------------------------


def _base_context(min_ver: str | None, where: str) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_IGNORE_UNEXPECTED_EOF)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # HAProxy 2.6's default too
    if min_ver is not None:
        if min_ver not in VERSIONS:
            raise TLSConfigError(
                f"{where}: 'ssl-min-ver' : unknown version '{min_ver}'"
                f" (expects one of {', '.join(VERSIONS)})"
            )
        ctx.set_min_proto_version(VERSIONS[min_ver])
    return ctx


def _load_crt(ctx: SSL.Context, path: str) -> None:
    if not os.path.exists(path):
        raise TLSConfigError(f"unable to stat SSL certificate from file '{path}'")
    try:
        ctx.use_certificate_chain_file(path)
    except SSL.Error as e:
        raise TLSConfigError(f"unable to load SSL certificate from PEM file '{path}'") from e
    try:
        ctx.use_privatekey_file(path)
        ctx.check_privatekey()
    except SSL.Error as e:
        raise TLSConfigError(f"No Private Key found in '{path}'") from e


def _load_ca(ctx: SSL.Context, path: str, where: str) -> None:
    if not os.path.exists(path):
        raise TLSConfigError(f"{where}: unable to load CA file '{path}'")
    try:
        ctx.load_verify_locations(path)
    except SSL.Error as e:
        raise TLSConfigError(f"{where}: unable to load CA file '{path}'") from e


def _alpn_list(alpn: str) -> list[bytes]:
    return [p.encode("ascii") for p in alpn.split(",") if p]


def server_context(bind: Bind) -> SSL.Context:
    """The context that terminates TLS on ``bind ... ssl crt <pem>``."""
    where = f"bind {bind.host}:{bind.port}"
    if not bind.crt:
        raise TLSConfigError(f"no SSL certificate specified for {where} (use 'crt')")
    ctx = _base_context(bind.ssl_min_ver, where)
    _load_crt(ctx, bind.crt[0])  # more crt files would be SNI-selected: not supported
    if bind.ca_file:
        _load_ca(ctx, bind.ca_file, where)
    verify = bind.verify or "none"  # HAProxy: no client certificate asked by default
    if verify == "required":
        if not bind.ca_file:
            raise TLSConfigError(f"{where}: verify is enabled but no CA file specified")
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_preverified)
    elif verify == "optional":
        ctx.set_verify(SSL.VERIFY_PEER, _accept_preverified)
    if bind.alpn:
        ours = _alpn_list(bind.alpn)

        def select(conn: SSL.Connection, offered: list[bytes]) -> bytes:
            for proto in ours:
                if proto in offered:
                    return proto
            return SSL.NO_OVERLAPPING_PROTOCOLS  # type: ignore[return-value]

        ctx.set_alpn_select_callback(select)
    return ctx


def _accept_preverified(conn: SSL.Connection, cert: Any, errnum: int, depth: int, ok: int) -> bool:
    return bool(ok)


def client_context(params: ServerParams, where: str) -> SSL.Context:
    """The context that re-encrypts towards ``server ... ssl`` (verify required by default)."""
    ctx = _base_context(None, where)
    verify = params.verify or "required"
    if verify not in ("none", "required"):
        raise TLSConfigError(f"{where}: 'verify' expects 'none' or 'required', got '{verify}'")
    if verify == "required":
        if not params.ca_file:
            raise TLSConfigError(
                f"{where}: verify is enabled by default but no CA file specified."
                " If you're running on a LAN where you're certain to trust the server's"
                " certificate, please set an explicit 'verify none' statement on the"
                " 'server' line, or use 'ssl-server-verify none' in the global section"
                " to disable server-side verifications by default."
            )
        _load_ca(ctx, params.ca_file, where)
        ctx.set_verify(SSL.VERIFY_PEER, _accept_preverified)
    if params.crt:
        _load_crt(ctx, params.crt)
    return ctx


def sni_value(expr: str | None, where: str) -> str | None:
    """``sni str(<name>)``: the one sample expression supported (no per-request fetches)."""
    if expr is None:
        return None
    if expr.startswith("str(") and expr.endswith(")"):
        return expr[4:-1]
    raise TLSConfigError(f"{where}: 'sni' : only str(<name>) is supported, not '{expr}'")


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """``name`` is covered by the certificate's SAN (DNS with a leading ``*.`` or IP)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in sans.get_values_for_type(x509.IPAddress)
    name = name.lower().rstrip(".")
    for dns in sans.get_values_for_type(x509.DNSName):
        pattern = dns.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


# --- the handshake ---------------------------------------------------------------------


def handshake(
    sock: TLSSocket, loop: PumpLoop, clock: Clock, timeout: float | None
) -> Deferred[TLSSocket]:
    """Drive ``sock``'s handshake from the pump's epoll; fails with :class:`HandshakeError`."""
    fd = sock.fileno()
    state: dict[str, Any] = {"timer": None, "watching": False, "done": False}

    def stop() -> None:
        state["done"] = True
        if state["watching"]:
            state["watching"] = False
            loop.unwatch(fd)
        timer = state["timer"]
        if timer is not None and timer.active():
            timer.cancel()

    def cancel(_: Deferred[TLSSocket]) -> None:
        stop()

    d: Deferred[TLSSocket] = Deferred(cancel)

    def fail(reason: str, timed_out: bool = False) -> None:
        stop()
        d.errback(Failure(HandshakeError(reason, timeout=timed_out)))

    def wait(mask: int) -> None:
        if state["watching"]:
            loop.unwatch(fd)
        state["watching"] = True
        loop.watch(fd, mask, step)

    def step(_events: int = 0) -> None:
        if state["done"]:
            return
        try:
            sock.tls.do_handshake()
        except SSL.WantReadError:
            wait(_EPOLLIN)
            return
        except SSL.WantWriteError:
            wait(_EPOLLOUT)
            return
        except SSL.SysCallError:
            fail("Connection closed during SSL handshake")
            return
        except SSL.ZeroReturnError:
            fail("Connection closed during SSL handshake")
            return
        except SSL.Error as e:
            text = str(e).lower()
            if "unexpected eof" in text:
                fail("Connection closed during SSL handshake")
            elif "certificate verify failed" in text:
                fail("SSL handshake failure: certificate verify failed")
            else:
                fail("SSL handshake failure")
            return
        except Exception:
            # Never let a surprise escape into the pump's epoll loop (it serves everyone).
            _log.failure("TLS handshake on fd {fd} failed unexpectedly", fd=fd)
            fail("SSL handshake failure")
            return
        stop()
        d.callback(sock)

    if timeout:
        state["timer"] = clock.callLater(timeout, fail, "Timeout during SSL handshake", True)
    step()
    return d


# --- the frontend side -----------------------------------------------------------------

Accept = Callable[[socket.socket, tuple[str, int], tuple[str, int]], None]
LogLine = Callable[[str], None]


@dataclass(frozen=True)
class _TLSBind:
    host: str  # "" = any address
    port: int
    label: str  # the listener's name in error logs: bind `name`, else its number
    context: SSL.Context | None  # None: a plain bind of the same frontend


def _any(host: str) -> bool:
    return host in ("", "*", "0.0.0.0", "::")


class FrontendTLS:
    """The TLS listeners of one frontend: handshake first, then hand over the session."""

    def __init__(
        self,
        name: str,
        binds: Iterable[_TLSBind],
        loop: PumpLoop,
        clock: Clock,
        *,
        timeout: float | None,
        log: LogLine | None,
        wall: Callable[[], float],
    ) -> None:
        self.name = name
        self.binds = tuple(binds)
        self.loop = loop
        self.clock = clock
        self.timeout = timeout
        self.log = log
        self.wall = wall
        self.pending: dict[int, Deferred[TLSSocket]] = {}
        self.failed = 0  # HAProxy's ssl_failed_handshake
        self.handshakes = 0

    @classmethod
    def build(
        cls,
        proxy: Proxy,
        loop: PumpLoop,
        clock: Clock,
        *,
        log: LogLine | None,
        wall: Callable[[], float],
    ) -> FrontendTLS | None:
        """``None`` when no ``bind`` of ``proxy`` has ``ssl`` (nothing to terminate)."""
        if not any(b.ssl for b in proxy.binds):
            return None
        binds: list[_TLSBind] = []
        luid = 0
        for bind in proxy.binds:
            ctx = server_context(bind) if bind.ssl else None
            for port in bind.ports:
                luid += 1
                binds.append(_TLSBind(bind.host, port, bind.name or str(luid), ctx))
        t = proxy.timeouts.client
        return cls(
            proxy.name, binds, loop, clock, timeout=t / 1000.0 if t else None, log=log, wall=wall
        )

    def _find(self, local: tuple[str, int]) -> _TLSBind | None:
        host, port = local
        best: _TLSBind | None = None
        for b in self.binds:
            if b.port != port:
                continue
            if b.host == host:
                return b
            if _any(b.host):
                best = b
        return best

    def acceptor(self, accept: Accept) -> Accept:
        """Wrap ``accept``: TLS binds run the handshake first."""

        def on_accept(sock: socket.socket, peer: tuple[str, int], local: tuple[str, int]) -> None:
            bind = self._find(local)
            if bind is None or bind.context is None:
                accept(sock, peer, local)
                return
            self.start(bind, sock, peer, local, accept)

        return on_accept

    def start(
        self,
        bind: _TLSBind,
        sock: socket.socket,
        peer: tuple[str, int],
        local: tuple[str, int],
        accept: Accept,
    ) -> None:
        assert bind.context is not None
        when = self.wall()
        tls = TLSSocket.wrap(sock, bind.context, server_side=True)
        fd = tls.fileno()
        self.handshakes += 1
        d = handshake(tls, self.loop, self.clock, self.timeout)
        self.pending[fd] = d

        def done(s: TLSSocket) -> None:
            self.pending.pop(fd, None)
            accept(s, peer, local)

        def failed(f: Failure) -> None:
            self.pending.pop(fd, None)
            tls.close()
            if f.check(CancelledError) is not None:
                return  # stopping
            if f.check(HandshakeError) is None:
                _log.failure("TLS accept from {client} failed", f, client=peer[0])
                return
            self.failed += 1
            reason = str(f.value).split(":", 1)[0]
            if self.log is not None:
                self.log(
                    f"{peer[0]}:{peer[1]} [{format_accept_date(when)}]"
                    f" {self.name}/{bind.label}: {reason}"
                )

        d.addCallbacks(done, failed)

    def close(self) -> None:
        """Abandon every handshake in progress (stop)."""
        for d in list(self.pending.values()):
            d.cancel()
        self.pending.clear()


# --- the server side -------------------------------------------------------------------


@dataclass(frozen=True)
class ServerTLS:
    """How to re-encrypt towards one server address."""

    host: str  # "" = the client's destination address
    port: int | None  # None = the client's destination port (or an offset)
    context: SSL.Context
    sni: str | None
    verifyhost: str | None


class TLSDialer:
    """A dialer that puts TLS on the servers configured with ``ssl``, plain TCP elsewhere."""

    def __init__(
        self, inner: Dialer, servers: Iterable[ServerTLS], loop: PumpLoop, clock: Clock
    ) -> None:
        self.inner = inner
        self.servers = tuple(servers)
        self.loop = loop
        self.clock = clock

    @property
    def keepalive(self) -> bool:
        return bool(getattr(self.inner, "keepalive", False))

    @keepalive.setter
    def keepalive(self, value: bool) -> None:
        if hasattr(self.inner, "keepalive"):
            self.inner.keepalive = value

    def _find(self, host: str, port: int) -> ServerTLS | None:
        for s in self.servers:
            if (s.host == "" or s.host == host) and (s.port is None or s.port == port):
                return s
        return None

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        target = self._find(host, port)
        inner = self.inner.dial(host, port, timeout)
        if target is None:
            return inner
        started = self.clock.seconds()
        current: list[Deferred[Any]] = [inner]

        def cancel(_: Deferred[socket.socket]) -> None:
            current[0].cancel()

        d: Deferred[socket.socket] = Deferred(cancel)

        def connected(raw: socket.socket) -> None:
            tls = TLSSocket.wrap(raw, target.context, server_side=False)
            if target.sni:
                tls.tls.set_tlsext_host_name(target.sni.encode("idna"))
            left = None if not timeout else max(0.001, timeout - (self.clock.seconds() - started))
            hs = handshake(tls, self.loop, self.clock, left)
            current[0] = hs

            def shaken(s: TLSSocket) -> None:
                name = target.verifyhost or target.sni
                cert = s.tls.get_peer_certificate(as_cryptography=True)
                verify = target.context.get_verify_mode()
                if verify and name and cert is not None and not hostname_matches(cert, name):
                    s.close()
                    d.errback(Failure(ConnectError(f"certificate does not match '{name}'")))
                    return
                d.callback(s)

            def broken(f: Failure) -> None:
                tls.close()
                if f.check(HandshakeError) is not None:
                    assert isinstance(f.value, HandshakeError)
                    d.errback(Failure(ConnectError(str(f.value), timeout=f.value.timeout)))
                else:
                    d.errback(f)

            hs.addCallbacks(shaken, broken)

        def refused(f: Failure) -> None:
            d.errback(f)

        inner.addCallbacks(connected, refused)
        return d


def tls_dialer(
    proxy: Proxy,
    inner: Dialer,
    loop: PumpLoop,
    clock: Clock,
    resolve: Callable[[str], str],
) -> Dialer:
    """``inner`` itself when no server of ``proxy`` has ``ssl``; a :class:`TLSDialer` else."""
    servers: list[ServerTLS] = []
    for s in proxy.servers:
        p = proxy.server_params(s)
        if not p.ssl:
            continue
        where = f"server {proxy.name}/{s.name}"
        servers.append(
            ServerTLS(
                host=resolve(s.host),
                port=None if s.port is None or s.port_offset else s.port,
                context=client_context(p, where),
                sni=sni_value(p.sni, where),
                verifyhost=p.verifyhost,
            )
        )
    if not servers:
        return inner
    return TLSDialer(inner, servers, loop, clock)
