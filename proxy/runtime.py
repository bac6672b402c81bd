"""The running balancer, built from a :class:`haconfig.model.Config`.

:class:`Runtime` owns what lives as long as the process: the servers (one
:class:`proxy.server.Server` per ``server`` line, the single owner of its state),
one pool per backend, the frontends with their listeners, the pump loop and the
process-wide connection count.

Reload: servers are kept in ``servers`` keyed by ``(backend, name)`` and
frontends by name, so :meth:`Runtime.apply` (:mod:`proxy.reload`) diffs a new
config against the running one and keeps the unchanged ones with their state;
sessions hold their own backend object, so an established connection never
depends on the config that replaced its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from twisted.logger import Logger

from haconfig.model import Bind, Config, Proxy
from haconfig.model import Server as ServerModel
from proxy._reactor import Reactor
from proxy.connect import BackendRuntime, ClientSession, Dialer, SocketDialer
from proxy.frontend import Listener, open_listening_socket
from proxy.pump import DEFAULT_BUFSIZE, PumpLoop, PumpTimeouts, Session
from proxy.routing import ConnInfo, Router
from proxy.server import Server
from proxy.tcplog import Logger as TcpLogger
from proxy.tcplog import effective_targets, format_connect
from proxy.tls import FrontendTLS, tls_dialer

if TYPE_CHECKING:
    from proxy.pool import BackendPool
    from proxy.reload import ReloadReport

log = Logger()

#: Descriptors HAProxy keeps aside before deriving maxconn from ``ulimit -n``
#: (measured: ulimit 20000 gives ``Maxconn: 9984``, spec 1.2).
RESERVED_FDS = 32


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def default_maxconn(nofile: int) -> int:
    """HAProxy's global maxconn when none is set: each connection needs two descriptors."""
    return max(1, (nofile - RESERVED_FDS) // 2)


def resolve_host(host: str) -> str:
    """An IP address for ``host`` (HAProxy resolves server names once, at start). A
    config from the parser carries its names resolved already (``Config.addresses``,
    see :meth:`Runtime.address`); this is for models built in code."""
    if not host:
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
    except OSError as e:
        raise ValueError(f"could not resolve address '{host}'") from e


@dataclass
class FrontendRuntime:
    """A ``frontend`` or ``listen`` section at run time."""

    name: str
    proxy: Proxy
    router: Router
    maxconn: int
    logger: TcpLogger | None
    tcplog: bool
    dontlognull: bool
    keepalive: bool
    feconn: int = 0
    max_conn: int = 0  # highest feconn seen (smax)
    cum_conn: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    listeners: list[Listener] = field(default_factory=list)
    #: At maxconn: listeners paused, clients wait in the backlog. The frontend stays
    #: OPEN in the stats, as in HAProxy 2.6 (spec 1.12).
    full: bool = False
    #: ``bind ... ssl``: handshakes before sessions (proxy.tls); None without TLS binds.
    tls: FrontendTLS | None = None
    #: (counters, done) handed to every session of this frontend, made once
    callbacks: Any = field(default=None, repr=False, compare=False)

    @property
    def timeout_client(self) -> int | None:
        return self.proxy.timeouts.client

    @property
    def timeout_client_fin(self) -> int | None:
        return self.proxy.timeouts.client_fin


def _timeout_queue(proxy: Proxy) -> float | None:
    """``timeout queue`` in seconds (``timeout connect`` when unset), None for none."""
    t = proxy.timeouts
    queue_ms = t.queue if t.queue is not None else t.connect
    return queue_ms / 1000.0 if queue_ms else None


def _option_redispatch(proxy: Proxy) -> tuple[bool, int]:
    opt = proxy.option("redispatch")
    if opt is None or not opt.enabled:
        return False, -1
    if opt.args:
        try:
            interval = int(opt.args[0])
        except ValueError:
            interval = -1
        return interval != 0, interval
    return True, -1


class DynamicServerError(Exception):
    """``add server`` / ``del server`` refused; the message is HAProxy 2.6's reply."""


class Runtime:
    """Every listener, backend, server and session of one running config."""

    def __init__(
        self,
        config: Config,
        reactor: Reactor,
        *,
        dialer: Callable[[BackendRuntime], Dialer] | None = None,
        log_tag: str = "impala-lb",
        stream_for: Callable[[str], TextIO] | None = None,
        nofile: int | None = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.loop = PumpLoop(reactor, reactor, config.global_.tune_bufsize or DEFAULT_BUFSIZE)
        self.actconn = 0
        self.cum_conn = 0
        nofile = nofile if nofile is not None else resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.maxconn = config.global_.maxconn or default_maxconn(nofile)
        self.servers: dict[tuple[str, str], Server] = {}
        #: servers added with the runtime API's ``add server`` (not in the file): their
        #: models, so a reload can tell them from the file's (it drops them, as HAProxy)
        self.dynamic: dict[tuple[str, str], ServerModel] = {}
        self.backends: dict[str, BackendRuntime] = {}
        self.frontends: dict[str, FrontendRuntime] = {}
        self.sessions: set[ClientSession] = set()
        self.full = False
        self._log_kwargs: dict[str, Any] = {"tag": log_tag}
        if stream_for is not None:
            self._log_kwargs["stream_for"] = stream_for
        self._make_dialer = dialer or self._socket_dialer
        #: hard-stop-after timers of sessions left on removed backends/servers (reload)
        self._hard_stops: set[Any] = set()
        for proxy in config.backends:
            be = self._build_backend(proxy)
            be.dialer = self._make_dialer(be)
            self.backends[proxy.name] = be
        for proxy in config.frontends:
            if proxy.serves_stats_page:
                continue  # the HTTP stats service (proxy.stats) owns these binds
            self.frontends[proxy.name] = self._build_frontend(proxy)

    # --- building -------------------------------------------------------------------

    def address(self, host: str) -> str:
        """The IP address of a server ``host`` under the config being built or run: as
        the parser resolved it, or looked up now for a model built in code."""
        known = self.config.addresses.get(host)
        if known is None:
            return resolve_host(host)
        if not known:
            raise ValueError(f"could not resolve address '{host}'")
        return known

    def _dialer_for(self, be: BackendRuntime) -> Dialer:
        return self._make_dialer(be)

    def _socket_dialer(self, be: BackendRuntime) -> Dialer:
        plain = SocketDialer(self.loop, self.reactor, keepalive=be.tcpka)
        proxy = self.config.backend(be.name)
        if proxy is None:
            return plain
        # ``server ... ssl``: re-encryption (proxy.tls); plain TCP for the others.
        return tls_dialer(proxy, plain, self.loop, self.reactor, self.address)

    def _new_server(self, proxy: Proxy, s: ServerModel, index: int) -> Server:
        """A :class:`Server` for the ``index``-th (from 1) ``server`` line of ``proxy``."""
        p = proxy.server_params(s)
        return self._server(proxy.name, s, p, p.id or index, self.address(s.host))

    def _server(
        self,
        backend: str,
        s: ServerModel,
        p: Any,
        puid: int,
        host: str,
        *,
        dynamic: bool = False,
    ) -> Server:
        """A :class:`Server` from a ``server`` line ``s`` with the parameters ``p`` that
        apply to it (``default-server`` laid under them for a line of the file)."""
        return Server(
            s.name,
            clock=self.reactor,  # type: ignore[arg-type]
            backend=backend,
            puid=puid,
            host=host,
            port=s.port,
            port_offset=s.port_offset,
            weight=1 if p.weight is None else p.weight,
            maxconn=p.maxconn or 0,
            maxqueue=p.maxqueue or 0,
            backup=bool(p.backup),
            disabled=bool(p.disabled) and not dynamic,
            slowstart=(p.slowstart or 0) / 1000.0,
            dynamic=dynamic,
        )

    def add_server(self, backend: str, model: ServerModel) -> Server:
        """``add server``: a new server in backend ``backend``, in forced maintenance and
        DOWN until enabled (HAProxy 2.6 starts a dynamic server so); appended after the
        others, with the lowest free id. No ``default-server`` applies. Raises
        :class:`DynamicServerError` with HAProxy's reply."""
        be = self.backends.get(backend)
        proxy = self.config.backend(backend)
        if be is None or proxy is None:
            raise DynamicServerError("No such backend.")
        if not be.pool.balancer.dynamic:
            raise DynamicServerError(
                "Backend must use a dynamic load balancing to support dynamic servers."
            )
        if be.pool.server(model.name) is not None:
            raise DynamicServerError("Already exists a server with the same name in backend.")
        p = model.params
        used = {s.puid for s in be.pool.servers}
        if p.id is not None and p.id in used:
            owner = next(s.name for s in be.pool.servers if s.puid == p.id)
            line = next((m.location for m in proxy.servers if m.name == owner), None)
            where = f"{line.file}:{line.line}" if line is not None else "(null):0"
            raise DynamicServerError(
                f"'id' : custom id {p.id} already used at {where} ('server {owner}')."
            )
        puid = p.id or next(i for i in range(1, len(used) + 2) if i not in used)
        try:
            # HAProxy 2.6 keeps a name unresolved (init-addr none) and the server unusable;
            # we resolve it now or refuse it (README: deliberate differences)
            host = resolve_host(model.host) if model.host else ""
        except ValueError as e:
            raise DynamicServerError(f"{e}.") from None
        server = self._server(backend, model, p, puid, host, dynamic=True)
        be.pool.add_server(server)
        self.servers[(backend, model.name)] = server
        self.dynamic[(backend, model.name)] = model
        return server

    def delete_server(self, backend: str, name: str) -> Server:
        """``del server``: only a server in maintenance with no connection and nothing
        queued (its sessions are never cut); raises :class:`DynamicServerError`."""
        be = self.backends.get(backend)
        if be is None:
            raise DynamicServerError("No such backend.")
        server = be.pool.server(name)
        if server is None:
            raise DynamicServerError("No such server.")
        if not server.admin.maint:
            raise DynamicServerError("Only servers in maintenance mode can be deleted.")
        if server.served or server.queued:
            raise DynamicServerError(
                "Server still has connections attached to it, cannot remove it."
            )
        be.pool.remove_server(name)
        self.servers.pop((backend, name), None)
        self.dynamic.pop((backend, name), None)
        return server

    def _build_backend(self, proxy: Proxy) -> BackendRuntime:
        from proxy.pool import BackendPool

        servers: list[Server] = []
        for index, s in enumerate(proxy.servers, start=1):
            server = self._new_server(proxy, s, index)
            self.servers[(proxy.name, s.name)] = server
            servers.append(server)
        redispatch, _ = _option_redispatch(proxy)
        pool = BackendPool(
            proxy.name,
            servers,
            proxy.algorithm,
            hash_type=proxy.hash_type[0] if proxy.hash_type else "map-based",
            allbackups=proxy.has_option("allbackups"),
            redispatch=redispatch,
            timeout_queue=_timeout_queue(proxy),
            clock=self.reactor,  # type: ignore[arg-type]
        )
        return self._backend_runtime(proxy, pool)

    def _backend_runtime(self, proxy: Proxy, pool: BackendPool) -> BackendRuntime:
        """The connection settings of backend ``proxy`` around ``pool``."""
        redispatch, interval = _option_redispatch(proxy)
        t = proxy.timeouts
        return BackendRuntime(
            name=proxy.name,
            pool=pool,
            algorithm=proxy.algorithm,
            retries=proxy.effective_retries,
            redispatch=redispatch,
            redispatch_interval=interval,
            timeout_connect=t.connect / 1000.0 if t.connect else None,
            timeout_server=t.server,
            timeout_tunnel=t.tunnel,
            timeout_server_fin=t.server_fin,
            tcpka=proxy.has_option("tcpka") or proxy.has_option("srvtcpka"),
        )

    def _build_frontend(self, proxy: Proxy) -> FrontendRuntime:
        logger: TcpLogger | None = None
        if not proxy.no_log:
            targets = effective_targets(proxy.logs, self.config.global_.logs)
            if targets:
                logger = TcpLogger(targets, **self._log_kwargs)
        return FrontendRuntime(
            name=proxy.name,
            proxy=proxy,
            router=Router(proxy),
            maxconn=proxy.maxconn or self.maxconn,
            logger=logger,
            tcplog=proxy.has_option("tcplog"),
            dontlognull=proxy.has_option("dontlognull"),
            keepalive=proxy.has_option("tcpka") or proxy.has_option("clitcpka"),
            tls=FrontendTLS.build(
                proxy, self.loop, self.reactor, log=logger.info if logger else None, wall=self._wall
            ),
        )

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Open every listener; a port that cannot be bound raises ``ListenError``."""
        opened: list[Listener] = []
        try:
            for fe in self.frontends.values():
                for bind in fe.proxy.binds:
                    for port in bind.ports:
                        listener = self._open_listener(fe, bind, port)
                        fe.listeners.append(listener)
                        opened.append(listener)
        except Exception:
            for listener in opened:
                listener.close()
            raise
        for listener in opened:
            listener.resume()

    def _open_listener(self, fe: FrontendRuntime, bind: Bind, port: int) -> Listener:
        """A paused listener for one port of one ``bind`` line of ``fe``."""
        sock = open_listening_socket(bind.listen_host, port, bind.backlog or fe.proxy.backlog)
        # watched by the pump's epoll: accepts and bytes share one dispatch
        listener = Listener(self.loop, sock, self._acceptor(fe), clock=self.reactor)
        listener.keepalive = fe.keepalive
        listener.key = (bind.listen_host, port)
        return listener

    def apply(self, config: Config) -> ReloadReport:
        """Reload: diff ``config`` against the running one and apply it in place
        (:func:`proxy.reload.apply_config`); raises ``ReloadError`` and changes
        nothing when the new config cannot be applied (a port that cannot be bound,
        a server name that does not resolve)."""
        from proxy.reload import apply_config

        return apply_config(self, config)

    def stop(self) -> None:
        """Close the listeners and every session."""
        for fe in self.frontends.values():
            for listener in fe.listeners:
                listener.close()
            fe.listeners.clear()
            if fe.tls is not None:
                fe.tls.close()
            if fe.logger is not None:
                fe.logger.close()
        for session in list(self.sessions):
            session.abort("KD")
        for call in list(self._hard_stops):
            if call.active():
                call.cancel()
        self._hard_stops.clear()

    def _acceptor(
        self, fe: FrontendRuntime
    ) -> Callable[[socket.socket, tuple[str, int], tuple[str, int]], None]:
        def accept(sock: socket.socket, peer: tuple[str, int], local: tuple[str, int]) -> None:
            self.on_accept(fe, sock, peer, local)

        return fe.tls.acceptor(accept) if fe.tls is not None else accept

    def on_accept(
        self,
        fe: FrontendRuntime,
        sock: socket.socket,
        peer: tuple[str, int],
        local: tuple[str, int],
    ) -> None:
        """A client connected to one of ``fe``'s listeners."""
        self.actconn += 1
        self.cum_conn += 1
        fe.feconn += 1
        fe.cum_conn += 1
        fe.max_conn = max(fe.max_conn, fe.feconn)
        self._check_limits(fe)
        conn = ConnInfo(src=peer[0], src_port=peer[1], dst=local[0], dst_port=local[1])
        logline = None
        if fe.logger is not None:
            if fe.tcplog:
                logline = fe.logger.info
            else:
                fe.logger.info(format_connect(peer, local, fe.name))
        backend_name = fe.router.choose(conn)
        backend = self.backends.get(backend_name) if backend_name else None
        callbacks = fe.callbacks
        if callbacks is None:
            callbacks = fe.callbacks = (lambda: (self.actconn, fe.feconn), self._session_done(fe))
        session = ClientSession(
            clock=self.reactor,
            sock=sock,
            conn=conn,
            frontend_name=fe.name,
            backend=backend,
            client_timeouts=(fe.timeout_client, fe.timeout_client_fin),
            start_pump=self._start_pump,
            log=logline,
            dontlognull=fe.dontlognull,
            counters=callbacks[0],
            done=callbacks[1],
            accepted_wall=time.time(),
            loop=self.loop,
        )
        self.sessions.add(session)
        try:
            session.start()
        except Exception:
            log.failure("session setup failed for {client}", client=peer[0])
            session.abort("PR")

    def drain(
        self,
        *,
        be: BackendRuntime | None = None,
        server: Server | None = None,
        frontend: str | None = None,
    ) -> int:
        """A reload removed ``be``, ``server`` or the frontend called ``frontend``: its
        established sessions finish on their own, bounded by ``hard-stop-after`` (global)
        when set; how many are draining."""
        left = [
            s
            for s in self.sessions
            if (be is not None and s.backend is be)
            or (server is not None and s.server is server)
            or (frontend is not None and s.frontend_name == frontend)
        ]
        if be is not None:
            what = f"backend {be.name}"
        elif server is not None:
            what = f"server {server.backend}/{server.name}"
        else:
            what = f"frontend {frontend}"
        limit = self.config.global_.hard_stop_after
        if left:
            log.info(
                "reload: {what} removed, {count} session(s) draining", what=what, count=len(left)
            )
        if left and limit:
            victims = set(left)

            def hard_stop() -> None:
                self._hard_stops.discard(call)
                alive = [s for s in victims if s in self.sessions]
                if alive:
                    log.warn(
                        "hard-stop-after: closing {count} session(s) left on {what}",
                        count=len(alive),
                        what=what,
                    )
                for session in alive:
                    session.abort("KD")

            call = self.reactor.callLater(limit / 1000.0, hard_stop)
            self._hard_stops.add(call)
        return len(left)

    def kill_server_sessions(self, server: Server, flags: str = "D-") -> int:
        """End every session on ``server`` (``shutdown sessions server``, or a server
        marked down with ``on-marked-down shutdown-sessions``); how many were ended."""
        victims = [s for s in self.sessions if s.server is server]
        for session in victims:
            session.abort(flags)
        return len(victims)

    def _wall(self) -> float:
        return time.time()

    def _start_pump(
        self,
        client: socket.socket,
        server: socket.socket,
        timeouts: PumpTimeouts,
        on_end: Callable[[Session, str], None],
    ) -> Session:
        session = Session(self.loop, client, server, timeouts, on_end)
        session.start()
        return session

    def _session_done(self, fe: FrontendRuntime) -> Callable[[ClientSession], None]:
        def done(session: ClientSession) -> None:
            self.sessions.discard(session)
            self.actconn -= 1
            fe.feconn -= 1
            fe.bytes_in += session.rec.bytes_in
            fe.bytes_out += session.rec.bytes_out
            self._check_limits(fe)

        return done

    def _check_limits(self, fe: FrontendRuntime) -> None:
        """Pause listeners at ``maxconn`` (global, then frontend); resume below it."""
        full = self.actconn >= self.maxconn
        if full != self.full:
            self.full = full
            for other in self.frontends.values():
                self._apply_pause(other)
        else:
            self._apply_pause(fe)

    def _apply_pause(self, fe: FrontendRuntime, *, force: bool = False) -> None:
        """Pause or resume ``fe``'s listeners for the global and frontend maxconn.

        ``force`` applies the state even when it has not changed: a reload may have
        opened new listeners that do not follow it yet."""
        pause = self.full or fe.feconn >= fe.maxconn
        if pause == fe.full and not force:
            return
        fe.full = pause
        for listener in fe.listeners:
            if pause:
                listener.pause()
            else:
                listener.resume()
