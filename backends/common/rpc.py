"""Internal RPC between our daemons: AMP commands, their wire types, links and TLS.

Impala speaks Thrift between statestored, catalogd and impalad; the brief lets us
choose, and Twisted's AMP (``twisted.protocols.amp``) is the natural fit. The
commands below mirror ``StatestoreService.thrift`` one for one:

- subscriber -> statestore (``--state_store_port``): :class:`RegisterSubscriber`,
  :class:`SetStatestoreDebugAction` (test only);
- statestore -> subscriber (the subscriber's callback address): :class:`Heartbeat`,
  :class:`UpdateState`, :class:`UpdateStatestoredRole`;
- statestore <-> statestore (``--state_store_ha_port``): :class:`StatestoreHaHandshake`,
  :class:`StatestoreHaHeartbeat`.

AMP caps one value at 65535 bytes, so structured arguments travel as JSON split
over numbered keys (:class:`JSONArg`); topic values are opaque bytes, carried as
base64 inside that JSON.

:class:`AmpLink` is an outbound link: a ``ClientService`` (reconnect with
backoff) plus calls that are bounded by a timeout on the injected clock.
TLS uses Impala's flag names: ``--ssl_server_certificate`` and
``--ssl_private_key`` make a daemon's listeners TLS; ``--ssl_client_ca_certificate``
makes its outbound links TLS, verifying the peer against that CA.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import random
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, ssl
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    wrapClientTLS,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp

PROTOCOL_VERSION = 2
"""Like Impala's ``StatestoreServiceVersion.V2``; older requests are refused."""

# zope.interface interfaces are not types to mypy without the mypy-zope plugin, so the
# providers we inject are named by these aliases (documentation, typed as Any).
Clock: TypeAlias = Any
"""An ``IReactorTime`` provider: the reactor, or ``task.Clock`` in tests."""
ClientEndpoint: TypeAlias = Any
"""An ``IStreamClientEndpoint`` provider."""
ServerEndpoint: TypeAlias = Any
"""An ``IStreamServerEndpoint`` provider."""
ListeningPort: TypeAlias = Any
"""An ``IListeningPort`` provider."""

_CHUNK = 60000
log = Logger()


class RpcError(Exception):
    """A request was malformed or refused; the message says why."""


class GuardedAMP(amp.AMP):
    """AMP that ends a connection whose bytes are not AMP with one log line (naming the
    peer and what was wrong) instead of an unhandled-error traceback; the daemon and its
    other connections go on. Every daemon's AMP protocol derives from it."""

    _garbled = False

    def dataReceived(self, data: bytes) -> None:
        if self._garbled:
            return
        try:
            super().dataReceived(data)  # type: ignore[no-untyped-call]
        except Exception as e:
            self._garbled = True
            tx: Any = self.transport
            peer = tx.getPeer() if tx is not None else None
            log.info(
                "closing {cls} connection from {peer}: not AMP ({error})",
                cls=type(self).__name__,
                peer=f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}",
                error=f"{type(e).__name__}: {e}"[:200],
            )
            if tx is not None:
                tx.abortConnection()


class JSONArg(amp.Argument):
    """Any JSON value, split over ``name``, ``name.1``, ... to pass AMP's 64 KiB cap."""

    def __init__(self, optional: bool = False) -> None:
        amp.Argument.__init__(self, optional)

    def toBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        obj = objects.pop(amp._wireNameToPythonIdentifier(name))
        data = json.dumps(obj, separators=(",", ":")).encode()
        strings[name] = data[:_CHUNK]
        for i, start in enumerate(range(_CHUNK, len(data), _CHUNK), start=1):
            strings[name + b"." + str(i).encode()] = data[start : start + _CHUNK]

    def fromBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        parts = [strings.pop(name)]
        i = 1
        while (key := name + b"." + str(i).encode()) in strings:
            parts.append(strings.pop(key))
            i += 1
        try:
            value = json.loads(b"".join(parts))
        except ValueError as e:
            raise RpcError(f"argument {name.decode()!r} is not valid JSON: {e}") from None
        objects[amp._wireNameToPythonIdentifier(name)] = value


# ----------------------------------------------------------------------------- wire types


@dataclasses.dataclass(frozen=True)
class TopicItem:
    """One key of a topic as it travels: value bytes, or a deletion marker."""

    key: str
    value: bytes = b""
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": base64.b64encode(self.value).decode(),
            "deleted": self.deleted,
        }

    @classmethod
    def from_json(cls, raw: Any) -> TopicItem:
        if not isinstance(raw, dict):
            raise RpcError("a topic item must be an object")
        key = raw.get("key")
        if not isinstance(key, str) or not key:
            raise RpcError("a topic item needs a non-empty string 'key'")
        try:
            value = base64.b64decode(str(raw.get("value", "")), validate=True)
        except (binascii.Error, ValueError):
            raise RpcError(f"topic item {key!r} has a value that is not base64") from None
        return cls(key, value, bool(raw.get("deleted", False)))


@dataclasses.dataclass(frozen=True)
class TopicRegistration:
    """A topic a subscriber wants, as in ``TTopicRegistration``."""

    name: str
    is_transient: bool = True
    filter_prefix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "is_transient": self.is_transient,
            "filter_prefix": self.filter_prefix,
        }

    @classmethod
    def from_json(cls, raw: Any) -> TopicRegistration:
        if not isinstance(raw, dict):
            raise RpcError("a topic registration must be an object")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise RpcError("a topic registration needs a non-empty string 'name'")
        prefix = raw.get("filter_prefix", "")
        if not isinstance(prefix, str):
            raise RpcError(f"topic {name!r}: 'filter_prefix' must be a string")
        return cls(name, bool(raw.get("is_transient", True)), prefix)


@dataclasses.dataclass(frozen=True)
class TopicDelta:
    """What the statestore sends for one topic: a delta after ``from_version``, or all."""

    topic: str
    items: tuple[TopicItem, ...]
    is_delta: bool
    from_version: int
    to_version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "items": [i.to_json() for i in self.items],
            "is_delta": self.is_delta,
            "from_version": self.from_version,
            "to_version": self.to_version,
        }

    @classmethod
    def from_json(cls, raw: Any) -> TopicDelta:
        if not isinstance(raw, dict) or not isinstance(raw.get("topic"), str):
            raise RpcError("a topic delta must be an object with a string 'topic'")
        items = raw.get("items", [])
        if not isinstance(items, list):
            raise RpcError("a topic delta's 'items' must be a list")
        return cls(
            raw["topic"],
            tuple(TopicItem.from_json(i) for i in items),
            bool(raw.get("is_delta", False)),
            _int(raw.get("from_version", 0), "from_version"),
            _int(raw.get("to_version", 0), "to_version"),
        )


@dataclasses.dataclass(frozen=True)
class TopicWrite:
    """What a subscriber sends back for one topic in its ``UpdateState`` answer.

    ``items`` are puts and deletions; ``clear_topic_entries`` empties the topic first;
    ``resync_from`` asks the statestore to send from that version next (0: a full update).
    """

    topic: str
    items: tuple[TopicItem, ...] = ()
    clear_topic_entries: bool = False
    resync_from: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "items": [i.to_json() for i in self.items],
            "clear_topic_entries": self.clear_topic_entries,
            "resync_from": self.resync_from,
        }

    @classmethod
    def from_json(cls, raw: Any) -> TopicWrite:
        if not isinstance(raw, dict) or not isinstance(raw.get("topic"), str):
            raise RpcError("a topic write must be an object with a string 'topic'")
        items = raw.get("items", [])
        if not isinstance(items, list):
            raise RpcError("a topic write's 'items' must be a list")
        resync = raw.get("resync_from")
        return cls(
            raw["topic"],
            tuple(TopicItem.from_json(i) for i in items),
            bool(raw.get("clear_topic_entries", False)),
            None if resync is None else _int(resync, "resync_from"),
        )


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RpcError(f"{what} must be an integer")
    return value


# ----------------------------------------------------------------------------- commands

SUBSCRIBER_TYPES = frozenset(
    {"ADMISSIOND", "CATALOGD", "COORDINATOR", "EXECUTOR", "COORDINATOR_EXECUTOR", "UNKNOWN"}
)
CONN_OK, CONN_FAILED, CONN_UNKNOWN = "OK", "FAILED", "UNKNOWN"

_ERRORS: dict[type[Exception], bytes] = {RpcError: b"RPC_ERROR"}


class RegisterSubscriber(amp.Command):
    """Subscriber -> statestore: register (again); answers who this statestore is."""

    arguments = [
        (b"protocol_version", amp.Integer()),
        (b"subscriber_id", amp.Unicode()),
        (b"subscriber_location", amp.Unicode()),
        (b"subscriber_type", amp.Unicode()),
        (b"topic_registrations", JSONArg()),
    ]
    response = [
        (b"protocol_version", amp.Integer()),
        (b"registration_id", amp.Unicode()),
        (b"statestore_id", amp.Unicode()),
        (b"statestore_is_active", amp.Boolean()),
        (b"active_statestored_version", amp.Integer()),
    ]
    errors = _ERRORS


class SetStatestoreDebugAction(amp.Command):
    """Test only: cut links on purpose (honoured with ``--debug_actions=...NETWORK``).

    ``disable_network``: refuse registrations and fail every heartbeat, as Impala's;
    ``cut_peer_link``: fail the HA link both ways; ``isolate_subscribers``: subscriber
    ids this statestore can no longer reach (nor be reached by).
    """

    arguments = [
        (b"disable_network", amp.Boolean()),
        (b"cut_peer_link", amp.Boolean()),
        (b"isolate_subscribers", JSONArg()),
    ]
    response = [(b"ok", amp.Boolean())]
    errors = _ERRORS


class Heartbeat(amp.Command):
    """Statestore -> subscriber; a standby also asks how the subscriber sees the active."""

    arguments = [
        (b"registration_id", amp.Unicode()),
        (b"statestore_id", amp.Unicode()),
        (b"request_statestore_conn_state", amp.Boolean()),
    ]
    response = [(b"statestore_conn_state", amp.Unicode())]
    errors = _ERRORS


class UpdateState(amp.Command):
    """Statestore -> subscriber: topic deltas; the answer carries the subscriber's writes."""

    arguments = [
        (b"registration_id", amp.Unicode()),
        (b"statestore_id", amp.Unicode()),
        (b"topic_deltas", JSONArg()),
    ]
    response = [(b"skipped", amp.Boolean()), (b"topic_updates", JSONArg())]
    errors = _ERRORS


class UpdateStatestoredRole(amp.Command):
    """Active statestore -> subscriber: I am the active one since this version."""

    arguments = [
        (b"registration_id", amp.Unicode()),
        (b"statestore_id", amp.Unicode()),
        (b"active_statestored_version", amp.Integer()),
        (b"is_active", amp.Boolean()),
    ]
    response = [(b"skipped", amp.Boolean())]
    errors = _ERRORS


class StatestoreHaHandshake(amp.Command):
    """Statestore -> peer: decide roles. The sender becomes active iff the receiver is not."""

    arguments = [
        (b"src_protocol_version", amp.Integer()),
        (b"src_statestore_id", amp.Unicode()),
        (b"src_statestore_address", amp.Unicode()),
        (b"src_force_active", amp.Boolean()),
        (b"src_active", amp.Boolean()),
        (b"src_active_version", amp.Integer()),
    ]
    response = [
        (b"dst_protocol_version", amp.Integer()),
        (b"dst_statestore_id", amp.Unicode()),
        (b"dst_statestore_active", amp.Boolean()),
    ]
    errors = _ERRORS


class StatestoreHaHeartbeat(amp.Command):
    """Active statestore -> standby, every HA monitoring period."""

    arguments = [
        (b"dst_statestore_id", amp.Unicode()),
        (b"src_statestore_id", amp.Unicode()),
        (b"src_active_version", amp.Integer()),
    ]
    response = []
    errors = _ERRORS


# ----------------------------------------------------------------------------- addresses


def parse_host_port(text: str, what: str = "address") -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) to a pair, or :class:`RpcError` naming ``what``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise RpcError(f"{what} {text!r} is not host:port")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise RpcError(f"{what} {text!r} has a port that is not a number") from None
    if not 0 < number < 65536:
        raise RpcError(f"{what} {text!r} has a port out of range")
    return host, number


def resolve_ipv4(host: str) -> str:
    """The IPv4 address to connect to for ``host`` (``localhost`` -> ``127.0.0.1``)."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


# ----------------------------------------------------------------------------- TLS


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """Impala's TLS flags: server cert + key for listeners, a CA for outbound links."""

    server_certificate: str = ""
    private_key: str = ""
    client_ca_certificate: str = ""

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> TlsConfig:
        config = cls(
            str(flags.get("ssl_server_certificate", "")),
            str(flags.get("ssl_private_key", "")),
            str(flags.get("ssl_client_ca_certificate", "")),
        )
        if bool(config.server_certificate) != bool(config.private_key):
            raise RpcError("--ssl_server_certificate and --ssl_private_key go together")
        for path in (config.server_certificate, config.private_key, config.client_ca_certificate):
            if path:
                try:
                    with open(path, "rb"):
                        pass
                except OSError as e:
                    raise RpcError(f"cannot read TLS file {path!r}: {e.strerror}") from None
        return config

    @property
    def serves_tls(self) -> bool:
        return bool(self.server_certificate)

    @property
    def connects_tls(self) -> bool:
        return bool(self.client_ca_certificate)

    def server_options(self) -> ssl.CertificateOptions:
        with open(self.server_certificate, "rb") as f:
            cert = f.read()
        with open(self.private_key, "rb") as f:
            key = f.read()
        options: ssl.CertificateOptions = ssl.PrivateCertificate.loadPEM(
            cert + b"\n" + key
        ).options()
        return options

    def client_options(self, hostname: str) -> Any:
        with open(self.client_ca_certificate, "rb") as f:
            ca = ssl.Certificate.loadPEM(f.read())
        return ssl.optionsForClientTLS(hostname, trustRoot=ca)


def server_endpoint(
    reactor: Any, interface: str, port: int, tls: TlsConfig, backlog: int = 128
) -> ServerEndpoint:
    """A listening endpoint on ``interface:port``, TLS when the server flags are set."""
    if tls.serves_tls:
        return SSL4ServerEndpoint(
            reactor, port, tls.server_options(), backlog=backlog, interface=interface
        )
    return TCP4ServerEndpoint(reactor, port, backlog=backlog, interface=interface)


def client_endpoint(
    reactor: Any, host: str, port: int, tls: TlsConfig, timeout: float = 5.0
) -> ClientEndpoint:
    """An outbound endpoint to ``host:port``, TLS (verified by the CA) when configured."""
    tcp: Any = TCP4ClientEndpoint(reactor, resolve_ipv4(host), port, timeout=timeout)
    if tls.connects_tls:
        return wrapClientTLS(tls.client_options(host), tcp)
    return tcp


# ----------------------------------------------------------------------------- links


class AmpLink:
    """An outbound AMP link that reconnects with backoff and bounds every call in time.

    A call while disconnected waits for the next connection attempt and fails if
    that attempt fails or the timeout passes first; the link keeps reconnecting in
    the background, at most ``max_retry_delay`` apart.
    """

    def __init__(
        self,
        endpoint: ClientEndpoint,
        clock: Clock,
        *,
        locator: Callable[[], amp.AMP] = amp.AMP,
        max_retry_delay: float = 1.0,
        name: str = "link",
    ) -> None:
        self.name = name
        self._clock = clock
        factory: Any = Factory.forProtocol(locator)
        factory.noisy = False
        self._service = ClientService(
            endpoint,
            factory,
            retryPolicy=backoffPolicy(
                initialDelay=min(0.05, max_retry_delay),
                maxDelay=max_retry_delay,
                factor=2.0,
                # The default jitter adds up to a whole second; keep it to a tenth.
                jitter=lambda: random.random() * max_retry_delay / 10,
            ),
            clock=clock,
        )
        self._running = False

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._service.startService()

    def stop(self) -> defer.Deferred[None]:
        if not self._running:
            return defer.succeed(None)
        self._running = False
        d: defer.Deferred[None] = defer.Deferred()

        def stop_now() -> None:
            self._service.stopService().addBoth(lambda _: d.callback(None))

        # Not from inside the ClientService's own callbacks (it is not reentrant).
        self._clock.callLater(0, stop_now)
        return d

    def call(
        self, command: type[amp.Command], timeout: float, **kwargs: Any
    ) -> defer.Deferred[dict[str, Any]]:
        """Call ``command`` on the peer; fails on connect failure, remote error or timeout."""
        if not self._running:
            return defer.fail(RpcError(f"{self.name} is stopped"))
        connected = self._service.whenConnected(failAfterFailures=1)

        def send(proto: Any) -> defer.Deferred[dict[str, Any]]:
            result: defer.Deferred[dict[str, Any]] = proto.callRemote(command, **kwargs)
            return result

        d: defer.Deferred[dict[str, Any]] = connected.addCallback(send)
        d.addTimeout(timeout, self._clock)
        return d


def call_blocking(
    host: str, port: int, command: type[amp.Command], timeout: float = 5.0, **kwargs: Any
) -> dict[str, Any]:
    """One AMP call over a plain blocking socket, for tools and tests outside a reactor."""
    box = command.makeArguments(kwargs, None)
    box[b"_command"] = command.commandName
    box[b"_ask"] = b"1"
    with socket.create_connection((resolve_ipv4(host), port), timeout=timeout) as sock:
        sock.sendall(box.serialize())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise RpcError(f"{host}:{port} closed the connection without answering")
            data += chunk
            boxes = amp.parseString(data)
            if boxes:
                break
    answer = boxes[0]
    if b"_error" in answer:
        raise RpcError(answer.get(b"_error_description", b"remote error").decode())
    return dict(command.parseResponse(answer, None))
