"""The server object: the one owner of a server's state, weights, slowstart and counters."""

from __future__ import annotations

from typing import cast

import pytest
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from proxy.server import AdminState, OpState, Server, ServerStateError, StateChange


def rt(clock: Clock) -> IReactorTime:
    """A test clock where the code wants the reactor's time interface."""
    return cast(IReactorTime, clock)


def make(clock: Clock, **kw: object) -> Server:
    return Server("a", clock=rt(clock), backend="be", puid=1, **kw)  # type: ignore[arg-type]


def test_a_new_server_is_up_ready_and_usable() -> None:
    """Spec 2.1: a server starts UP (checks or not), READY, with its configured weight."""
    s = make(Clock(), weight=3)
    assert (s.op, s.admin, s.weight, s.initial_weight) == (OpState.UP, AdminState.READY, 3, 3)
    assert s.usable and s.running
    assert s.eweight == 48 and s.effective_weight == 3
    assert s.status == "UP"


def test_disabled_in_config_is_cmaint_plus_fmaint() -> None:
    """`disabled` starts in maintenance with admin state 5, which `ready` clears entirely."""
    s = make(Clock(), disabled=True)
    assert s.admin.value == 5 and s.status == "MAINT" and not s.usable
    s.set_admin("ready")
    assert s.admin == AdminState.READY and s.usable


def test_runtime_maint_and_drain_flags_match_show_servers_state() -> None:
    """Runtime maint is FMAINT (1), drain is FDRAIN (8); both make the server unusable."""
    s = make(Clock())
    s.set_admin("maint")
    assert s.admin.value == 1 and not s.usable and not s.running
    s.set_admin("drain")
    assert s.admin.value == 8 and s.status == "DRAIN" and not s.usable and s.running
    s.set_admin("ready")
    assert s.admin.value == 0 and s.usable


@pytest.mark.parametrize(
    "field",
    [
        "host",
        "port",
        "maxconn",
        "served",
        "weight",
        "queued",
        "backup",
        "maxqueue",
        "agent_down",
        "agent_drain",
        "op",
        "puid",
    ],
)
def test_state_fields_are_read_only(field: str) -> None:
    """Only the Server's methods change its state: its fields cannot be assigned."""
    server = make(Clock())
    with pytest.raises(AttributeError):
        setattr(server, field, 1)


def test_agent_flags_are_recorded_without_a_state_change() -> None:
    """set_agent_flags notes what the agent said; listeners hear the DOWN it causes."""
    server = make(Clock())
    heard: list[StateChange] = []
    server.subscribe(heard.append)
    server.set_agent_flags(down=True)
    assert server.agent_down and not server.agent_drain and heard == []
    server.set_agent_flags(drain=True)
    server.set_agent_flags(down=False)
    assert (server.agent_down, server.agent_drain) == (False, True)


def test_weight_zero_is_up_but_not_usable() -> None:
    """A weight-0 server shows UP yet is never chosen."""
    s = make(Clock())
    s.set_weight(0)
    assert s.status == "UP" and not s.usable


@pytest.mark.parametrize("bad", [-1, 257, 1.5, True])
def test_bad_weights_are_refused_clearly(bad: object) -> None:
    """Weights outside 0..256 (or not integers) raise ServerStateError, state unchanged."""
    s = make(Clock(), weight=2)
    with pytest.raises(ServerStateError):
        s.set_weight(bad)  # type: ignore[arg-type]
    assert s.weight == 2
    with pytest.raises(ServerStateError):
        make(Clock(), weight=257)


def test_unknown_state_names_are_refused() -> None:
    """set_admin / set_operational reject unknown words instead of guessing."""
    s = make(Clock())
    with pytest.raises(ServerStateError):
        s.set_admin("sleep")
    with pytest.raises(ServerStateError):
        s.set_operational("sideways")
    assert s.usable


def test_listeners_hear_each_change_with_the_previous_state() -> None:
    """Every change notifies listeners with was_usable and the old weight; no-ops do not."""
    s = make(Clock(), weight=2)
    seen: list[StateChange] = []
    s.subscribe(seen.append)
    s.set_weight(2)  # no change
    s.set_weight(5)
    s.set_operational("down", "Layer4 connection problem")
    s.set_operational("down")  # already down
    assert [(c.was_usable, c.old_eweight, c.old_op) for c in seen] == [
        (True, 32, OpState.UP),
        (True, 80, OpState.UP),
    ]
    assert seen[1].reason == "Layer4 connection problem"
    s.unsubscribe(seen.append)
    s.set_operational("up")
    assert len(seen) == 2


def test_a_failing_listener_does_not_stop_the_others() -> None:
    """A listener that raises is logged and the next listener still runs."""
    s = make(Clock())
    seen: list[StateChange] = []

    def boom(change: StateChange) -> None:
        raise RuntimeError("boom")

    s.subscribe(boom)
    s.subscribe(seen.append)
    s.set_admin("drain")
    assert len(seen) == 1


def test_down_counts_chkdown_lastchg_and_downtime() -> None:
    """Going DOWN counts chkdown, stamps lastchg, and downtime accumulates while DOWN."""
    clock = Clock()
    s = make(clock)
    clock.advance(10)
    s.set_operational("down")
    assert s.counters.chkdown == 1 and s.seconds_since_change() == 0
    clock.advance(7)
    assert s.downtime() == 7
    s.set_operational("up")
    clock.advance(5)
    assert s.downtime() == 7 and s.seconds_since_change() == 5


def test_take_and_release_slots_keep_session_counters() -> None:
    """take_slot counts stot, smax, lbtot and lastsess; release_slot never goes negative."""
    clock = Clock()
    s = make(clock)
    clock.advance(3)
    s.take_slot()
    s.take_slot()
    s.release_slot()
    c = s.counters
    assert (s.served, c.cum_sessions, c.max_sessions, c.lbtot, c.last_session) == (1, 2, 2, 2, 3)
    s.release_slot()
    with pytest.raises(ServerStateError):
        s.release_slot()


def test_slowstart_ramps_weight_and_maxconn_after_coming_back() -> None:
    """After DOWN->UP, slowstart ramps eweight ((16t+ss)//ss per unit) and maxconn, then UP."""
    clock = Clock()
    s = make(clock, weight=100, maxconn=100, slowstart=10)
    assert s.status == "UP" and s.throttle is None  # never at process start
    s.set_operational("down")
    s.set_operational("up")
    assert int(s.op) == OpState.STARTING.value and s.usable and s.throttle is not None
    assert s.eweight == 100 and s.effective_weight == 7  # 7%, as HAProxy shows
    assert s.dynamic_maxconn == 1
    assert s.throttle == 6
    weights: list[int] = []
    throttles: list[int | None] = []
    for _ in range(10):
        clock.advance(1)
        weights.append(s.effective_weight)
        throttles.append(s.throttle)
    # spec 2.5 sampled 7/6%, 13/12%, 32/31%, 44/43%, 57/56%, 63/62%, 75/75%, 94/93%, 100
    assert weights == [13, 25, 32, 44, 57, 63, 75, 82, 94, 100]
    assert throttles[:9] == [12, 25, 31, 43, 56, 62, 75, 81, 93]
    assert s.op is OpState.UP and s.eweight == 1600 and s.dynamic_maxconn == 100
    assert s.throttle is None
    assert clock.getDelayedCalls() == []


def test_slowstart_applies_when_leaving_maintenance_and_stops_on_down() -> None:
    """MAINT->READY starts the ramp too; going DOWN cancels it without leaving a timer."""
    clock = Clock()
    s = make(clock, slowstart=20)
    s.set_admin("maint")
    s.set_admin("ready")
    assert s.op is OpState.STARTING and s.throttle == 6
    clock.advance(5)
    assert s.throttle == 31 and s.dynamic_maxconn == 0  # unlimited stays unlimited
    s.set_operational("down")
    assert clock.getDelayedCalls() == [] and s.throttle is None


def test_static_algorithms_ignore_the_slowstart_weight() -> None:
    """With dynamic_weights off (map algorithms), slowstart leaves the weight whole."""
    clock = Clock()
    s = make(clock, weight=4, slowstart=10)
    s.set_dynamic_weights(False)
    s.set_operational("down")
    s.set_operational("up")
    assert s.op is OpState.STARTING and s.eweight == 64
    s.stop()
    assert clock.getDelayedCalls() == []


def test_has_free_slot_respects_maxconn_and_queue() -> None:
    """A server is full at maxconn, or as soon as anyone waits in its queue."""
    s = make(Clock(), maxconn=1)
    assert s.has_free_slot
    s.queue_grew()
    assert not s.has_free_slot
    s.queue_shrank()
    s.take_slot()
    assert not s.has_free_slot
    s.set_maxconn(0)
    assert s.has_free_slot
