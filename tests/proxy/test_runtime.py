"""Building the runtime from a Config and the maxconn pause/resume of listeners (spec 1.12)."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from haconfig.model import Bind, Config, Global, Proxy, SectionKind, Server, Timeouts
from proxy.build import FrontendRuntime, default_maxconn
from proxy.connect import BackendRuntime
from proxy.runtime import Runtime


class HoldingDialer:
    """Never connects: sessions stay in the connect phase until aborted."""

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        return Deferred()


def _config(global_maxconn: int | None, fe_maxconn: int | None) -> Config:
    listen = Proxy(
        SectionKind.LISTEN,
        "l",
        binds=(Bind("127.0.0.1", 0),),
        servers=(Server("a", "127.0.0.1", 9),),
        maxconn=fe_maxconn,
        timeouts=Timeouts(connect=1000, client=5000, server=5000),
    )
    return Config(Global(maxconn=global_maxconn), (listen,))


def _accept(rt: Runtime, fe: FrontendRuntime) -> socket.socket:
    a, b = socket.socketpair()
    rt.on_accept(fe, b, ("127.0.0.1", 40000), ("127.0.0.1", 5000))
    return a


def _runtime(global_maxconn: int | None, fe_maxconn: int | None) -> tuple[Runtime, Any]:
    reactor = MemoryReactorClock()

    def dialer(_: BackendRuntime) -> HoldingDialer:
        return HoldingDialer()

    rt = Runtime(_config(global_maxconn, fe_maxconn), reactor, dialer=dialer)
    rt.start()
    return rt, reactor


def _watched(rt: Runtime, listener: Any) -> bool:
    return listener.fileno() in rt.loop.watchers


def test_a_listener_that_raises_is_dropped_and_comes_back() -> None:
    """In the pump's epoll as in the reactor: a listener whose doRead raised is dropped,
    told (connectionLost), and watched again after BACKOFF."""
    from proxy.frontend import BACKOFF

    rt, reactor = _runtime(100, 2)
    listener = rt.frontends["l"].listeners[0]
    callback = rt.loop.watchers[listener.fileno()]

    def broken() -> None:
        raise RuntimeError("a bug in doRead")

    listener.doRead = broken  # type: ignore[method-assign]
    callback(0)
    assert not _watched(rt, listener)
    del listener.doRead
    reactor.advance(BACKOFF)
    assert _watched(rt, listener)
    rt.stop()


def test_frontend_maxconn_pauses_and_resumes_listener() -> None:
    """At frontend maxconn the listener leaves the pump's epoll set (where listeners are
    watched); one session ending brings it back."""
    rt, _ = _runtime(100, 2)
    fe = rt.frontends["l"]
    listener = fe.listeners[0]
    assert _watched(rt, listener)
    clients = [_accept(rt, fe), _accept(rt, fe)]
    assert fe.feconn == 2 and not _watched(rt, listener)
    next(iter(rt.sessions)).abort("CC")
    assert fe.feconn == 1 and _watched(rt, listener)
    rt.stop()
    for c in clients:
        c.close()


def test_global_maxconn_pauses_every_frontend() -> None:
    """The global maxconn pauses listeners even below the frontend's own limit."""
    rt, _ = _runtime(1, 50)
    fe = rt.frontends["l"]
    c = _accept(rt, fe)
    assert rt.actconn == 1 and not _watched(rt, fe.listeners[0])
    rt.stop()
    assert rt.actconn == 0
    c.close()


def test_maxconn_defaults_from_nofile_like_haproxy() -> None:
    """Without global maxconn, ulimit -n 20000 gives 9984 as measured on HAProxy."""
    assert default_maxconn(20000) == 9984
    rt = Runtime(_config(None, None), MemoryReactorClock(), nofile=20000)
    assert rt.maxconn == 9984 and rt.frontends["l"].maxconn == 9984


def test_backend_settings_come_from_resolved_proxy() -> None:
    """Retries, redispatch and timeouts of the backend are read from the model."""
    from haconfig.model import Option

    cfg = _config(None, None)
    listen = cfg.sections[0]
    from dataclasses import replace

    listen = replace(listen, retries=5, options=(Option("redispatch", args=("2",)),))
    rt = Runtime(Config(cfg.global_, (listen,)), MemoryReactorClock())
    be = rt.backends["l"]
    assert (be.retries, be.redispatch, be.redispatch_interval) == (5, True, 2)
    assert be.timeout_connect == 1.0 and be.timeout_server == 5000
    assert rt.servers[("l", "a")].port == 9


def test_connect_from_line_without_tcplog() -> None:
    """A frontend with a log target but no tcplog logs HAProxy's Connect-from line at accept."""
    import io
    from dataclasses import replace

    from haconfig.model import LogTarget

    out = io.StringIO()
    cfg = _config(None, None)
    listen = replace(cfg.sections[0], logs=(LogTarget("stdout", facility="local0", format="raw"),))

    def dialer(_: BackendRuntime) -> HoldingDialer:
        return HoldingDialer()

    rt = Runtime(
        Config(cfg.global_, (listen,)),
        MemoryReactorClock(),
        dialer=dialer,
        stream_for=lambda _: out,
    )
    c = _accept(rt, rt.frontends["l"])
    assert out.getvalue() == "Connect from 127.0.0.1:40000 to 127.0.0.1:5000 (l/TCP)\n"
    rt.stop()
    c.close()


def test_kill_server_sessions_ends_only_that_servers_sessions() -> None:
    """``shutdown sessions server`` ends the sessions on that server and returns their count."""
    rt, _ = _runtime(100, 100)
    fe = rt.frontends["l"]
    clients = [_accept(rt, fe), _accept(rt, fe)]
    server = rt.servers[("l", "a")]
    assert server.served == 2
    assert rt.kill_server_sessions(server) == 2
    assert server.served == 0 and rt.sessions == set() and fe.feconn == 0
    assert rt.kill_server_sessions(server) == 0
    rt.stop()
    for c in clients:
        c.close()
