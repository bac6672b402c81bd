"""Everything observability needs from one running config, as one service.

The runtime wires health checks, the stats sockets and the HTTP stats sections
in a few lines::

    obs = ObservabilityService.from_runtime(runtime, reactor,
                                            kill_sessions=runtime.kill_server_sessions)
    obs.setServiceParent(app)

Check state-change lines go, as in HAProxy, to each backend's ``log`` targets
(``log global`` resolved), unless an ``events`` callable is given.

``runtime`` is read by attribute (``config``, ``backends[name].pool``,
``frontends[name]``...), see :meth:`StatsState.from_runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail, succeed

from haconfig.parse import ServerLineError, parse_server_words
from proxy.checks import CheckConfigError, CheckService, EventLog, SessionKiller, start_checks
from proxy.stats._cli import Bare, Cli, Level, split_commands
from proxy.stats._http import StatsHttpService
from proxy.stats._socket import StatsSocketService
from proxy.stats._state import StatsState
from proxy.tcplog import LEVELS, effective_targets
from proxy.tcplog import Logger as TcpLogger


def syslog_events(logger: Any) -> EventLog:
    """Send check state-change lines to a :class:`proxy.tcplog.Logger`'s targets at the
    line's own syslog level (``alert`` for DOWN, ``notice`` for UP, ``emerg`` for
    "has no server available!"), as HAProxy does."""

    def emit(level: str, message: str) -> None:
        for sink in getattr(logger, "sinks", ()):
            sink.emit(message, LEVELS.get(level, LEVELS["info"]))

    return emit


def command_api(state: Callable[[], StatsState | None]) -> Callable[[str], Deferred[str]]:
    """The runtime API in-process: one command line at admin level against the view
    ``state()`` returns now (it changes with each reload), fired with the reply as the
    stats socket would send it; fails when there is no view (stats restarting)."""

    def send(line: str) -> Deferred[str]:
        current = state()
        if current is None:
            return fail(RuntimeError("the runtime API is restarting"))
        cli = Cli(current, Level.ADMIN)
        replies = []
        for words in split_commands(line):
            out = cli.execute(words)
            replies.append(out if isinstance(out, Bare) else out + "\n")
        return succeed("".join(replies))

    return send


class DynamicServers:
    """``add server`` and ``del server`` over the runtime (servers, pools) and the checks
    (one checker per server); the replies are HAProxy 2.6's."""

    def __init__(self, runtime: Any, checks: dict[str, CheckService]) -> None:
        self.runtime = runtime
        self.checks = checks

    def add(self, backend: str, words: list[str]) -> str:
        from proxy.runtime import DynamicServerError

        if backend not in self.runtime.backends:
            return Bare("No such backend.\n")
        try:
            srv_model = parse_server_words(backend, words)
        except ServerLineError as exc:
            text = str(exc)
            # HAProxy's port message carries its own newline, before the alert's
            return f"{text}\n\n" if text.startswith("invalid character") else f"{text}\n"
        try:
            server = self.runtime.add_server(backend, srv_model)
        except DynamicServerError as exc:
            text = f"{exc}\n"
            # HAProxy's own checks answer bare; the parser's alerts end with a blank line
            return Bare(text) if text.startswith(("No such", "Backend must")) else text
        service = self.checks.get(backend)
        if service is not None:
            try:
                service.add(server, srv_model)
            except CheckConfigError as exc:
                server.set_admin("maint")
                self.runtime.delete_server(backend, server.name)
                return f"{exc}\n"
        return "New server registered.\n"

    def delete(self, backend: str, name: str) -> str:
        from proxy.runtime import DynamicServerError

        try:
            self.runtime.delete_server(backend, name)
        except DynamicServerError as exc:
            return Bare(f"{exc}\n")
        service = self.checks.get(backend)
        if service is not None:
            service.remove(name)
        return Bare("Server deleted.\n")


class ObservabilityService(MultiService):
    """Check services (one per backend), stats sockets and HTTP stats sections."""

    def __init__(self, state: StatsState, checks: dict[str, CheckService]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.state = state
        self.checks = checks
        self.loggers: list[Any] = []

    def stopService(self) -> Any:
        d = super().stopService()  # type: ignore[no-untyped-call]
        for logger in self.loggers:
            logger.close()
        self.loggers = []
        return d

    @classmethod
    def from_runtime(
        cls,
        runtime: Any,
        reactor: Any,
        *,
        events: EventLog | None = None,
        kill_sessions: SessionKiller | None = None,
        log_tag: str = "impala-lb",
    ) -> ObservabilityService:
        config = runtime.config
        checks: dict[str, CheckService] = {}
        loggers: list[Any] = []
        for proxy in config.backends:
            be = runtime.backends.get(proxy.name)
            if be is None:
                continue
            backend_events = events
            if backend_events is None and not proxy.no_log:
                targets = effective_targets(proxy.logs, config.global_.logs)
                if targets:
                    logger = TcpLogger(targets, tag=log_tag)
                    loggers.append(logger)
                    backend_events = syslog_events(logger)
            service = start_checks(be.pool, proxy, reactor, backend_events)
            service.kill_sessions = kill_sessions
            checks[proxy.name] = service
        state = StatsState.from_runtime(runtime, checks, kill_sessions=kill_sessions)
        if hasattr(runtime, "add_server"):
            state.dynamic = DynamicServers(runtime, checks)
        obs = cls(state, checks)
        obs.loggers = loggers
        for service in checks.values():
            service.setServiceParent(obs)  # type: ignore[no-untyped-call]
        for sock in config.global_.stats_sockets:
            StatsSocketService(
                sock.path,
                sock.effective_level,
                sock.mode,
                state,
                reactor,
                timeout=(config.global_.stats_timeout or 10_000) / 1000,
            ).setServiceParent(obs)  # type: ignore[no-untyped-call]
        for proxy in config.frontends:
            if proxy.serves_stats_page:
                StatsHttpService(proxy, state, reactor).setServiceParent(obs)  # type: ignore[no-untyped-call]
        return obs
