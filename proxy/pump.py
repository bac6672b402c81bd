"""The byte pump: moves the bytes of established connections between raw sockets.

Twisted accepts, chooses and connects; once both legs of a session are connected
their sockets leave Twisted's transports and are driven by a :class:`PumpLoop`:
one ``epoll`` object of our own, registered with the reactor as a single reader.
When the reactor reports it readable, the loop drains the ready events in a
tight loop (one ``recv`` and one ``send`` per chunk, no per-chunk objects beyond
the bytes read). This is the design that ``specs/proxy-performance.md`` points
to: Twisted's per-transport path costs about three times HAProxy's CPU per
message, a plain readable/writable loop does not.

What holds, per connection (the promises the README lists, proven over generated
schedules in ``tests/proxy/test_pump_schedules.py``):

- **no byte lost or reordered**: what is read from one leg is written to the other
  in order before anything after it; EOF is passed on only once everything before
  it is written;
- **bounded memory** (``tune.bufsize``, HAProxy's 16 KiB by default): reads go into
  one buffer the loop shares, and a session holds in user space at most what one
  partial ``send`` left over, never more than ``bufsize`` per direction. The reading
  side is then paused (removed from the epoll set) and the writing side watched
  for writability, so the rest waits in the kernel however slow a reader is;
- **half-close**: EOF from one side becomes ``shutdown(SHUT_WR)`` on the other once
  the pending chunk is written; the session ends when both directions are shut.
  ``EPOLLHUP`` without an error only says the peer is done sending: the leg is
  still drained to EOF. A leg with nothing to wait for is taken out of the epoll set
  (as HAProxy's poller does), so a HUP is never reported to a loop that would
  ignore it;
- **timeouts** ``client``/``server``/``tunnel``/``client-fin``/``server-fin``
  with HAProxy's semantics (each side's inactivity is refreshed by reads from
  and writes to that side; ``tunnel`` replaces client/server once established;
  the ``-fin`` ones apply once one direction is shut), ended with ``cD``/``sD``;
- **fault isolation**: an exception while handling one session's event ends that
  session only (``ID``, the failure kept on :attr:`Session.failure` for its log
  line); the loop goes on. If the reactor drops the loop itself, :attr:`PumpLoop.lost`
  is set and said loudly, and the watchdog stops;
- **byte counters** per direction, for tcplog and the stats.

The timer of a session is re-armed lazily: activity only stores a time, and the
one ``DelayedCall`` re-computes the deadline when it fires.

A leg may be a :class:`proxy._tls_socket.TLSSocket` (``bind ... ssl``, ``server ...
ssl``): the same ``recv``/``send``/``shutdown`` calls, with OpenSSL's want-read and
want-write surfacing as ``EAGAIN``, so everything above holds for TLS sessions and
the byte counters count clear bytes, as HAProxy's do. Plain legs read with
``recv_into`` the loop's shared buffer; a TLS leg's ``recv`` returns at most one
record (16 KiB) of clear text per call, so a TLS leg holds at most
``max(bufsize, 16 KiB)``: OpenSSL must hand out whole records, or clear text would be
left inside it while ``epoll`` sees the socket idle.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from proxy._reactor import Clock, FDSet
from proxy._tls_socket import TLSSocket

#: HAProxy's ``tune.bufsize`` default: what a session may hold per direction
DEFAULT_BUFSIZE = 16384
#: reads of one leg per wake-up while its peer takes everything (fairness between sessions)
BURST = 16
#: the largest read of a bulk stream (see :meth:`PumpLoop._read`); nothing of it is kept
BULK = 256 * 1024
#: ``pending`` of a leg whose bytes still wait in the kernel, in its peer's receive queue
_KERNEL = memoryview(b"")
_MSG_PEEK = socket.MSG_PEEK
_MSG_TRUNC = socket.MSG_TRUNC
#: reads per leg, at the start of a session, after which the kernel's ACK policy is left alone
QUICKACK_READS = 16
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERRHUP = select.EPOLLERR | select.EPOLLHUP
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)

log = Logger()


@dataclass(frozen=True)
class PumpTimeouts:
    """Timeouts of an established session, in seconds; ``None`` = no timeout."""

    client: float | None = None
    server: float | None = None
    tunnel: float | None = None
    client_fin: float | None = None
    server_fin: float | None = None

    @staticmethod
    def from_ms(
        client: int | None,
        server: int | None,
        tunnel: int | None = None,
        client_fin: int | None = None,
        server_fin: int | None = None,
    ) -> PumpTimeouts:
        """From the model's milliseconds; the same five give the same (frozen) object,
        made once, not once per session."""
        return _timeouts_from_ms(client, server, tunnel, client_fin, server_fin)

    def client_side(self, half_closed: bool) -> float | None:
        if half_closed and self.client_fin is not None:
            return self.client_fin
        return self.tunnel if self.tunnel is not None else self.client

    def server_side(self, half_closed: bool) -> float | None:
        if half_closed and self.server_fin is not None:
            return self.server_fin
        return self.tunnel if self.tunnel is not None else self.server


@functools.lru_cache(maxsize=256)
def _timeouts_from_ms(
    client: int | None,
    server: int | None,
    tunnel: int | None,
    client_fin: int | None,
    server_fin: int | None,
) -> PumpTimeouts:
    def s(ms: int | None) -> float | None:
        return ms / 1000.0 if ms else None

    return PumpTimeouts(s(client), s(server), s(tunnel), s(client_fin), s(server_fin))


class _Side:
    """One leg of a session: its socket and the bytes waiting to be written to it."""

    __slots__ = (
        "bytes_read",
        "eof",
        "fd",
        "last",
        "mask",
        "name",
        "owner",
        "peer",
        "pending",
        "reads",
        "shut",
        "sock",
        "tls",
    )

    def __init__(self, sock: socket.socket, name: str, owner: Session) -> None:
        self.sock = sock
        self.owner = owner
        self.fd = sock.fileno()
        self.tls = isinstance(sock, TLSSocket)
        self.name = name  # "C" (client) or "S" (server): the termination flag's first char
        self.peer: _Side = self
        #: what a partial send left over, at most ``bufsize`` bytes; :data:`_KERNEL` when
        #: the rest is still in the peer's socket (a bulk read only looked at it)
        self.pending: memoryview | None = None
        self.eof = False  # EOF read from this side
        self.shut = False  # we shut down our writing to this side
        #: the epoll interest registered for this leg: -1 not in the set, 0 errors only
        self.mask = -1
        self.bytes_read = 0
        self.reads = 0  # counted only up to QUICKACK_READS
        self.last = 0.0


class Session:
    """One established connection in the pump; ``on_end(session, flags)`` is called once.

    ``failure`` is set when the session ended because handling one of its events
    raised (flags ``ID``)."""

    __slots__ = ("_timer", "client", "ended", "failure", "loop", "on_end", "server", "timeouts")

    def __init__(
        self,
        loop: PumpLoop,
        client: socket.socket,
        server: socket.socket,
        timeouts: PumpTimeouts,
        on_end: Callable[[Session, str], None],
    ) -> None:
        self.loop = loop
        self.client = _Side(client, "C", self)
        self.server = _Side(server, "S", self)
        self.client.peer, self.server.peer = self.server, self.client
        self.timeouts = timeouts
        self.on_end = on_end
        self.ended = False
        self.failure: Failure | None = None
        self._timer: Any = None

    @property
    def bytes_in(self) -> int:
        """Bytes read from the client (sent to the server)."""
        return self.client.bytes_read

    @property
    def bytes_out(self) -> int:
        """Bytes read from the server (sent to the client)."""
        return self.server.bytes_read

    # --- timers -------------------------------------------------------------------

    def _deadlines(self) -> tuple[float | None, float | None]:
        half = self.client.eof or self.server.eof
        tc = self.timeouts.client_side(half)
        ts = self.timeouts.server_side(half)
        dc = self.client.last + tc if tc is not None else None
        ds = self.server.last + ts if ts is not None else None
        return dc, ds

    def _arm(self) -> None:
        dc, ds = self._deadlines()
        when = dc if ds is None or (dc is not None and dc <= ds) else ds
        if when is None:
            self._timer = None
            return
        clock = self.loop.clock
        self._timer = clock.callLater(max(0.0, when - clock.seconds()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self.ended:
            return
        try:
            now = self.loop.clock.seconds()
            dc, ds = self._deadlines()
            # The side whose deadline came first, should the timer fire late (ties: client).
            due = [(d, f) for d, f in ((dc, "cD"), (ds, "sD")) if d is not None and now >= d - 1e-6]
            if due:
                self.end(min(due)[1])
            else:
                self._arm()
        except Exception:
            self.loop.fault(self, Failure())

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        now = self.loop.clock.seconds()
        self.client.last = self.server.last = now
        self.loop.add(self)
        self._arm()

    def end(self, flags: str) -> None:
        """Close both legs and report ``flags`` (two termination characters)."""
        if self.ended:
            return
        self.ended = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.loop.remove(self, closing=True)
        for side in (self.client, self.server):
            side.pending = None
            with contextlib.suppress(OSError):
                side.sock.close()
        self.on_end(self, flags)

    def _half_closed(self) -> None:
        """A side sent EOF or a direction just shut: the ``-fin`` timeouts may now apply,
        re-arm (or end, once both directions are shut)."""
        if self.client.shut and self.server.shut:
            self.end("--")
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._arm()


class PumpLoop:
    """An ``epoll`` set of pumped sockets, seen by the reactor as one reader.

    It provides ``IReadDescriptor`` (``fileno``, ``doRead``, ``connectionLost``,
    ``logPrefix``); the reactor does not check the declaration, so none is made.
    ``bufsize`` is ``tune.bufsize``: the largest read, and the most a session holds
    per direction."""

    def __init__(self, reactor: FDSet, clock: Clock, bufsize: int = DEFAULT_BUFSIZE) -> None:
        self.reactor = reactor
        self.clock = clock
        self.bufsize = bufsize
        self.buf = bytearray(max(bufsize, BULK))
        self.view = memoryview(self.buf)
        self.ep = select.epoll()
        self.sides: dict[int, _Side] = {}
        self.watchers: dict[int, Callable[[int], None]] = {}
        #: fds still registered whose watcher was dropped (:meth:`park`)
        self._parked: set[int] = set()
        self.sessions = 0
        #: set when the reactor dropped the loop: no established session moves any more
        self.lost = False
        #: sessions ended by an exception in their handling (``ID``)
        self.faults = 0
        # On impala-lb's own reactor (proxy.reactor) this epoll is the one the process
        # waits on, the reactor's inside it; on any other, it is one of its readers.
        adopt = getattr(reactor, "adopt_pump", None)
        self._adopted = bool(adopt is not None and adopt(self))
        if not self._adopted:
            reactor.addReader(self)

    def set_bufsize(self, bufsize: int) -> None:
        """``tune.bufsize`` changed (reload): later reads use it."""
        self.bufsize = bufsize
        if bufsize > len(self.buf):
            self.buf = bytearray(bufsize)
            self.view = memoryview(self.buf)

    # IReadDescriptor
    def fileno(self) -> int:
        return self.ep.fileno()

    def logPrefix(self) -> str:
        return "PumpLoop"

    def connectionLost(self, reason: Failure) -> None:
        """The reactor gave up on the loop (``doRead`` raised past its own guard)."""
        if self.ep.closed or reason.check(ConnectionLost):
            return  # closed by us, or the reactor disconnecting everything as it stops
        self.lost = True
        log.critical(
            "the byte pump was lost: {sessions} established session(s) no longer move; "
            "the watchdog stops so that the service is restarted: {reason}",
            sessions=self.sessions,
            reason=reason.getErrorMessage(),
        )

    def close(self) -> None:
        if self._adopted:
            self.reactor.release_pump(self)  # type: ignore[attr-defined]
        else:
            self.reactor.removeReader(self)
        self.ep.close()

    # --- registration ---------------------------------------------------------------

    def add(self, s: Session) -> None:
        parked = self._parked
        for side in (s.client, s.server):
            fd = side.fd
            self.sides[fd] = side
            side.mask = _EPOLLIN
            if fd in parked:
                # still registered from the connect (or the client watch): one modify
                # instead of an unregister and a register
                parked.discard(fd)
                try:
                    self.ep.modify(fd, _EPOLLIN)
                    continue
                except FileNotFoundError:
                    pass
            self.ep.register(fd, _EPOLLIN)
        self.sessions += 1

    def remove(self, s: Session, *, closing: bool = False) -> None:
        """``s`` leaves the loop; ``closing``: its sockets are closed right after, which
        takes them out of the epoll set by itself (no ``unregister`` calls)."""
        for side in (s.client, s.server):
            self._forget(side, closing=closing)
        self.sessions -= 1

    def _forget(self, side: _Side, *, closing: bool = False) -> None:
        """``side`` leaves the loop: its fd out of the map and, if there, the epoll set."""
        if self.sides.get(side.fd) is side:
            del self.sides[side.fd]
        if side.mask >= 0:
            side.mask = -1
            if not closing:
                with contextlib.suppress(OSError, ValueError):
                    self.ep.unregister(side.fd)

    def watch(self, fd: int, mask: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(events)`` when ``fd`` is ready (the dialer, a client waiting
        for its server, a listener)."""
        self.watchers[fd] = callback
        if fd in self._parked:
            self._parked.discard(fd)
            with contextlib.suppress(FileNotFoundError):
                self.ep.modify(fd, mask)
                return
        self.ep.register(fd, mask)

    def unwatch(self, fd: int) -> None:
        if self.watchers.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self.ep.unregister(fd)

    # FDSet, for listeners (proxy.frontend.Listener): accepts then run in this loop's
    # dispatch, with no second pass through the reactor's for each wake-up
    def addReader(self, reader: Any) -> None:
        """Watch ``reader`` (``fileno``, ``doRead``, ``connectionLost``) for reading; an
        exception out of ``doRead`` drops it and tells it, as the reactor would."""

        def ready(events: int) -> None:
            try:
                reader.doRead()
            except Exception:
                self.unwatch(reader.fileno())
                reader.connectionLost(Failure())

        self.watch(reader.fileno(), _EPOLLIN, ready)

    def removeReader(self, reader: Any) -> None:
        self.unwatch(reader.fileno())

    def park(self, fd: int) -> None:
        """Stop calling ``fd``'s watcher but keep it in the epoll set: a session about
        given to :meth:`add` takes it over with one ``modify`` (its events meanwhile
        are dropped: the pump reads the socket itself once it runs)."""
        if self.watchers.pop(fd, None) is not None:
            self._parked.add(fd)

    def unpark(self, fd: int) -> None:
        """A parked ``fd`` will not become a session's: out of the epoll set."""
        if fd in self._parked:
            self._parked.discard(fd)
            with contextlib.suppress(OSError, ValueError):
                self.ep.unregister(fd)

    def _interest(self, side: _Side) -> None:
        """Re-compute what to wait for on ``side`` from the session's state.

        A leg with nothing to wait for stays in the set for errors only (a reset while
        the other direction finishes is seen at once), unless we shut our writing to it:
        then a HUP only means its peer is done too, and epoll would report it without
        end, so the leg leaves the set until it may be read again."""
        want = 0
        if not side.eof and side.peer.pending is None:
            want = _EPOLLIN
        if side.pending is not None:
            want |= _EPOLLOUT
        elif not want and side.shut:
            want = -1
        have = side.mask
        if want == have:
            return
        side.mask = want
        if want < 0:
            self.ep.unregister(side.fd)
        elif have < 0:
            self.ep.register(side.fd, want)
        else:
            self.ep.modify(side.fd, want)

    # --- faults ---------------------------------------------------------------------

    def fault(self, session: Session, failure: Failure) -> None:
        """Handling ``session`` raised: end that session only (``ID``), keep the loop."""
        self.faults += 1
        if session.ended:
            log.failure("pump: error after the session ended", failure)
            return
        session.failure = failure
        try:
            session.end("ID")
        except Exception:
            log.failure("pump: a session could not be ended cleanly", Failure())
            # Whatever went wrong, its descriptors must not stay in the set.
            for side in (session.client, session.server):
                self._forget(side)
                with contextlib.suppress(OSError):
                    side.sock.close()

    # --- the hot path -----------------------------------------------------------------

    def doRead(self) -> None:
        try:
            events = self.ep.poll(0, 512)
        except InterruptedError:
            return
        self.dispatch(events)

    def dispatch(self, events: list[tuple[int, int]], outer: int = -1) -> bool:
        """Handle ``events`` of this epoll set; whether ``outer`` (the reactor's own
        epoll, when it sits inside this one) was among them."""
        sides = self.sides
        found = False
        for fd, ev in events:
            if fd == outer:
                found = True
                continue
            side = sides.get(fd)
            if side is None:
                cb = self.watchers.get(fd)
                if cb is not None:
                    try:
                        cb(ev)
                    except Exception:
                        log.failure("pump: watcher of fd {fd} failed", fd=fd)
                        self.unwatch(fd)
                continue
            try:
                # An error or hang-up on a leg we write to shows as a failing send.
                if side.pending is not None and ev & (_EPOLLOUT | _EPOLLERRHUP):
                    self._write(side)
                    if side.owner.ended:
                        continue
                # Readable, EOF, HUP (peer done sending) or an error: read it; the kernel
                # hands out what it holds first, then EOF or the error.
                mask = side.mask
                if mask > 0 and mask & _EPOLLIN and ev & (_EPOLLIN | _EPOLLERRHUP):
                    self._read(side)
                elif mask == 0 and ev & _EPOLLERRHUP:
                    self._fail(side)  # reset while we waited for the other direction
            except Exception:
                self.fault(side.owner, Failure())
        return found

    def _read(self, side: _Side) -> None:
        """Move what ``side`` has to its peer, holding at most ``bufsize`` of it.

        A read takes at most ``bufsize``; what the peer does not take at once is kept
        (the only bytes a session holds). When a read fills the whole ``bufsize`` the
        kernel probably has more: the next reads only *look* (``MSG_PEEK``) at up to
        :data:`BULK` bytes, send them, and then drop from the kernel just what was sent
        (``MSG_TRUNC``: no copy). What the peer did not take stays in the kernel, and
        TCP's own window holds the sender back, so bulk streams move in large reads
        while a session still holds nothing beyond ``bufsize``."""
        peer = side.peer
        sock, psock = side.sock, peer.sock
        buf, view = self.buf, self.view
        size = self.bufsize
        peek = False
        for _ in range(BURST):
            try:
                if side.tls:
                    data: Any = sock.recv(size)
                    n = len(data)
                else:
                    n = sock.recv_into(buf, size, _MSG_PEEK if peek else 0)
                    data = view[:n]
            except OSError as e:
                if e.errno in _AGAIN:
                    return
                self._fail(side)
                return
            now = self.clock.seconds()
            if not n:
                side.eof = True
                side.last = now
                if peer.pending is None:
                    self._shut(peer)
                else:
                    self._interest(side)
                    side.owner._half_closed()  # the -fin timeouts apply from now
                return
            side.last = peer.last = now
            reads = side.reads
            if reads < QUICKACK_READS:
                # Acknowledge at once while the session opens: SASL and TLS clients write
                # their first messages in small pieces with Nagle on, and a delayed ACK here
                # would hold each piece ~40 ms (measured: Kerberos over TLS 46 ms -> 3.6 ms).
                # Not on a plain leg's first read: Linux acknowledges a connection's first
                # data at once by itself (quick-ack mode until it has sent data back).
                side.reads = reads + 1
                if reads or side.tls:
                    try:  # noqa: SIM105 (hot path: a try costs less than suppress())
                        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
                    except OSError:
                        pass
            try:
                sent = psock.send(data)
            except OSError as e:
                if e.errno not in _AGAIN:
                    self._fail(peer)
                    return
                sent = 0
            if peek:
                if sent:
                    try:
                        sock.recv_into(buf, sent, _MSG_TRUNC)
                    except OSError:
                        self._fail(side)  # reset between the look and the drop
                        return
                side.bytes_read += sent
                if sent < n:
                    peer.pending = _KERNEL
                    self._interest(side)
                    self._interest(peer)
                    return
            else:
                side.bytes_read += n
                if sent < n:
                    # The shared buffer is reused by the next read: keep a copy of the rest.
                    peer.pending = memoryview(bytes(data[sent:]))
                    self._interest(side)
                    self._interest(peer)
                    return
            if n < size:
                return  # the kernel had no more; the next wake-up says when it has
            if not side.tls and not peek:
                peek, size = True, len(buf)

    def _write(self, side: _Side) -> None:
        pending = side.pending
        assert pending is not None
        if pending is _KERNEL:
            # The bytes wait in the peer's socket: move them now that ``side`` has room.
            side.pending = None
            self._read(side.peer)
            if not side.owner.ended:
                self._interest(side)
                self._interest(side.peer)
            return
        try:
            n = side.sock.send(pending)
        except OSError as e:
            if e.errno in _AGAIN:
                return
            self._fail(side)
            return
        side.last = side.peer.last = self.clock.seconds()
        if n < len(pending):
            side.pending = pending[n:]
            return
        side.pending = None
        if side.peer.eof:
            self._shut(side)
        else:
            self._interest(side)
            self._interest(side.peer)

    def _shut(self, side: _Side) -> None:
        """Everything for ``side`` is written and its peer sent EOF: pass the EOF on."""
        if side.eof and side.peer.shut and not side.tls:
            # The last open direction, and ``side`` sent its EOF (nothing of it is left
            # unread): ``close`` sends the FIN itself, no ``shutdown`` first.
            side.shut = True
            side.owner.end("--")
            return
        try:
            side.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._fail(side)
            return
        side.shut = True
        self._interest(side)
        self._interest(side.peer)
        side.owner._half_closed()

    def _fail(self, side: _Side) -> None:
        side.owner.end(side.name + "D")
