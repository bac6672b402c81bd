"""The statestore side of catalogd HA: who is the active catalogd (spec 4.2, 4.3).

:class:`CatalogdElection` is Impala's ``StatestoreCatalogdMgr`` as a pure state
machine (no clock, no I/O): ``register`` / ``unregister`` / ``check`` in, the active
and standby subscriber ids and a designation version out.

:class:`CatalogdManager` glues it to a running statestore without new RPCs:

- a catalogd announces itself (address, ``--enable_catalogd_ha``,
  ``--force_catalogd_active``) as a *transient* entry, keyed by its subscriber id, of
  the ``catalogd-registration`` topic. The statestore already tombstones a
  subscriber's transient entries when its failure detector evicts it, so a
  catalogd's entry vanishing while its subscriber is gone *is* ``UnregisterCatalogd``;
  an entry that reappears under a new registration of a still-known subscriber is a
  re-registration (no role change, unless it is a forced standby);
- the manager writes its choice, ``{version, address, subscriber_id}``, under the key
  ``active`` of the ``catalogd-designation`` topic, which every impalad and catalogd
  subscribes to. Topics reach subscribers only from the active statestore, so they
  follow the active statestore's election (Impala's ``UpdateCatalogd`` is only sent
  by the active one too); after a statestore failover the topics restart empty and
  the manager writes its designation again.

A deliberate difference: the designation travels on the non-priority topic cycle
(``--statestore_update_frequency_ms``) instead of a dedicated ``UpdateCatalogd``
RPC resent every 100 ms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from twisted.application import internet
from twisted.logger import Logger

from backends.catalog.server import (
    DESIGNATION_KEY,
    DESIGNATION_TOPIC,
    REGISTRATION_TOPIC,
    Designation,
    Registration,
)
from backends.common.rpc import Clock
from backends.common.web import Response, WebRequest
from backends.statestore.topics import Topic

log = Logger()


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One registered catalogd: who, how to reach it, its priority (lower wins)."""

    subscriber_id: str
    address: str
    force_active: bool
    priority: str


class CatalogdElection:
    """``StatestoreCatalogdMgr``: the active/standby choice among at most two catalogds."""

    def __init__(self, *, enable_ha: bool, preemption_wait: float) -> None:
        self.enable_ha = enable_ha
        self.preemption_wait = preemption_wait
        self.registered: dict[str, Candidate] = {}
        self.active: str | None = None
        self.version = 0
        self.first_register_time: float | None = None

    @property
    def standby(self) -> str | None:
        others = [s for s in self.registered if s != self.active]
        return others[0] if others and self.active is not None else None

    @property
    def active_candidate(self) -> Candidate | None:
        return None if self.active is None else self.registered.get(self.active)

    def _designate(self, subscriber_id: str, why: str) -> None:
        self.active = subscriber_id
        self.version += 1
        log.info(
            "catalogd {id} is designated active (version {v}): {why}",
            id=subscriber_id,
            v=self.version,
            why=why,
        )

    def register(self, c: Candidate, now: float, *, reregistering: bool = False) -> None:
        """A catalogd registered (again); may change the designation."""
        if not self.enable_ha:
            self.registered = {c.subscriber_id: c}
            self._designate(c.subscriber_id, "HA is off: every registration becomes active")
            return
        if reregistering and c.subscriber_id in self.registered:
            self.registered[c.subscriber_id] = c
            if c.force_active and self.active not in (None, c.subscriber_id):
                self._designate(c.subscriber_id, "a forced-active standby registered again")
            elif self.active is None:
                self.check(now)
            return
        if self.first_register_time is None:
            self.first_register_time = now
        if len(self.registered) >= 2 and c.subscriber_id not in self.registered:
            log.warn("a third catalogd {id} registered; ignored", id=c.subscriber_id)
            return
        self.registered[c.subscriber_id] = c
        if c.force_active:
            if self.active is not None and self.active != c.subscriber_id:
                log.warn(
                    "catalogd {id} preempts {old} (force_catalogd_active)",
                    id=c.subscriber_id,
                    old=self.active,
                )
            self._designate(c.subscriber_id, "force_catalogd_active")
            return
        if self.active is not None:
            return
        if len(self.registered) == 2:
            best = min(self.registered.values(), key=lambda x: x.priority)
            self._designate(best.subscriber_id, "higher priority of the two")
            return
        self.check(now)

    def check(self, now: float) -> None:
        """``CheckActiveCatalog``: after the preemption wait, a lone catalogd becomes active."""
        if self.active is not None or not self.registered:
            return
        start = self.first_register_time if self.first_register_time is not None else now
        if now - start >= self.preemption_wait:
            best = min(self.registered.values(), key=lambda x: x.priority)
            self._designate(best.subscriber_id, "the preemption wait is over")

    def unregister(self, subscriber_id: str) -> None:
        """The failure detector declared this catalogd failed."""
        if self.registered.pop(subscriber_id, None) is None:
            return
        if self.active != subscriber_id:
            return
        self.active = None
        if self.registered:
            other = next(iter(self.registered))
            self._designate(other, f"failover: the active {subscriber_id} failed")
        else:
            # The next registration becomes active at once.
            self.first_register_time = -float("inf")


class CatalogdManager:
    """Runs a :class:`CatalogdElection` over a statestore's topics and subscriber table."""

    def __init__(
        self,
        clock: Clock,
        store: Any,
        *,
        enable_ha: bool,
        preemption_wait: float = 10.0,
        priority_by_subscriber_id: bool = False,
        interval: float = 0.1,
    ) -> None:
        self.clock = clock
        self.store = store
        self.election = CatalogdElection(enable_ha=enable_ha, preemption_wait=preemption_wait)
        self.priority_by_subscriber_id = priority_by_subscriber_id
        self.interval = interval
        self._known: dict[str, tuple[bytes, str]] = {}  # id -> (registration bytes, reg id)
        self.num_designation_writes = 0

    def service(self) -> internet.TimerService:
        """The periodic job (``--active_catalogd_designation_monitoring_interval_ms``)."""
        timer = internet.TimerService(self.interval, self.tick)
        timer.clock = self.clock
        return timer

    def _topic(self, name: str) -> Topic | None:
        """The topic if some subscriber registered it (the manager never creates topics)."""
        topics: dict[str, Topic] = self.store.topics
        return topics.get(name)

    def tick(self) -> None:
        now = self.clock.seconds()
        subscribers: Mapping[str, Any] = self.store.subscribers
        registrations = self._topic(REGISTRATION_TOPIC)
        live: dict[str, bytes] = {}
        if registrations is not None:
            live = {k: e.value for k, e in registrations.entries.items() if not e.deleted}
        for sub_id in list(self._known):
            if sub_id not in live and sub_id not in subscribers:
                del self._known[sub_id]
                self.election.unregister(sub_id)
        for sub_id, value in sorted(live.items()):
            sub = subscribers.get(sub_id)
            if sub is None:
                continue
            reg_id = str(getattr(sub, "registration_id", ""))
            known = self._known.get(sub_id)
            if known == (value, reg_id):
                continue
            try:
                reg = Registration.from_bytes(value)
            except ValueError as e:
                log.warn("ignoring catalogd registration {id}: {e}", id=sub_id, e=str(e))
                continue
            if reg.enable_catalogd_ha != self.election.enable_ha:
                log.warn(
                    "catalogd {id} has enable_catalogd_ha={theirs}, this statestore {ours}; "
                    "its registration is refused",
                    id=sub_id,
                    theirs=reg.enable_catalogd_ha,
                    ours=self.election.enable_ha,
                )
                continue
            self._known[sub_id] = (value, reg_id)
            priority = sub_id if self.priority_by_subscriber_id else reg_id
            candidate = Candidate(sub_id, reg.address, reg.force_catalogd_active, priority)
            self.election.register(candidate, now, reregistering=known is not None)
        self.election.check(now)
        self._write_designation()

    def designation(self) -> Designation | None:
        c = self.election.active_candidate
        if c is None:
            return None
        return Designation(self.election.version, c.address, c.subscriber_id)

    def _write_designation(self) -> None:
        d = self.designation()
        if d is None:
            return
        topic = self._topic(DESIGNATION_TOPIC)
        if topic is None:
            return
        value = d.to_bytes()
        entry = topic.entries.get(DESIGNATION_KEY)
        if entry is None or entry.deleted or entry.value != value:
            topic.put(DESIGNATION_KEY, value)
            self.num_designation_writes += 1

    def metrics(self) -> dict[str, Any]:
        c = self.election.active_candidate
        return {
            "statestore.active-catalogd-address": "" if c is None else c.address,
            "statestore.active-catalogd-version": self.election.version,
            "statestore.num-catalogd-designation-writes": self.num_designation_writes,
        }

    def routes(self) -> dict[str, Any]:
        """``/catalog_ha_info`` (only registered with ``--enable_catalogd_ha``)."""

        def page(request: WebRequest) -> Response:
            if not bool(getattr(self.store, "is_active", True)):
                return Response.json({"status": "The current statestored is inactive."})
            active = self.election.active_candidate
            standby_id = self.election.standby
            standby = None if standby_id is None else self.election.registered.get(standby_id)
            return Response.json(
                {
                    "active_catalogd_address": "" if active is None else active.address,
                    "active_catalogd_id": "" if active is None else active.subscriber_id,
                    "standby_catalogd_address": "" if standby is None else standby.address,
                    "active_catalogd_version": self.election.version,
                }
            )

        return {"/catalog_ha_info": page} if self.election.enable_ha else {}
