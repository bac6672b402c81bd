"""One server's checker: schedules checks, runs the health state machine, applies it.

The :class:`~proxy.server.Server` owns the server's state; the checker keeps only
what is check-specific (the health counter, the last result, whether checks or
the agent are enabled) and changes the server through ``set_operational``,
``set_weight``, ``set_maxconn`` and ``set_admin``. It logs HAProxy's lines (spec
2.4) through an :data:`EventLog`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.base import DelayedCall
from twisted.logger import Logger

from proxy.checks._dialogue import AgentReply, Dialogue, parse_agent_line
from proxy.checks._health import Health, Transition
from proxy.checks._probe import ProbeTimeouts, probe
from proxy.checks._status import CheckResult, CheckStatus
from proxy.server import OpState, Server, ServerStateError, StateChange

log = Logger()

#: ``(syslog level name, message)``: where HAProxy's state-change lines go.
EventLog = Callable[[str, str], None]
#: Kills a server's established sessions, returns how many (``shutdown-sessions``).
SessionKiller = Callable[[Server], int]


class PoolView(Protocol):
    """What the checker reads of a backend pool (``proxy.pool.BackendPool`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def servers(self) -> Sequence[Server]: ...


@dataclass(frozen=True)
class CheckSettings:
    """Everything a server's health check needs, resolved from the config once."""

    host: str
    port: int
    inter: int  # ms
    fastinter: int | None
    downinter: int | None
    rise: int
    fall: int
    timeouts: ProbeTimeouts
    make_dialogue: Callable[[], Dialogue]
    tls: object | None = None
    log_health_checks: bool = False
    shutdown_on_down: bool = False


@dataclass(frozen=True)
class AgentSettings:
    """``agent-check``: where the agent listens, how often, and what to send it."""

    host: str
    port: int
    inter: int  # ms
    timeouts: ProbeTimeouts
    send: bytes = b""


class _AgentDialogue:
    """Send ``agent-send`` (if any) and read one line."""

    def __init__(self, send: bytes) -> None:
        self._send = send
        self._buf = b""

    def start(self) -> tuple[bytes, CheckResult | None]:
        return self._send, None

    def feed(self, data: bytes) -> tuple[bytes, CheckResult | None]:
        self._buf += data
        if b"\n" in self._buf or len(self._buf) > 1024:
            return b"", self._reply()
        return b"", None

    def _reply(self) -> CheckResult:
        line = self._buf.split(b"\n", 1)[0]
        return CheckResult(CheckStatus.L7OK, line.decode("latin-1").strip("\r\0"), None)

    def eof(self) -> CheckResult:
        if self._buf:
            return self._reply()
        return CheckResult(CheckStatus.L7RSP, "", None)

    def timeout(self) -> CheckResult:
        return CheckResult(CheckStatus.L7TOUT, "", None)


def _describe(result: CheckResult) -> str:
    text = f"reason: {result.status.description}"
    if result.status.layer >= 5 and result.code is not None:
        text += f", code: {result.code}"
    if result.info:
        text += f', info: "{result.info}"'
    return f"{text}, check duration: {result.duration_ms}ms"


class ServerChecker:
    """Health checks (and the agent) of one server."""

    def __init__(
        self,
        server: Server,
        pool: PoolView,
        settings: CheckSettings | None,
        reactor: Any,
        *,
        agent: AgentSettings | None = None,
        events: EventLog | None = None,
        probe_fn: Callable[..., Any] = probe,
    ) -> None:
        self.server = server
        self.pool = pool
        self.settings = settings
        self.agent = agent
        self._reactor = reactor
        self._events = events
        self._probe = probe_fn
        rise, fall = (settings.rise, settings.fall) if settings else (1, 1)
        self.health = Health.starting(rise, fall)
        self.enabled = settings is not None  # ``disable health`` turns it off
        self.agent_enabled = agent is not None
        self.last = CheckResult(CheckStatus.INI)
        self.last_agent = CheckResult(CheckStatus.INI)
        self.in_progress = False
        self.agent_in_progress = False
        self.kill_sessions: SessionKiller | None = None
        #: a server added at run time that no check has found up yet: it leaves
        #: maintenance DOWN, and the first check (or agent) that says up brings it UP,
        #: as HAProxy 2.6 treats a dynamic server
        self.unproven = server.dynamic
        if self.unproven:
            self.health.value = 0
        self._call: DelayedCall | None = None
        self._agent_call: DelayedCall | None = None
        self._running = False
        self._generation = 0  # a check started before a stop()/start() is ignored
        self._subscribed = True
        server.subscribe(self._server_changed)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, delay_ms: int = 0, agent_delay_ms: int = 0) -> None:
        """Start checking: the first check after ``delay_ms`` (spread by the service)."""
        if not self._subscribed:
            self._subscribed = True
            self.server.subscribe(self._server_changed)
        self._running = True
        self._generation += 1
        if self.settings is not None:
            self._schedule(delay_ms)
        if self.agent is not None:
            self._schedule_agent(agent_delay_ms)

    def stop(self) -> None:
        """Stop all timers; a check in flight finishes but changes nothing."""
        self._running = False
        for call in (self._call, self._agent_call):
            if call is not None and call.active():
                call.cancel()
        self._call = self._agent_call = None
        self._subscribed = False
        self.server.unsubscribe(self._server_changed)

    def _schedule(self, delay_ms: int) -> None:
        if self._running:
            self._call = self._reactor.callLater(delay_ms / 1000, self._run_check)

    def _schedule_agent(self, delay_ms: int) -> None:
        if self._running:
            self._agent_call = self._reactor.callLater(delay_ms / 1000, self._run_agent)

    def next_interval(self) -> int:
        """Milliseconds from the end of a check to the start of the next (spec 2.2)."""
        s = self.settings
        assert s is not None
        if not self.enabled:
            return s.inter
        return self.health.interval(s.inter, s.fastinter, s.downinter)

    # -- the health check --------------------------------------------------------------------

    def _run_check(self) -> None:
        self._call = None
        s = self.settings
        assert s is not None
        if not self.enabled or self.server.admin.maint:
            self._schedule(s.inter)  # paused: look again later
            return
        self.in_progress = True
        try:
            d = self._probe(self._reactor, s.host, s.port, s.make_dialogue(), s.timeouts, s.tls)
        except Exception as exc:  # a socket that cannot even be created: SOCKERR, go on
            log.failure(
                "health check of {backend}/{server} could not start",
                backend=self.server.backend,
                server=self.server.name,
            )
            self._check_done(CheckResult(CheckStatus.SOCKERR, str(exc)))
            return
        d.addCallback(self._check_done, self._generation)
        d.addErrback(self._probe_failed, self._generation)

    def _probe_failed(self, failure: Any, generation: int) -> None:
        log.failure(
            "health check of {backend}/{server} crashed",
            failure,
            backend=self.server.backend,
            server=self.server.name,
        )
        self._check_done(CheckResult(CheckStatus.SOCKERR, str(failure.value)), generation)

    def _check_done(self, result: CheckResult, generation: int | None = None) -> None:
        if generation is not None and generation != self._generation:
            return  # started before a stop(): the new run has its own schedule
        self.in_progress = False
        if not self._running:
            return
        if self.enabled and not self.server.admin.maint:
            self.apply(result)
        self._schedule(self.next_interval())

    def apply(self, result: CheckResult) -> Transition | None:
        """Feed one check result to the state machine and act on the server."""
        before = self.health.value
        if not result.passed and before > 0:
            self.server.counters.chkfail += 1
        transition = self.health.record(result.passed)
        self.last = result
        settings = self.settings
        if (
            settings is not None
            and settings.log_health_checks
            and (
                (not result.passed and before > 0) or (result.passed and before < self.health.full)
            )
        ):
            self._log_check(result)
        if transition is Transition.WENT_DOWN:
            self._mark_down(_describe(result))
        elif transition is Transition.WENT_UP and not self.server.agent_down:
            self._mark_up(_describe(result))
        return transition

    def force_health(self, state: str) -> None:
        """``set server b/s health up|stopping|down``."""
        transition = self.health.force(state != "down")
        if transition is Transition.WENT_DOWN:
            self._mark_down("changed from CLI")
        elif transition is Transition.WENT_UP and not self.server.agent_down:
            self._mark_up("changed from CLI")

    def set_enabled(self, on: bool) -> None:
        """``enable health`` / ``disable health``: off shows ``no check`` and counts as UP."""
        if on == self.enabled or self.settings is None:
            return
        self.enabled = on
        if not on:
            self.health.restart()
            if self.server.op is OpState.DOWN and not self.server.agent_down:
                self.server.set_operational("up", "health checks disabled")

    def follow_address(
        self, old_host: str, old_port: int | None, host: str, port: int | None
    ) -> None:
        """The server moved (``set server b/s addr``): checks aimed at its old address
        (and port) aim at the new one; a separate check address or port stays."""
        s, a = self.settings, self.agent
        if s is not None:
            self.settings = dataclasses.replace(
                s,
                host=host if s.host == old_host else s.host,
                port=port if (s.port == old_port and port is not None) else s.port,
            )
        if a is not None and a.host == old_host:
            self.agent = dataclasses.replace(a, host=host)

    def set_agent_enabled(self, on: bool) -> None:
        """``enable agent`` / ``disable agent``."""
        if self.agent is None:
            return
        self.agent_enabled = on
        if not on and self.server.agent_down:
            self.server.set_agent_flags(down=False)
            if self.health.up or not self.enabled:
                self.server.set_operational("up", "agent disabled")

    # -- the agent -----------------------------------------------------------------------

    def _run_agent(self) -> None:
        self._agent_call = None
        a = self.agent
        assert a is not None
        if not self.agent_enabled or (self.server.admin.maint and not self.agent_maint_only()):
            self._schedule_agent(a.inter)
            return
        self.agent_in_progress = True
        try:
            d = self._probe(self._reactor, a.host, a.port, _AgentDialogue(a.send), a.timeouts, None)
        except Exception as exc:
            self._agent_done(CheckResult(CheckStatus.SOCKERR, str(exc)))
            return
        d.addCallback(self._agent_done)
        d.addErrback(self._probe_failed_agent)

    def agent_maint_only(self) -> bool:
        """The agent put the server in maintenance, so it may take it out again."""
        return self.server.admin.maint and self._agent_set_maint

    _agent_set_maint = False

    def _probe_failed_agent(self, failure: Any) -> None:
        log.failure(
            "agent check of {backend}/{server} crashed",
            failure,
            backend=self.server.backend,
            server=self.server.name,
        )
        self._agent_done(CheckResult(CheckStatus.SOCKERR, str(failure.value)))

    def _agent_done(self, result: CheckResult) -> None:
        a = self.agent
        assert a is not None
        self.agent_in_progress = False
        if not self._running:
            return
        if result.status is CheckStatus.L7OK and self.agent_enabled:
            self.apply_agent(parse_agent_line(result.info.encode("latin-1")), result)
        else:
            # failing to reach the agent changes nothing (spec 2.6)
            self.last_agent = result
        self._schedule_agent(a.inter)

    def apply_agent_health(self, state: str) -> None:
        """``set server b/s agent up|down``: force the agent's verdict."""
        self.apply_agent(AgentReply(health=state))

    def apply_agent(self, reply: AgentReply, result: CheckResult | None = None) -> None:
        """Act on the agent's words (spec 2.6)."""
        server = self.server
        duration = result.duration_ms if result else 0
        if reply.weight_pct is not None:
            weight = min(256, server.initial_weight * reply.weight_pct // 100)
            try:
                server.set_weight(weight)
            except ServerStateError:
                log.warn("agent weight {weight} refused", weight=weight)
        if reply.maxconn is not None:
            server.set_maxconn(reply.maxconn)
        if reply.admin == "drain":
            server.set_agent_flags(drain=True)
            self._agent_set_maint = False
            server.set_admin("drain")
        elif reply.admin == "maint":
            self._agent_set_maint = True
            server.set_admin("maint")
        elif reply.admin == "ready":
            server.set_agent_flags(drain=False)
            self._agent_set_maint = False
            server.set_admin("ready")
        if reply.health is not None:
            words = reply.health + (f" ({reply.reason})" if reply.reason else "")
            via = f"via agent : {words}"
            if reply.health == "up":
                self.last_agent = CheckResult(CheckStatus.L7OK, via, 0, duration)
                if self.unproven and server.op is OpState.DOWN and not server.admin.maint:
                    server.set_agent_flags(down=False)
                    self._mark_up(_describe(self.last_agent))
                elif server.agent_down:
                    server.set_agent_flags(down=False)
                    if self.health.up or not self.enabled:
                        self._mark_up(_describe(self.last_agent))
            else:
                self.last_agent = CheckResult(CheckStatus.L7STS, via, 0, duration)
                if not server.agent_down:
                    server.set_agent_flags(down=True)
                    if server.op is not OpState.DOWN:
                        self._mark_down(_describe(self.last_agent))
        else:
            # HAProxy: a reply that says nothing of health is "CHECKED, No status change"
            self.last_agent = CheckResult(CheckStatus.CHECKED, "", None, duration)

    # -- reacting to the server -------------------------------------------------------------

    def _server_changed(self, change: StateChange) -> None:
        """Every change of the server, whoever made it: restart the counter when leaving
        maintenance, log admin transitions, notice when the backend has nothing left."""
        server = self.server
        entering_maint = server.admin.maint and not change.old_admin.maint
        leaving_maint = change.old_admin.maint and not server.admin.maint
        checked = (self.enabled and self.settings is not None) or (
            self.agent_enabled and self.agent is not None
        )
        if leaving_maint and self.unproven and checked:
            server.set_agent_flags(down=False)  # DOWN until a check or the agent says up
        elif leaving_maint:
            # leaving maintenance: UP at health == rise, the next check decides (spec 2.4)
            self.unproven = False
            self.health.restart()
            server.set_agent_flags(down=False)
            if server.op is OpState.DOWN:
                self._quiet += 1
                try:
                    server.set_operational("up", "leaving maintenance")
                finally:
                    self._quiet -= 1
        if not server.admin.drain:
            server.set_agent_flags(drain=False)
        if entering_maint and change.old_op is not OpState.DOWN:
            server.counters.chkdown += 1  # HAProxy counts going to maintenance as a DOWN
        if change.was_usable and not any(s.usable for s in self.pool.servers):
            self._nosrv_pending = True
        if self._quiet:
            return
        entering_drain = server.admin.drain and not change.old_admin.drain
        leaving_drain = change.old_admin.drain and not server.admin.drain
        if entering_maint:
            self._emit("alert", f"{self._prefix()} is going DOWN for maintenance. {self._left()}")
        elif leaving_maint:
            state = "UP/READY" if server.op is not OpState.DOWN else "DOWN"
            self._emit("notice", f"{self._prefix()} is {state} (leaving forced maintenance).")
        elif entering_drain and not server.admin.maint:
            self._emit("notice", f"{self._prefix()} enters drain state. {self._online()}")
        elif leaving_drain and not server.admin.maint:
            self._emit("notice", f"{self._prefix()} is UP (leaving forced drain).")
        self._flush_nosrv()

    # -- state changes and their log lines ------------------------------------------------

    _quiet = 0  # > 0 while the checker itself changes the server (it logs its own line)
    _nosrv_pending = False

    def _flush_nosrv(self) -> None:
        if self._nosrv_pending:
            self._nosrv_pending = False
            self._emit("emerg", f"backend {self.pool.name} has no server available!")

    def _counts(self) -> tuple[int, int]:
        active = sum(1 for s in self.pool.servers if s.usable and not s.backup)
        backup = sum(1 for s in self.pool.servers if s.usable and s.backup)
        return active, backup

    def _left(self, killed: int = 0) -> str:
        """The tail of a DOWN line (HAProxy's wording)."""
        active, backup = self._counts()
        on_backup = "Running on backup. " if not active and backup else ""
        return (
            f"{active} active and {backup} backup servers left. {on_backup}"
            f"{self.server.served + killed} sessions active, {self._requeued()} requeued, "
            f"{self.server.queued} remaining in queue."
        )

    def _online(self) -> str:
        """The tail of an UP (or drain) line."""
        active, backup = self._counts()
        return (
            f"{active} active and {backup} backup servers online. {self._requeued()} sessions "
            f"requeued, {self.server.queued} total in queue."
        )

    def _prefix(self) -> str:
        kind = "Backup Server" if self.server.backup else "Server"
        return f"{kind} {self.server.backend}/{self.server.name}"

    def _why(self, why: str) -> str:
        # with log-health-checks the reason was already on the check's own line
        if (
            self.settings is not None
            and self.settings.log_health_checks
            and why.startswith("reason:")
        ):
            return ""
        return f", {why}" if why else ""

    def _mark_down(self, why: str) -> None:
        server = self.server
        self._quiet += 1
        try:
            server.set_operational("down", why)
        finally:
            self._quiet -= 1
        killed = 0
        if self.settings is not None and self.settings.shutdown_on_down and self.kill_sessions:
            killed = self.kill_sessions(server)
        self._emit("alert", f"{self._prefix()} is DOWN{self._why(why)}. {self._left(killed)}")
        self._flush_nosrv()

    def _requeued(self) -> int:
        requeued = getattr(self.pool, "requeued", None)
        return int(requeued(self.server)) if callable(requeued) else 0

    def _mark_up(self, why: str) -> None:
        self.unproven = False
        self._quiet += 1
        try:
            self.server.set_operational("up", why)
        finally:
            self._quiet -= 1
        self._emit("notice", f"{self._prefix()} is UP{self._why(why)}. {self._online()}")

    def _log_check(self, result: CheckResult) -> None:
        h = self.health
        word = "succeeded" if result.passed else "failed"
        if h.up:
            state = f"{h.value - h.rise + 1}/{h.fall} {'UP' if self.server.weight else 'DRAIN'}"
        else:
            state = f"{h.value}/{h.rise} DOWN"
        kind = "backup server" if self.server.backup else "server"
        self._emit(
            "notice",
            f"Health check for {kind} {self.server.backend}/{self.server.name} {word}, "
            f"{_describe(result)}, status: {state}.",
        )

    def _emit(self, level: str, message: str) -> None:
        log.info("{message}", message=message, level_name=level)
        if self._events is not None:
            self._events(level, message)

    # -- what the stats show --------------------------------------------------------------

    @property
    def status(self) -> str:
        """``show stat`` status: ``UP``, ``UP 1/3``, ``DOWN 1/2``, ``no check``, ``MAINT``..."""
        server = self.server
        if server.admin.maint:
            return "MAINT"
        if server.agent_down and self.agent_enabled:
            return "DOWN (agent)"
        if self.settings is None or not self.enabled:
            if server.op is OpState.DOWN:
                return "DOWN"
            return "DRAIN" if server.admin.drain else "no check"
        progress = self.health.progress()
        if server.op is OpState.DOWN or not self.health.up:
            return "DOWN" + progress
        if server.admin.drain:
            # HAProxy 2.6 tags any drain "(agent)" while an agent check runs (measured).
            agent_on = self.agent is not None and self.agent_enabled
            return "DRAIN (agent)" if agent_on or server.agent_drain else "DRAIN" + progress
        return "UP" + progress

    @property
    def check_state(self) -> int:
        """``srv_check_state`` bits: 0x1 running, 0x2 configured, 0x4 enabled, 0x8 paused."""
        if self.settings is None:
            return 0
        bits = 0x2
        if self.in_progress:
            bits |= 0x1
        if self.enabled:
            bits |= 0x4
        if self.server.admin.maint:
            bits |= 0x8
        return bits

    @property
    def agent_state(self) -> int:
        if self.agent is None:
            return 0
        bits = 0x2 | 0x10
        if self.agent_enabled:
            bits |= 0x4
        if self.server.admin.maint and not self._agent_set_maint:
            bits |= 0x8  # paused, unless the agent itself asked for maint (it may undo it)
        return bits
