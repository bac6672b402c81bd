"""Building the running objects of one config: backends (their servers, pool and
connection settings), frontends (router, tcplog logger, TLS) and dialers.

A :class:`Builder` holds the config it builds for, never the running one, with the
reactor and the pump loop: :class:`proxy.runtime.Runtime` builds its first objects
with one, and a reload (:mod:`proxy.reload`) prepares the next config's with another,
so nothing of the running config is touched until the reload commits. Imports run one
way: runtime -> reload -> build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haconfig.model import Config, Proxy
from haconfig.model import Server as ServerModel
from proxy._reactor import Reactor
from proxy.connect import BackendRuntime, Dialer, SocketDialer
from proxy.frontend import Listener
from proxy.pool import BackendPool
from proxy.pump import PumpLoop
from proxy.routing import Router
from proxy.server import Server
from proxy.tcplog import Logger as TcpLogger
from proxy.tcplog import effective_targets
from proxy.tls import FrontendTLS, tls_dialer

#: Descriptors HAProxy keeps aside before deriving maxconn from ``ulimit -n``
#: (measured: ulimit 20000 gives ``Maxconn: 9984``, spec 1.2).
RESERVED_FDS = 32


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

    #: fields that are run-time state, kept when a reload takes new settings
    STATE = frozenset(
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

    def take_settings(self, fresh: FrontendRuntime) -> None:
        """A reload: take ``fresh``'s settings (the same frontend under the new
        config), keeping the counters and listeners; the old log target is closed
        unless sessions still write to it."""
        old_logger = self.logger
        for f in dataclasses.fields(fresh):
            if f.name not in self.STATE:
                setattr(self, f.name, getattr(fresh, f.name))
        if old_logger is not None and old_logger is not self.logger and not self.feconn:
            with contextlib.suppress(Exception):
                old_logger.close()

    @property
    def timeout_client(self) -> int | None:
        return self.proxy.timeouts.client

    @property
    def timeout_client_fin(self) -> int | None:
        return self.proxy.timeouts.client_fin


def timeout_queue(proxy: Proxy) -> float | None:
    """``timeout queue`` in seconds (``timeout connect`` when unset), None for none."""
    t = proxy.timeouts
    queue_ms = t.queue if t.queue is not None else t.connect
    return queue_ms / 1000.0 if queue_ms else None


def option_redispatch(proxy: Proxy) -> tuple[bool, int]:
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


class Builder:
    """Makes the servers, backends, frontends and dialers of ``config``."""

    def __init__(
        self,
        config: Config,
        reactor: Reactor,
        loop: PumpLoop,
        *,
        maxconn: int,
        dialer: Callable[[BackendRuntime], Dialer] | None = None,
        log_kwargs: dict[str, Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.loop = loop
        self.maxconn = maxconn
        #: a dialer factory given by the caller (tests), kept by :meth:`but_for`
        self.injected_dialer = dialer
        self.make_dialer = dialer or self.socket_dialer
        self.log_kwargs = dict(log_kwargs or {})
        self.wall = wall

    def but_for(self, config: Config, maxconn: int) -> Builder:
        """The same builder for another config (a reload's)."""
        other = Builder(
            config,
            self.reactor,
            self.loop,
            maxconn=maxconn,
            dialer=self.injected_dialer,
            log_kwargs=self.log_kwargs,
            wall=self.wall,
        )
        return other

    def address(self, host: str) -> str:
        """The IP address of a server ``host`` under this config: as the parser resolved
        it, or looked up now for a model built in code."""
        known = self.config.addresses.get(host)
        if known is None:
            return resolve_host(host)
        if not known:
            raise ValueError(f"could not resolve address '{host}'")
        return known

    def dialer_for(self, be: BackendRuntime) -> Dialer:
        return self.make_dialer(be)

    def socket_dialer(self, be: BackendRuntime) -> Dialer:
        plain = SocketDialer(self.loop, self.reactor, keepalive=be.tcpka)
        proxy = self.config.backend(be.name)
        if proxy is None:
            return plain
        # ``server ... ssl``: re-encryption (proxy.tls); plain TCP for the others.
        return tls_dialer(proxy, plain, self.loop, self.reactor, self.address)

    def new_server(self, proxy: Proxy, s: ServerModel, index: int) -> Server:
        """A :class:`Server` for the ``index``-th (from 1) ``server`` line of ``proxy``."""
        p = proxy.server_params(s)
        return self.server(proxy.name, s, p, p.id or index, self.address(s.host))

    def server(
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

    def backend(self, proxy: Proxy) -> BackendRuntime:
        """Backend ``proxy`` with a new server per ``server`` line (``be.pool.servers``)."""
        servers = [self.new_server(proxy, s, i) for i, s in enumerate(proxy.servers, start=1)]
        redispatch, _ = option_redispatch(proxy)
        pool = BackendPool(
            proxy.name,
            servers,
            proxy.algorithm,
            hash_type=proxy.hash_type[0] if proxy.hash_type else "map-based",
            allbackups=proxy.has_option("allbackups"),
            redispatch=redispatch,
            timeout_queue=timeout_queue(proxy),
            clock=self.reactor,  # type: ignore[arg-type]
        )
        return self.backend_runtime(proxy, pool)

    def backend_runtime(self, proxy: Proxy, pool: BackendPool) -> BackendRuntime:
        """The connection settings of backend ``proxy`` around ``pool``."""
        redispatch, interval = option_redispatch(proxy)
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

    def frontend(self, proxy: Proxy) -> FrontendRuntime:
        logger: TcpLogger | None = None
        if not proxy.no_log:
            targets = effective_targets(proxy.logs, self.config.global_.logs)
            if targets:
                logger = TcpLogger(targets, **self.log_kwargs)
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
                proxy, self.loop, self.reactor, log=logger.info if logger else None, wall=self.wall
            ),
        )
