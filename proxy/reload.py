"""Graceful reload: diff the running config against a new one and apply it in place.

HAProxy reloads by starting a new worker and letting the old one finish its
sessions (spec 4.2), so counters, health and runtime changes are lost. We reload
inside the same process instead (a deliberate difference, see the README):

- everything that can fail is prepared first (server names resolved, new
  listening sockets bound); if anything fails, :class:`ReloadError` is raised and
  the running config is untouched;
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
from typing import TYPE_CHECKING, Any

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from haconfig.model import Config, Proxy
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

if TYPE_CHECKING:
    from proxy.runtime import Runtime

log = Logger()

#: FrontendRuntime fields that are run-time state, kept across a reload.
_FRONTEND_STATE = frozenset(
    {
        "name",
        "feconn",
        "max_conn",
        "cum_conn",
        "bytes_in",
        "bytes_out",
        "listeners",
        "full",
        "callbacks",
    }
)
#: BackendRuntime fields that are run-time state, kept across a reload.
_BACKEND_STATE = frozenset({"name", "pool", "dialer", "beconn"})


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


def _key_text(key: tuple[str, int]) -> str:
    return f"{key[0]}:{key[1]}"


@dataclass
class _Prepared:
    """Everything built before the commit; discarded (sockets closed) on failure."""

    new_backends: dict[str, BackendRuntime] = field(default_factory=dict)
    new_servers: dict[tuple[str, str], Server] = field(default_factory=dict)
    addresses: dict[tuple[str, str], tuple[str, int | None, bool]] = field(default_factory=dict)
    opened: list[Listener] = field(default_factory=list)
    #: frontend name -> its listeners in bind order (reused or opened)
    listeners: dict[str, list[Listener]] = field(default_factory=dict)
    #: backend name -> its dialer for the new config (``server ... ssl`` may change)
    dialers: dict[str, Any] = field(default_factory=dict)
    #: frontend name -> its settings under the new config (counters are taken from the
    #: running frontend of the same name)
    frontends: dict[str, FrontendRuntime] = field(default_factory=dict)
    #: builds for the new config; the runtime adopts it at the commit
    builder: Builder | None = None

    def discard(self) -> None:
        for listener in self.opened:
            listener.close()
        for be in self.new_backends.values():
            be.pool.close()
        for fe in self.frontends.values():
            if fe.logger is not None:
                with contextlib.suppress(Exception):
                    fe.logger.close()


def apply_config(runtime: Runtime, new: Config) -> ReloadReport:
    """Apply ``new`` to ``runtime`` in place; :class:`ReloadError` leaves it unchanged."""
    prepared = _Prepared()
    try:
        _prepare(runtime, new, prepared)
    except BaseException as e:
        prepared.discard()  # the running objects were not touched
        if isinstance(e, (OSError, ValueError, ServerStateError)):
            raise ReloadError(str(e)) from e
        raise
    return _commit(runtime, new, prepared)


def _served_frontends(config: Config) -> list[Proxy]:
    return [p for p in config.frontends if not p.serves_stats_page]


def _prepare(runtime: Runtime, new: Config, prepared: _Prepared) -> None:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    maxconn = new.global_.maxconn or default_maxconn(nofile)
    builder = prepared.builder = runtime.builder.but_for(new, maxconn)
    _prepare_backends(runtime, builder, new, prepared)
    for proxy in _served_frontends(new):
        prepared.frontends[proxy.name] = builder.frontend(proxy)
    _prepare_listeners(runtime, new, prepared)


def _prepare_backends(runtime: Runtime, builder: Builder, new: Config, prepared: _Prepared) -> None:
    for proxy in new.backends:
        if proxy.name not in runtime.backends:
            be = builder.backend(proxy)
            prepared.new_backends[proxy.name] = be
            prepared.dialers[proxy.name] = builder.dialer_for(be)
            continue
        running = runtime.backends[proxy.name]
        for index, s in enumerate(proxy.servers, start=1):
            skey = (proxy.name, s.name)
            prepared.addresses[skey] = (builder.address(s.host), s.port, s.port_offset)
            if running.pool.server(s.name) is None:
                prepared.new_servers[skey] = builder.new_server(proxy, s, index)
        probe = builder.backend_runtime(proxy, running.pool)
        prepared.dialers[proxy.name] = builder.dialer_for(probe)


def _prepare_listeners(runtime: Runtime, new: Config, prepared: _Prepared) -> None:
    existing: dict[tuple[str, int], Listener] = {}
    for fe in runtime.frontends.values():
        for listener in fe.listeners:
            existing[listener.key] = listener
    for proxy in _served_frontends(new):
        mine: list[Listener] = []
        for bind in proxy.binds:
            for port in bind.ports:
                key = (bind.listen_host, port)
                reused = existing.pop(key, None)
                if reused is None:
                    sock = open_listening_socket(
                        bind.listen_host, port, bind.backlog or proxy.backlog
                    )
                    # accepts nothing until the commit hands it to its frontend (rebind)
                    reused = Listener(runtime.loop, sock, _refuse, clock=runtime.reactor)
                    reused.key = (bind.listen_host, port)
                    prepared.opened.append(reused)
                mine.append(reused)
        prepared.listeners[proxy.name] = mine


def _refuse(sock: socket.socket, peer: tuple[str, int], local: tuple[str, int]) -> None:
    sock.close()


def _commit(runtime: Runtime, new: Config, prepared: _Prepared) -> ReloadReport:
    report = ReloadReport()
    old = runtime.config
    assert prepared.builder is not None
    runtime.adopt(new, prepared.builder)
    _commit_backends(runtime, old, new, prepared, report)
    _commit_frontends(runtime, new, prepared, report)
    runtime.refresh_pauses()
    log.info("reload applied: {summary}", summary=report.summary())
    return report


def _commit_backends(
    runtime: Runtime, old: Config, new: Config, prepared: _Prepared, report: ReloadReport
) -> None:
    old_backends = {p.name: p for p in old.backends}
    new_names = {p.name for p in new.backends}
    for name in list(runtime.backends):
        if name not in new_names:
            runtime.remove_backend(name)  # queued clients fail; established sessions finish
            report.backends_removed.append(name)
    for proxy in new.backends:
        if proxy.name in prepared.new_backends:
            be = prepared.new_backends[proxy.name]
            be.dialer = prepared.dialers[proxy.name]
            runtime.add_backend(be)
            report.backends_added.append(proxy.name)
            report.servers_added.extend(f"{proxy.name}/{s.name}" for s in be.pool.servers)
            continue
        _update_backend(runtime, old_backends[proxy.name], proxy, prepared, report)


def _update_backend(
    runtime: Runtime, old: Proxy, proxy: Proxy, prepared: _Prepared, report: ReloadReport
) -> None:
    be = runtime.backends[proxy.name]
    pool = be.pool
    assert prepared.builder is not None
    fresh = prepared.builder.backend_runtime(proxy, pool)
    for f in dataclasses.fields(fresh):
        if f.name not in _BACKEND_STATE:
            setattr(be, f.name, getattr(fresh, f.name))
    be.dialer = prepared.dialers[proxy.name]  # connections in flight keep their own
    pool.redispatch = option_redispatch(proxy)[0]
    pool.timeout_queue = timeout_queue(proxy) or None
    new_names = {s.name for s in proxy.servers}
    for server in list(pool.servers):
        if server.name not in new_names:
            runtime.remove_file_server(proxy.name, server.name)  # a dynamic one too
            report.servers_removed.append(f"{proxy.name}/{server.name}")
    old_models = {s.name: s for s in old.servers}
    rebuild = False
    for index, s in enumerate(proxy.servers, start=1):
        key = (proxy.name, s.name)
        added = prepared.new_servers.get(key)
        if added is not None:
            runtime.add_file_server(proxy.name, added)
            report.servers_added.append(f"{proxy.name}/{s.name}")
            continue
        current = pool.server(s.name)
        assert current is not None
        # a server added with ``add server`` that the file now has too becomes the file's
        before = old_models.get(s.name) or runtime.file_takes_over(key)
        changed, needs_rebuild = _update_server(
            current, old.server_params(before), proxy.server_params(s), prepared.addresses[key]
        )
        current.set_puid(proxy.server_params(s).id or index)
        rebuild = rebuild or needs_rebuild
        if changed:
            report.servers_changed.append(f"{proxy.name}/{s.name}")
    pool.reorder([s.name for s in proxy.servers])
    algorithm_changed = (
        old.algorithm != proxy.algorithm
        or old.hash_type != proxy.hash_type
        or old.has_option("allbackups") != proxy.has_option("allbackups")
    )
    if algorithm_changed or rebuild:
        pool.reconfigure(
            proxy.algorithm,
            hash_type=proxy.hash_type[0] if proxy.hash_type else "map-based",
            allbackups=proxy.has_option("allbackups"),
        )
        report.backends_rebalanced.append(proxy.name)


def _update_server(
    server: Server,
    old: Any,
    new: Any,
    address: tuple[str, int | None, bool],
) -> tuple[bool, bool]:
    """Apply what changed in the file to ``server``; (changed, algorithm needs rebuild).

    Weight, maxconn and the disabled flag change only when the *file* changed them, so
    a weight or state set at run time survives a reload that did not touch it."""
    changed = False
    host, port, offset = address
    if (server.host, server.port, server.port_offset) != (host, port, offset):
        server.set_address(host, port, offset)
        changed = True
    old_weight = 1 if old.weight is None else old.weight
    new_weight = 1 if new.weight is None else new.weight
    if old_weight != new_weight:
        server.set_configured_weight(new_weight)
        changed = True
    if (old.maxconn or 0) != (new.maxconn or 0):
        server.set_maxconn(new.maxconn or 0)
        changed = True
    if (old.maxqueue or 0) != (new.maxqueue or 0):
        server.set_maxqueue(new.maxqueue or 0)
        changed = True
    if (old.slowstart or 0) != (new.slowstart or 0):
        server.set_slowstart((new.slowstart or 0) / 1000.0)
        changed = True
    if bool(old.disabled) != bool(new.disabled):
        server.set_admin("maint" if new.disabled else "ready")
        changed = True
    rebuild = False
    if server.backup != bool(new.backup):
        server.set_backup(bool(new.backup))
        changed = rebuild = True
    return changed, rebuild


def _commit_frontends(
    runtime: Runtime, new: Config, prepared: _Prepared, report: ReloadReport
) -> None:
    served = {p.name: p for p in _served_frontends(new)}
    keep: set[int] = {id(listener) for ls in prepared.listeners.values() for listener in ls}
    for name, fe in list(runtime.frontends.items()):
        for listener in fe.listeners:
            if id(listener) not in keep:
                listener.close()
                report.listeners_closed.append(_key_text(listener.key))
        if name not in served:
            runtime.remove_frontend(name)  # its sessions finish; it accepts nothing more
            report.frontends_removed.append(name)
    opened = {id(listener) for listener in prepared.opened}
    for name in served:
        fresh = prepared.frontends.pop(name)
        running = runtime.frontends.get(name)
        if running is None:
            fe = fresh
            runtime.add_frontend(fe)
            report.frontends_added.append(name)
        else:
            fe = running
            _update_frontend(fe, fresh)
        fe.listeners = prepared.listeners[name]
        for listener in fe.listeners:
            listener.rebind(runtime.acceptor(fe), fe.keepalive)
            text = _key_text(listener.key)
            (report.listeners_opened if id(listener) in opened else report.listeners_kept).append(
                text
            )


def _update_frontend(fe: FrontendRuntime, fresh: FrontendRuntime) -> None:
    """Take ``fresh``'s settings into ``fe``, keeping its counters and listeners."""
    old_logger = fe.logger
    for f in dataclasses.fields(fresh):
        if f.name not in _FRONTEND_STATE:
            setattr(fe, f.name, getattr(fresh, f.name))
    if old_logger is not None and old_logger is not fe.logger and not fe.feconn:
        with contextlib.suppress(Exception):
            old_logger.close()


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
        runtime: Runtime,
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
