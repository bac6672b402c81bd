"""The statestore subscriber client: what impalad and catalogd embed (spec 1.6, 1.7, 2.9).

Use::

    sub = StatestoreSubscriber(clock, connect, listen, host, "impalad@h:27000",
                               "COORDINATOR_EXECUTOR", [("127.0.0.1", 24000), ...], topics)
    members = ClusterMembership(sub, BackendDescriptor(...))
    members.on_change(lambda backends: ...)      # {backend_id: BackendDescriptor}
    sub.add_topic_callback("catalog-update", fn) # fn(update: TopicUpdate)
    sub.publish(topic, key, value) / sub.delete(topic, key)
    sub.current_primary                          # StatestoreAddress | None
    sub.setServiceParent(app)                    # start: listen, then register

One *stub* per statestore (two with HA), each a small state machine::

    UNREGISTERED --register ok--> REGISTERED --no heartbeat for max_missed periods--> FAILED
    FAILED / UNREGISTERED --register again (every heartbeat period while it fails)--> ...

The subscriber registers with both statestores, answers both one's heartbeats
(telling a standby how it sees the other, OK / FAILED / UNKNOWN), and applies
topic updates only from the stub it holds primary; updates from the other are
answered ``skipped``. It changes its primary when a statestore says it is active
(an ``UpdateStatestoredRole`` or a registration answer) with an active version no
older than the current primary's, or when the current primary has failed. After a
change of primary, every topic resynchronises from a full update and
:class:`ClusterMembership` holds membership shrinkage for a grace period, as
Impala's ``--statestore_subscriber_recovery_grace_period_ms`` does.

Like the statestore, the subscriber declares a statestore lost after
``max_missed_heartbeats`` heartbeat periods without a heartbeat (the product
documentation's rule; Impala's code uses ``--statestore_subscriber_timeout_seconds``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from backends.common.rpc import (
    CONN_FAILED,
    CONN_OK,
    CONN_UNKNOWN,
    PROTOCOL_VERSION,
    AmpLink,
    ClientEndpoint,
    Clock,
    GuardedAMP,
    Heartbeat,
    ListeningPort,
    RegisterSubscriber,
    RpcError,
    ServerEndpoint,
    TlsConfig,
    TopicDelta,
    TopicItem,
    TopicRegistration,
    TopicWrite,
    UpdateState,
    UpdateStatestoredRole,
    client_endpoint,
    server_endpoint,
)

log = Logger()
MEMBERSHIP_TOPIC = "impala-membership"


class StubState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class StatestoreAddress:
    index: int
    host: str
    port: int
    statestore_id: str


@dataclasses.dataclass
class _Stub:
    index: int
    host: str
    port: int
    link: AmpLink
    registration_id: str = ""
    statestore_id: str = ""
    active_version: int = 0
    last_heartbeat: float | None = None
    registering: bool = False
    ever_registered: bool = False
    num_register_attempts: int = 0
    num_connection_failures: int = 0
    topic_versions: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def metric_group(self) -> str:
        return "statestore-subscriber" if self.index == 0 else "statestore2-subscriber"


@dataclasses.dataclass(frozen=True)
class TopicUpdate:
    """What a topic callback gets: the delta as sent, and the whole topic after it."""

    delta: TopicDelta
    entries: dict[str, bytes]
    statestore_id: str


TopicCallback = Callable[[TopicUpdate], None]


class StatestoreSubscriber(service.MultiService):
    """Registers with one or two statestores and applies the held primary's topic updates."""

    def __init__(
        self,
        clock: Clock,
        connect: Callable[[str, int], ClientEndpoint],
        listen: ServerEndpoint,
        advertised_host: str,
        subscriber_id: str,
        subscriber_type: str,
        statestores: Sequence[tuple[str, int]],
        topics: Sequence[TopicRegistration],
        *,
        heartbeat_interval: float = 1.0,
        max_missed_heartbeats: int = 10,
        rpc_timeout: float = 10.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not 1 <= len(statestores) <= 2:
            raise ValueError("a subscriber talks to one or two statestores")
        if not subscriber_id:
            raise ValueError("subscriber_id must not be empty")
        self.clock = clock
        self.subscriber_id = subscriber_id
        self.subscriber_type = subscriber_type
        self.topics = {t.name: t for t in topics}
        self.heartbeat_interval = heartbeat_interval
        self.max_missed_heartbeats = max_missed_heartbeats
        self.rpc_timeout = rpc_timeout
        self._listen = listen
        self._advertised_host = advertised_host
        self._port: ListeningPort | None = None
        self.location = ""
        self._stubs = [
            _Stub(
                i,
                host,
                port,
                AmpLink(
                    connect(host, port),
                    clock,
                    max_retry_delay=heartbeat_interval,
                    name=f"statestore {host}:{port}",
                ),
            )
            for i, (host, port) in enumerate(statestores)
        ]
        self._primary: _Stub | None = None
        self._views: dict[str, dict[str, bytes]] = {name: {} for name in self.topics}
        self._needs_full: set[str] = set()
        self._callbacks: dict[str, list[TopicCallback]] = {}
        self._primary_callbacks: list[Callable[[StatestoreAddress | None], None]] = []
        self._pending: dict[str, dict[str, TopicItem]] = {}
        self.num_primary_changes = 0
        self.last_primary_change: float | None = None
        timer = internet.TimerService(heartbeat_interval, self._monitor)
        timer.clock = clock
        timer.setServiceParent(self)

    # ---------------------------------------------------------------- public API

    def add_topic_callback(self, topic: str, callback: TopicCallback) -> None:
        if topic not in self.topics:
            raise ValueError(f"topic {topic!r} was not registered")
        self._callbacks.setdefault(topic, []).append(callback)

    def on_primary_change(self, callback: Callable[[StatestoreAddress | None], None]) -> None:
        self._primary_callbacks.append(callback)

    def publish(self, topic: str, key: str, value: bytes) -> None:
        """Queue a write; it travels in the answer to the primary's next topic update."""
        if topic not in self.topics:
            raise ValueError(f"topic {topic!r} was not registered")
        self._pending.setdefault(topic, {})[key] = TopicItem(key, value)

    def delete(self, topic: str, key: str) -> None:
        if topic not in self.topics:
            raise ValueError(f"topic {topic!r} was not registered")
        self._pending.setdefault(topic, {})[key] = TopicItem(key, b"", deleted=True)

    def entries(self, topic: str) -> dict[str, bytes]:
        """The topic as last applied from the primary."""
        return dict(self._views[topic])

    @property
    def current_primary(self) -> StatestoreAddress | None:
        stub = self._primary
        if stub is None:
            return None
        return StatestoreAddress(stub.index, stub.host, stub.port, stub.statestore_id)

    def stub_state(self, index: int) -> StubState:
        stub = self._stubs[index]
        if not stub.registration_id:
            return StubState.UNREGISTERED
        return StubState.FAILED if self._detector(stub) == CONN_FAILED else StubState.REGISTERED

    def role_view(self) -> list[dict[str, Any]]:
        """Per statestore: address, id, state, whether it is the held primary."""
        return [
            {
                "index": s.index,
                "address": f"{s.host}:{s.port}",
                "statestore_id": s.statestore_id,
                "registration_id": s.registration_id,
                "state": self.stub_state(s.index).value,
                "is_primary": s is self._primary,
                "active_version": s.active_version,
            }
            for s in self._stubs
        ]

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in self._stubs:
            g = s.metric_group
            out[f"{g}.connected"] = self.stub_state(s.index) is StubState.REGISTERED
            out[f"{g}.statestore-active-status"] = s is self._primary
            out[f"{g}.num-re-register-attempt"] = max(0, s.num_register_attempts - 1)
            out[f"{g}.num-connection-failures"] = s.num_connection_failures
            out[f"{g}.registration-id"] = s.registration_id
            out[f"{g}.statestore-id"] = s.statestore_id
        return out

    # ---------------------------------------------------------------- lifecycle

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        factory = Factory.forProtocol(lambda: SubscriberProtocol(self))
        factory.noisy = False
        d = self._listen.listen(factory)
        d.addCallbacks(self._listening, self._listen_failed)

    def _listening(self, port: ListeningPort) -> None:
        self._port = port
        self.location = f"{self._advertised_host}:{port.getHost().port}"
        log.info("subscriber {id} listening at {loc}", id=self.subscriber_id, loc=self.location)
        for stub in self._stubs:
            stub.link.start()
        self._monitor()

    def _listen_failed(self, reason: Any) -> None:
        log.error("subscriber cannot listen: {reason}", reason=reason.getErrorMessage())

    def stopService(self) -> defer.Deferred[None]:
        stopping: list[defer.Deferred[Any]] = [s.link.stop() for s in self._stubs]
        parent = super().stopService()  # type: ignore[no-untyped-call]
        if parent is not None:
            stopping.append(parent)
        if self._port is not None:
            stopping.append(defer.maybeDeferred(self._port.stopListening))
        d: defer.Deferred[Any] = defer.gatherResults(stopping, consumeErrors=True)
        return d.addBoth(lambda _: None)

    # ---------------------------------------------------------------- registration

    def _detector(self, stub: _Stub) -> str:
        if stub.last_heartbeat is None:
            return CONN_UNKNOWN
        silent = self.clock.seconds() - stub.last_heartbeat
        if silent >= self.max_missed_heartbeats * self.heartbeat_interval:
            return CONN_FAILED
        return CONN_OK

    def _monitor(self) -> None:
        if not self.location:
            return
        for stub in self._stubs:
            if stub.registering:
                continue
            if not stub.registration_id or self._detector(stub) == CONN_FAILED:
                self._register(stub)
        primary = self._primary
        if primary is not None and self._detector(primary) == CONN_FAILED:
            other = [s for s in self._stubs if s is not primary and s.registration_id]
            if other and other[0].active_version > primary.active_version:
                self._set_primary(other[0], "the primary failed and the other was active later")

    def _register(self, stub: _Stub) -> None:
        stub.registering = True
        stub.num_register_attempts += 1
        d = stub.link.call(
            RegisterSubscriber,
            self.rpc_timeout,
            protocol_version=PROTOCOL_VERSION,
            subscriber_id=self.subscriber_id,
            subscriber_location=self.location,
            subscriber_type=self.subscriber_type,
            topic_registrations=[t.to_json() for t in self.topics.values()],
        )

        def registered(result: dict[str, Any]) -> None:
            stub.registering = False
            stub.registration_id = str(result["registration_id"])
            stub.statestore_id = str(result["statestore_id"])
            stub.last_heartbeat = self.clock.seconds()
            stub.ever_registered = True
            stub.topic_versions = dict.fromkeys(self.topics, -1)
            log.info(
                "registered with statestore {i} ({id}), active={active}",
                i=stub.index,
                id=stub.statestore_id,
                active=result["statestore_is_active"],
            )
            if result["statestore_is_active"]:
                self._claims_active(stub, int(result["active_statestored_version"]))
            elif stub is self._primary:
                # It restarted and is no longer the active one.
                stub.active_version = 0

        def failed(reason: Any) -> None:
            stub.registering = False
            stub.num_connection_failures += 1
            log.debug(
                "registration with statestore {i} failed: {r}",
                i=stub.index,
                r=reason.getErrorMessage(),
            )

        d.addCallbacks(registered, failed)

    def _claims_active(self, stub: _Stub, version: int) -> bool:
        """A statestore says it is active since ``version``; follow it if that is news."""
        primary = self._primary
        if primary is stub:
            stub.active_version = max(stub.active_version, version)
            return True
        if (
            primary is None
            or version >= primary.active_version
            or self._detector(primary) == CONN_FAILED
        ):
            stub.active_version = version
            self._set_primary(stub, f"statestore {stub.index} is active since {version}")
            return True
        log.warn(
            "ignoring active claim of statestore {i} (version {v} < {p})",
            i=stub.index,
            v=version,
            p=primary.active_version,
        )
        return False

    def _set_primary(self, stub: _Stub, why: str) -> None:
        previous = self._primary
        self._primary = stub
        self.num_primary_changes += 1
        self.last_primary_change = self.clock.seconds()
        # What was applied from another statestore does not continue this one's deltas.
        self._needs_full = set(self.topics)
        log.info(
            "statestore {i} ({id}) is now the primary (was {prev}): {why}",
            i=stub.index,
            id=stub.statestore_id,
            prev=None if previous is None else previous.index,
            why=why,
        )
        address = self.current_primary
        for callback in self._primary_callbacks:
            callback(address)

    def _stub_for(self, statestore_id: str, registration_id: str) -> _Stub | None:
        for stub in self._stubs:
            if stub.statestore_id == statestore_id and stub.registration_id == registration_id:
                return stub
        return None

    # ---------------------------------------------------------------- incoming RPCs

    def heartbeat(
        self, registration_id: str, statestore_id: str, request_statestore_conn_state: bool
    ) -> dict[str, Any]:
        stub = self._stub_for(statestore_id, registration_id)
        if stub is None:
            # A heartbeat for an old registration: ignored here, but still OK on the wire.
            return {"statestore_conn_state": CONN_UNKNOWN}
        stub.last_heartbeat = self.clock.seconds()
        state = CONN_UNKNOWN
        if request_statestore_conn_state:
            others = [s for s in self._stubs if s is not stub]
            if others:
                state = self._detector(others[0])
                if state == CONN_OK and not others[0].registration_id:
                    state = CONN_UNKNOWN
        return {"statestore_conn_state": state}

    def update_state(
        self, registration_id: str, statestore_id: str, topic_deltas: Any
    ) -> dict[str, Any]:
        stub = self._stub_for(statestore_id, registration_id)
        if stub is None:
            raise RpcError("unknown statestore or stale registration")
        if stub is not self._primary:
            return {"skipped": True, "topic_updates": []}
        if not isinstance(topic_deltas, list):
            raise RpcError("topic_deltas must be a list")
        deltas = [TopicDelta.from_json(d) for d in topic_deltas]
        writes: list[TopicWrite] = []
        for delta in deltas:
            if delta.topic not in self.topics:
                continue
            current = stub.topic_versions.get(delta.topic, -1)
            if delta.is_delta and (
                delta.topic in self._needs_full or current == -1 or delta.from_version != current
            ):
                resync = 0 if delta.topic in self._needs_full or current == -1 else current
                writes.append(TopicWrite(delta.topic, resync_from=resync))
                continue
            view = self._views[delta.topic]
            if not delta.is_delta:
                view.clear()
                self._needs_full.discard(delta.topic)
            for item in delta.items:
                if item.deleted:
                    view.pop(item.key, None)
                else:
                    view[item.key] = item.value
            stub.topic_versions[delta.topic] = delta.to_version
            update = TopicUpdate(delta, dict(view), statestore_id)
            for callback in self._callbacks.get(delta.topic, []):
                try:
                    callback(update)
                except Exception:
                    log.failure("topic callback for {topic} failed", topic=delta.topic)
        for topic, items in self._pending.items():
            if items:
                writes.append(TopicWrite(topic, tuple(items.values())))
        self._pending = {}
        return {"skipped": False, "topic_updates": [w.to_json() for w in writes]}

    def update_statestored_role(
        self,
        registration_id: str,
        statestore_id: str,
        active_statestored_version: int,
        is_active: bool,
    ) -> dict[str, Any]:
        stub = self._stub_for(statestore_id, registration_id)
        if stub is None or not is_active:
            return {"skipped": True}
        stub.last_heartbeat = self.clock.seconds()
        return {"skipped": not self._claims_active(stub, active_statestored_version)}


class SubscriberProtocol(GuardedAMP):
    """The subscriber's callback listener: what the statestores call."""

    def __init__(self, subscriber: StatestoreSubscriber) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.subscriber = subscriber

    @Heartbeat.responder
    def heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self.subscriber.heartbeat(**kwargs)

    @UpdateState.responder
    def update_state(self, **kwargs: Any) -> dict[str, Any]:
        return self.subscriber.update_state(**kwargs)

    @UpdateStatestoredRole.responder
    def update_statestored_role(self, **kwargs: Any) -> dict[str, Any]:
        return self.subscriber.update_statestored_role(**kwargs)


# ----------------------------------------------------------------------------- membership


@dataclasses.dataclass(frozen=True)
class BackendDescriptor:
    """An impalad as the membership topic describes it (``BackendDescriptorPB``'s gist)."""

    backend_id: str
    address: str
    hs2_port: int = 21050
    webserver_port: int = 25000
    is_coordinator: bool = True
    is_executor: bool = True
    is_quiescing: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> BackendDescriptor:
        try:
            raw = json.loads(data)
            return cls(
                str(raw["backend_id"]),
                str(raw["address"]),
                int(raw["hs2_port"]),
                int(raw["webserver_port"]),
                bool(raw["is_coordinator"]),
                bool(raw["is_executor"]),
                bool(raw["is_quiescing"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"bad backend descriptor: {e}") from None


MembershipCallback = Callable[[dict[str, BackendDescriptor]], None]


class ClusterMembership:
    """Publishes this backend's descriptor and reports the live cluster (spec 1.7).

    The descriptor is (re)published whenever the applied topic lacks it or holds an
    older one, which covers the first full update after every failover. For
    ``grace_period`` seconds after a change of primary, listeners are not told
    about the (momentarily incomplete) membership; they get the settled one after.
    """

    def __init__(
        self,
        subscriber: StatestoreSubscriber,
        descriptor: BackendDescriptor,
        *,
        grace_period: float = 30.0,
        topic: str = MEMBERSHIP_TOPIC,
    ) -> None:
        self._sub = subscriber
        self._topic = topic
        self.descriptor = descriptor
        self.grace_period = grace_period
        self.backends: dict[str, BackendDescriptor] = {}
        self.reported: dict[str, BackendDescriptor] | None = None
        self._listeners: list[MembershipCallback] = []
        self._grace_until = 0.0
        self._pending_report: Any | None = None
        subscriber.add_topic_callback(topic, self._updated)
        subscriber.on_primary_change(self._primary_changed)

    def on_change(self, callback: MembershipCallback) -> None:
        self._listeners.append(callback)

    def update_descriptor(self, **changes: Any) -> None:
        """Change this backend's descriptor (e.g. ``is_quiescing=True``) and republish."""
        self.descriptor = dataclasses.replace(self.descriptor, **changes)
        self._sub.publish(self._topic, self.descriptor.backend_id, self.descriptor.to_bytes())

    def _primary_changed(self, address: StatestoreAddress | None) -> None:
        if self._sub.num_primary_changes > 1:
            self._grace_until = self._sub.clock.seconds() + self.grace_period

    def _updated(self, update: TopicUpdate) -> None:
        backends: dict[str, BackendDescriptor] = {}
        for key, value in update.entries.items():
            try:
                backends[key] = BackendDescriptor.from_bytes(value)
            except ValueError as e:
                log.warn("ignoring membership entry {key}: {e}", key=key, e=str(e))
        self.backends = backends
        own = self.descriptor
        if backends.get(own.backend_id) != own:
            self._sub.publish(self._topic, own.backend_id, own.to_bytes())
        self._report()

    def _report(self) -> None:
        now = self._sub.clock.seconds()
        if now < self._grace_until:
            if self._pending_report is None:
                self._pending_report = self._sub.clock.callLater(
                    self._grace_until - now, self._grace_over
                )
            return
        if self.backends != self.reported:
            self.reported = dict(self.backends)
            for callback in self._listeners:
                callback(dict(self.backends))

    def _grace_over(self) -> None:
        self._pending_report = None
        self._report()


def subscriber_from_flags(
    flags: Mapping[str, Any],
    reactor: Any,
    *,
    subscriber_id: str,
    subscriber_type: str,
    topics: Sequence[TopicRegistration],
    hostname: str,
    listen_interface: str = "",
) -> StatestoreSubscriber:
    """A subscriber configured by Impala's flag names, as impalad and catalogd take them.

    Reads ``state_store_host``/``_port``, ``enable_statestored_ha``,
    ``state_store_2_host``/``_port``, ``state_store_subscriber_port`` (0: any free port),
    and, when the daemon defines them, ``statestore_heartbeat_frequency_ms``,
    ``statestore_max_missed_heartbeats`` and the ``ssl_*`` flags.
    """
    tls = TlsConfig.from_flags(flags)
    statestores = [(str(flags["state_store_host"]), int(flags["state_store_port"]))]
    if flags.get("enable_statestored_ha"):
        host = str(flags.get("state_store_2_host") or "localhost")
        statestores.append((host, int(flags["state_store_2_port"])))
    return StatestoreSubscriber(
        reactor,
        lambda h, p: client_endpoint(reactor, h, p, tls),
        server_endpoint(reactor, listen_interface, int(flags["state_store_subscriber_port"]), tls),
        hostname,
        subscriber_id,
        subscriber_type,
        statestores,
        topics,
        heartbeat_interval=int(flags.get("statestore_heartbeat_frequency_ms", 1000)) / 1000.0,
        max_missed_heartbeats=int(flags.get("statestore_max_missed_heartbeats", 10)),
    )
