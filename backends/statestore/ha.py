"""The statestored HA role machine: start-up election, takeover, recovery (spec section 2).

Roles (one place changes them, :meth:`HaController._set_role`)::

    STARTING --handshake answered / preemption wait over--> ACTIVE | STANDBY
    STANDBY  --peer's heartbeats missed AND majority of witnesses lost it--> ACTIVE
    STANDBY  --peer's heartbeats missed AND no subscribers at all--> RECOVERING
    ACTIVE   --standby lost AND no subscribers left (isolated)--> RECOVERING
    ACTIVE   --too many HA heartbeats received (two actives)--> RECOVERING
    ACTIVE   --handshake from a forced / newer active peer--> STANDBY
    RECOVERING --handshake answered--> ACTIVE | STANDBY

**The takeover rule follows the product documentation (seed 001), with the code's
safeguards.** The documentation says the standby takes over when it "misses
MAX_MISSED_HEARTBEAT_REQUEST_NUM of heartbeat requests from the primary and the
majority of clients lose connections with the primary"; Impala's code measures a
*timeout* (``--statestore_peer_timeout_seconds``, 30 s) instead. We do both: the
standby expects one HA heartbeat per ``--statestore_ha_heartbeat_monitoring_frequency_ms``
and declares the primary lost after ``--statestore_max_missed_heartbeats`` periods
without one, or once ``--statestore_peer_timeout_seconds`` passed without one,
whichever comes first. Kept from the code: the peer must have been heard from first (a
handshake counts, which Impala's detector does not), the witnesses must be a strict
majority and at least one, an isolated node (no subscribers) goes to recovery
instead of taking over, an active never yields in a handshake unless the peer is
force-active, and an active that keeps receiving HA heartbeats renegotiates.

Added to close Impala's IMPALA-12507 gap (two actives after a partial partition):
an active that lost its standby keeps probing it with handshakes, and the
handshake carries the sender's role and active version, so when two actives meet,
the newer one (the one subscribers were told about last) stays active.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from backends.common.rpc import Clock

MAX_NUM_RECEIVED_HEARTBEAT_IN_ACTIVE = 10
log = Logger()


class Role(enum.Enum):
    STARTING = "starting"
    ACTIVE = "active"
    STANDBY = "standby"
    RECOVERING = "recovering"


@dataclasses.dataclass(frozen=True)
class HaConfig:
    """The HA flags, in seconds."""

    own_address: str
    force_active: bool = False
    priority_by_address: bool = False
    monitor_interval: float = 1.0
    max_missed_heartbeats: int = 10
    preemption_wait: float = 10.0
    rpc_timeout: float = 3.0
    peer_timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class HandshakeRequest:
    src_statestore_id: str
    src_statestore_address: str
    src_force_active: bool
    src_active: bool
    src_active_version: int


class PeerClient(Protocol):
    """How the controller reaches its peer (the HA link, or a test double of it)."""

    def handshake(self, request: HandshakeRequest) -> defer.Deferred[dict[str, Any]]: ...

    def heartbeat(
        self, dst_statestore_id: str, src_statestore_id: str, src_active_version: int
    ) -> defer.Deferred[dict[str, Any]]: ...


class Witnesses(Protocol):
    """What the standby knows from its subscribers."""

    def total(self) -> int: ...

    def failed(self) -> int: ...


class PeerUnreachable(Exception):
    """The HA link is cut (test switch) or the request is not for us."""


class HaController:
    """The role of one statestored in an HA pair, driven by :meth:`tick`."""

    def __init__(
        self,
        clock: Clock,
        statestore_id: str,
        config: HaConfig,
        peer: PeerClient,
        witnesses: Witnesses,
        on_role_change: Callable[[Role, Role], None],
        link_cut: Callable[[], bool] = lambda: False,
    ) -> None:
        self._clock = clock
        self.statestore_id = statestore_id
        self.config = config
        self._peer = peer
        self._witnesses = witnesses
        self._on_role_change = on_role_change
        self._link_cut = link_cut
        self.role = Role.STARTING
        self.active_version = 0
        self.found_peer = False
        self.peer_statestore_id = ""
        self._started_at = clock.seconds()
        self._last_peer_heartbeat: float | None = None  # standby's detector (missed periods)
        self._standby_misses = 0  # active's detector (consecutive failed HA heartbeats)
        self._peer_lost = False
        self._received_in_active = 0
        self._in_flight = False
        self._warned_majority = False

    # ---------------------------------------------------------------- views

    @property
    def is_active(self) -> bool:
        return self.role is Role.ACTIVE

    @property
    def in_recovery(self) -> bool:
        return self.role is Role.RECOVERING

    def peer_missed_heartbeats(self) -> int | None:
        """Whole monitoring periods since the last sign of the active (None: never)."""
        if self._last_peer_heartbeat is None:
            return None
        elapsed = self._clock.seconds() - self._last_peer_heartbeat
        return int(elapsed / self.config.monitor_interval + 1e-9)

    def peer_failed(self) -> bool:
        """The active is lost: too many periods missed, or the peer timeout passed."""
        missed = self.peer_missed_heartbeats()
        if missed is None:
            return False
        assert self._last_peer_heartbeat is not None
        timed_out = self._clock.seconds() - self._last_peer_heartbeat >= self.config.peer_timeout
        return missed >= self.config.max_missed_heartbeats or timed_out

    def majority_failed(self) -> bool:
        failed, total = self._witnesses.failed(), self._witnesses.total()
        return failed > 0 and failed > total // 2

    # ---------------------------------------------------------------- transitions

    def _set_role(self, role: Role, why: str) -> None:
        old = self.role
        if role is old:
            return
        self.role = role
        if role is Role.ACTIVE:
            now_us = int(self._clock.seconds() * 1_000_000)
            self.active_version = max(now_us, self.active_version + 1)
            self._received_in_active = 0
        log.info(
            "statestore {id} role {old} -> {new}: {why}",
            id=self.statestore_id,
            old=old.value,
            new=role.value,
            why=why,
        )
        self._on_role_change(old, role)

    def _mark_peer_seen(self) -> None:
        self._last_peer_heartbeat = self._clock.seconds()
        self._standby_misses = 0
        self._peer_lost = False

    def _priority_wins(self, peer_id: str, peer_address: str) -> bool:
        if self.config.priority_by_address:
            return self.config.own_address < peer_address
        return self.statestore_id < peer_id

    # ---------------------------------------------------------------- incoming RPCs

    def receive_handshake(self, request: HandshakeRequest) -> bool:
        """Decide roles for a peer's handshake; return whether we are active now."""
        if self._link_cut():
            raise PeerUnreachable("HA link is cut (debug action)")
        if request.src_statestore_id == self.statestore_id:
            raise PeerUnreachable("handshake from myself")
        self.peer_statestore_id = request.src_statestore_id
        self.found_peer = True
        self._mark_peer_seen()
        own_force = self.config.force_active
        peer_force = request.src_force_active
        if peer_force and not own_force:
            self._set_role(Role.STANDBY, "the peer is force-active")
        elif self.is_active and request.src_active:
            newer = (
                request.src_active_version,
                not self._priority_wins(request.src_statestore_id, request.src_statestore_address),
            ) > (self.active_version, False)
            if newer:
                self._set_role(Role.STANDBY, "two actives met; the peer's term is newer")
        elif self.is_active:
            pass  # an active never yields to a returning peer: no flip-flop
        elif own_force and not peer_force:
            self._set_role(Role.ACTIVE, "force-active, peer is not")
        elif request.src_active:
            self._set_role(Role.STANDBY, "the peer is already active")
        elif self._priority_wins(request.src_statestore_id, request.src_statestore_address):
            self._set_role(Role.ACTIVE, "handshake: higher priority than the peer")
        else:
            self._set_role(Role.STANDBY, "handshake: lower priority than the peer")
        return self.is_active

    def receive_heartbeat(self, dst_statestore_id: str, src_statestore_id: str) -> None:
        if self._link_cut():
            raise PeerUnreachable("HA link is cut (debug action)")
        if dst_statestore_id != self.statestore_id:
            raise PeerUnreachable(
                f"HA heartbeat for {dst_statestore_id}, I am {self.statestore_id}"
            )
        self.peer_statestore_id = src_statestore_id
        if self.role is Role.ACTIVE:
            self._received_in_active += 1
            if self._received_in_active > MAX_NUM_RECEIVED_HEARTBEAT_IN_ACTIVE:
                self.found_peer = False
                self._set_role(Role.RECOVERING, "the peer is active too; renegotiating")
            return
        self._mark_peer_seen()

    # ---------------------------------------------------------------- outgoing

    def _handshake(self, why: str) -> None:
        if self._in_flight:
            return
        self._in_flight = True
        request = HandshakeRequest(
            self.statestore_id,
            self.config.own_address,
            self.config.force_active,
            self.is_active,
            self.active_version,
        )
        d = defer.maybeDeferred(self._peer.handshake, request)

        def answered(result: dict[str, Any]) -> None:
            self._in_flight = False
            peer_id = str(result["dst_statestore_id"])
            if peer_id == self.statestore_id:
                return
            self.peer_statestore_id = peer_id
            self.found_peer = True
            self._mark_peer_seen()
            peer_active = bool(result["dst_statestore_active"])
            self._set_role(
                Role.STANDBY if peer_active else Role.ACTIVE,
                f"{why}: the peer answered active={peer_active}",
            )

        def failed(reason: Any) -> None:
            self._in_flight = False
            log.debug("handshake failed: {reason}", reason=reason.getErrorMessage())

        d.addCallbacks(answered, failed)

    def _heartbeat_standby(self) -> None:
        if self._in_flight:
            return
        self._in_flight = True
        d = defer.maybeDeferred(
            self._peer.heartbeat, self.peer_statestore_id, self.statestore_id, self.active_version
        )

        def ok(_: Any) -> None:
            self._in_flight = False
            self._standby_misses = 0

        def missed(reason: Any) -> None:
            self._in_flight = False
            self._standby_misses += 1
            if self._standby_misses >= self.config.max_missed_heartbeats and self.found_peer:
                log.warn(
                    "lost the standby statestore after {n} failed HA heartbeats: {reason}",
                    n=self._standby_misses,
                    reason=reason.getErrorMessage(),
                )
                self.found_peer = False
                self._peer_lost = True

        d.addCallbacks(ok, missed)

    # ---------------------------------------------------------------- the monitor tick

    def tick(self) -> None:
        """One monitoring period: send what the role sends, check what it checks."""
        role = self.role
        if role is Role.STARTING:
            if self._clock.seconds() - self._started_at >= self.config.preemption_wait:
                self._set_role(Role.ACTIVE, "no peer answered within the preemption wait")
            elif not self._link_cut():
                self._handshake("start-up")
        elif role is Role.RECOVERING:
            if not self._link_cut():
                self._handshake("recovery")
        elif role is Role.ACTIVE:
            self._tick_active()
        else:
            self._tick_standby()

    def _tick_active(self) -> None:
        if self._link_cut():
            if self.found_peer:
                self._heartbeat_failed_locally()
        elif self.found_peer:
            self._heartbeat_standby()
        else:
            self._handshake("probe for the peer")
        if self._peer_lost and self._witnesses.total() == 0:
            self._set_role(Role.RECOVERING, "no standby and no subscribers: isolated")

    def _heartbeat_failed_locally(self) -> None:
        self._standby_misses += 1
        if self._standby_misses >= self.config.max_missed_heartbeats:
            self.found_peer = False
            self._peer_lost = True

    def _tick_standby(self) -> None:
        majority = self.majority_failed()
        if not self.peer_failed():
            if majority and not self._warned_majority:
                log.warn("a majority of subscribers lost the active, but its HA heartbeats arrive")
            self._warned_majority = majority
            return
        self.found_peer = False
        if majority:
            self._set_role(
                Role.ACTIVE,
                f"missed {self.peer_missed_heartbeats()} HA heartbeats and "
                f"{self._witnesses.failed()}/{self._witnesses.total()} subscribers lost the active",
            )
        elif self._witnesses.total() == 0:
            self._set_role(Role.RECOVERING, "no active and no subscribers: isolated")
