"""The HA role machine (election, takeover rule, recovery) on a task.Clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from twisted.internet import defer, task

from backends.statestore.ha import (
    MAX_NUM_RECEIVED_HEARTBEAT_IN_ACTIVE,
    HaConfig,
    HaController,
    HandshakeRequest,
    PeerUnreachable,
    Role,
)


class Witnesses:
    def __init__(self, total: int = 3, failed: int = 0) -> None:
        self.n_total, self.n_failed = total, failed

    def total(self) -> int:
        return self.n_total

    def failed(self) -> int:
        return self.n_failed


class Wire:
    """Delivers one controller's RPCs to the other, unless the wire is down."""

    def __init__(self) -> None:
        self.target: HaController | None = None
        self.up = True

    def _reach(self) -> HaController:
        if not self.up or self.target is None:
            raise ConnectionRefusedError("down")
        return self.target

    def handshake(self, request: HandshakeRequest) -> defer.Deferred[dict[str, Any]]:
        try:
            peer = self._reach()
            active = peer.receive_handshake(request)
        except (ConnectionRefusedError, PeerUnreachable) as e:
            return defer.fail(e)
        return defer.succeed(
            {"dst_statestore_id": peer.statestore_id, "dst_statestore_active": active}
        )

    def heartbeat(self, dst: str, src: str, version: int) -> defer.Deferred[dict[str, Any]]:
        try:
            self._reach().receive_heartbeat(dst, src)
        except (ConnectionRefusedError, PeerUnreachable) as e:
            return defer.fail(e)
        return defer.succeed({})


def role(c: HaController) -> Role:
    """The role now (a call, so mypy does not narrow it across transitions)."""
    return c.role


def make(
    clock: task.Clock, name: str, wire: Wire, witnesses: Witnesses, force: bool = False
) -> HaController:
    config = HaConfig(
        own_address=name,
        force_active=force,
        priority_by_address=True,
        monitor_interval=0.1,
        max_missed_heartbeats=5,
        preemption_wait=1.0,
    )
    return HaController(clock, f"id-{name}", config, wire, witnesses, lambda old, new: None)


class Pair:
    def __init__(self, force0: bool = False, force1: bool = False) -> None:
        self.clock = task.Clock()
        self.w0, self.w1 = Wire(), Wire()  # w0: how c0 reaches c1
        self.wit0, self.wit1 = Witnesses(), Witnesses()
        self.c0 = make(self.clock, "a:1", self.w0, self.wit0, force0)
        self.c1 = make(self.clock, "b:1", self.w1, self.wit1, force1)
        self.w0.target, self.w1.target = self.c1, self.c0
        self.alive = {0: True, 1: True}

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            self.clock.advance(0.1)
            if self.alive[0]:
                self.c0.tick()
            if self.alive[1]:
                self.c1.tick()

    def kill(self, index: int) -> None:
        self.alive[index] = False
        (self.w1 if index == 0 else self.w0).up = False

    def roles(self) -> tuple[Role, Role]:
        return self.c0.role, self.c1.role


def test_lone_statestore_self_elects_after_preemption_wait() -> None:
    """With no peer answering, a statestore becomes active once the wait is over."""
    clock = task.Clock()
    wire = Wire()
    c = make(clock, "a:1", wire, Witnesses())
    for _ in range(9):
        clock.advance(0.1)
        c.tick()
    assert role(c) is Role.STARTING
    clock.advance(0.2)
    c.tick()
    assert role(c) is Role.ACTIVE


def test_startup_election_picks_lower_address() -> None:
    """Two statestores started together agree: the lower HA address is active."""
    p = Pair()
    p.run(0.1)
    assert p.roles() == (Role.ACTIVE, Role.STANDBY)
    assert p.c0.found_peer and p.c1.found_peer


def test_force_active_wins_and_both_forced_end_with_one() -> None:
    """A force-active peer wins the handshake; with both forced exactly one is active."""
    p = Pair(force1=True)
    p.run(0.1)
    assert p.roles() == (Role.STANDBY, Role.ACTIVE)
    both = Pair(force0=True, force1=True)
    both.run(0.5)
    assert sorted(r.value for r in both.roles()) == ["active", "standby"]


def test_takeover_needs_missed_heartbeats_and_a_majority() -> None:
    """The standby takes over only when the active's heartbeats stopped AND most
    subscribers lost it."""
    p = Pair()
    p.run(0.5)
    p.wit1.n_failed = 2  # a majority lost the active, but its heartbeats still arrive
    p.run(2.0)
    assert p.roles() == (Role.ACTIVE, Role.STANDBY)
    p.wit1.n_failed = 1  # now the heartbeats stop, but only a minority lost it
    p.kill(0)
    p.run(2.0)
    assert role(p.c1) is Role.STANDBY
    assert p.c1.peer_failed()
    p.wit1.n_failed = 2
    p.run(0.1)
    assert role(p.c1) is Role.ACTIVE


def test_heartbeats_missed_count_is_the_seed_rule() -> None:
    """The active is lost after max_missed monitoring periods without an HA heartbeat."""
    p = Pair()
    p.run(0.5)
    p.wit1.n_failed = 3
    p.kill(0)
    p.run(0.4)
    assert role(p.c1) is Role.STANDBY  # 4 periods missed, fewer than 5
    p.run(0.2)
    assert role(p.c1) is Role.ACTIVE


def test_peer_timeout_ends_the_wait_before_the_missed_count() -> None:
    """Impala's --statestore_peer_timeout_seconds: with a timeout shorter than the
    missed-heartbeat count (0.25 s against 5 x 0.1 s), the active is lost at the timeout."""
    p = Pair()
    p.c1.config = dataclasses.replace(p.c1.config, peer_timeout=0.25)
    p.run(0.5)
    p.wit1.n_failed = 3
    p.kill(0)
    p.run(0.2)
    assert role(p.c1) is Role.STANDBY and not p.c1.peer_failed()
    p.run(0.1)
    assert p.c1.peer_missed_heartbeats() == 3 and role(p.c1) is Role.ACTIVE


def test_isolated_standby_goes_to_recovery() -> None:
    """A standby that loses the active while it has no subscribers enters recovery."""
    p = Pair()
    p.run(0.5)
    p.wit1.n_total = 0
    p.kill(0)
    p.run(1.0)
    assert role(p.c1) is Role.RECOVERING


def test_returning_peer_does_not_preempt_the_active() -> None:
    """A restarted former primary with a higher priority still becomes standby."""
    p = Pair()
    p.run(0.5)
    p.wit1.n_failed = 3
    p.kill(0)
    p.run(1.0)
    assert role(p.c1) is Role.ACTIVE
    # Restart statestore 0: a fresh controller, same address (the better priority).
    p.c0 = make(p.clock, "a:1", p.w0, p.wit0)
    p.w1.target = p.c0
    p.w0.up = True
    p.w1.up = True
    p.alive[0] = True
    p.run(1.0)
    assert p.roles() == (Role.STANDBY, Role.ACTIVE)


def test_active_that_keeps_receiving_heartbeats_renegotiates() -> None:
    """An active that receives too many HA heartbeats steps into recovery and
    renegotiates, so two actives end as one."""
    clock = task.Clock()
    c = make(clock, "b:1", Wire(), Witnesses())
    c.receive_handshake(HandshakeRequest("id-a", "a:1", False, False, 0))  # peer lower: standby
    c.receive_handshake(HandshakeRequest("id-a", "a:1", False, False, 0))
    assert role(c) is Role.STANDBY
    c._set_role(Role.ACTIVE, "test: forced split brain")
    for _ in range(MAX_NUM_RECEIVED_HEARTBEAT_IN_ACTIVE + 1):
        c.receive_heartbeat("id-b:1", "id-a")
    assert role(c) is Role.RECOVERING


def test_two_actives_meeting_keep_the_newer() -> None:
    """When two actives handshake, the one with the newer active version stays active."""
    p = Pair()
    p.run(0.5)
    p.c1._set_role(Role.ACTIVE, "test: split brain")  # newer term than c0's
    p.c0.found_peer = False  # c0 probes with a handshake on its next tick
    p.run(0.1)
    assert p.roles() == (Role.STANDBY, Role.ACTIVE)


def test_isolated_active_enters_recovery() -> None:
    """An active that lost its standby and every subscriber stops being active."""
    p = Pair()
    p.run(0.5)
    p.wit0.n_total = 0
    p.kill(1)
    p.run(1.0)
    assert role(p.c0) is Role.RECOVERING
    assert not p.c0.is_active


def test_cut_link_refuses_incoming_rpcs() -> None:
    """With the link cut (debug action) incoming handshakes and heartbeats fail."""
    clock = task.Clock()
    config = HaConfig(own_address="a:1")
    c = HaController(
        clock, "id-a", config, Wire(), Witnesses(), lambda o, n: None, link_cut=lambda: True
    )
    with pytest.raises(PeerUnreachable, match="cut"):
        c.receive_handshake(HandshakeRequest("id-b", "b:1", False, False, 0))
    with pytest.raises(PeerUnreachable, match="cut"):
        c.receive_heartbeat("id-a", "id-b")
    assert role(c) is Role.STARTING
