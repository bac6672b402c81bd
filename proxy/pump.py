"""The byte pump: moves the bytes of established connections between raw sockets.

Twisted accepts, chooses and connects; once both legs of a session are connected
their sockets leave Twisted's transports and are driven by a :class:`PumpLoop`:
one ``epoll`` object of our own, registered with the reactor as a single reader.
When the reactor reports it readable, the loop drains the ready events in a
tight loop (one ``recv`` and one ``send`` per chunk, no per-chunk objects beyond
the bytes read). This is the design that ``specs/proxy-performance.md`` points
to: Twisted's per-transport path costs about three times HAProxy's CPU per
message, a plain readable/writable loop does not.

What still holds, per connection:

- **backpressure**: at most one chunk per direction is held. When a send is
  partial the reading side is paused (removed from the epoll interest set) and
  the writing side is watched for writability; memory stays bounded however
  slow a reader is;
- **half-close**: EOF from one side becomes ``shutdown(SHUT_WR)`` on the other
  once the pending chunk is written; the session ends when both directions are
  shut;
- **timeouts** ``client``/``server``/``tunnel``/``client-fin``/``server-fin``
  with HAProxy's semantics (each side's inactivity is refreshed by reads from
  and writes to that side; ``tunnel`` replaces client/server once established;
  the ``-fin`` ones apply once one direction is shut), ended with ``cD``/``sD``;
- **byte counters** per direction, for tcplog and the stats.

The timer of a session is re-armed lazily: activity only stores a time, and the
one ``DelayedCall`` re-computes the deadline when it fires.

A leg may be a :class:`proxy._tls_socket.TLSSocket` (``bind ... ssl``, ``server ...
ssl``): the same ``recv``/``send``/``shutdown`` calls, with OpenSSL's want-read and
want-write surfacing as ``EAGAIN``, so everything above holds for TLS sessions and
the byte counters count clear bytes, as HAProxy's do. Plain legs are real sockets
and pay nothing for it.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.python.failure import Failure

from proxy._reactor import Clock, FDSet

CHUNK = 256 * 1024
#: reads per leg, at the start of a session, after which the kernel's ACK policy is left alone
QUICKACK_READS = 16
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLERR = select.EPOLLERR | select.EPOLLHUP
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


@dataclass(frozen=True)
class PumpTimeouts:
    """Timeouts of an established session, in seconds; ``None`` = no timeout."""

    client: float | None = None
    server: float | None = None
    tunnel: float | None = None
    client_fin: float | None = None
    server_fin: float | None = None

    @classmethod
    def from_ms(
        cls,
        client: int | None,
        server: int | None,
        tunnel: int | None = None,
        client_fin: int | None = None,
        server_fin: int | None = None,
    ) -> PumpTimeouts:
        def s(ms: int | None) -> float | None:
            return ms / 1000.0 if ms else None

        return cls(s(client), s(server), s(tunnel), s(client_fin), s(server_fin))

    def client_side(self, half_closed: bool) -> float | None:
        if half_closed and self.client_fin is not None:
            return self.client_fin
        return self.tunnel if self.tunnel is not None else self.client

    def server_side(self, half_closed: bool) -> float | None:
        if half_closed and self.server_fin is not None:
            return self.server_fin
        return self.tunnel if self.tunnel is not None else self.server


class _Side:
    """One leg of a session: its socket and the chunk waiting to be written to it."""

    __slots__ = (
        "bytes_read",
        "eof",
        "fd",
        "last",
        "name",
        "owner",
        "peer",
        "pending",
        "reads",
        "shut",
        "sock",
    )

    def __init__(self, sock: socket.socket, name: str, owner: Session) -> None:
        self.sock = sock
        self.owner = owner
        self.fd = sock.fileno()
        self.name = name  # "C" (client) or "S" (server): the termination flag's first char
        self.peer: _Side = self
        self.pending: memoryview | None = None
        self.eof = False  # EOF read from this side
        self.shut = False  # we shut down our writing to this side
        self.bytes_read = 0
        self.reads = 0  # counted only up to QUICKACK_READS
        self.last = 0.0


class Session:
    """One established connection in the pump; ``on_end(session, flags)`` is called once."""

    __slots__ = ("_timer", "client", "ended", "loop", "on_end", "server", "timeouts")

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
        when = min(d for d in (dc, ds, float("inf")) if d is not None)
        if when == float("inf"):
            self._timer = None
            return
        clock = self.loop.clock
        self._timer = clock.callLater(max(0.0, when - clock.seconds()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self.ended:
            return
        now = self.loop.clock.seconds()
        dc, ds = self._deadlines()
        if dc is not None and now >= dc - 1e-6:
            self.end("cD")
        elif ds is not None and now >= ds - 1e-6:
            self.end("sD")
        else:
            self._arm()

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
        self.loop.remove(self)
        for side in (self.client, self.server):
            with contextlib.suppress(OSError):
                side.sock.close()
        self.on_end(self, flags)

    def _half_closed(self) -> None:
        """A direction just shut: the ``-fin`` timeouts may now apply, re-arm."""
        if self.client.shut and self.server.shut:
            self.end("--")
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._arm()


class PumpLoop:
    """An ``epoll`` set of pumped sockets, seen by the reactor as one reader.

    It provides ``IReadDescriptor`` (``fileno``, ``doRead``, ``connectionLost``,
    ``logPrefix``); the reactor does not check the declaration, so none is made."""

    def __init__(self, reactor: FDSet, clock: Clock, chunk: int = CHUNK) -> None:
        self.reactor = reactor
        self.clock = clock
        self.chunk = chunk
        self.ep = select.epoll()
        self.sides: dict[int, _Side] = {}
        self.watchers: dict[int, Callable[[int], None]] = {}
        self.sessions = 0
        reactor.addReader(self)

    # IReadDescriptor
    def fileno(self) -> int:
        return self.ep.fileno()

    def logPrefix(self) -> str:
        return "PumpLoop"

    def connectionLost(self, reason: Failure) -> None:
        pass

    def close(self) -> None:
        self.reactor.removeReader(self)
        self.ep.close()

    # --- registration ---------------------------------------------------------------

    def add(self, s: Session) -> None:
        for side in (s.client, s.server):
            self.sides[side.fd] = side
            self.ep.register(side.fd, _EPOLLIN)
        self.sessions += 1

    def remove(self, s: Session) -> None:
        for side in (s.client, s.server):
            if self.sides.pop(side.fd, None) is not None:
                with contextlib.suppress(OSError):
                    self.ep.unregister(side.fd)
        self.sessions -= 1

    def watch(self, fd: int, mask: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(events)`` when ``fd`` is ready (used by the dialer)."""
        self.watchers[fd] = callback
        self.ep.register(fd, mask)

    def unwatch(self, fd: int) -> None:
        if self.watchers.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self.ep.unregister(fd)

    def _interest(self, side: _Side) -> None:
        """Re-compute what to wait for on ``side`` from the session's state."""
        if side.eof and side.shut:
            # Nothing more to read or write on this leg; epoll would keep reporting HUP.
            with contextlib.suppress(OSError):
                self.ep.unregister(side.fd)
            return
        mask = 0
        if not side.eof and side.peer.pending is None:
            mask |= _EPOLLIN
        if side.pending is not None:
            mask |= _EPOLLOUT
        with contextlib.suppress(OSError):
            self.ep.modify(side.fd, mask)

    # --- the hot path -----------------------------------------------------------------

    def doRead(self) -> None:
        events = self.ep.poll(0, 512)
        sides = self.sides
        for fd, ev in events:
            side = sides.get(fd)
            if side is None:
                cb = self.watchers.get(fd)
                if cb is not None:
                    cb(ev)
                continue
            if ev & _EPOLLOUT and side.pending is not None:
                self._write(side)
                if fd not in sides:
                    continue
            if ev & (_EPOLLIN | _EPOLLERR):
                if not side.eof and side.peer.pending is None:
                    self._read(side)
                elif ev & _EPOLLERR and not (side.eof and side.shut):
                    self._fail(side)

    def _read(self, side: _Side) -> None:
        try:
            data = side.sock.recv(self.chunk)
        except OSError as e:
            if e.errno in _AGAIN:
                return
            self._fail(side)
            return
        peer = side.peer
        now = self.clock.seconds()
        if not data:
            side.eof = True
            side.last = now
            if peer.pending is None:
                self._shut(peer)
            else:
                self._interest(side)
            return
        side.bytes_read += len(data)
        side.last = peer.last = now
        if side.reads < QUICKACK_READS:
            # Acknowledge at once while the session opens: SASL and TLS clients write their
            # first messages in small pieces with Nagle on, and a delayed ACK here would hold
            # each piece ~40 ms (measured: Kerberos over TLS 46 ms -> 3.6 ms per connection).
            side.reads += 1
            with contextlib.suppress(OSError):
                side.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        try:
            n = peer.sock.send(data)
        except OSError as e:
            if e.errno not in _AGAIN:
                self._fail(peer)
                return
            n = 0
        if n < len(data):
            peer.pending = memoryview(data)[n:]
            self._interest(side)
            self._interest(peer)

    def _write(self, side: _Side) -> None:
        pending = side.pending
        assert pending is not None
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
