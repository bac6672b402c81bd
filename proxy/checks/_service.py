"""From the config model to running checkers: settings, spread start, the service.

Wiring (the runtime does this once per backend)::

    service = start_checks(pool, resolved_proxy, reactor, events)
    service.setServiceParent(app)            # or call startService() directly
    service.kill_sessions = pump_registry.kill   # for on-marked-down shutdown-sessions
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service

from haconfig import model
from proxy.checks._checker import (
    AgentSettings,
    CheckSettings,
    EventLog,
    PoolView,
    ServerChecker,
    SessionKiller,
)
from proxy.checks._dialogue import (
    CheckConfigError,
    ConnectOnly,
    Dialogue,
    HttpCheckDialogue,
    HttpCheckPlan,
    TcpCheckDialogue,
    TcpCheckPlan,
    unescape,
)
from proxy.checks._probe import ProbeTimeouts
from proxy.server import Server

DEFAULT_INTER = 2000
DEFAULT_RISE = 2
DEFAULT_FALL = 3
DEFAULT_AGENT_INTER = 2000


def _check_kind(proxy: model.Proxy) -> model.Option | None:
    """The last of ``option httpchk`` / ``option tcp-check`` (the last one wins)."""
    for opt in reversed(proxy.options):
        if opt.name in ("httpchk", "tcp-check"):
            return opt if opt.enabled else None
    return None


def tls_options(verify: str | None, ca_file: str | None) -> object:
    """A client TLS context factory for ``check-ssl``: ``verify none`` or a CA file.

    As in HAProxy, the certificate chain is verified but not the host name."""
    from OpenSSL import crypto
    from twisted.internet import ssl

    if verify == "none":
        return ssl.CertificateOptions(verify=False)
    if not ca_file:
        raise CheckConfigError(
            "verify is enabled by default but no CA file specified. "
            "Set 'verify none' or give a 'ca-file'."
        )
    try:
        with open(ca_file, "rb") as f:
            pem = f.read()
    except OSError as exc:
        raise CheckConfigError(f"unable to load CA file '{ca_file}': {exc.strerror}") from None
    marker = b"-----BEGIN CERTIFICATE-----"
    certs = [
        crypto.load_certificate(crypto.FILETYPE_PEM, marker + chunk)
        for chunk in pem.split(marker)[1:]
    ]
    if not certs:
        raise CheckConfigError(f"no certificate found in CA file '{ca_file}'")
    return ssl.CertificateOptions(verify=True, caCerts=certs, requireCertificate=True)


def settings_for(
    proxy: model.Proxy, server: model.Server, resolved_host: str | None = None
) -> tuple[CheckSettings | None, AgentSettings | None]:
    """The check and agent settings of one server of a resolved proxy (None = none).

    Raises :class:`CheckConfigError` (never at run time: call it when the config is
    loaded) for what HAProxy would refuse too (a check
    without any port, ``check-ssl`` without ``verify none`` or a CA file, an
    ``agent-check`` without ``agent-port``) and for rules we do not run."""
    params = proxy.server_params(server)
    where = f"server {proxy.name}/{server.name}"
    inter = params.inter or DEFAULT_INTER
    timeouts = ProbeTimeouts.from_config(inter, proxy.timeouts.check, proxy.timeouts.connect)
    # ``resolved_host``: the address the runtime resolved once at start (HAProxy resolves
    # server names at start too). A server without address ("the client's destination")
    # has nothing to check but itself on this host: deliberate choice, loopback.
    host = params.addr or resolved_host or server.host or "127.0.0.1"
    check: CheckSettings | None = None
    if params.check:
        kind = _check_kind(proxy)
        ssl = bool(params.check_ssl)
        port = params.port or (None if server.port_offset else server.port)
        make_dialogue: Callable[[], Dialogue]
        if kind is not None and kind.name == "httpchk":
            plan = HttpCheckPlan.compile(kind, proxy.http_check_rules)
            make_dialogue = lambda: HttpCheckDialogue(plan)  # noqa: E731
        elif kind is not None and proxy.tcp_check_rules:
            tplan = TcpCheckPlan.compile(proxy.tcp_check_rules)
            port = tplan.port or port
            ssl = ssl or tplan.ssl
            make_dialogue = lambda: TcpCheckDialogue(tplan)  # noqa: E731
        else:
            make_dialogue = lambda: ConnectOnly(ssl)  # noqa: E731
        if not port:
            raise CheckConfigError(f"{where} has neither service port nor check port.")
        check = CheckSettings(
            host=host,
            port=port,
            inter=inter,
            fastinter=params.fastinter,
            downinter=params.downinter,
            rise=params.rise or DEFAULT_RISE,
            fall=params.fall or DEFAULT_FALL,
            timeouts=timeouts,
            make_dialogue=make_dialogue,
            tls=tls_options(params.verify, params.ca_file) if ssl else None,
            log_health_checks=proxy.has_option("log-health-checks"),
            shutdown_on_down=params.on_marked_down == "shutdown-sessions",
        )
    agent: AgentSettings | None = None
    if params.agent_check:
        if not params.agent_port:
            raise CheckConfigError(
                f"server {server.name} does not have agent port. Agent check has been disabled."
            )
        agent_inter = params.agent_inter or DEFAULT_AGENT_INTER
        agent = AgentSettings(
            host=params.agent_addr or host,
            port=params.agent_port,
            inter=agent_inter,
            timeouts=ProbeTimeouts.from_config(
                agent_inter, proxy.timeouts.check, proxy.timeouts.connect
            ),
            send=unescape(params.agent_send) if params.agent_send else b"",
        )
    return check, agent


class CheckService(Service):
    """The checkers of one backend; started and stopped with the service tree."""

    def __init__(
        self,
        pool: PoolView,
        checkers: list[ServerChecker],
        *,
        proxy: model.Proxy | None = None,
        reactor: Any = None,
        events: EventLog | None = None,
    ) -> None:
        self.pool = pool
        self.checkers = checkers
        self._by_name = {c.server.name: c for c in checkers}
        #: what :meth:`add` builds a new checker from
        self.proxy = proxy
        self.reactor = reactor
        self.events = events
        self._killer: SessionKiller | None = None

    def checker(self, server_name: str) -> ServerChecker | None:
        return self._by_name.get(server_name)

    @property
    def kill_sessions(self) -> SessionKiller | None:
        return self._killer

    @kill_sessions.setter
    def kill_sessions(self, killer: SessionKiller | None) -> None:
        """Register the runtime's "kill this server's sessions" hook."""
        self._killer = killer
        for c in self.checkers:
            c.kill_sessions = killer

    def add(self, server: Server, srv_model: model.Server) -> ServerChecker:
        """A checker for ``server``, added at run time (``add server``): its health check
        and agent start disabled, as HAProxy 2.6 starts a dynamic server's (``enable
        health`` / ``enable agent`` turn them on). No ``default-server`` applies.
        Raises :class:`CheckConfigError` as :func:`settings_for` does."""
        assert self.proxy is not None, "a CheckService built by start_checks"
        bare = dataclasses.replace(self.proxy, default_server=None)
        check, agent = settings_for(bare, srv_model, server.host or None)
        checker = ServerChecker(
            server, self.pool, check, self.reactor, agent=agent, events=self.events
        )
        checker.enabled = False
        checker.agent_enabled = False
        checker.kill_sessions = self.kill_sessions
        self.checkers.append(checker)
        self._by_name[server.name] = checker
        if self.running:
            checker.start()
        return checker

    def remove(self, server_name: str) -> None:
        """Stop and forget a server's checker (``del server``)."""
        checker = self._by_name.pop(server_name, None)
        if checker is not None:
            checker.stop()
            self.checkers.remove(checker)

    def startService(self) -> None:
        """Start every checker, spreading the first checks over one interval (spec 2.2)."""
        super().startService()  # type: ignore[no-untyped-call]
        checked = [c for c in self.checkers if c.settings is not None]
        agents = [c for c in self.checkers if c.agent is not None]
        for c in self.checkers:
            delay = agent_delay = 0
            if c in checked:
                delay = c.next_interval() * checked.index(c) // len(checked)
            if c.agent is not None:
                agent_delay = c.agent.inter * agents.index(c) // len(agents)
            c.start(delay, agent_delay)

    def stopService(self) -> Any:
        for c in self.checkers:
            c.stop()
        return super().stopService()  # type: ignore[no-untyped-call]


def start_checks(
    pool: PoolView,
    proxy: model.Proxy,
    reactor: Any,
    events: EventLog | None = None,
    *,
    start: bool = False,
) -> CheckService:
    """Build the checkers of one backend from its resolved proxy model.

    ``pool`` holds the :class:`~proxy.server.Server` objects (matched to the
    model's servers by name); ``reactor`` provides ``IReactorTCP`` and
    ``IReactorTime``; ``events(level, message)`` receives HAProxy's state-change
    lines (e.g. to syslog). Servers without ``check`` or ``agent-check`` get a
    passive checker so that stats can still say ``no check``. The service starts
    with its parent (or at once with ``start=True``)."""
    checkers: list[ServerChecker] = []
    by_name: dict[str, Server] = {s.name: s for s in pool.servers}
    for srv_model in proxy.servers:
        server = by_name.get(srv_model.name)
        if server is None:
            continue
        check, agent = settings_for(proxy, srv_model, server.host or None)
        checkers.append(ServerChecker(server, pool, check, reactor, agent=agent, events=events))
    service = CheckService(pool, checkers, proxy=proxy, reactor=reactor, events=events)
    if start:
        service.startService()
    return service
