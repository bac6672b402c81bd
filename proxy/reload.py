"""Graceful reload: diff the running config against a new one and apply it in place.

HAProxy reloads by starting a new worker and letting the old one finish its
sessions (spec 4.2), so counters, health and runtime changes are lost. We reload
inside the same process instead (a deliberate difference, see the README):

- :func:`plan_reload` computes a :class:`ReloadPlan` without touching the running
  objects, doing first what can fail (server names resolved, new listening sockets
  bound); if anything fails, :class:`ReloadError` is raised and the running config
  is untouched. :meth:`proxy.runtime.Runtime.apply` then carries the plan out
  through its own methods and the servers' (imports run one way: runtime ->
  reload -> build);
- listeners: a configured address that is still configured keeps its socket
  (whichever frontend now owns it), new ones are opened, the rest closed;
- frontends keep their counters; their settings and routing rules are replaced;
- servers are matched by ``(backend, name)``: a kept server is the same
  :class:`~proxy.server.Server` object, with its state, counters, runtime weight
  and connection counts; what changed in the file (address, weight, maxconn,
  maxqueue, backup, disabled, slowstart) is applied to it; a changed ``balance``
  rebuilds the pool's algorithm over the same servers;
- removed servers and backends are drained: their established sessions finish,
  no new connection reaches them; ``hard-stop-after`` bounds how long they live.

Established connections are never cut: each session holds its own backend and
server objects, and its sockets are not the listeners'.

:func:`rebuild_observability` then replaces the health checks and stats services
while carrying each kept server's check state over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from haconfig.model import Config, Proxy
from haconfig.model import Server as ServerModel
from haconfig.parse import ConfigError, ParseResult
from proxy.build import (
    Builder,
    FrontendRuntime,
    default_maxconn,
    option_redispatch,
    timeout_queue,
)
from proxy.connect import BackendRuntime
from proxy.frontend import Listener, open_listening_socket
from proxy.server import Server, ServerStateError

log = Logger()


class ReloadError(Exception):
    """The new configuration cannot be applied; the running one was left as it was."""


@dataclass
class ReloadReport:
    """What a reload changed (names as ``backend/server`` for servers)."""

    frontends_added: list[str] = field(default_factory=list)
    frontends_removed: list[str] = field(default_factory=list)
    backends_added: list[str] = field(default_factory=list)
    backends_removed: list[str] = field(default_factory=list)
    backends_rebalanced: list[str] = field(default_factory=list)
    servers_added: list[str] = field(default_factory=list)
    servers_removed: list[str] = field(default_factory=list)
    servers_changed: list[str] = field(default_factory=list)
    listeners_opened: list[str] = field(default_factory=list)
    listeners_closed: list[str] = field(default_factory=list)
    listeners_kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        for label, items in dataclasses.asdict(self).items():
            if items:
                parts.append(f"{label.replace('_', ' ')}: {', '.join(items)}")
        return "; ".join(parts) or "nothing changed"


class Running(Protocol):
    """What a plan reads of the running balancer (:class:`proxy.runtime.Runtime`)."""

    config: Config
    builder: Builder
    backends: dict[str, BackendRuntime]
    frontends: dict[str, FrontendRuntime]
    #: servers added with ``add server``: their models
    dynamic: dict[tuple[str, str], ServerModel]
    loop: Any
    reactor: Any


class Applies(Protocol):
    """What the :class:`Reloader` drives: :meth:`proxy.runtime.Runtime.apply`."""

    def apply(self, config: Config) -> ReloadReport: ...


@dataclass
class ServerEdit:
    """What a reload changes on one kept server; None where the file did not change it.

    Weight, maxconn and the disabled flag change only when the *file* changed them, so
    a weight or state set at run time survives a reload that did not touch them."""

    name: str
    puid: int
    address: tuple[str, int | None, bool] | None = None
    weight: int | None = None
    maxconn: int | None = None
    maxqueue: int | None = None
    slowstart: float | None = None  # seconds
    admin: str | None = None  # "maint" or "ready"
    backup: bool | None = None
    #: a server added with ``add server`` that the file now has too: it becomes the
    #: file's (the runtime forgets its ``add server`` model)
    takes_over: bool = False

    @property
    def changed(self) -> bool:
        """Anything the report calls a change (the id is not one)."""
        return any(getattr(self, name) is not None for name, _ in _EDITS)

    def apply_to(self, server: Server) -> None:
        """Make the edits through the server's own methods (each notifies its listeners)."""
        for name, setter in _EDITS:
            value = getattr(self, name)
            if value is not None:
                setter(server, value)
        server.set_puid(self.puid)


#: each edit of a :class:`ServerEdit` and the Server method that makes it, in order
_EDITS: tuple[tuple[str, Callable[[Server, Any], None]], ...] = (
    ("address", lambda server, address: server.set_address(*address)),
    ("weight", Server.set_configured_weight),
    ("maxconn", Server.set_maxconn),
    ("maxqueue", Server.set_maxqueue),
    ("slowstart", Server.set_slowstart),
    ("admin", Server.set_admin),
    ("backup", Server.set_backup),
)


@dataclass
class BackendChange:
    """A kept backend under the new config: the same pool and servers, edited."""

    name: str
    #: the backend's settings under the new config (built over the running pool); the
    #: running object takes them with :meth:`BackendRuntime.take_settings`
    settings: BackendRuntime
    #: the dialer for new connections (connections in flight keep their own)
    dialer: Any
    redispatch: bool
    timeout_queue: float | None
    servers_removed: list[str] = field(default_factory=list)
    servers_added: list[Server] = field(default_factory=list)
    servers_edited: list[ServerEdit] = field(default_factory=list)
    #: the servers' names in the file's order
    order: list[str] = field(default_factory=list)
    #: (algorithm, hash type, allbackups) when the pool's algorithm is rebuilt
    rebalance: tuple[str, str, bool] | None = None


@dataclass
class FrontendPlace:
    """A frontend of the new config with the listeners it accepts on."""

    #: its settings (the running frontend of the same name takes them and keeps its
    #: counters; a new frontend is this object)
    settings: FrontendRuntime
    listeners: list[Listener]
    new: bool


@dataclass
class ReloadPlan:
    """Everything a reload does, computed without touching the running objects.

    What can fail is done while planning: server names resolved, new listening
    sockets bound (they accept nothing until placed). :meth:`Runtime.apply
    <proxy.runtime.Runtime.apply>` carries the plan out in the order of its fields;
    :meth:`discard` undoes the planning when it is not applied."""

    config: Config
    builder: Builder
    backends_removed: list[str] = field(default_factory=list)
    backends_added: list[BackendRuntime] = field(default_factory=list)
    backends_changed: list[BackendChange] = field(default_factory=list)
    listeners_closed: list[Listener] = field(default_factory=list)
    frontends_removed: list[str] = field(default_factory=list)
    frontends: list[FrontendPlace] = field(default_factory=list)
    #: listening sockets opened for the new config
    opened: list[Listener] = field(default_factory=list)
    report: ReloadReport = field(default_factory=ReloadReport)

    def discard(self) -> None:
        """Close what the planning opened (the running objects were not touched)."""
        for listener in self.opened:
            listener.close()
        for be in self.backends_added:
            be.pool.close()
        for place in self.frontends:
            logger = place.settings.logger
            if logger is not None:
                with contextlib.suppress(Exception):
                    logger.close()


def _key_text(key: tuple[str, int]) -> str:
    return f"{key[0]}:{key[1]}"


def plan_reload(running: Running, new: Config) -> ReloadPlan:
    """The plan that takes ``running`` to ``new``; :class:`ReloadError` (with the
    sockets it opened closed) when ``new`` cannot be applied."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    maxconn = new.global_.maxconn or default_maxconn(nofile)
    plan = ReloadPlan(new, running.builder.but_for(new, maxconn))
    try:
        _plan_backends(running, new, plan)
        _plan_frontends(running, new, plan)
    except BaseException as e:
        plan.discard()
        if isinstance(e, (OSError, ValueError, ServerStateError)):
            raise ReloadError(str(e)) from e
        raise
    return plan


def _served_frontends(config: Config) -> list[Proxy]:
    return [p for p in config.frontends if not p.serves_stats_page]


def _plan_backends(running: Running, new: Config, plan: ReloadPlan) -> None:
    report = plan.report
    new_names = {p.name for p in new.backends}
    for name in running.backends:
        if name not in new_names:
            plan.backends_removed.append(name)  # queued clients fail; sessions finish
            report.backends_removed.append(name)
    old_backends = {p.name: p for p in running.config.backends}
    for proxy in new.backends:
        be = running.backends.get(proxy.name)
        if be is None:
            be = plan.builder.backend(proxy)
            be.dialer = plan.builder.dialer_for(be)
            plan.backends_added.append(be)
            report.backends_added.append(proxy.name)
            report.servers_added.extend(f"{proxy.name}/{s.name}" for s in be.pool.servers)
        else:
            change = _plan_backend(running, old_backends[proxy.name], proxy, be, plan.builder)
            plan.backends_changed.append(change)
            report.servers_removed.extend(f"{proxy.name}/{n}" for n in change.servers_removed)
            report.servers_added.extend(f"{proxy.name}/{s.name}" for s in change.servers_added)
            report.servers_changed.extend(
                f"{proxy.name}/{e.name}" for e in change.servers_edited if e.changed
            )
            if change.rebalance is not None:
                report.backends_rebalanced.append(proxy.name)


def _plan_backend(
    running: Running, old: Proxy, proxy: Proxy, be: BackendRuntime, builder: Builder
) -> BackendChange:
    pool = be.pool
    settings = builder.backend_runtime(proxy, pool)
    change = BackendChange(
        proxy.name,
        settings,
        builder.dialer_for(settings),
        option_redispatch(proxy)[0],
        timeout_queue(proxy) or None,
        order=[s.name for s in proxy.servers],
    )
    new_names = set(change.order)
    # a dynamic server the file does not have goes too, as in HAProxy
    change.servers_removed = [s.name for s in pool.servers if s.name not in new_names]
    old_models = {s.name: s for s in old.servers}
    rebuild = False
    for index, s in enumerate(proxy.servers, start=1):
        current = pool.server(s.name)
        if current is None:
            change.servers_added.append(builder.new_server(proxy, s, index))
            continue
        before = old_models.get(s.name)
        takes_over = before is None
        if before is None:
            before = running.dynamic[(proxy.name, s.name)]
        params = proxy.server_params(s)
        edit = ServerEdit(s.name, params.id or index, takes_over=takes_over)
        address = (builder.address(s.host), s.port, s.port_offset)
        _find_edits(edit, current, old.server_params(before), params, address)
        change.servers_edited.append(edit)
        rebuild = rebuild or edit.backup is not None
    algorithm_changed = (
        old.algorithm != proxy.algorithm
        or old.hash_type != proxy.hash_type
        or old.has_option("allbackups") != proxy.has_option("allbackups")
    )
    if algorithm_changed or rebuild:
        hash_type = proxy.hash_type[0] if proxy.hash_type else "map-based"
        change.rebalance = (proxy.algorithm, hash_type, proxy.has_option("allbackups"))
    return change


def _find_edits(
    edit: ServerEdit, server: Server, old: Any, new: Any, address: tuple[str, int | None, bool]
) -> None:
    """Fill ``edit`` with what changed in the file's line of ``server`` (``old`` and
    ``new`` are its resolved parameters before and after)."""
    if (server.host, server.port, server.port_offset) != address:
        edit.address = address
    old_weight = 1 if old.weight is None else old.weight
    new_weight = 1 if new.weight is None else new.weight
    if old_weight != new_weight:
        edit.weight = new_weight
    if (old.maxconn or 0) != (new.maxconn or 0):
        edit.maxconn = new.maxconn or 0
    if (old.maxqueue or 0) != (new.maxqueue or 0):
        edit.maxqueue = new.maxqueue or 0
    if (old.slowstart or 0) != (new.slowstart or 0):
        edit.slowstart = (new.slowstart or 0) / 1000.0
    if bool(old.disabled) != bool(new.disabled):
        edit.admin = "maint" if new.disabled else "ready"
    if server.backup != bool(new.backup):
        edit.backup = bool(new.backup)  # the algorithm is rebuilt


def _plan_frontends(running: Running, new: Config, plan: ReloadPlan) -> None:
    """Which listeners each new frontend accepts on: a configured address that is
    still configured keeps its socket (whichever frontend now owns it), new ones are
    opened, the rest closed."""
    report = plan.report
    existing: dict[tuple[str, int], Listener] = {}
    for fe in running.frontends.values():
        for listener in fe.listeners:
            existing[listener.key] = listener
    served = _served_frontends(new)
    for proxy in served:
        settings = plan.builder.frontend(proxy)
        mine: list[Listener] = []
        # appended first so that discard() closes its logger if a bind fails
        plan.frontends.append(FrontendPlace(settings, mine, proxy.name not in running.frontends))
        for bind in proxy.binds:
            for port in bind.ports:
                key = (bind.listen_host, port)
                kept = existing.pop(key, None)
                if kept is None:
                    sock = open_listening_socket(
                        bind.listen_host, port, bind.backlog or proxy.backlog
                    )
                    # accepts nothing until the frontend is placed (rebind)
                    listener = Listener(running.loop, sock, _refuse, clock=running.reactor)
                    listener.key = key
                    plan.opened.append(listener)
                    report.listeners_opened.append(_key_text(key))
                else:
                    listener = kept
                    report.listeners_kept.append(_key_text(key))
                mine.append(listener)
        if proxy.name not in running.frontends:
            report.frontends_added.append(proxy.name)
    plan.listeners_closed = list(existing.values())
    report.listeners_closed.extend(_key_text(listener.key) for listener in existing.values())
    served_names = {p.name for p in served}
    for name in running.frontends:
        if name not in served_names:
            plan.frontends_removed.append(name)  # its sessions finish; it accepts no more
            report.frontends_removed.append(name)


def _refuse(sock: socket.socket, peer: tuple[str, int], local: tuple[str, int]) -> None:
    sock.close()


# --- observability (health checks, stats) ---------------------------------------------

#: ServerChecker attributes that are its state (public attributes of proxy.checks);
#: what the agent said last lives on the Server (``agent_down``, ``agent_drain``).
_CHECK_STATE = ("health", "enabled", "agent_enabled", "last", "last_agent")


def _settings_key(settings: Any) -> Any:
    """What decides a check's timing and counting (host, port, inter, rise, fall...):
    the dialogue factory and TLS context are rebuilt objects that never compare equal."""
    if settings is None or not dataclasses.is_dataclass(settings):
        return settings
    return tuple(
        (f.name, getattr(settings, f.name))
        for f in dataclasses.fields(settings)
        if f.name not in ("make_dialogue", "tls")
    )


def carry_check_state(old: Any, new: Any) -> list[str]:
    """Copy each kept server's check state from the old checks to the new ones.

    ``old`` and ``new`` map backend names to ``proxy.checks.CheckService``. A checker
    carries over when it watches the very same Server object with the same check and
    agent settings (a changed ``inter``/``rise``/``fall`` starts afresh, as a new
    check would, and forgets what the old agent said). The names carried, as
    ``backend/server``."""
    carried: list[str] = []
    kept: set[int] = set()
    for backend, service in new.items():
        before = old.get(backend)
        if before is None:
            continue
        for checker in service.checkers:
            prev = before.checker(checker.server.name)
            if prev is None or prev.server is not checker.server:
                continue
            if _settings_key(prev.settings) != _settings_key(checker.settings):
                continue
            if prev.agent != checker.agent:
                continue
            for attr in _CHECK_STATE:
                if hasattr(prev, attr):
                    setattr(checker, attr, getattr(prev, attr))
            kept.add(id(checker.server))
            carried.append(f"{backend}/{checker.server.name}")
    for service in old.values():
        for prev in service.checkers:
            if id(prev.server) not in kept:
                prev.server.set_agent_flags(down=False, drain=False)
    return carried


def rebuild_observability(
    old: Any, build: Callable[[], Any], on_ready: Callable[[Any], None]
) -> Any:
    """Stop ``old`` (an ObservabilityService, or None), then build and start a new one
    with ``build()`` once the old sockets are closed (a stats socket path or page port
    may be the same), carry the check state over and hand it to ``on_ready``.

    Returns the Deferred of the old service's stop (or None when nothing was running)."""
    from twisted.internet.defer import maybeDeferred

    def start(_: object) -> None:
        obs = build()
        if obs is None:
            on_ready(None)
            return
        if old is not None:
            carry_check_state(getattr(old, "checks", {}), getattr(obs, "checks", {}))
        try:
            obs.startService()
        except Exception:
            log.failure("reload: health checks or stats could not start")
            on_ready(None)
            return
        on_ready(obs)

    if old is None:
        start(None)
        return None
    d = maybeDeferred(old.stopService)
    d.addCallback(start)
    d.addErrback(lambda f: log.failure("reload: restarting health checks and stats", f))
    return d


class Reloader:
    """SIGHUP's work: re-read the files, refuse or apply, restart checks and stats.

    One reload at a time: a SIGHUP that arrives while the health checks and stats of
    the previous one are restarting is applied right after it. systemd hears
    ``RELOADING=1`` (with ``MONOTONIC_USEC``) first and ``READY=1`` once done, whether
    the new config was applied or refused (the process keeps serving either way)."""

    def __init__(
        self,
        files: Any,
        runtime: Applies,
        notifier: Any,
        build_observability: Callable[[], Any],
        observability: Any = None,
        *,
        blocking: Callable[[Callable[[], Any]], Deferred[Any]] | None = None,
    ) -> None:
        #: runs blocking work (reading the files, resolving server names) away from the
        #: reactor thread; a thread of the reactor's pool unless told otherwise
        self.blocking = blocking or threads.deferToThread
        self.files = list(files)
        self.runtime = runtime
        self.notifier = notifier
        self.build_observability = build_observability
        self.observability = observability
        self.busy = False
        self.again = False
        self.applied = 0
        self.refused = 0
        self.last_report: ReloadReport | None = None
        #: set by a soft stop (SIGUSR1): a reload must not open listeners again
        self.stopping = False
        #: called after a new config was applied (the Impala controller re-reads it)
        self.on_applied: list[Callable[[], object]] = []

    def read(self) -> ParseResult:
        """Parse the files through all three stages (server names resolved): blocking,
        so :meth:`request` runs it through :attr:`blocking`."""
        from haconfig.parse import read_file

        return read_file(self.files)

    def judge(self, result: ParseResult) -> Config | None:
        """The new config, or None after logging every parser message (file:line)."""
        for message in result.messages:
            if result.fatal:
                log.error("reload: {message}", message=message.text)
            else:
                log.warn("reload: {message}", message=message.text)
        if result.fatal:
            log.error("reload refused: invalid configuration, keeping the running one")
            return None
        config: Config = result.config
        return config

    def request(self) -> None:
        """Reload soon, or right after the reload in progress (never once stopping): the
        files are read and their names resolved off the reactor thread, then the new
        config is applied on it."""
        if self.stopping:
            log.warn("reload ignored: the balancer is stopping")
            return
        if self.busy:
            self.again = True
            return
        self.busy = True
        self.notifier.reloading()
        d = self.blocking(self.read)
        d.addCallbacks(self._apply, self._unreadable).addErrback(self._failed)

    def _unreadable(self, failure: Failure) -> None:
        """A file that cannot be read (HAProxy's "Cannot open configuration file")."""
        failure.trap(OSError, ConfigError)
        log.error("reload refused: {error}; keeping the running configuration", error=failure.value)
        self.refused += 1
        self._done(self.observability)

    def _failed(self, failure: Failure) -> None:
        log.failure("reload failed; keeping the running configuration", failure)
        self.refused += 1
        self._done(self.observability)

    def _apply(self, result: ParseResult) -> None:
        new = self.judge(result)
        if new is None:
            self.refused += 1
            self._done(self.observability)
            return
        if self.stopping:
            log.warn("reload ignored: the balancer began stopping while it was read")
            self._done(self.observability)
            return
        try:
            report = self.runtime.apply(new)
        except ReloadError as e:
            self.refused += 1
            log.error("reload refused: {error}; keeping the running configuration", error=e)
            self._done(self.observability)
            return
        self.applied += 1
        self.last_report = report
        for callback in self.on_applied:
            try:
                callback()
            except Exception:
                log.failure("reload: a listener of the new config failed")
        rebuild_observability(self.observability, self.build_observability, self._done)

    def _done(self, observability: Any) -> None:
        self.observability = observability
        self.busy = False
        self.notifier.ready()
        if self.again:
            self.again = False
            self.request()
