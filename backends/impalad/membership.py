"""impalad as a cluster member: its descriptor on the ``impala-membership`` topic (spec 1.7).

impalad registers with the statestore(s) through
:func:`~backends.common.subscriber.subscriber_from_flags` and publishes itself with
:class:`~backends.common.subscriber.ClusterMembership` once its client ports listen
(Impala publishes only after ``AreServicesReady``). Every coordinator then knows the
live cluster, and ``/backends?json`` lists it.

**Standalone.** ``--state_store_host`` keeps Impala's default, ``localhost``; an empty
value (``--state_store_host=``) makes a standalone impalad that registers nowhere,
lists only itself in ``/backends`` and is healthy as soon as it listens.

**The descriptor.** :class:`ImpaladDescriptor` is the library's
:class:`~backends.common.subscriber.BackendDescriptor` plus what our ``/backends``
shows about other members and Impala's descriptor does not carry (the hs2-http port,
whether the web server speaks HTTPS, version, start time). The extra fields travel
in the same JSON entry; the library parses only the common ones, and equality is on
the common ones too, so :class:`ClusterMembership` never republishes a descriptor it
already sees in the topic. ``backend_id`` is random per process, as Impala's is, so a
restarted impalad is a new member and its old entry goes with its old registration.

**Health** (spec 5.3): ready once listening *and* registered with a statestore (the
active one told us it is active), latched: losing the statestore later does not make
impalad unhealthy, as in Impala.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from twisted.logger import Logger

from backends.common.rpc import TopicRegistration
from backends.common.subscriber import (
    MEMBERSHIP_TOPIC,
    BackendDescriptor,
    ClusterMembership,
    StatestoreAddress,
    StatestoreSubscriber,
)

log = Logger()

MEMBERSHIP_TOPICS = (TopicRegistration(MEMBERSHIP_TOPIC, is_transient=True),)


def new_backend_id() -> str:
    """A random id printed as Impala prints a TUniqueId: ``7a4f1c2b9e3d4a51:8b6c0d2e1f3a5b79``."""
    return f"{secrets.token_hex(8)}:{secrets.token_hex(8)}"


_COMMON = tuple(f.name for f in dataclasses.fields(BackendDescriptor))


@dataclasses.dataclass(frozen=True, eq=False)
class ImpaladDescriptor(BackendDescriptor):
    """Impala's descriptor plus the fields our ``/backends`` shows for every member."""

    hs2_http_port: int = 0
    webserver_https: bool = False
    version: str = ""
    start_time: float = 0.0

    def common(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _COMMON)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BackendDescriptor):
            return NotImplemented
        mine = self.common()
        theirs = tuple(getattr(other, name) for name in _COMMON)
        return mine == theirs

    def __hash__(self) -> int:
        return hash(self.common())

    @classmethod
    def parse(cls, data: bytes) -> ImpaladDescriptor:
        """Any member's entry; the extra fields default when another daemon left them out."""
        base = BackendDescriptor.from_bytes(data)
        try:
            raw = json.loads(data)
        except ValueError:
            raw = {}
        extra: dict[str, Any] = {}
        if isinstance(raw, dict):
            with_types = {
                "hs2_http_port": int,
                "webserver_https": bool,
                "version": str,
                "start_time": float,
            }
            for name, kind in with_types.items():
                if name in raw:
                    with contextlib.suppress(TypeError, ValueError):
                        extra[name] = kind(raw[name])
        return cls(**dataclasses.asdict(base), **extra)

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0] or self.address


def backend_json(d: ImpaladDescriptor, *, is_self: bool) -> dict[str, Any]:
    """One ``/backends?json`` entry with Impala's field names (and our two client addresses)."""
    host = d.host
    scheme = "https" if d.webserver_https else "http"
    return {
        "address": d.address,
        "krpc_address": d.address,
        "backend_id": d.backend_id,
        "hs2_address": f"{host}:{d.hs2_port}",
        "hs2_http_address": f"{host}:{d.hs2_http_port}" if d.hs2_http_port else "",
        "webserver_url": f"{scheme}://{host}:{d.webserver_port}" if d.webserver_port else "",
        "is_coordinator": d.is_coordinator,
        "is_executor": d.is_executor,
        "is_quiescing": d.is_quiescing,
        "is_blacklisted": False,
        "is_active": not d.is_quiescing,
        "executor_groups": "default" if d.is_executor and not d.is_quiescing else "",
        "version": d.version,
        "start_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.start_time))
        if d.start_time
        else "",
        "is_self": is_self,
    }


class Membership:
    """impalad's view of the cluster: itself alone, or what the membership topic says."""

    def __init__(self, subscriber: StatestoreSubscriber | None, grace_period: float) -> None:
        self.subscriber = subscriber
        self.grace_period = grace_period
        self.descriptor: ImpaladDescriptor | None = None
        self._members: ClusterMembership | None = None
        self._view: dict[str, ImpaladDescriptor] = {}
        self._registered = subscriber is None
        self._listeners: list[Callable[[Mapping[str, ImpaladDescriptor]], None]] = []
        if subscriber is not None:
            subscriber.on_primary_change(self._primary_changed)

    @property
    def standalone(self) -> bool:
        return self.subscriber is None

    def on_change(self, callback: Callable[[Mapping[str, ImpaladDescriptor]], None]) -> None:
        self._listeners.append(callback)

    def _primary_changed(self, address: StatestoreAddress | None) -> None:
        if address is not None and not self._registered:
            self._registered = True
            log.info(
                "registered with the active statestore {host}:{port}",
                host=address.host,
                port=address.port,
            )

    @property
    def registered(self) -> bool:
        """Latched: True once registered with a statestore (always, when standalone)."""
        if not self._registered and self.subscriber is not None:
            subscriber = self.subscriber
            if subscriber.current_primary is not None:
                self._registered = True
        return self._registered

    def publish(self, descriptor: ImpaladDescriptor) -> None:
        """Start publishing ``descriptor`` (called once the client ports listen)."""
        self.descriptor = descriptor
        if self.subscriber is None:
            return
        members = ClusterMembership(self.subscriber, descriptor, grace_period=self.grace_period)
        members.on_change(self._changed)
        self._members = members
        members.update_descriptor()  # queue it now rather than at the next topic update

    def set_quiescing(self) -> None:
        """Republish with ``is_quiescing=True`` (graceful shutdown started)."""
        if self.descriptor is None or self.descriptor.is_quiescing:
            return
        self.descriptor = dataclasses.replace(self.descriptor, is_quiescing=True)
        if self._members is not None:
            self._members.update_descriptor(is_quiescing=True)
            log.info("published is_quiescing=true to the membership topic")

    def _changed(self, backends: Mapping[str, BackendDescriptor]) -> None:
        assert self.subscriber is not None
        raw = self.subscriber.entries(MEMBERSHIP_TOPIC)
        view: dict[str, ImpaladDescriptor] = {}
        for key, base in backends.items():
            try:
                view[key] = ImpaladDescriptor.parse(raw[key]) if key in raw else _upgrade(base)
            except ValueError:
                view[key] = _upgrade(base)
        self._view = view
        log.info(
            "cluster membership: {n} backends: {ids}",
            n=len(view),
            ids=", ".join(sorted(d.address for d in view.values())),
        )
        for callback in self._listeners:
            callback(dict(view))

    def backends(self) -> list[ImpaladDescriptor]:
        """The live members, this daemon first (with its current state), then by address."""
        own = self.descriptor
        others = sorted(
            (d for k, d in self._view.items() if own is None or k != own.backend_id),
            key=lambda d: d.address,
        )
        return ([own] if own is not None else []) + others

    def metrics(self) -> dict[str, Any]:
        members = self.backends()
        out: dict[str, Any] = {
            "cluster-membership.backends.total": len(members),
            "cluster-membership.executor-groups.total-healthy": 1
            if any(d.is_executor and not d.is_quiescing for d in members)
            else 0,
            "statestore-subscriber.registered": self.registered,
        }
        if self.subscriber is not None:
            out.update(self.subscriber.metrics())
        return out

    def role_view(self) -> list[dict[str, Any]]:
        return [] if self.subscriber is None else self.subscriber.role_view()


def _upgrade(base: BackendDescriptor) -> ImpaladDescriptor:
    return ImpaladDescriptor(**dataclasses.asdict(base))
