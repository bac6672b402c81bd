"""One server's checker over MemoryReactorClock: scheduling, transitions, logs, agent."""

from __future__ import annotations

from typing import Any

from haconfig.model import Option
from proxy.checks import (
    AgentSettings,
    CheckStatus,
    HttpCheckDialogue,
    HttpCheckPlan,
    ProbeTimeouts,
)
from proxy.checks.testing import accept, make_checker, pending, refuse, settings
from proxy.server import AdminState, OpState, Server


def test_initial_status_is_up_1_of_fall() -> None:
    """Before the first check the server is UP with status ``UP 1/3`` and check INI."""
    _, server, checker, _ = make_checker()
    assert server.op is OpState.UP
    assert checker.status == "UP 1/3"
    assert checker.last.status is CheckStatus.INI


def test_refused_first_check_marks_down_with_haproxy_line() -> None:
    """A refused first check marks DOWN at once, counts chkfail/chkdown and logs the line."""
    reactor, server, checker, events = make_checker()
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    assert server.op is OpState.DOWN
    assert checker.status == "DOWN"
    assert checker.last.status is CheckStatus.L4CON
    assert (server.counters.chkfail, server.counters.chkdown) == (1, 1)
    assert events.lines[0] == (
        "alert",
        'Server be/a is DOWN, reason: Layer4 connection problem, info: "Connection refused", '
        "check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, "
        "0 requeued, 0 remaining in queue.",
    )
    assert events.lines[1] == ("emerg", "backend be has no server available!")


def test_running_on_backup_in_down_line() -> None:
    """With only a backup left the DOWN line says ``Running on backup.``"""
    reactor, _, checker, events = make_checker(backup_peer=True)
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    assert (
        "0 active and 1 backup servers left. Running on backup. 0 sessions" in (events.lines[0][1])
    )


def test_rise_successes_bring_it_back_with_up_line() -> None:
    """After DOWN, ``rise`` passing checks bring the server UP, logged at notice."""
    reactor, server, checker, events = make_checker(settings(fastinter=500, downinter=5000))
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    reactor.advance(5)  # downinter
    accept(reactor)
    assert checker.status == "DOWN 1/2"
    assert server.op is OpState.DOWN
    reactor.advance(0.5)  # fastinter
    accept(reactor)
    assert checker.server.op is OpState.UP
    assert checker.status == "UP"
    assert events.lines[-1] == (
        "notice",
        "Server be/a is UP, reason: Layer4 check passed, check duration: 0ms. "
        "1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    )


def test_scheduling_inter_fastinter_downinter() -> None:
    """Checks follow inter when UP, fastinter when transitional, downinter when DOWN."""
    reactor, _, checker, _ = make_checker(settings(inter=2000, fastinter=500, downinter=5000))
    checker.start()
    reactor.advance(0)
    accept(reactor)  # fully UP now -> inter
    assert pending(reactor) == 1
    reactor.advance(1.999)
    assert pending(reactor) == 1
    reactor.advance(0.001)
    assert pending(reactor) == 2
    refuse(reactor)  # UP 2/3 -> fastinter
    reactor.advance(0.5)
    assert pending(reactor) == 3
    refuse(reactor)
    reactor.advance(0.5)
    refuse(reactor)  # DOWN -> downinter
    reactor.advance(4.9)
    assert pending(reactor) == 4
    reactor.advance(0.1)
    assert pending(reactor) == 5


def test_next_check_starts_after_previous_finished() -> None:
    """The interval counts from the end of the previous check, not its start."""
    reactor, _, checker, _ = make_checker(settings(inter=1000))
    checker.start()
    reactor.advance(0)
    reactor.advance(1.0)  # the check times out after inter (no timeout check)
    assert checker.last.status is CheckStatus.L4TOUT
    assert checker.last.duration_ms == 1000
    assert pending(reactor) == 1
    reactor.advance(1.0)
    assert pending(reactor) == 2


def test_timeout_check_bounds_read_phase() -> None:
    """With ``timeout check`` the read phase has its own limit and gives L7TOUT."""
    plan = HttpCheckPlan.compile(Option("httpchk", True, ("GET", "/healthz")), [])
    check = settings(inter=2000, make_dialogue=lambda: HttpCheckDialogue(plan))
    check = type(check)(**{**check.__dict__, "timeouts": ProbeTimeouts.from_config(2000, 300, 100)})
    reactor, _, checker, _ = make_checker(check)
    checker.start()
    reactor.advance(0)
    transport = accept(reactor)
    assert transport.value().startswith(b"GET /healthz HTTP/1.0\r\n")
    reactor.advance(0.3)
    assert checker.last.status is CheckStatus.L7TOUT
    assert checker.last.duration_ms == 300


def test_http_check_result_fields() -> None:
    """An HTTP 503 is L7STS code 503 and takes a fresh server DOWN."""
    plan = HttpCheckPlan.compile(Option("httpchk", True, ("GET", "/healthz")), [])
    reactor, server, checker, _ = make_checker(
        settings(make_dialogue=lambda: HttpCheckDialogue(plan))
    )
    checker.start()
    reactor.advance(0)
    transport = accept(reactor, b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    assert (checker.last.status, checker.last.code) == (CheckStatus.L7STS, 503)
    assert server.op is OpState.DOWN
    assert transport.disconnecting or transport.disconnected


def test_log_health_checks_lines() -> None:
    """``option log-health-checks`` logs each result that moves the counter."""
    reactor, _, checker, events = make_checker(settings(log_health_checks=True))
    checker.start()
    reactor.advance(0)
    accept(reactor)
    assert events.lines[0] == (
        "notice",
        "Health check for server be/a succeeded, reason: Layer4 check passed, "
        "check duration: 0ms, status: 3/3 UP.",
    )
    reactor.advance(2)
    refuse(reactor)
    assert events.lines[1] == (
        "notice",
        "Health check for server be/a failed, reason: Layer4 connection problem, "
        'info: "Connection refused", check duration: 0ms, status: 2/3 UP.',
    )


def test_maint_pauses_checks_and_leaving_restarts_at_rise() -> None:
    """In MAINT no check runs; leaving it puts the server UP at health rise (UP 1/3)."""
    reactor, server, checker, _ = make_checker()
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    server.set_admin("maint")
    assert checker.status == "MAINT"
    before = pending(reactor)
    reactor.advance(10)
    assert pending(reactor) == before
    server.set_admin("ready")
    assert server.op is OpState.UP
    assert checker.status == "UP 1/3"


def test_disable_health_shows_no_check_and_up() -> None:
    """``disable health`` shows ``no check`` and puts a DOWN server back UP."""
    reactor, server, checker, _ = make_checker()
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    checker.set_enabled(False)
    assert checker.status == "no check"
    assert server.op is OpState.UP


def test_shutdown_sessions_hook_called_on_down() -> None:
    """``on-marked-down shutdown-sessions`` calls the registered session killer."""
    reactor, server, checker, _ = make_checker(settings(shutdown_on_down=True))
    killed: list[Server] = []

    def kill(s: Server) -> int:
        killed.append(s)
        return 0

    checker.kill_sessions = kill
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    assert killed == [server]


def test_stop_leaves_no_timers() -> None:
    """Stopping the checker cancels its timers."""
    reactor, _, checker, _ = make_checker()
    checker.start(1000)
    checker.stop()
    calls: list[Any] = list(reactor.getDelayedCalls())
    assert [c for c in calls if c.active()] == []


def agent_checker() -> tuple:  # type: ignore[type-arg]
    agent = AgentSettings("127.0.0.1", 9999, 2000, ProbeTimeouts(2.0))
    return make_checker(settings(), agent=agent)


def test_agent_down_marks_down_and_up_restores() -> None:
    """Agent ``down`` shows ``DOWN (agent)``; ``up`` brings it back."""
    reactor, server, checker, events = agent_checker()
    checker.start(agent_delay_ms=0, delay_ms=60_000)
    reactor.advance(0)
    accept(reactor, b"down #maintenance window\n")
    assert server.op is OpState.DOWN
    assert checker.status == "DOWN (agent)"
    assert server.agent_down  # the server holds the agent's verdict
    assert 'info: "via agent : down (maintenance window)"' in events.lines[0][1]
    reactor.advance(2)
    accept(reactor, b"up\n")
    assert checker.server.op is OpState.UP and not server.agent_down


def test_agent_weight_and_maxconn() -> None:
    """Agent ``50%`` halves the initial weight and ``maxconn:7`` sets maxconn."""
    reactor, server, checker, _ = agent_checker()
    server.set_configured_weight(10)
    checker.start(agent_delay_ms=0, delay_ms=60_000)
    reactor.advance(0)
    accept(reactor, b"50% maxconn:7\n")
    assert (server.weight, server.maxconn) == (5, 7)


def test_agent_drain_and_ready() -> None:
    """Agent ``drain`` drains the server (``DRAIN (agent)``), ``ready`` undoes it."""
    reactor, server, checker, _ = agent_checker()
    checker.start(agent_delay_ms=0, delay_ms=60_000)
    reactor.advance(0)
    accept(reactor, b"drain\n")
    assert server.admin & AdminState.FDRAIN
    assert checker.status == "DRAIN (agent)" and server.agent_drain
    reactor.advance(2)
    accept(reactor, b"ready\n")
    assert not server.admin.drain and not server.agent_drain


def test_agent_unreachable_changes_nothing() -> None:
    """Failing to reach the agent does not mark the server down."""
    reactor, server, checker, _ = agent_checker()
    checker.start(agent_delay_ms=0, delay_ms=60_000)
    reactor.advance(0)
    refuse(reactor)
    assert server.op is OpState.UP
    assert checker.last_agent.status is CheckStatus.L4CON


def test_log_health_checks_drops_reason_from_down_line() -> None:
    """With log-health-checks the DOWN line carries no reason (the check line had it)."""
    reactor, _, checker, events = make_checker(settings(log_health_checks=True))
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    assert events.lines[1] == (
        "alert",
        "Server be/a is DOWN. 0 active and 0 backup servers left. 0 sessions active, "
        "0 requeued, 0 remaining in queue.",
    )


def test_admin_transitions_are_logged() -> None:
    """Maintenance and drain set at runtime log HAProxy's four admin lines."""
    _, server, _, events = make_checker()
    for state in ("maint", "ready", "drain", "ready"):
        server.set_admin(state)
    assert events.lines == [
        (
            "alert",
            "Server be/a is going DOWN for maintenance. 0 active and 0 backup servers left. "
            "0 sessions active, 0 requeued, 0 remaining in queue.",
        ),
        ("emerg", "backend be has no server available!"),
        ("notice", "Server be/a is UP/READY (leaving forced maintenance)."),
        (
            "notice",
            "Server be/a enters drain state. 0 active and 0 backup servers online. "
            "0 sessions requeued, 0 total in queue.",
        ),
        ("emerg", "backend be has no server available!"),
        ("notice", "Server be/a is UP (leaving forced drain)."),
    ]


def test_forced_health_down_line() -> None:
    """``set server health down`` logs ``is DOWN, changed from CLI``."""
    _, _, checker, events = make_checker()
    checker.force_health("down")
    assert events.lines[0] == (
        "alert",
        "Server be/a is DOWN, changed from CLI. 0 active and 0 backup servers left. "
        "0 sessions active, 0 requeued, 0 remaining in queue.",
    )


def test_slowstart_after_check_brings_server_back() -> None:
    """A server brought back by its checks ramps up through slowstart (STARTING, throttle)."""
    reactor, server, checker, _ = make_checker()
    server.set_slowstart(10.0)
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    reactor.advance(2)
    accept(reactor)
    reactor.advance(2)
    accept(reactor)
    assert checker.server.op is OpState.STARTING
    assert server.throttle is not None and server.throttle < 10
    reactor.advance(5)
    assert server.throttle is not None and 40 <= server.throttle <= 60
    assert checker.status == "UP"


def test_probe_that_cannot_start_is_sockerr_and_checks_go_on() -> None:
    """A check whose socket cannot be created counts as SOCKERR and the next one is scheduled."""
    calls: list[int] = []

    def broken(*args: object) -> Any:
        calls.append(1)
        raise OSError(24, "Too many open files")

    reactor, server, checker, _ = make_checker(probe_fn=broken)
    checker.start()
    reactor.advance(0)
    assert checker.last.status is CheckStatus.SOCKERR
    assert server.op is OpState.DOWN
    reactor.advance(5)
    assert len(calls) >= 2


def test_restart_after_stop_resubscribes() -> None:
    """A checker stopped then started again follows the server's changes again."""
    _, server, checker, events = make_checker()
    checker.stop()
    server.set_admin("maint")
    assert events.lines == []
    checker.start(60_000)
    server.set_admin("ready")
    assert events.lines[-1] == ("notice", "Server be/a is UP/READY (leaving forced maintenance).")
    checker.stop()


def test_down_server_gets_no_new_connections_backup_takes_over() -> None:
    """Once marked DOWN the server is skipped by the pool and the backup serves."""
    reactor, server, checker, _ = make_checker(backup_peer=True)
    pool: Any = checker.pool
    checker.start()
    reactor.advance(0)
    refuse(reactor)
    picked: list[Server] = []
    for _ in range(3):
        d = pool.acquire("10.0.0.1")
        d.addCallback(picked.append)
    assert [s.name for s in picked] == ["bk", "bk", "bk"]
    assert server.served == 0
