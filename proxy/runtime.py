"""The running balancer, built from a :class:`haconfig.model.Config`.

:class:`Runtime` owns what lives as long as the process: the servers (one
:class:`proxy.server.Server` per ``server`` line, the single owner of its state),
one pool per backend, the frontends with their listeners, the pump loop and the
process-wide connection count.

The objects are made by a :class:`proxy.build.Builder` for the running config.
Reload: servers are kept in ``servers`` keyed by ``(backend, name)`` and frontends by
name, so :func:`proxy.reload.plan_reload` diffs a new config against the running one
and prepares what it needs with a builder of its own, without changing anything;
:meth:`Runtime.apply` carries that plan out through the methods of this class and of
the servers, keeping the unchanged objects with their state (imports run one way:
runtime -> reload -> build). Sessions hold their own backend object, so an established
connection never depends on the config that replaced its own.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Callable
from typing import Any, TextIO

from twisted.logger import Logger

from haconfig.model import Bind, Config
from haconfig.model import Server as ServerModel
from proxy._reactor import Reactor
from proxy.build import Builder, FrontendRuntime, default_maxconn, resolve_host
from proxy.connect import BackendRuntime, ClientSession, Dialer
from proxy.frontend import Listener, open_listening_socket
from proxy.pump import DEFAULT_BUFSIZE, PumpLoop, PumpTimeouts, Session
from proxy.reload import BackendChange, FrontendPlace, ReloadPlan, ReloadReport, plan_reload
from proxy.routing import ConnInfo
from proxy.server import Server
from proxy.tcplog import format_connect

log = Logger()


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
        log_kwargs: dict[str, Any] = {"tag": log_tag}
        if stream_for is not None:
            log_kwargs["stream_for"] = stream_for
        #: builds for the running config; a reload commits the one it built with
        self.builder = Builder(
            config,
            reactor,
            self.loop,
            maxconn=self.maxconn,
            dialer=dialer,
            log_kwargs=log_kwargs,
            wall=self._wall,
        )
        #: hard-stop-after timers of sessions left on removed backends/servers (reload)
        self._hard_stops: set[Any] = set()
        for proxy in config.backends:
            be = self.builder.backend(proxy)
            be.dialer = self.builder.dialer_for(be)
            self.add_backend(be)
        for proxy in config.frontends:
            if proxy.serves_stats_page:
                continue  # the HTTP stats service (proxy.stats) owns these binds
            self.frontends[proxy.name] = self.builder.frontend(proxy)

    def address(self, host: str) -> str:
        """The IP address of a server ``host`` under the running config."""
        return self.builder.address(host)

    # --- what a reload applies (proxy.reload computes it, the runtime applies it) ---

    def add_backend(self, be: BackendRuntime) -> None:
        """A built backend joins, with its servers."""
        self.backends[be.name] = be
        for server in be.pool.servers:
            self.servers[(be.name, server.name)] = server

    def remove_backend(self, name: str) -> BackendRuntime:
        """Backend ``name`` leaves: its queued clients fail, its established sessions
        finish (bounded by ``hard-stop-after``)."""
        be = self.backends.pop(name)
        for s in be.pool.servers:
            self.servers.pop((name, s.name), None)
            self.dynamic.pop((name, s.name), None)
        be.pool.close()
        self.drain(be=be)
        return be

    def add_file_server(self, backend: str, server: Server) -> None:
        """A reload added ``server`` (a line of the file) to ``backend``."""
        self.backends[backend].pool.add_server(server)
        self.servers[(backend, server.name)] = server

    def remove_file_server(self, backend: str, name: str) -> Server:
        """A reload removed ``backend``'s server ``name``: its queue is dispatched again,
        its established sessions finish."""
        server = self.backends[backend].pool.remove_server(name)
        self.servers.pop((backend, name), None)
        self.dynamic.pop((backend, name), None)  # gone, as in HAProxy
        self.drain(server=server)
        return server

    def add_frontend(self, fe: FrontendRuntime) -> None:
        self.frontends[fe.name] = fe

    def remove_frontend(self, name: str) -> None:
        """Frontend ``name`` leaves: it accepts nothing more, its sessions finish."""
        fe = self.frontends.pop(name)
        fe.listeners = []
        self.drain(frontend=name)

    def adopt(self, config: Config, builder: Builder) -> None:
        """A reload commits: ``config`` is the running one, built by ``builder``."""
        self.config = config
        self.builder = builder
        self.maxconn = builder.maxconn
        self.loop.set_bufsize(config.global_.tune_bufsize or DEFAULT_BUFSIZE)

    def refresh_pauses(self) -> None:
        """Listeners paused or resumed for the limits now in force (after a reload)."""
        self.full = self.actconn >= self.maxconn
        for fe in self.frontends.values():
            self._apply_pause(fe, force=True)

    # --- building -------------------------------------------------------------------

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
        server = self.builder.server(backend, model, p, puid, host, dynamic=True)
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
        listener = Listener(self.loop, sock, self.acceptor(fe), clock=self.reactor)
        listener.keepalive = fe.keepalive
        listener.key = (bind.listen_host, port)
        return listener

    def apply(self, config: Config) -> ReloadReport:
        """Reload: diff ``config`` against the running one and apply it in place
        (:func:`proxy.reload.plan_reload`); raises ``ReloadError`` and changes
        nothing when the new config cannot be applied (a port that cannot be bound,
        a server name that does not resolve)."""
        plan = plan_reload(self, config)
        self._carry_out(plan)
        log.info("reload applied: {summary}", summary=plan.report.summary())
        return plan.report

    def _carry_out(self, plan: ReloadPlan) -> None:
        self.adopt(plan.config, plan.builder)
        for name in plan.backends_removed:
            self.remove_backend(name)  # queued clients fail; established sessions finish
        for be in plan.backends_added:
            self.add_backend(be)
        for change in plan.backends_changed:
            self._change_backend(change)
        for listener in plan.listeners_closed:
            listener.close()
        for name in plan.frontends_removed:
            self.remove_frontend(name)
        for place in plan.frontends:
            self._place_frontend(place)
        self.refresh_pauses()

    def _change_backend(self, change: BackendChange) -> None:
        be = self.backends[change.name]
        be.take_settings(change.settings)
        be.dialer = change.dialer  # connections in flight keep their own
        pool = be.pool
        pool.redispatch = change.redispatch
        pool.timeout_queue = change.timeout_queue
        for name in change.servers_removed:
            self.remove_file_server(change.name, name)  # a dynamic one too
        for server in change.servers_added:
            self.add_file_server(change.name, server)
        for edit in change.servers_edited:
            if edit.takes_over:
                self.dynamic.pop((change.name, edit.name), None)
            kept = pool.server(edit.name)
            assert kept is not None
            edit.apply_to(kept)
        pool.reorder(change.order)
        if change.rebalance is not None:
            algorithm, hash_type, allbackups = change.rebalance
            pool.reconfigure(algorithm, hash_type=hash_type, allbackups=allbackups)

    def _place_frontend(self, place: FrontendPlace) -> None:
        """A frontend of the new config takes its listeners (a running one its settings)."""
        if place.new:
            fe = place.settings
            self.add_frontend(fe)
        else:
            fe = self.frontends[place.settings.name]
            fe.take_settings(place.settings)
        fe.listeners = place.listeners
        for listener in fe.listeners:
            listener.rebind(self.acceptor(fe), fe.keepalive)

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

    def acceptor(
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
