"""From an accepted socket to an established session: choose, queue, connect, retry.

:class:`ClientSession` is the life of one client connection up to the byte pump
and its end (counters, one log line). It follows spec 1.9 (HAProxy 2.6.12):

- ``retries N`` means N+1 connection attempts, each bounded by ``timeout connect``;
- before a retry on the same server it waits min(``timeout connect``, 1 s), the
  turn-around;
- with ``option redispatch`` a failed attempt goes at once to another server when
  the algorithm is not a hash one and more than one active server is usable;
  otherwise (``balance source``...) it redispatches on the interval rule (by
  default on the last retry), and a hash re-pick may well land on the same dead
  server, as HAProxy's map lookup does;
- when every attempt failed the client is closed and logged ``SC`` (refused) or
  ``sC`` (connect timeout); a queue timeout is ``sQ``; no usable server is ``SC``
  with ``<NOSRV>``.

Connecting itself is behind :class:`Dialer`, so the retry logic runs in memory in
the tests; :class:`SocketDialer` is the real one (a non-blocking ``connect``
watched by the pump's epoll).
"""

from __future__ import annotations

import dataclasses
import errno
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from proxy._reactor import Clock
from proxy._tls_socket import TLSSocket
from proxy.pump import PumpLoop, PumpTimeouts, Session
from proxy.routing import ConnInfo
from proxy.tcplog import SessionRecord, format_tcplog

if TYPE_CHECKING:
    from proxy.pool import BackendPool
    from proxy.server import Server

_log = Logger()
_EPOLLIN = select.EPOLLIN
_EPOLLRDHUP = select.EPOLLRDHUP
_EPOLLOUT = select.EPOLLOUT
_EPOLLERRHUP = select.EPOLLERR | select.EPOLLHUP
_STREAM_NB = socket.SOCK_STREAM | socket.SOCK_NONBLOCK

#: Algorithms whose choice depends on the client (HAProxy's BE_LB_KIND_HI): no
#: immediate redispatch for them.
HASH_ALGORITHMS = frozenset({"source", "uri", "url_param", "hdr", "rdp-cookie"})


class ConnectError(Exception):
    """A connection attempt failed; ``timeout`` tells a timeout from a refusal."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class Dialer(Protocol):
    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        """A connected non-blocking socket, or a :class:`ConnectError` failure."""


class SocketDialer:
    """Non-blocking ``connect`` watched by the pump loop's epoll, with a timeout."""

    def __init__(self, loop: PumpLoop, clock: Clock, *, keepalive: bool = False) -> None:
        self.loop = loop
        self.clock = clock
        self.keepalive = keepalive

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        """The connected socket, out of the loop's epoll set (for a caller that wraps it:
        TLS); :meth:`connect` is the fast path the sessions take."""
        attempt: _Connect | None = None

        def cancel(_: Deferred[socket.socket]) -> None:
            if attempt is not None:
                attempt.cancel()

        d: Deferred[socket.socket] = Deferred(cancel)

        def done(sock: socket.socket | None, error: ConnectError | None) -> None:
            if sock is not None:
                self.loop.unpark(sock.fileno())
                d.callback(sock)
            else:
                assert error is not None
                d.errback(Failure(error))

        attempt = self.connect(host, port, timeout, done)
        return d

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None,
        done: Callable[[socket.socket | None, ConnectError | None], None],
    ) -> _Connect:
        """Start connecting; ``done(sock, None)`` once established, with the socket still
        in the loop's epoll set for the pump to take over (:meth:`PumpLoop.park`), or
        ``done(None, error)``; never both, and neither after ``cancel()``. ``done`` may
        run before this returns (a refusal seen at once)."""
        return _Connect(self, host, port, timeout, done)


class _Connect:
    """One connection attempt of a :class:`SocketDialer` (no closures, no Deferred)."""

    __slots__ = ("done", "fd", "loop", "sock", "timer")

    def __init__(
        self,
        dialer: SocketDialer,
        host: str,
        port: int,
        timeout: float | None,
        done: Callable[[socket.socket | None, ConnectError | None], None],
    ) -> None:
        self.loop = dialer.loop
        self.done: Callable[[socket.socket | None, ConnectError | None], None] | None = done
        self.timer: Any = None
        # non-blocking from the start (no FIONBIO call)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, _STREAM_NB)
        self.sock = sock
        self.fd = sock.fileno()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if dialer.keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            rc = sock.connect_ex((host, port))
        except OSError as e:
            self._fail(str(e), watched=False)
            return
        if rc not in (0, errno.EINPROGRESS, errno.EAGAIN):
            self._fail(errno.errorcode.get(rc, str(rc)), watched=False)
            return
        self.loop.watch(self.fd, _EPOLLOUT, self._ready)
        if timeout:
            self.timer = dialer.clock.callLater(timeout, self._timed_out)

    def _ready(self, events: int) -> None:
        # Established when writable with no error or hang-up (then no SO_ERROR call, as
        # HAProxy); EPOLLERR or EPOLLHUP, even with EPOLLOUT, is a failed connect, and
        # SO_ERROR names why.
        if events & _EPOLLERRHUP or not events & _EPOLLOUT:
            try:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError as e:
                err = e.errno or errno.EBADF
            self._fail(errno.errorcode.get(err, str(err)) if err else "connection failed")
            return
        self._stop_timer()
        self.loop.park(self.fd)
        done, self.done = self.done, None
        if done is not None:
            done(self.sock, None)

    def _timed_out(self) -> None:
        self.timer = None
        self._fail("connect timeout", timed_out=True)

    def _stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _fail(self, message: str, *, timed_out: bool = False, watched: bool = True) -> None:
        self._stop_timer()
        if watched:
            self.loop.unwatch(self.fd)
        self.sock.close()
        done, self.done = self.done, None
        if done is not None:
            done(None, ConnectError(message, timeout=timed_out))

    def cancel(self) -> None:
        """Give up (the client went away): close the socket, call nothing."""
        if self.done is None:
            return
        self.done = None
        self._stop_timer()
        self.loop.unwatch(self.fd)
        self.sock.close()


def _failed(err: Exception) -> Deferred[socket.socket]:
    d: Deferred[socket.socket] = Deferred()
    d.errback(Failure(err))
    return d


@dataclass
class BackendRuntime:
    """A backend as the sessions see it: its pool and connection settings.

    Counters live in the pool (``pool.counters``) and the servers, where the
    stats read them; ``beconn`` is the backend's current connection count."""

    name: str
    pool: BackendPool
    algorithm: str = "roundrobin"
    retries: int = 3
    redispatch: bool = False
    redispatch_interval: int = -1
    timeout_connect: float | None = None  # seconds
    timeout_server: int | None = None  # ms, as in the model
    timeout_tunnel: int | None = None
    timeout_server_fin: int | None = None
    tcpka: bool = False
    dialer: Dialer | None = None
    beconn: int = 0

    #: fields that are run-time state, kept when a reload takes new settings
    STATE = frozenset({"name", "pool", "dialer", "beconn"})

    def take_settings(self, fresh: BackendRuntime) -> None:
        """A reload: take ``fresh``'s settings (the same backend under the new config),
        keeping the pool, the connection count and the dialer (set on its own)."""
        for f in dataclasses.fields(fresh):
            if f.name not in self.STATE:
                setattr(self, f.name, getattr(fresh, f.name))

    @property
    def hashed(self) -> bool:
        return self.algorithm in HASH_ALGORITHMS


Logline = Callable[[str], None]


class ClientSession:
    """One client connection from accept to close."""

    __slots__ = (
        "attempts",
        "backend",
        "client_timeouts",
        "clock",
        "conn",
        "connecting",
        "counters",
        "done",
        "dontlognull",
        "finished",
        "frontend_name",
        "log",
        "loop",
        "pending",
        "phase",
        "previous",
        "rec",
        "retries",
        "server",
        "session",
        "sock",
        "start_pump",
        "t0",
        "t_assigned",
        "turnaround",
        "watching",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        sock: socket.socket,
        conn: ConnInfo,
        frontend_name: str,
        backend: BackendRuntime | None,
        client_timeouts: tuple[int | None, int | None],
        start_pump: Callable[[socket.socket, socket.socket, PumpTimeouts, Any], Session],
        log: Logline | None,
        dontlognull: bool,
        counters: Callable[[], tuple[int, int]],
        done: Callable[[ClientSession], None],
        accepted_at: float | None = None,
        accepted_wall: float = 0.0,
        loop: PumpLoop | None = None,
    ) -> None:
        self.clock = clock
        self.sock = sock
        self.conn = conn
        self.frontend_name = frontend_name
        self.backend = backend
        self.client_timeouts = client_timeouts
        self.start_pump = start_pump
        self.log = log
        self.dontlognull = dontlognull
        self.counters = counters  # -> (actconn, feconn)
        self.done = done
        self.t0 = clock.seconds() if accepted_at is None else accepted_at
        self.rec = SessionRecord(
            client_ip=conn.src,
            client_port=conn.src_port,
            accept_time=accepted_wall,
            # %ft: HAProxy appends "~" when the client came over TLS (bind ... ssl).
            frontend=frontend_name + "~" if isinstance(sock, TLSSocket) else frontend_name,
            backend=backend.name if backend else frontend_name,
        )
        self.server: Server | None = None
        self.previous: Server | None = None
        self.t_assigned: float | None = None
        self.attempts = 0
        self.retries = 0
        self.pending: Deferred[Any] | None = None
        #: the connect in progress on the fast path (no Deferred)
        self.connecting: _Connect | None = None
        self.turnaround: Any = None
        self.session: Session | None = None
        self.finished = False
        self.phase = "Q"  # the second termination char while waiting: queue or connect
        self.loop = loop
        self.watching = False

    # --- the flow ------------------------------------------------------------------

    def start(self) -> None:
        be = self.backend
        if be is None:
            self._close("SC")
            return
        be.beconn += 1
        if self.loop is not None:
            self.watching = True
            # RDHUP (and the errors epoll always reports): a client that leaves, not one
            # that speaks first, wakes us; its request waits in the kernel for the pump
            self.loop.watch(self.sock.fileno(), _EPOLLRDHUP, self._client_event)
        self._acquire(None)

    def _client_event(self, events: int) -> None:
        """The client hung up or failed while we queue or connect: gone, unless it sent
        bytes before its FIN (a request, then a half-close): those go to the server."""
        try:
            gone = self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return
        except Exception:
            gone = True
        self._unwatch()
        if gone:
            # HAProxy: client abort while queued (CQ) or connecting (CC).
            self.abort("C" + self.phase)
        # Otherwise the client spoke first (SASL, TLS): its bytes wait in the kernel
        # for the pump, and an abort is only seen once connected.

    def _internal_error(self, failure: Failure) -> None:
        """A bug on our side must not leak the session: log it, end it with ``I``."""
        _log.failure("session from {client} failed", failure, client=self.conn.src)
        self.abort("I" + self.phase)

    def _unwatch(self) -> None:
        if self.watching and self.loop is not None:
            self.watching = False
            self.loop.unwatch(self.sock.fileno())

    def _acquire(self, avoid: Server | None) -> None:
        assert self.backend is not None
        self.phase = "Q"
        pool = self.backend.pool
        queue_before = pool.queued
        got = pool.take(self.conn.src, avoid)
        if not isinstance(got, Deferred):
            self._assigned(got)  # the common case: a server at once, no Deferred
            return
        self.pending = got
        if not got.called:
            self.rec.backend_queue = queue_before
        got.addCallbacks(self._assigned, self._no_server).addErrback(self._internal_error)

    def _assigned(self, server: Server) -> None:
        self.pending = None
        if self.previous is not None and server is not self.previous:
            self.rec.redispatched = True
        self.server = server
        self.t_assigned = self.clock.seconds()
        self.rec.server = server.name
        self._attempt()

    def _no_server(self, failure: Failure) -> None:
        self.pending = None
        if failure.check(CancelledError):
            return
        name = type(failure.value).__name__
        self._close("sQ" if name == "QueueTimeout" else "SC")

    def _target(self, server: Server) -> tuple[str, int]:
        host = server.host or self.conn.dst
        if server.port is None:
            port = self.conn.dst_port
        elif server.port_offset:
            port = self.conn.dst_port + server.port
        else:
            port = server.port
        return host, port

    def _attempt(self) -> None:
        be, server = self.backend, self.server
        assert be is not None and server is not None and be.dialer is not None
        self.turnaround = None
        self.phase = "C"
        self.attempts += 1
        server.counters.connect += 1
        host, port = self._target(server)
        dialer = be.dialer
        if isinstance(dialer, SocketDialer):
            # the fast path: a callback, no Deferred, the socket left in the epoll set
            attempt = dialer.connect(host, port, be.timeout_connect, self._dialed)
            if attempt.done is not None:  # not refused at once (then a retry runs already)
                self.connecting = attempt
            return
        d = dialer.dial(host, port, be.timeout_connect)
        self.pending = d
        d.addCallbacks(self._connected, self._connect_failed).addErrback(self._internal_error)

    def _dialed(self, sock: socket.socket | None, error: ConnectError | None) -> None:
        self.connecting = None
        try:
            if sock is not None:
                self._connected(sock)
            else:
                assert error is not None
                self._retry_or_close(error.timeout)
        except Exception:
            self._internal_error(Failure())

    def _connect_failed(self, failure: Failure) -> None:
        self.pending = None
        if failure.check(CancelledError):
            return
        self._retry_or_close(isinstance(failure.value, ConnectError) and failure.value.timeout)

    def _retry_or_close(self, timed_out: bool) -> None:
        be, server = self.backend, self.server
        assert be is not None and server is not None
        if self.retries >= be.retries:
            server.counters.econ += 1
            be.pool.counters.econ += 1
            self._close("sC" if timed_out else "SC")
            return
        self.retries += 1
        if self._should_redispatch(server):
            server.counters.wredis += 1
            be.pool.counters.wredis += 1
            self.previous = server
            self.server = None
            be.pool.release(server)
            self._acquire(server)
            return
        server.counters.wretr += 1
        be.pool.counters.wretr += 1
        delay = min(be.timeout_connect or 1.0, 1.0)
        self.turnaround = self.clock.callLater(delay, self._attempt)

    def _should_redispatch(self, server: Server) -> bool:
        be = self.backend
        assert be is not None
        if not be.redispatch:
            return False
        if not server.running:
            return True
        if not be.hashed and be.pool.active_usable > 1:
            return True
        interval = be.redispatch_interval
        if interval > 0:
            return self.retries % interval == 0
        if interval < 0:
            period = be.retries + 1 + interval
            return period > 0 and self.retries % period == 0
        return False

    def _connected(self, ssock: socket.socket) -> None:
        self.pending = None
        if self.watching and self.loop is not None:
            # the pump takes the client's registration over (PumpLoop.park)
            self.watching = False
            self.loop.park(self.sock.fileno())
        be, server = self.backend, self.server
        assert be is not None and server is not None and self.t_assigned is not None
        now = self.clock.seconds()
        self.rec.tw = _ms(self.t_assigned - self.t0)
        self.rec.tc = _ms(now - self.t_assigned)
        cl, clfin = self.client_timeouts
        timeouts = PumpTimeouts.from_ms(
            cl, be.timeout_server, be.timeout_tunnel, clfin, be.timeout_server_fin
        )
        self.session = self.start_pump(self.sock, ssock, timeouts, self._pump_ended)

    def _pump_ended(self, session: Session, flags: str) -> None:
        self.rec.bytes_in = session.bytes_in
        self.rec.bytes_out = session.bytes_out
        if session.failure is not None:
            # One line for the fault, naming the session; its tcplog line follows.
            _log.failure(
                "session {frontend}/{backend}/{server} from {client}:{port} ended {flags} "
                "by an internal error; other sessions go on",
                session.failure,
                frontend=self.frontend_name,
                backend=self.rec.backend,
                server=self.rec.server,
                client=self.conn.src,
                port=self.conn.src_port,
                flags=flags,
            )
        self._close(flags, closed=True)

    def abort(self, flags: str = "KD") -> None:
        """End the session now (shutdown, admin kill)."""
        if self.finished:
            return
        if self.session is not None:
            self.session.end(flags)
            return
        if self.pending is not None:
            self.pending.cancel()
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        self._close(flags)

    # --- the end -------------------------------------------------------------------

    def _close(self, flags: str, closed: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        self._unwatch()
        if self.turnaround is not None and self.turnaround.active():
            self.turnaround.cancel()
        if not closed:
            self.sock.close()
        be, server = self.backend, self.server
        now = self.clock.seconds()
        rec = self.rec
        rec.termination = flags
        rec.tt = _ms(now - self.t0)
        rec.retries = self.retries
        if rec.tw < 0 and self.t_assigned is not None:
            rec.tw = _ms(self.t_assigned - self.t0)
        elif rec.tw < 0 and flags == "sQ":
            rec.tw = rec.tt
        if server is not None and be is not None:
            c = server.counters
            c.bytes_in += rec.bytes_in
            c.bytes_out += rec.bytes_out
            if rec.tc >= 0:
                # One sample per connected session, for the server and its backend alike.
                c.record_times(qtime=rec.tw, ctime=rec.tc, ttime=rec.tt)
                be.pool.counters.record_times(qtime=rec.tw, ctime=rec.tc, ttime=rec.tt)
            if flags[0] == "C":
                c.cli_abrt += 1
            elif flags == "SD":
                c.srv_abrt += 1
            be.pool.release(server)
            self.server = None
        if be is not None:
            be.beconn -= 1
            bc = be.pool.counters
            bc.bytes_in += rec.bytes_in
            bc.bytes_out += rec.bytes_out
            if flags[0] == "C":
                bc.cli_abrt += 1
            elif flags == "SD":
                bc.srv_abrt += 1
            rec.beconn = be.beconn
        if server is not None:
            rec.srv_conn = server.served
            rec.server = server.name
        if self.log is not None and not (self.dontlognull and rec.bytes_in == 0 and flags == "--"):
            rec.actconn, rec.feconn = self.counters()
            self.log(format_tcplog(rec))
        self.done(self)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
