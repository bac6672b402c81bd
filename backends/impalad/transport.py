"""Twisted glue: the HS2 binary port (unframed or Thrift SASL) and hs2-http.

The protocols only connect a transport to the byte parsers in ``_wire`` and
complete messages to the generated Thrift processor. Each reply goes out in a
single ``transport.write``, and Nagle is off, so no RPC waits on delayed ACKs.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import socket
from collections.abc import Callable, Mapping
from typing import Any

from thrift.protocol.TBinaryProtocol import TBinaryProtocolAccelerated
from thrift.transport.TTransport import TMemoryBuffer
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols import policies
from twisted.web import resource, server

from backends.common import web
from backends.impalad import _wire
from backends.impalad.beeswax import BeeswaxHandler
from backends.impalad.cookies import COOKIE_NAME, DELETE_COOKIE, CookieSigner
from backends.impalad.gen.ImpalaService import ImpalaHiveServer2Service, ImpalaService
from backends.impalad.handler import ConnectionHandler
from backends.impalad.sasl import AuthenticationError, Mechanism, MechanismFactory
from backends.impalad.server import ImpalaServer

log = Logger()

MAX_QUEUED_MESSAGES = 16


def _peer(transport: Any) -> str:
    try:
        peer = transport.getPeer()
        return f"{peer.host}:{peer.port}"
    except Exception:
        return "unknown"


def dispatch(processor: Any, message: bytes) -> defer.Deferred[bytes]:
    """Run one complete Thrift CALL through ``processor``; fires with the reply bytes.

    Unknown methods and undecodable arguments are answered with a
    TApplicationException without touching the handler; the header is parsed
    binary-safely, so no handle is ever UTF-8-decoded.
    """
    header = _wire.parse_header(message)
    if header.type not in (_wire.MSG_CALL, _wire.MSG_ONEWAY):
        return defer.succeed(
            _wire.application_exception(
                header.name,
                header.seqid,
                _wire.APP_INVALID_MESSAGE_TYPE,
                f"Unexpected message type {header.type}",
            )
        )
    if header.name not in processor._processMap:
        return defer.succeed(
            _wire.application_exception(
                header.name,
                header.seqid,
                _wire.APP_UNKNOWN_METHOD,
                f"Invalid method name: '{header.name}'",
            )
        )
    otrans = TMemoryBuffer()
    try:
        d: defer.Deferred[Any] = processor.process(
            TBinaryProtocolAccelerated(TMemoryBuffer(message)), TBinaryProtocolAccelerated(otrans)
        )
    except Exception as e:
        log.info("bad {name} call: {err!r}", name=header.name, err=e)
        return defer.succeed(
            _wire.application_exception(
                header.name, header.seqid, _wire.APP_PROTOCOL_ERROR, f"Bad {header.name} call: {e}"
            )
        )
    return d.addCallback(lambda _: otrans.getvalue())


HandlerFactory = Callable[[str | None, str], ConnectionHandler]


class HS2Protocol(protocol.Protocol):
    """One HS2 client connection on the binary port.

    The first byte decides the framing: ``0x80`` is an unframed strict binary
    message (NOSASL), ``0x01`` a SASL START (PLAIN now, GSSAPI later); after SASL
    every message is length-framed. Bad input closes this connection only.
    """

    #: the connection counters' prefix (``<counter>-conn-open``, ``-conn-total``)
    counter = "hs2"

    def __init__(
        self,
        server: ImpalaServer,
        mechanisms: Mapping[str, MechanismFactory],
        max_message: int = _wire.DEFAULT_MAX_MESSAGE,
        *,
        allow_nosasl: bool = True,
    ) -> None:
        self._server = server
        self._mechanisms = mechanisms
        self._allow_nosasl = allow_nosasl
        self._max_message = max_message
        self._scanner: _wire.MessageScanner | None = None
        self._sasl: _wire.SaslFramer | None = None
        self._mechanism: Mechanism | None = None
        self._processor: Any = None
        self._handler: Any = None  # has ``opened``: the sessions to close with the connection
        self._queue: collections.deque[bytes] = collections.deque()
        self._busy = False
        self._paused = False
        self._closed = False
        self.user: str | None = None
        self.client = "unknown"

    @property
    def _tx(self) -> Any:
        return self.transport

    def connectionMade(self) -> None:
        self.client = _peer(self.transport)
        with contextlib.suppress(Exception):
            self._tx.setTcpNoDelay(True)
        self._server.counters[f"{self.counter}-conn-open"] += 1
        self._server.counters[f"{self.counter}-conn-total"] += 1
        self._quick_ack()

    def connectionLost(self, reason: Any = None) -> None:
        self._closed = True
        self._server.counters[f"{self.counter}-conn-open"] -= 1
        if self._handler is not None:
            self._server.connection_closed(self._handler.opened)

    def _fail(self, why: str) -> None:
        log.info("closing HS2 connection from {client}: {why}", client=self.client, why=why)
        self._closed = True
        self._tx.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            if self._scanner is None and self._sasl is None:
                if data[:1] == b"\x80":
                    self._scanner = _wire.MessageScanner(self._max_message)
                    self._start_processor(None)
                elif data[:1] == b"\x01":
                    self._sasl = _wire.SaslFramer(self._max_message)
                else:
                    self._fail(f"not a Thrift binary or SASL client (first byte {data[:1].hex()})")
                    return
            self._quick_ack()
            if self._scanner is not None and not self._allow_nosasl:
                self._refuse_nosasl(self._scanner.feed(data))
                return
            if self._scanner is not None:
                self._queue.extend(self._scanner.feed(data))
            else:
                self._sasl_received(data)
        except _wire.WireError as e:
            self._fail(str(e))
            return
        self._pump()

    def _quick_ack(self) -> None:
        """Acknowledge at once while SASL negotiates (Linux ``TCP_QUICKACK``, one-shot).

        SASL clients send START and their first token as two small writes, then wait.
        With Nagle on (the clients leave it on), the second waits for our ACK of the
        first, and after a TLS handshake the kernel delays that ACK by up to 40 ms."""
        with contextlib.suppress(Exception):
            tx = self._tx
            while isinstance(tx, policies.ProtocolWrapper):  # TLS: the TCP transport below
                tx = tx.transport
            tx.getHandle().setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _refuse_nosasl(self, messages: list[bytes]) -> None:
        """Authentication is on (Kerberos, or a password file): answer the first
        unauthenticated call with a clear error, then close.

        (Impala just drops such a connection; the error tells the user what to do.)"""
        if not messages:
            return
        header = _wire.parse_header(messages[0])
        names = ", ".join(sorted(self._mechanisms))
        hints = []
        if "GSSAPI" in self._mechanisms:
            hints.append("Kerberos (impala-shell -k, impyla auth_mechanism='GSSAPI')")
        if "PLAIN" in self._mechanisms:
            hints.append("a user and password (impala-shell -l -u USER, impyla 'PLAIN')")
        self._tx.write(
            _wire.application_exception(
                header.name,
                header.seqid,
                _wire.APP_INTERNAL_ERROR,
                f"this impalad requires SASL authentication ({names}); "
                f"connect with {' or '.join(hints)}",
            )
        )
        self._fail("an unauthenticated (NOSASL) client while authentication is required")

    def _start_processor(self, user: str | None) -> None:
        self.user = user
        self._handler = ConnectionHandler(self._server, user, self.client, "HIVESERVER2")
        self._processor = ImpalaHiveServer2Service.Processor(self._handler)

    def _sasl_received(self, data: bytes) -> None:
        assert self._sasl is not None
        for item in self._sasl.feed(data):
            if isinstance(item, bytes):
                self._queue.append(item)
                continue
            if self._sasl.is_negotiated:
                raise _wire.WireError("SASL message after negotiation completed")
            self._sasl_token(item)
            if self._closed:
                return

    def _sasl_token(self, token: _wire.SaslToken) -> None:
        assert self._sasl is not None
        status = _wire.SaslStatus
        if token.status in (status.BAD, status.ERROR):
            self._fail(f"client ended SASL negotiation: {token.payload!r}")
            return
        if self._mechanism is None:
            if token.status != status.START:
                raise _wire.WireError(f"expected SASL START, got {token.status.name}")
            name = token.payload.decode("ascii", "replace")
            factory = self._mechanisms.get(name)
            if factory is None:
                self._tx.write(
                    _wire.sasl_message(status.BAD, f"Unsupported mechanism type {name}".encode())
                )
                self._fail(f"unsupported SASL mechanism {name!r}")
                return
            self._mechanism = factory()
            return
        if token.status != status.OK:
            raise _wire.WireError(f"expected SASL OK, got {token.status.name}")
        try:
            step = self._mechanism.step(token.payload)
        except AuthenticationError as e:
            text = str(e) if e.tell_client else "Authentication failed"
            self._tx.write(_wire.sasl_message(status.BAD, text.encode("utf-8", "replace")))
            self._fail(f"SASL authentication failed: {e}")
            return
        if not step.complete:
            self._tx.write(_wire.sasl_message(status.OK, step.challenge))
            return
        self._tx.write(_wire.sasl_message(status.COMPLETE, step.challenge))
        self._sasl.negotiated()
        self._start_processor(step.user)
        log.debug("SASL user {user} from {client}", user=step.user, client=self.client)

    def _pump(self) -> None:
        """Process queued messages one at a time, in order."""
        if len(self._queue) > MAX_QUEUED_MESSAGES and not self._paused:
            self._paused = True
            self._tx.pauseProducing()
        while self._queue and not self._busy and not self._closed:
            message = self._queue.popleft()
            if self._processor is None:
                self._fail("Thrift message before authentication")
                return
            try:
                d = dispatch(self._processor, message)
            except _wire.WireError as e:
                self._fail(str(e))
                return
            self._busy = True
            d.addCallbacks(self._reply, self._internal_error)
        if self._paused and len(self._queue) <= MAX_QUEUED_MESSAGES // 2 and not self._closed:
            self._paused = False
            self._tx.resumeProducing()

    def _reply(self, reply: bytes) -> None:
        self._busy = False
        if self._closed:
            return
        if reply:
            self._tx.write(_wire.frame(reply) if self._sasl is not None else reply)
        self._pump()

    def _internal_error(self, failure: Any) -> None:
        self._busy = False
        log.failure("HS2 request from {client} failed", failure, client=self.client)
        self._fail("internal error")


class BeeswaxProtocol(HS2Protocol):
    """One Beeswax client connection (:mod:`backends.impalad.beeswax`): the same framing
    and authentication as the HS2 binary port, the ImpalaService processor."""

    counter = "beeswax"

    def _start_processor(self, user: str | None) -> None:
        self.user = user
        self._handler = BeeswaxHandler(self._server, user, self.client)
        self._processor = ImpalaService.Processor(self._handler)


class HS2Factory(protocol.Factory):
    """Builds :class:`HS2Protocol` for the binary HS2 port."""

    noisy = False

    def __init__(
        self,
        server: ImpalaServer,
        mechanisms: Mapping[str, MechanismFactory],
        *,
        allow_nosasl: bool = True,
    ) -> None:
        self.server = server
        self.mechanisms = mechanisms
        self.allow_nosasl = allow_nosasl

    protocol_class: type[HS2Protocol] = HS2Protocol

    def buildProtocol(self, addr: Any) -> HS2Protocol:
        cls = self.protocol_class
        if self.server.counters[f"{cls.counter}-conn-open"] >= 10_000:
            return None  # type: ignore[return-value]
        p = cls(self.server, self.mechanisms, allow_nosasl=self.allow_nosasl)
        p.factory = self
        return p


class BeeswaxFactory(HS2Factory):
    """Builds :class:`BeeswaxProtocol` for ``--beeswax_port``."""

    protocol_class = BeeswaxProtocol


# -- hs2-http -----------------------------------------------------------------------------


def basic_user(header: str | None) -> tuple[str, str] | None:
    """The (user, password) of an ``Authorization: Basic`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None


PasswordCheck = Callable[[str, str], bool]
NegotiateAccept = Callable[[bytes], tuple[str, bytes]]
"""SPNEGO: the client's token -> (principal, token to send back); raises AuthenticationError."""


def negotiate_token(header: str | None) -> bytes | None:
    """The token of an ``Authorization: Negotiate <base64>`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "negotiate":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        return None


class ThriftHttpResource(resource.Resource):
    """HS2 over HTTP: each POST body is one Thrift message, the response body its reply.

    Impala ignores the path, and so do we. ``Authorization: Basic`` is checked
    with ``check_password`` and its user becomes the session user;
    ``Authorization: Negotiate`` (SPNEGO, when Kerberos is on) is accepted by
    ``negotiate`` and its principal becomes the session user. With
    ``require_auth`` a request without credentials gets ``401`` and the
    ``WWW-Authenticate`` challenges this server accepts. With ``cookies`` (when
    credentials are really checked) an authenticated response sets the ``impala.auth``
    cookie and a request returning a valid one needs no credentials
    (:mod:`backends.impalad.cookies`).
    """

    isLeaf = True

    def __init__(
        self,
        server: ImpalaServer,
        check_password: PasswordCheck,
        *,
        negotiate: NegotiateAccept | None = None,
        basic_allowed: bool = True,
        require_auth: bool = False,
        cookies: CookieSigner | None = None,
    ) -> None:
        resource.Resource.__init__(self)
        self._server = server
        self._check = check_password
        self._negotiate = negotiate
        self._basic_allowed = basic_allowed
        self._require_auth = require_auth
        self._cookies = cookies

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"content-type", b"text/plain")
        return b"HS2 over HTTP takes POST requests with a Thrift message\n"

    def _unauthorized(self, request: server.Request, why: str) -> bytes:
        request.setResponseCode(401)
        if self._negotiate is not None:
            request.responseHeaders.addRawHeader(b"www-authenticate", b"Negotiate")
        if self._basic_allowed:
            request.responseHeaders.addRawHeader(b"www-authenticate", b'Basic realm="impala"')
        request.setHeader(b"connection", b"close")
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"Unauthorized: {why}\n".encode()

    def _authenticate(self, request: server.Request) -> tuple[str | None, bytes | None]:
        """(user or None, an error body or None); a new cookie for a user who just
        authenticated, none for one who came with a valid cookie."""
        cookie_user = self._cookie_user(request)
        if cookie_user is not None:
            return cookie_user, None
        user, refusal = self._credentials(request)
        if user is not None and self._cookies is not None:
            request.responseHeaders.addRawHeader(b"set-cookie", self._cookies.make(user).encode())
        return user, refusal

    def _cookie_user(self, request: server.Request) -> str | None:
        """The user of a valid ``impala.auth`` cookie; an invalid one is deleted."""
        raw = request.getHeader(b"cookie")
        if self._cookies is None or not raw or COOKIE_NAME.encode() not in raw:
            return None
        user, why = self._cookies.check(raw.decode("latin-1"))
        counters = self._server.counters
        if user is not None:
            counters["hs2-http-cookie-auth-success"] += 1
            return user
        counters["hs2-http-cookie-auth-failure"] += 1
        log.info("hs2-http: invalid cookie from {client}: {why}", client=_client(request), why=why)
        request.responseHeaders.addRawHeader(b"set-cookie", DELETE_COOKIE.encode())
        return None

    def _credentials(self, request: server.Request) -> tuple[str | None, bytes | None]:
        raw = request.getHeader(b"authorization")
        header = raw.decode("latin-1") if raw else None
        token = negotiate_token(header) if self._negotiate is not None else None
        if token is not None:
            assert self._negotiate is not None
            try:
                user, out = self._negotiate(token)
            except AuthenticationError as e:
                log.info(
                    "hs2-http Negotiate from {client} refused: {why}",
                    client=_client(request),
                    why=str(e),
                )
                return None, self._unauthorized(request, str(e) if e.tell_client else "")
            if out:
                request.setHeader(b"www-authenticate", b"Negotiate " + base64.b64encode(out))
            return user, None
        creds = basic_user(header) if self._basic_allowed else None
        if creds is not None:
            if not self._check(*creds):
                log.info(
                    "hs2-http Basic from {client} refused for user {user}",
                    client=_client(request),
                    user=creds[0],
                )
                return None, self._unauthorized(request, "bad user name or password")
            return creds[0], None
        if self._require_auth:
            return None, self._unauthorized(request, "this impalad requires authentication")
        return None, None

    def render_POST(self, request: server.Request) -> bytes | int:
        user, refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        assert request.content is not None
        body = request.content.read()
        peer = _client(request)
        handler = ConnectionHandler(self._server, user, peer, "HIVESERVER2_HTTP")
        processor = ImpalaHiveServer2Service.Processor(handler)
        try:
            d = dispatch(processor, body)
        except _wire.WireError as e:
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/plain")
            return f"Bad Thrift message: {e}\n".encode()

        def done(reply: bytes) -> None:
            if request.finished or getattr(request, "_disconnected", False):
                return
            request.setHeader(b"content-type", b"application/x-thrift")
            request.setHeader(b"content-length", str(len(reply)).encode())
            request.write(reply)
            request.finish()

        def failed(failure: Any) -> None:
            log.failure("hs2-http request failed", failure)
            if not request.finished and not getattr(request, "_disconnected", False):
                request.setResponseCode(500)
                request.finish()

        d.addCallbacks(done, failed)
        return server.NOT_DONE_YET


def _client(request: server.Request) -> str:
    addr: Any = request.getClientAddress()
    return f"{addr.host}:{addr.port}" if hasattr(addr, "port") else str(addr)


class _NoDelayChannel(web.LimitedChannel):
    #: a Thrift call over HTTP is one body: allow large ones (INSERT ... VALUES)
    max_body = 64 << 20

    @property
    def _tx(self) -> Any:
        return self.transport

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            self._tx.setTcpNoDelay(True)


class _HS2HttpSite(server.Site):
    """The hs2-http Site: counts connections (keep-alive makes them fewer than requests)."""

    def __init__(self, resource_: ThriftHttpResource, server_: ImpalaServer) -> None:
        super().__init__(resource_)  # type: ignore[no-untyped-call]
        self._impala = server_

    def buildProtocol(self, addr: Any) -> Any:
        self._impala.counters["hs2-http-conn-total"] += 1
        return super().buildProtocol(addr)  # type: ignore[no-untyped-call]


def make_http_site(
    server_: ImpalaServer,
    check_password: PasswordCheck,
    *,
    negotiate: NegotiateAccept | None = None,
    basic_allowed: bool = True,
    require_auth: bool = False,
    cookies: CookieSigner | None = None,
) -> server.Site:
    """The twisted.web Site for ``--hs2_http_port``."""
    resource_ = ThriftHttpResource(
        server_,
        check_password,
        negotiate=negotiate,
        basic_allowed=basic_allowed,
        require_auth=require_auth,
        cookies=cookies,
    )
    site = _HS2HttpSite(resource_, server_)
    site.protocol = _NoDelayChannel  # type: ignore[assignment,method-assign]
    site.noisy = False
    site.displayTracebacks = False
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log per RPC
    return site
