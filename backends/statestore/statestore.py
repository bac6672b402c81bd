"""statestored's core: the subscriber registry, topics, heartbeats, updates and HA glue.

What Impala's ``Statestore`` class does (spec sections 1 and 2), on an injected clock:

- subscribers register (again) with an id, a callback address, a type and topics;
  a re-registration first unregisters the old one;
- every ``heartbeat_interval`` each subscriber gets a :class:`Heartbeat`; a
  subscriber that misses ``max_missed_heartbeats`` in a row is evicted and its
  transient entries are tombstoned (only if nobody overwrote them since);
- only the active statestore sends topic updates: prioritized topics
  (membership, request queue) every ``priority_update_interval``, the others
  every ``update_interval``; the subscriber's answer carries its writes;
- a standby asks each subscriber, in its heartbeats, whether it still reaches the
  active: those answers are the witnesses of the takeover rule (see ``ha.py``);
- on becoming active it starts with empty topics (every subscriber gets a full
  update and republishes), and tells every subscriber with
  :class:`UpdateStatestoredRole`, retrying until each one acknowledges.

Network I/O goes through :class:`~backends.common.rpc.AmpLink`; the periodic work is
driven by :func:`build_service`'s ``TimerService``s on the same injected clock.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp

from backends.common.rpc import (
    CONN_FAILED,
    CONN_OK,
    PROTOCOL_VERSION,
    SUBSCRIBER_TYPES,
    AmpLink,
    ClientEndpoint,
    Clock,
    GuardedAMP,
    Heartbeat,
    RegisterSubscriber,
    RpcError,
    ServerEndpoint,
    SetStatestoreDebugAction,
    StatestoreHaHandshake,
    StatestoreHaHeartbeat,
    TopicRegistration,
    TopicWrite,
    UpdateState,
    UpdateStatestoredRole,
    parse_host_port,
)
from backends.statestore.ha import HaConfig, HaController, HandshakeRequest, PeerUnreachable, Role
from backends.statestore.topics import Topic, is_prioritized

log = Logger()
DISABLE_NETWORK_ACTION = "DISABLE_STATESTORE_NETWORK"


@dataclasses.dataclass(frozen=True)
class StatestoreConfig:
    """Timing and limits, in seconds (the flags are in milliseconds / seconds)."""

    heartbeat_interval: float = 1.0
    max_missed_heartbeats: int = 10
    heartbeat_timeout: float = 3.0
    update_interval: float = 2.0
    priority_update_interval: float = 0.1
    update_timeout: float = 300.0
    role_rpc_resend_interval: float = 0.1
    role_rpc_timeout: float = 3.0
    max_subscribers: int = 10000
    debug_actions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_interval",
            "heartbeat_timeout",
            "update_interval",
            "priority_update_interval",
            "update_timeout",
            "role_rpc_resend_interval",
            "role_rpc_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_missed_heartbeats < 1:
            raise ValueError("max_missed_heartbeats must be at least 1")


@dataclasses.dataclass
class DebugState:
    """The test-only fault switches (:class:`SetStatestoreDebugAction`)."""

    network_disabled: bool = False
    peer_link_cut: bool = False
    isolated: frozenset[str] = frozenset()


@dataclasses.dataclass
class Subscriber:
    """One registration of one subscriber."""

    subscriber_id: str
    location: str
    subscriber_type: str
    topics: dict[str, TopicRegistration]
    registration_id: str
    link: AmpLink
    registered_at: float
    last_processed: dict[str, int] = dataclasses.field(default_factory=dict)
    transient: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    missed: int = 0
    last_heartbeat: float | None = None
    active_conn_state: str = CONN_OK
    notified_version: int = 0
    in_flight: set[str] = dataclasses.field(default_factory=set)


class Statestore:
    """The registry, the topics and the per-subscriber RPC schedule of one statestored."""

    def __init__(
        self,
        clock: Clock,
        config: StatestoreConfig,
        connect: Callable[[str, int], ClientEndpoint],
        *,
        ha: HaConfig | None = None,
        peer_endpoint: ClientEndpoint | None = None,
        statestore_id: str | None = None,
    ) -> None:
        self.clock = clock
        self.config = config
        self._connect = connect
        self.statestore_id = statestore_id or str(uuid.uuid4())
        self.topics: dict[str, Topic] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.debug = DebugState()
        self.started = False
        self.counters = {
            "num-successful-update-statestored-role-rpc": 0,
            "num-failed-update-statestored-role-rpc": 0,
            "num-clear-topic-entries-requests": 0,
            "num-evicted-subscribers": 0,
        }
        self._peer_link: AmpLink | None = None
        self.ha: HaController | None = None
        self._standalone_version = int(clock.seconds() * 1_000_000)
        if ha is not None:
            if peer_endpoint is None:
                raise ValueError("HA needs the peer's endpoint")
            self._peer_link = AmpLink(
                peer_endpoint, clock, max_retry_delay=ha.monitor_interval, name="HA peer"
            )
            self.ha = HaController(
                clock,
                self.statestore_id,
                ha,
                _AmpPeer(self._peer_link, ha.rpc_timeout),
                self,
                self._role_changed,
                link_cut=lambda: self.debug.peer_link_cut or self.debug.network_disabled,
            )

    # ---------------------------------------------------------------- views

    @property
    def is_active(self) -> bool:
        return self.ha is None or self.ha.is_active

    @property
    def active_version(self) -> int:
        return self._standalone_version if self.ha is None else self.ha.active_version

    def total(self) -> int:
        return len(self.subscribers)

    def failed(self) -> int:
        return sum(1 for s in self.subscribers.values() if s.active_conn_state == CONN_FAILED)

    def metrics(self) -> dict[str, Any]:
        ha = self.ha
        topics = self.topics.values()
        key_bytes = sum(t.key_bytes for t in topics)
        value_bytes = sum(t.value_bytes for t in topics)
        out: dict[str, Any] = {
            "statestore.active-status": self.is_active,
            "statestore.in-ha-recovery-mode": bool(ha and ha.in_recovery),
            "statestore.connected-with-peer-statestored": bool(ha and ha.found_peer),
            "statestore.live-backends": len(self.subscribers),
            "statestore.service-started": self.started,
            "statestore.total-key-size-bytes": key_bytes,
            "statestore.total-value-size-bytes": value_bytes,
            "statestore.total-topic-size-bytes": key_bytes + value_bytes,
            "statestore.active-statestored-version": self.active_version,
        }
        out.update({f"statestore.{k}": v for k, v in self.counters.items()})
        return out

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.started = True
        if self._peer_link is not None:
            self._peer_link.start()

    def stop(self) -> defer.Deferred[None]:
        self.started = False
        links = [s.link.stop() for s in self.subscribers.values()]
        if self._peer_link is not None:
            links.append(self._peer_link.stop())
        d: defer.Deferred[Any] = defer.gatherResults(links, consumeErrors=True)
        return d.addBoth(lambda _: None)

    # ---------------------------------------------------------------- registration

    def register_subscriber(
        self,
        protocol_version: int,
        subscriber_id: str,
        subscriber_location: str,
        subscriber_type: str,
        topic_registrations: Any,
    ) -> dict[str, Any]:
        """Handle ``RegisterSubscriber``; :class:`RpcError` says why it was refused."""
        if protocol_version < PROTOCOL_VERSION:
            raise RpcError(
                f"STATESTORE_INCOMPATIBLE_PROTOCOL: subscriber speaks {protocol_version}, "
                f"statestore {PROTOCOL_VERSION}"
            )
        if not subscriber_id:
            raise RpcError("subscriber_id must not be empty")
        if self.debug.network_disabled or subscriber_id in self.debug.isolated:
            raise RpcError("registration refused: network disabled by debug action")
        host, port = parse_host_port(subscriber_location, "subscriber_location")
        if subscriber_type not in SUBSCRIBER_TYPES:
            raise RpcError(f"unknown subscriber_type {subscriber_type!r}")
        if not isinstance(topic_registrations, list):
            raise RpcError("topic_registrations must be a list")
        regs = [TopicRegistration.from_json(r) for r in topic_registrations]
        old = self.subscribers.get(subscriber_id)
        if old is not None:
            self.unregister(old, "it registered again")
        elif len(self.subscribers) >= self.config.max_subscribers:
            raise RpcError(
                f"too many subscribers ({len(self.subscribers)}); "
                "raise --statestore_max_subscribers"
            )
        for reg in regs:
            self.topics.setdefault(reg.name, Topic(reg.name))
        link = AmpLink(
            self._connect(host, port),
            self.clock,
            max_retry_delay=self.config.heartbeat_interval,
            name=f"subscriber {subscriber_id}",
        )
        sub = Subscriber(
            subscriber_id,
            subscriber_location,
            subscriber_type,
            {r.name: r for r in regs},
            str(uuid.uuid4()),
            link,
            self.clock.seconds(),
            last_processed={r.name: 0 for r in regs},
            notified_version=self.active_version if self.is_active else 0,
        )
        self.subscribers[subscriber_id] = sub
        link.start()
        log.info(
            "registered subscriber {id} at {location} ({type}), topics {topics}",
            id=subscriber_id,
            location=subscriber_location,
            type=subscriber_type,
            topics=sorted(sub.topics),
        )
        self.clock.callLater(0, self._kick, sub)
        return {
            "protocol_version": PROTOCOL_VERSION,
            "registration_id": sub.registration_id,
            "statestore_id": self.statestore_id,
            "statestore_is_active": self.is_active,
            "active_statestored_version": self.active_version,
        }

    def _kick(self, sub: Subscriber) -> None:
        if self._current(sub):
            self._send_heartbeat(sub)
            if self.is_active:
                self._send_update(sub, True)
                self._send_update(sub, False)

    def unregister(self, sub: Subscriber, why: str) -> None:
        """Forget ``sub``: stop its link and tombstone its transient entries."""
        if self.subscribers.get(sub.subscriber_id) is sub:
            del self.subscribers[sub.subscriber_id]
        sub.link.stop()
        removed = 0
        for name, keys in sub.transient.items():
            topic = self.topics.get(name)
            if topic is not None:
                removed += sum(topic.delete_if_version_matches(k, v) for k, v in keys.items())
        sub.transient.clear()
        log.info(
            "unregistered subscriber {id}: {why}; {n} transient entries removed",
            id=sub.subscriber_id,
            why=why,
            n=removed,
        )

    def _current(self, sub: Subscriber) -> bool:
        return self.subscribers.get(sub.subscriber_id) is sub

    # ---------------------------------------------------------------- outgoing calls

    def _call(
        self, sub: Subscriber, command: type[amp.Command], timeout: float, **kwargs: Any
    ) -> defer.Deferred[dict[str, Any]]:
        if self.debug.network_disabled or sub.subscriber_id in self.debug.isolated:
            return defer.fail(RpcError("unreachable (debug action)"))
        return sub.link.call(command, timeout, **kwargs)

    def _once(
        self,
        sub: Subscriber,
        kind: str,
        d: defer.Deferred[dict[str, Any]],
        ok: Callable[[dict[str, Any]], None],
        failed: Callable[[str], None],
    ) -> None:
        sub.in_flight.add(kind)

        def done(result: dict[str, Any]) -> None:
            sub.in_flight.discard(kind)
            if self._current(sub):
                ok(result)

        def error(reason: Any) -> None:
            sub.in_flight.discard(kind)
            if self._current(sub):
                failed(reason.getErrorMessage())

        d.addCallbacks(done, error).addErrback(
            lambda f: log.failure("handling a {kind} answer", f, kind=kind)
        )

    def heartbeat_tick(self) -> None:
        for sub in list(self.subscribers.values()):
            if "heartbeat" not in sub.in_flight:
                self._send_heartbeat(sub)

    def _send_heartbeat(self, sub: Subscriber) -> None:
        ask = self.ha is not None and self.ha.role is Role.STANDBY

        def ok(result: dict[str, Any]) -> None:
            sub.missed = 0
            sub.last_heartbeat = self.clock.seconds()
            if ask and self.ha is not None and self.ha.role is Role.STANDBY:
                sub.active_conn_state = str(result["statestore_conn_state"])

        def failed(why: str) -> None:
            sub.missed += 1
            if sub.missed >= self.config.max_missed_heartbeats:
                self.counters["num-evicted-subscribers"] += 1
                self.unregister(sub, f"missed {sub.missed} heartbeats ({why})")

        d = self._call(
            sub,
            Heartbeat,
            self.config.heartbeat_timeout,
            registration_id=sub.registration_id,
            statestore_id=self.statestore_id,
            request_statestore_conn_state=ask,
        )
        self._once(sub, "heartbeat", d, ok, failed)

    def update_tick(self, prioritized: bool) -> None:
        if not self.is_active:
            return
        for sub in list(self.subscribers.values()):
            self._send_update(sub, prioritized)

    def _send_update(self, sub: Subscriber, prioritized: bool) -> None:
        kind = "priority-update" if prioritized else "update"
        if kind in sub.in_flight:
            return
        deltas = [
            self.topics[name].build_delta(sub.last_processed.get(name, 0), reg.filter_prefix)
            for name, reg in sorted(sub.topics.items())
            if is_prioritized(name) == prioritized
        ]
        if not deltas:
            return
        active_version = self.active_version

        def ok(result: dict[str, Any]) -> None:
            if not self.is_active or self.active_version != active_version:
                return
            if result["skipped"]:
                return
            for delta in deltas:
                sub.last_processed[delta.topic] = delta.to_version
            self.apply_writes(sub, result["topic_updates"])

        def failed(why: str) -> None:
            log.debug("topic update to {id} failed: {why}", id=sub.subscriber_id, why=why)

        d = self._call(
            sub,
            UpdateState,
            self.config.update_timeout,
            registration_id=sub.registration_id,
            statestore_id=self.statestore_id,
            topic_deltas=[d.to_json() for d in deltas],
        )
        self._once(sub, kind, d, ok, failed)

    def apply_writes(self, sub: Subscriber, raw: Any) -> None:
        """Apply a subscriber's writes; a malformed one is logged and dropped, never fatal."""
        try:
            if not isinstance(raw, list):
                raise RpcError("topic_updates must be a list")
            writes = [TopicWrite.from_json(w) for w in raw]
        except RpcError as e:
            log.warn("dropping bad writes from {id}: {e}", id=sub.subscriber_id, e=str(e))
            return
        for write in writes:
            reg = sub.topics.get(write.topic)
            topic = self.topics.get(write.topic)
            if reg is None or topic is None:
                log.warn(
                    "subscriber {id} wrote to unregistered topic {topic}",
                    id=sub.subscriber_id,
                    topic=write.topic,
                )
                continue
            if write.resync_from is not None:
                sub.last_processed[write.topic] = write.resync_from
            if write.clear_topic_entries:
                self.counters["num-clear-topic-entries-requests"] += 1
                topic.clear()
            owned = sub.transient.setdefault(write.topic, {})
            for item in write.items:
                version = topic.put(item.key, item.value, item.deleted)
                if reg.is_transient and not item.deleted:
                    owned[item.key] = version
                else:
                    owned.pop(item.key, None)

    def role_notify_tick(self) -> None:
        if not self.is_active or self.ha is None:
            return
        version = self.ha.active_version
        for sub in list(self.subscribers.values()):
            if sub.notified_version < version and "role" not in sub.in_flight:
                self._send_role(sub, version)

    def _send_role(self, sub: Subscriber, version: int) -> None:
        def ok(result: dict[str, Any]) -> None:
            if result["skipped"]:
                self.counters["num-failed-update-statestored-role-rpc"] += 1
                return
            self.counters["num-successful-update-statestored-role-rpc"] += 1
            sub.notified_version = max(sub.notified_version, version)

        def failed(why: str) -> None:
            self.counters["num-failed-update-statestored-role-rpc"] += 1

        d = self._call(
            sub,
            UpdateStatestoredRole,
            self.config.role_rpc_timeout,
            registration_id=sub.registration_id,
            statestore_id=self.statestore_id,
            active_statestored_version=version,
            is_active=True,
        )
        self._once(sub, "role", d, ok, failed)

    # ---------------------------------------------------------------- HA glue

    def ha_tick(self) -> None:
        if self.ha is not None:
            self.ha.tick()

    def _role_changed(self, old: Role, new: Role) -> None:
        for sub in self.subscribers.values():
            sub.active_conn_state = CONN_OK
        if new is Role.ACTIVE:
            # A new term starts from empty topics: every subscriber gets a full update
            # and republishes what it owns (spec 2.10).
            for topic in self.topics.values():
                topic.clear()
            for sub in self.subscribers.values():
                sub.last_processed = dict.fromkeys(sub.topics, 0)
                sub.transient.clear()
            self.clock.callLater(0, self.role_notify_tick)

    def receive_handshake(self, **kwargs: Any) -> dict[str, Any]:
        if self.ha is None:
            raise RpcError("statestore HA is not enabled here")
        if kwargs["src_protocol_version"] < PROTOCOL_VERSION:
            raise RpcError("STATESTORE_INCOMPATIBLE_PROTOCOL")
        request = HandshakeRequest(
            kwargs["src_statestore_id"],
            kwargs["src_statestore_address"],
            kwargs["src_force_active"],
            kwargs["src_active"],
            kwargs["src_active_version"],
        )
        try:
            active = self.ha.receive_handshake(request)
        except PeerUnreachable as e:
            raise RpcError(str(e)) from None
        return {
            "dst_protocol_version": PROTOCOL_VERSION,
            "dst_statestore_id": self.statestore_id,
            "dst_statestore_active": active,
        }

    def receive_ha_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        if self.ha is None:
            raise RpcError("statestore HA is not enabled here")
        try:
            self.ha.receive_heartbeat(kwargs["dst_statestore_id"], kwargs["src_statestore_id"])
        except PeerUnreachable as e:
            raise RpcError(str(e)) from None
        return {}

    def set_debug_action(
        self, disable_network: bool, cut_peer_link: bool, isolate_subscribers: Any
    ) -> dict[str, Any]:
        if DISABLE_NETWORK_ACTION not in self.config.debug_actions:
            raise RpcError(f"debug actions need --debug_actions={DISABLE_NETWORK_ACTION}")
        if not isinstance(isolate_subscribers, list) or not all(
            isinstance(s, str) for s in isolate_subscribers
        ):
            raise RpcError("isolate_subscribers must be a list of subscriber ids")
        self.debug = DebugState(disable_network, cut_peer_link, frozenset(isolate_subscribers))
        log.warn(
            "debug action: network_disabled={n} peer_link_cut={c} isolated={i}",
            n=disable_network,
            c=cut_peer_link,
            i=sorted(isolate_subscribers),
        )
        return {"ok": True}


class _AmpPeer:
    """The HA controller's :class:`~backends.statestore.ha.PeerClient` over an AMP link."""

    def __init__(self, link: AmpLink, timeout: float) -> None:
        self._link = link
        self._timeout = timeout

    def handshake(self, request: HandshakeRequest) -> defer.Deferred[dict[str, Any]]:
        return self._link.call(
            StatestoreHaHandshake,
            self._timeout,
            src_protocol_version=PROTOCOL_VERSION,
            **dataclasses.asdict(request),
        )

    def heartbeat(
        self, dst_statestore_id: str, src_statestore_id: str, src_active_version: int
    ) -> defer.Deferred[dict[str, Any]]:
        return self._link.call(
            StatestoreHaHeartbeat,
            self._timeout,
            dst_statestore_id=dst_statestore_id,
            src_statestore_id=src_statestore_id,
            src_active_version=src_active_version,
        )


# ----------------------------------------------------------------------------- protocols


class StatestoreServiceProtocol(GuardedAMP):
    """The ``--state_store_port`` listener: registration and the test-only debug switch."""

    def __init__(self, store: Statestore) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store = store

    @RegisterSubscriber.responder
    def register_subscriber(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.register_subscriber(**kwargs)

    @SetStatestoreDebugAction.responder
    def set_debug_action(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.set_debug_action(**kwargs)


class StatestoreHaProtocol(GuardedAMP):
    """The ``--state_store_ha_port`` listener: handshakes and HA heartbeats from the peer."""

    def __init__(self, store: Statestore) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store = store

    @StatestoreHaHandshake.responder
    def handshake(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.receive_handshake(**kwargs)

    @StatestoreHaHeartbeat.responder
    def ha_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.receive_ha_heartbeat(**kwargs)


class _StoreService(service.Service):
    def __init__(self, store: Statestore) -> None:
        self.store = store

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.store.start()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        return self.store.stop()


def _timer(interval: float, clock: Clock, fn: Callable[..., Any], *args: Any) -> Any:
    timer = internet.TimerService(interval, fn, *args)
    timer.clock = clock
    return timer


def build_service(
    store: Statestore,
    service_endpoint: ServerEndpoint,
    ha_endpoint: ServerEndpoint | None,
    extra: Sequence[Any] = (),
) -> service.MultiService:
    """The statestored tree: listeners, the store, and one timer per periodic job."""
    top = service.MultiService()
    clock, config = store.clock, store.config
    _StoreService(store).setServiceParent(top)  # type: ignore[no-untyped-call]
    factory = Factory.forProtocol(lambda: StatestoreServiceProtocol(store))
    factory.noisy = False
    internet.StreamServerEndpointService(service_endpoint, factory).setServiceParent(top)
    _timer(config.heartbeat_interval, clock, store.heartbeat_tick).setServiceParent(top)
    _timer(config.priority_update_interval, clock, store.update_tick, True).setServiceParent(top)
    _timer(config.update_interval, clock, store.update_tick, False).setServiceParent(top)
    if store.ha is not None:
        if ha_endpoint is None:
            raise ValueError("HA needs its own listening endpoint")
        ha_factory = Factory.forProtocol(lambda: StatestoreHaProtocol(store))
        ha_factory.noisy = False
        internet.StreamServerEndpointService(ha_endpoint, ha_factory).setServiceParent(top)
        interval = store.ha.config.monitor_interval
        _timer(interval, clock, store.ha_tick).setServiceParent(top)
        _timer(config.role_rpc_resend_interval, clock, store.role_notify_tick).setServiceParent(top)
    for child in extra:
        child.setServiceParent(top)
    return top
