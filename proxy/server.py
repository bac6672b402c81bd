"""One server's state: the single owner of the truth about a backend server.

Health checks, the runtime API, Impala discovery and the pool all read this
object, and change it through a handful of methods only:

- :meth:`Server.set_weight` (the user weight, 0..256, as ``set server b/s weight``),
- :meth:`Server.set_admin` (``ready`` / ``drain`` / ``maint``),
- :meth:`Server.set_operational` (``up`` / ``down``, what a health check decides),
- :meth:`Server.set_maxconn`,
- :meth:`Server.set_agent_flags` (what the agent check said last),
- what a reload changes in the file's line: :meth:`Server.set_address`,
  :meth:`Server.set_puid`,
  :meth:`Server.set_configured_weight`, :meth:`Server.set_maxqueue`,
  :meth:`Server.set_slowstart`, :meth:`Server.set_backup`,

plus what only the pool calls: :meth:`Server.take_slot` / :meth:`Server.release_slot`
when a connection starts and ends on the server, :meth:`Server.queue_grew` /
:meth:`Server.queue_shrank` as its own queue changes (``qmax`` follows), and
:meth:`Server.set_dynamic_weights` from its algorithm. The fields these change
(address, weights, maxconn, maxqueue, backup, slowstart, admin and operational state,
connection and queue counts, the agent's flags, the id) are read-only properties:
nothing else can write them.

Every state change is announced to the listeners (:meth:`Server.subscribe`) as a
:class:`StateChange` saying whether the server was usable before and what its
effective weight was, so the pool can tell the balancing algorithm exactly what
happened (``server_up``, ``server_down`` or ``weight_changed``) without keeping a
second copy of the state.

Weights follow HAProxy: the user weight ``uweight`` is 0..256, and dynamic
algorithms work on the effective weight ``eweight = 16 * uweight`` (HAProxy's
``BE_WEIGHT_SCALE``), which ``slowstart`` ramps up after a DOWN->UP or
MAINT->READY transition (never at start): ``eweight = uweight * ((16*t + ss) // ss)``
with ``t`` the whole seconds since the transition, recomputed every
``max(1 s, slowstart/20)`` (spec 1.7, 2.5). ``maxconn`` ramps the same way:
``max(1, maxconn * pct / 100)``.

The admin state is a set of flags like HAProxy's, so that a server disabled in
the configuration (CMAINT, shown as admin state 5 with FMAINT) and one put in
maintenance at runtime (FMAINT) can be told apart in ``show servers state``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()

#: HAProxy's BE_WEIGHT_SCALE: effective weights are user weights times this.
WEIGHT_SCALE = 16
#: The highest user weight (``weight 257`` is a configuration error).
MAX_WEIGHT = 256
#: Averages (qtime, ctime, ttime) run over this many last samples (spec 3.2).
AVERAGE_SAMPLES = 1024


class DelayedCall(Protocol):
    """What we use of ``IDelayedCall`` (zope interfaces do not type-check as protocols)."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Timer(Protocol):
    """What we use of ``IReactorTime``; :func:`as_timer` views a clock as this."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object
    ) -> DelayedCall: ...


def as_timer(clock: IReactorTime) -> Timer:
    """The same clock, typed for mypy."""
    return cast(Timer, clock)


class AdminState(enum.IntFlag):
    """Administrative flags, numbered as ``show servers state`` prints them (spec 3.3)."""

    READY = 0
    FMAINT = 0x01  # forced maintenance (runtime ``disable server`` / ``state maint``)
    IMAINT = 0x02  # inherited (``track``)
    CMAINT = 0x04  # ``disabled`` in the configuration
    FDRAIN = 0x08  # forced drain (runtime ``state drain``, agent ``drain``)
    IDRAIN = 0x10  # inherited drain

    @property
    def maint(self) -> bool:
        return bool(self & (AdminState.FMAINT | AdminState.IMAINT | AdminState.CMAINT))

    @property
    def drain(self) -> bool:
        return bool(self & (AdminState.FDRAIN | AdminState.IDRAIN))


class OpState(enum.IntEnum):
    """Operational state, numbered as ``srv_op_state`` (spec 3.3)."""

    DOWN = 0  # HAProxy "STOPPED"
    STARTING = 1  # slowstart ramp after coming back
    UP = 2  # HAProxy "RUNNING"


_ADMIN_COMMANDS = {"ready", "drain", "maint"}
_OP_COMMANDS = {"up": OpState.UP, "down": OpState.DOWN}


class ServerStateError(ValueError):
    """A state change that makes no sense (bad weight, unknown admin state, ...)."""


@dataclass
class SlidingAverage:
    """HAProxy's ``swrate``: a sliding sum over about ``n`` samples, read as an average."""

    n: int = AVERAGE_SAMPLES
    total: int = 0
    count: int = 0

    def add(self, value: int) -> None:
        if self.count < self.n:
            self.count += 1
            self.total += value
        else:
            self.total = self.total - (self.total + self.n - 1) // self.n + value

    @property
    def average(self) -> int:
        if not self.count:
            return 0
        return (self.total + self.count - 1) // self.count


@dataclass
class SessionTimes:
    """The averaged times of ``show stat`` (qtime, ctime, ttime and their maxima, ms),
    kept alike by a server and its backend. HAProxy adds one sample per session, at
    its end and only once it had connected (``stream_update_time_stats``): the time
    it waited for a server, took to connect, and lasted in all. In TCP mode ``rtime``
    is always 0, so it is not kept."""

    qtime: SlidingAverage = field(default_factory=SlidingAverage)
    ctime: SlidingAverage = field(default_factory=SlidingAverage)
    ttime: SlidingAverage = field(default_factory=SlidingAverage)
    qtime_max: int = 0
    ctime_max: int = 0
    ttime_max: int = 0

    def record_times(self, *, qtime: int, ctime: int, ttime: int) -> None:
        """Add one connected session's queue / connect / total time (ms)."""
        self.qtime.add(qtime)
        self.qtime_max = max(self.qtime_max, qtime)
        self.ctime.add(ctime)
        self.ctime_max = max(self.ctime_max, ctime)
        self.ttime.add(ttime)
        self.ttime_max = max(self.ttime_max, ttime)


@dataclass
class TrafficCounters(SessionTimes):
    """What ``show stat`` reports alike on a server's row and on its BACKEND row (spec
    3.2): sessions, selections, bytes, errors, warnings, aborts and state times.

    Times (``last_change``, ``last_session``) are reactor timestamps in seconds;
    ``downtime`` is the accumulated seconds spent DOWN (or in maintenance), not counting
    the current DOWN period."""

    cum_sessions: int = 0  # stot
    max_sessions: int = 0  # smax
    lbtot: int = 0  # times chosen by the balancer (incl. from the queue, redispatches)
    max_queue: int = 0  # qmax
    bytes_in: int = 0  # client -> server
    bytes_out: int = 0  # server -> client
    econ: int = 0
    eresp: int = 0
    wretr: int = 0
    wredis: int = 0
    cli_abrt: int = 0
    srv_abrt: int = 0
    chkdown: int = 0  # a server: times it went DOWN; a backend: times all of it did
    last_change: float = 0.0
    downtime: float = 0.0
    last_session: float | None = None  # None = never (lastsess -1)


@dataclass
class ServerCounters(TrafficCounters):
    """One server's row: the traffic counters, its connection attempts and failed checks
    (the current DOWN period is in :meth:`Server.downtime`)."""

    connect: int = 0  # connection attempts
    chkfail: int = 0


@dataclass(frozen=True)
class StateChange:
    """What a server looked like just before a change, sent to every listener."""

    server: Server
    was_usable: bool
    old_eweight: int
    old_op: OpState
    old_admin: AdminState
    reason: str = ""


Listener = Callable[[StateChange], None]


class Server:
    """A backend server and all of its runtime state.

    ``host == ""`` means "the address the client connected to"; ``port is None``
    means "the port the client connected to", and with ``port_offset`` the port is
    an offset added to it. ``slowstart`` is in seconds (0 = off).
    """

    def __init__(
        self,
        name: str,
        *,
        clock: IReactorTime,
        backend: str = "",
        puid: int = 0,
        host: str = "",
        port: int | None = None,
        port_offset: bool = False,
        weight: int = 1,
        maxconn: int = 0,
        maxqueue: int = 0,
        backup: bool = False,
        disabled: bool = False,
        slowstart: float = 0.0,
        dynamic: bool = False,
    ) -> None:
        _check_weight(weight)
        if maxconn < 0 or maxqueue < 0:
            raise ServerStateError(f"server {name}: maxconn and maxqueue must be >= 0")
        if slowstart < 0:
            raise ServerStateError(f"server {name}: slowstart must be >= 0")
        if port is not None and not port_offset and not 0 <= port <= 65535:
            raise ServerStateError(f"server {name}: port {port} out of range")
        self.name = name
        self.backend = backend
        self._puid = puid
        self._host = host
        self._port = port
        self._port_offset = port_offset
        self._backup = backup
        self._maxconn = maxconn
        self._maxqueue = maxqueue
        self._slowstart = float(slowstart)
        self._initial_weight = weight
        self._uweight = weight
        self._clock = as_timer(clock)
        self._admin = AdminState.CMAINT | AdminState.FMAINT if disabled else AdminState.READY
        self._op = OpState.UP  # spec 2.1: a server starts UP, with or without checks
        #: added with ``add server``: starts in forced maintenance and DOWN (HAProxy 2.6)
        self.dynamic = dynamic
        if dynamic:
            self._admin, self._op = AdminState.FMAINT, OpState.DOWN
        self._ramp_start: float | None = None
        self._ramp_factor = WEIGHT_SCALE
        self._ramp_call: DelayedCall | None = None
        self._dynamic_weights = True
        self._served = 0
        self._queued = 0
        self._agent_down = False
        self._agent_drain = False
        self.counters = ServerCounters(last_change=self._clock.seconds())
        self._down_since: float | None = self._clock.seconds() if self._is_down() else None
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<Server {self.backend}/{self.name} {self.status}>"

    # -- reading -------------------------------------------------------------

    @property
    def port_offset(self) -> bool:
        """``port`` is added to the client's destination port (``+N``/``-N``)."""
        return self._port_offset

    @property
    def backup(self) -> bool:
        return self._backup

    @property
    def maxqueue(self) -> int:
        return self._maxqueue

    @property
    def slowstart(self) -> float:
        """Seconds of weight ramp after the server comes back up (0: none)."""
        return self._slowstart

    @property
    def initial_weight(self) -> int:
        """The weight the config gives (``set weight ... 100%`` is relative to it)."""
        return self._initial_weight

    @property
    def dynamic_weights(self) -> bool:
        """Whether slowstart scales the effective weight (dynamic algorithms only); the
        pool sets it from its algorithm (:meth:`set_dynamic_weights`)."""
        return self._dynamic_weights

    @property
    def queued(self) -> int:
        """The length of this server's own queue (the pool says each change)."""
        return self._queued

    @property
    def host(self) -> str:
        """The address to connect to (``""``: the one the client connected to)."""
        return self._host

    @property
    def port(self) -> int | None:
        """The port (None: the client's; with :attr:`port_offset`, added to it)."""
        return self._port

    @property
    def maxconn(self) -> int:
        """The most concurrent connections (0: no limit), before a slowstart ramp."""
        return self._maxconn

    @property
    def served(self) -> int:
        """The connections established on this server now (``scur``)."""
        return self._served

    @property
    def puid(self) -> int:
        """The server's number in its backend (``sid`` in ``show stat``)."""
        return self._puid

    @property
    def agent_down(self) -> bool:
        """The agent check said ``down`` (or ``fail``, ``stopped``) last: a passing
        health check does not bring the server UP until the agent says ``up``."""
        return self._agent_down

    @property
    def agent_drain(self) -> bool:
        """The drain in force was the agent's (``show stat`` says ``DRAIN (agent)``)."""
        return self._agent_drain

    @property
    def weight(self) -> int:
        """The user weight (0..256), what ``get weight`` and ``uweight`` show."""
        return self._uweight

    @property
    def admin(self) -> AdminState:
        return self._admin

    @property
    def op(self) -> OpState:
        return self._op

    @property
    def eweight(self) -> int:
        """Effective weight in 1/16ths (HAProxy ``eweight``), slowstart included."""
        if self._ramp_start is not None and self.dynamic_weights:
            return self._uweight * self._ramp_factor
        return self._uweight * WEIGHT_SCALE

    @property
    def effective_weight(self) -> int:
        """The effective weight on the user scale, the ``weight`` column of ``show stat``."""
        return math.ceil(self.eweight / WEIGHT_SCALE) if self.eweight else 0

    @property
    def throttle(self) -> int | None:
        """Slowstart percentage, or None when not in slowstart (stats ``throttle``)."""
        if self._ramp_start is None:
            return None
        if self.dynamic_weights:
            return 100 * self._ramp_factor // WEIGHT_SCALE
        return self._ramp_percent()

    @property
    def usable(self) -> bool:
        """UP or STARTING, neither in maintenance nor draining, effective weight > 0."""
        return (
            self._op is not OpState.DOWN
            and not self._admin.maint
            and not self._admin.drain
            and self.eweight > 0
        )

    @property
    def running(self) -> bool:
        """Operationally up and not in maintenance (it may be draining)."""
        return self._op is not OpState.DOWN and not self._admin.maint

    @property
    def dynamic_maxconn(self) -> int:
        """``maxconn`` scaled down during slowstart (0 = unlimited)."""
        if not self._maxconn or self._ramp_start is None:
            return self._maxconn
        return max(1, self._maxconn * self._ramp_percent() // 100)

    @property
    def has_free_slot(self) -> bool:
        """True when a new connection may start here now (not full, nobody queued)."""
        return not self._maxconn or (not self.queued and self._served < self.dynamic_maxconn)

    @property
    def status(self) -> str:
        """The coarse ``show stat`` status (the health checker refines ``UP a/b`` etc.)."""
        if self._admin.maint:
            return "MAINT"
        if self._op is OpState.DOWN:
            return "DOWN"
        if self._admin.drain:
            return "DRAIN"
        return "UP"

    def downtime(self) -> float:
        """Seconds spent DOWN or in maintenance so far, the current period included."""
        extra = 0.0 if self._down_since is None else self._clock.seconds() - self._down_since
        return self.counters.downtime + extra

    def seconds_since_change(self) -> int:
        return int(self._clock.seconds() - self.counters.last_change)

    # -- listeners -----------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(change)`` after every change of state or weight."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the few methods that change state ----------------------------------

    def set_weight(self, weight: int) -> None:
        """Set the user weight (0..256); applies at once for dynamic algorithms."""
        _check_weight(weight)
        if weight == self._uweight:
            return
        with self._change(f"weight {self._uweight} -> {weight}"):
            self._uweight = weight

    def set_address(self, host: str, port: int | None, port_offset: bool | None = None) -> None:
        """``set server b/s addr`` (or a reload): new connections go to ``host:port``
        (``port_offset``: added to the client's port); established ones stay where
        they are."""
        offset = self._port_offset if port_offset is None else port_offset
        if port is not None and not offset and not 0 <= port <= 65535:
            raise ServerStateError(f"server {self.name}: port {port} out of range")
        with self._change(f"address {self._host}:{self._port} -> {host}:{port}"):
            self._host, self._port, self._port_offset = host, port, offset

    def set_puid(self, puid: int) -> None:
        """The server's number in its backend (``id``, or its place in the file), which
        ``show stat`` reports as ``sid``; a reload renumbers a kept server."""
        self._puid = puid

    def set_configured_weight(self, weight: int) -> None:
        """A reload changed the file's weight: it becomes the initial weight and the
        current one."""
        _check_weight(weight)
        self._initial_weight = weight
        self.set_weight(weight)

    def set_maxqueue(self, maxqueue: int) -> None:
        """A reload changed ``maxqueue`` (0 = unlimited)."""
        if maxqueue < 0:
            raise ServerStateError(f"server {self.name}: maxqueue must be >= 0")
        with self._change(f"maxqueue {self._maxqueue} -> {maxqueue}"):
            self._maxqueue = maxqueue

    def set_slowstart(self, seconds: float) -> None:
        """A reload changed ``slowstart``: later ramps take ``seconds``."""
        if seconds < 0:
            raise ServerStateError(f"server {self.name}: slowstart must be >= 0")
        self._slowstart = float(seconds)

    def set_backup(self, backup: bool) -> None:
        """A reload made the server a backup (or an active one); the pool's algorithm is
        rebuilt by the caller, as HAProxy re-sorts its server trees."""
        with self._change(f"backup {self._backup} -> {backup}"):
            self._backup = backup

    def set_agent_flags(self, *, down: bool | None = None, drain: bool | None = None) -> None:
        """Record what the agent check said (:attr:`agent_down`, :attr:`agent_drain`).

        These only annotate the state: the change they cause (DOWN, DRAIN) is made by
        the checker through :meth:`set_operational` / :meth:`set_admin`, which notify
        the listeners; the stats read the flags from here."""
        if down is not None:
            self._agent_down = down
        if drain is not None:
            self._agent_drain = drain

    def set_dynamic_weights(self, dynamic: bool) -> None:
        """The pool's algorithm is dynamic (weights change at once) or static."""
        self._dynamic_weights = dynamic

    def queue_grew(self) -> None:
        """One more connection waits in this server's own queue (its ``qmax`` follows)."""
        self._queued += 1
        self.counters.max_queue = max(self.counters.max_queue, self._queued)

    def queue_shrank(self, count: int = 1) -> None:
        """``count`` connections left this server's queue (served, timed out, moved)."""
        if count > self._queued:
            raise ServerStateError(f"server {self.name}: {count} left a queue of {self._queued}")
        self._queued -= count

    def set_maxconn(self, maxconn: int) -> None:
        """Change ``maxconn`` at runtime (0 = unlimited); a raise may start queued clients."""
        if maxconn < 0:
            raise ServerStateError(f"server {self.name}: maxconn must be >= 0")
        with self._change(f"maxconn {self._maxconn} -> {maxconn}"):
            self._maxconn = maxconn

    def set_admin(self, state: str) -> None:
        """``ready`` clears maintenance (forced and configured) and drain; ``drain`` and
        ``maint`` set the forced flags, as ``set server b/s state ...``."""
        if state not in _ADMIN_COMMANDS:
            raise ServerStateError(f"unknown admin state {state!r}: use ready, drain or maint")
        was_maint = self._admin.maint
        if state == "ready":
            new = self._admin & ~(AdminState.FMAINT | AdminState.CMAINT | AdminState.FDRAIN)
        elif state == "drain":
            new = (self._admin | AdminState.FDRAIN) & ~(AdminState.FMAINT | AdminState.CMAINT)
        else:
            new = self._admin | AdminState.FMAINT
        if new == self._admin:
            return
        with self._change(f"admin {self._admin.value} -> {new.value}"):
            self._admin = AdminState(new)
            if was_maint and not self._admin.maint and self._op is not OpState.DOWN:
                self._start_ramp()
            if self._admin.maint:
                self._stop_ramp()

    def set_operational(self, state: str, reason: str = "") -> None:
        """``up`` or ``down``, as decided by a health check (or ``set server health``)."""
        if state not in _OP_COMMANDS:
            raise ServerStateError(f"unknown operational state {state!r}: use up or down")
        target = _OP_COMMANDS[state]
        if target is OpState.UP and self._op is not OpState.DOWN:
            return
        if target is OpState.DOWN and self._op is OpState.DOWN:
            return
        with self._change(reason or state):
            if target is OpState.DOWN:
                self._op = OpState.DOWN
                self._stop_ramp()
                self.counters.chkdown += 1
            else:
                self._op = OpState.UP
                if not self._admin.maint:
                    self._start_ramp()

    def take_slot(self) -> None:
        """A connection was assigned here (pool only): served, stot, smax, lbtot, lastsess."""
        self._served += 1
        c = self.counters
        c.cum_sessions += 1
        c.lbtot += 1
        c.max_sessions = max(c.max_sessions, self._served)
        c.last_session = self._clock.seconds()

    def release_slot(self) -> None:
        """A connection on this server ended (pool only)."""
        if self._served <= 0:
            raise ServerStateError(f"server {self.name}: release without a connection")
        self._served -= 1

    def stop(self) -> None:
        """Cancel the slowstart timer (the server is being removed or the pool stops)."""
        self._stop_ramp()

    # -- internals -----------------------------------------------------------

    def _is_down(self) -> bool:
        return self._op is OpState.DOWN or self._admin.maint

    def _change(self, reason: str) -> _Change:
        return _Change(self, reason)

    def _notify(self, change: StateChange) -> None:
        now = self._clock.seconds()
        if (change.old_op, change.old_admin) != (self._op, self._admin):
            self.counters.last_change = now
        was_down = change.old_op is OpState.DOWN or change.old_admin.maint
        if was_down and not self._is_down() and self._down_since is not None:
            self.counters.downtime += now - self._down_since
            self._down_since = None
        elif not was_down and self._is_down():
            self._down_since = now
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.failure(
                    "listener failed on a state change of {backend}/{server}",
                    backend=self.backend,
                    server=self.name,
                )

    def _ramp_percent(self) -> int:
        if self._ramp_start is None or not self.slowstart:
            return 100
        elapsed = self._clock.seconds() - self._ramp_start
        return min(100, max(0, int(100 * elapsed // self.slowstart)))

    def _start_ramp(self) -> None:
        if not self.slowstart:
            return
        self._stop_ramp()
        self._ramp_start = self._clock.seconds()
        self._ramp_factor = 1
        self._op = OpState.STARTING
        self._schedule_ramp()

    def _schedule_ramp(self) -> None:
        step = max(1.0, self.slowstart / 20)
        self._ramp_call = self._clock.callLater(step, self._ramp_tick)

    def _ramp_tick(self) -> None:
        self._ramp_call = None
        if self._ramp_start is None:
            return
        with self._change("slowstart"):
            elapsed = int(self._clock.seconds() - self._ramp_start)
            if elapsed >= self.slowstart:
                self._ramp_start = None
                self._op = OpState.UP
            else:
                ss = max(1, int(self.slowstart))
                self._ramp_factor = min(WEIGHT_SCALE, (WEIGHT_SCALE * elapsed + ss) // ss)
        if self._ramp_start is not None:
            self._schedule_ramp()

    def _stop_ramp(self) -> None:
        if self._ramp_call is not None and self._ramp_call.active():
            self._ramp_call.cancel()
        self._ramp_call = None
        if self._ramp_start is not None:
            self._ramp_start = None
            if self._op is OpState.STARTING:
                self._op = OpState.UP


class _Change:
    """Context manager: snapshot a server, let the body change it, then notify."""

    def __init__(self, server: Server, reason: str) -> None:
        self._server = server
        self._reason = reason

    def __enter__(self) -> None:
        s = self._server
        self._before = (s.usable, s.eweight, s.op, s.admin)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            return
        usable, eweight, op, admin = self._before
        self._server._notify(StateChange(self._server, usable, eweight, op, admin, self._reason))


def _check_weight(weight: int) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ServerStateError(f"weight must be an integer, not {weight!r}")
    if not 0 <= weight <= MAX_WEIGHT:
        raise ServerStateError(f"weight {weight} is not within 0 and {MAX_WEIGHT}")
