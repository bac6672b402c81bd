"""Fault isolation: a fault ends its own session only, and nothing stops the traffic.

An exception while handling one session's event ends that session (``ID``, logged
once with frontend/backend/server) and the others go on; a lost pump loop is said
loudly and stops the watchdog; a connect counts only on EPOLLOUT with SO_ERROR 0;
accept() errors pause a listener and it comes back; a failing log sink drops lines,
never traffic. All in memory: a ``MemoryReactorClock``, real loopback sockets, the
pump's ``doRead`` called by hand.
"""

from __future__ import annotations

import errno
import io
import select
import socket
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, LogLevel
from twisted.python.failure import Failure

from haconfig.model import (
    Bind,
    Config,
    Global,
    LogTarget,
    Option,
    Proxy,
    SectionKind,
    Server,
    Timeouts,
)
from proxy.connect import ConnectError, SocketDialer
from proxy.frontend import BACKOFF, Listener
from proxy.pump import PumpLoop
from proxy.runtime import Runtime
from proxy.sdnotify import Notifier, WatchdogService
from proxy.tcplog import Logger as TcpLogger
from tests.proxy.pumpmodel import tcp_pair


def _failures(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if "log_failure" in e]


class PairDialer:
    """Connects at once: each dial returns the proxy's leg of a fresh loopback pair and
    keeps the server end in ``ends``."""

    def __init__(self) -> None:
        self.ends: list[socket.socket] = []

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        end, leg = tcp_pair()
        self.ends.append(end)
        return succeed(leg)


class Broken(socket.socket):
    """A real socket whose reads raise an unexpected exception (a bug in the handling)."""

    def recv_into(self, *args: Any, **kw: Any) -> int:
        raise RuntimeError("boom")


def _runtime(out: io.StringIO) -> tuple[Runtime, MemoryReactorClock, PairDialer]:
    listen = Proxy(
        SectionKind.LISTEN,
        "fe",
        binds=(Bind("127.0.0.1", 0),),
        servers=(Server("s1", "127.0.0.1", 9),),
        timeouts=Timeouts(connect=1000, client=5000, server=5000),
        logs=(LogTarget("stdout", facility="local0", format="raw"),),
        options=(Option("tcplog"),),
    )
    reactor = MemoryReactorClock()
    dialer = PairDialer()
    rt = Runtime(
        Config(Global(), (listen,)), reactor, dialer=lambda _: dialer, stream_for=lambda _: out
    )
    return rt, reactor, dialer


def _accept(rt: Runtime, port: int) -> tuple[socket.socket, socket.socket]:
    """A client connected through the runtime: (client end, the proxy's client leg)."""
    cli, leg = tcp_pair()
    rt.on_accept(rt.frontends["fe"], leg, ("127.0.0.1", port), ("127.0.0.1", 5000))
    return cli, leg


def _spin(loop: PumpLoop) -> None:
    for _ in range(50):
        loop.doRead()


def test_exception_in_one_session_ends_it_alone_with_ID(events: list[LogEvent]) -> None:
    """A session whose read raises ends ``ID`` (tcplog line and one log line naming
    fe/be/server); the slot and actconn are released; another session keeps flowing
    and the loop is not lost."""
    out = io.StringIO()
    rt, _, dialer = _runtime(out)
    bad_cli, bad_leg = _accept(rt, 40001)
    good_cli, _ = _accept(rt, 40002)
    assert rt.actconn == 2 and len(dialer.ends) == 2
    bad = next(s for s in rt.sessions if s.conn.src_port == 40001)
    assert bad.session is not None
    side = bad.session.client
    side.sock = Broken(bad_leg.family, bad_leg.type, bad_leg.proto, fileno=bad_leg.detach())
    bad_cli.sendall(b"trigger")
    good_cli.sendall(b"still here")
    _spin(rt.loop)
    assert dialer.ends[1].recv(100) == b"still here"
    assert rt.actconn == 1 and rt.servers[("fe", "s1")].served == 1
    assert not rt.loop.lost and rt.loop.faults == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and " fe fe/s1 " in lines[0] and " ID " in lines[0]
    fails = _failures(events)
    assert len(fails) == 1
    assert fails[0]["frontend"] == "fe" and fails[0]["server"] == "s1"
    assert fails[0]["flags"] == "ID" and fails[0]["port"] == 40001
    dialer.ends[1].sendall(b"reply")
    _spin(rt.loop)
    assert good_cli.recv(100) == b"reply"
    rt.stop()
    for s in (bad_cli, good_cli, *dialer.ends):
        s.close()


def test_lost_loop_is_said_and_stops_the_watchdog(events: list[LogEvent]) -> None:
    """When the reactor drops the pump loop (its doRead raised past the guard), the loop
    is marked lost with a critical line, and the watchdog stops pinging systemd."""
    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    sent: list[str] = []

    class Recording(Notifier):
        def notify(self, *fields: str) -> bool:
            sent.extend(fields)
            return True

    notifier = Recording({"WATCHDOG_USEC": "2000000"})
    watchdog = WatchdogService(notifier, cast(IReactorTime, reactor), healthy=lambda: not loop.lost)
    watchdog.startService()
    assert sent == ["WATCHDOG=1"]
    loop.connectionLost(Failure(RuntimeError("epoll went away")))
    assert loop.lost
    assert any(e.get("log_level") is LogLevel.critical for e in events)
    reactor.advance(1.0)
    reactor.advance(1.0)
    assert sent == ["WATCHDOG=1"]
    watchdog.stopService()
    loop.close()


def test_reactor_shutdown_is_not_a_lost_loop() -> None:
    """The reactor disconnecting every reader as it stops does not mark the loop lost."""
    from twisted.internet.error import ConnectionLost

    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    loop.connectionLost(Failure(ConnectionLost()))
    assert not loop.lost
    loop.close()


def test_connect_is_established_only_on_epollout_with_no_error() -> None:
    """A dial whose socket reports EPOLLHUP without EPOLLOUT fails, even though
    SO_ERROR reads 0; EPOLLOUT with SO_ERROR 0 succeeds."""
    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        port = lsock.getsockname()[1]
        dialer = SocketDialer(loop, reactor)
        results: list[Any] = []
        d = dialer.dial("127.0.0.1", port, 1.0)
        d.addBoth(results.append)
        (fd,) = loop.watchers
        loop.watchers[fd](select.EPOLLHUP)
        assert len(results) == 1 and isinstance(results[0], Failure)
        assert results[0].check(ConnectError)
        ok: list[Any] = []
        dialer.dial("127.0.0.1", port, 1.0).addBoth(ok.append)
        for _ in range(50):
            loop.doRead()
            if ok:
                break
        assert isinstance(ok[0], socket.socket)
        ok[0].close()
    assert reactor.getDelayedCalls() == []
    loop.close()


class _FailingAccept:
    """A listening socket stand-in whose accept() raises ``errors`` first, then works."""

    def __init__(self, real: socket.socket, errors: list[int]) -> None:
        self.real = real
        self.errors = errors

    def accept(self) -> tuple[socket.socket, Any]:
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, errno.errorcode.get(code, "?"))
        return self.real.accept()

    def getsockname(self) -> Any:
        return self.real.getsockname()

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()


@pytest.mark.parametrize("code", [errno.EMFILE, errno.EINVAL, errno.EOPNOTSUPP])
def test_accept_error_backs_off_and_resumes(code: int) -> None:
    """An accept() error, known or not, pauses the listener for BACKOFF and then it
    accepts again; it never leaves the reactor for good."""
    reactor = MemoryReactorClock()
    real = socket.create_server(("127.0.0.1", 0))
    real.setblocking(False)
    accepted: list[socket.socket] = []
    listener = Listener(
        reactor,
        _FailingAccept(real, [code]),  # type: ignore[arg-type]
        lambda s, _p, _l: accepted.append(s),
        reactor,
    )
    listener.resume()
    client = socket.create_connection(real.getsockname())
    listener.doRead()
    assert accepted == [] and listener not in reactor.getReaders()
    reactor.advance(BACKOFF)
    assert listener in reactor.getReaders()
    listener.doRead()
    assert len(accepted) == 1
    for s in (client, *accepted):
        s.close()
    listener.close()


def test_listener_dropped_by_the_reactor_comes_back() -> None:
    """A listener whose doRead raised (the reactor calls connectionLost) is re-added."""
    reactor = MemoryReactorClock()
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    listener = Listener(reactor, sock, lambda s, _p, _l: s.close(), reactor)
    listener.resume()
    reactor.removeReader(listener)
    listener.connectionLost(Failure(RuntimeError("bug")))
    reactor.advance(BACKOFF)
    assert listener in reactor.getReaders()
    listener.close()


class _BrokenPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_failing_log_sink_drops_lines_and_warns_once(events: list[LogEvent]) -> None:
    """A log target that fails (EPIPE on stdout) drops its lines, counted, with one
    warning; the call never raises into the traffic path."""
    logger = TcpLogger([LogTarget("stdout", format="raw")], stream_for=lambda _: _BrokenPipe())
    for _ in range(3):
        logger.info("a line")
    assert logger.sinks[0].dropped == 3
    warnings = [e for e in events if "failing" in e.get("log_format", "")]
    assert len(warnings) == 1


def test_session_with_a_broken_log_sink_still_flows() -> None:
    """With tcplog going to a broken stdout, sessions still connect, flow and close,
    and the counters return to zero."""
    rt, _, dialer = _runtime(_BrokenPipe())
    cli, _ = _accept(rt, 40003)
    cli.sendall(b"q")
    _spin(rt.loop)
    assert dialer.ends[0].recv(10) == b"q"
    cli.shutdown(socket.SHUT_WR)
    dialer.ends[0].shutdown(socket.SHUT_WR)
    _spin(rt.loop)
    assert rt.actconn == 0 and rt.sessions == set()
    rt.stop()
    for s in (cli, *dialer.ends):
        s.close()
