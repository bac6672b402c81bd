"""Listeners and frontends: accepting connections within ``maxconn``.

A :class:`Listener` is one listening socket (one port of one ``bind``) that the
reactor watches as a reader; it accepts in batches. At the global or the
frontend ``maxconn`` the listeners stop being watched, so new clients wait in
the kernel backlog as HAProxy leaves them (spec 1.12), and they are watched
again as soon as a connection ends.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable

from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from proxy._reactor import Clock, FDSet

log = Logger()

ACCEPT_BATCH = 64
BACKOFF = 0.1  # seconds without accepting after an accept() error (EMFILE, ENFILE, ...)
#: accept() errors that concern one connection only: go on with the next
_SKIP = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.EHOSTUNREACH)
DEFAULT_BACKLOG = 1024


class ListenError(OSError):
    """A listening socket could not be opened (``cannot bind socket`` in HAProxy)."""


def open_listening_socket(host: str, port: int, backlog: int | None = None) -> socket.socket:
    """A non-blocking listening TCP socket on ``host:port`` (SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog or DEFAULT_BACKLOG)
    except OSError as e:
        sock.close()
        raise ListenError(e.errno, f"cannot bind socket [{host}:{port}]: {e.strerror}") from e
    sock.setblocking(False)
    return sock


Accept = Callable[[socket.socket, tuple[str, int], tuple[str, int]], None]


class Listener:
    """One listening socket; provides ``IReadDescriptor`` for the reactor."""

    def __init__(
        self, reactor: FDSet, sock: socket.socket, on_accept: Accept, clock: Clock
    ) -> None:
        self.reactor = reactor
        self.clock = clock
        self.sock = sock
        self.on_accept = on_accept
        self.local: tuple[str, int] = sock.getsockname()[:2]
        #: The configured (listen host, port) this socket serves; a reload keeps the
        #: socket of every address that is still configured, whichever frontend owns it.
        self.key: tuple[str, int] = self.local
        #: bound to one address: every accepted socket's own address is ours, no
        #: ``getsockname`` per connection (a wildcard bind asks each socket)
        self.fixed_local = self.local[0] not in ("0.0.0.0", "::")
        self.reading = False
        self.backing_off = False
        self.keepalive = False
        self.accepted = 0

    @property
    def port(self) -> int:
        return self.local[1]

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return f"Listener {self.local[0]}:{self.local[1]}"

    def connectionLost(self, reason: Failure) -> None:
        """The reactor dropped this reader: at shutdown, or because ``doRead`` raised.
        In the second case the listener comes back after :data:`BACKOFF`."""
        if reason.check(ConnectionLost) or self.sock.fileno() < 0 or not self.reading:
            self.reading = False
            return
        log.failure("listener {listener} failed; resuming", reason, listener=self.logPrefix())
        self.backing_off = True
        self.clock.callLater(BACKOFF, self._retry)

    def resume(self) -> None:
        if not self.reading:
            self.reading = True
            if not self.backing_off:
                self.reactor.addReader(self)

    def pause(self) -> None:
        if self.reading:
            self.reading = False
            self.reactor.removeReader(self)

    def close(self) -> None:
        self.pause()
        self.sock.close()

    def rebind(self, on_accept: Accept, keepalive: bool) -> None:
        """Hand this socket to another frontend (reload): later accepts go to ``on_accept``."""
        self.on_accept = on_accept
        self.keepalive = keepalive

    def _back_off(self) -> None:
        """accept() failed: stop polling for a moment instead of spinning on it, then go
        on; the listener never goes away because of an error."""
        if self.backing_off:
            return
        self.backing_off = True
        self.reactor.removeReader(self)
        self.clock.callLater(BACKOFF, self._retry)

    def _retry(self) -> None:
        self.backing_off = False
        if self.reading:
            self.reactor.addReader(self)

    def doRead(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if not self.reading:
                return
            try:
                conn, addr = self.sock.accept()
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    return
                if e.errno in _SKIP:
                    continue
                # EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unknown: say so, pause, resume.
                log.warn(
                    "accept on {listener}: {error}; pausing {backoff}s",
                    listener=self.logPrefix(),
                    error=e,
                    backoff=BACKOFF,
                )
                self._back_off()
                return
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.keepalive:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                local = self.local if self.fixed_local else conn.getsockname()[:2]
            except OSError:
                conn.close()  # reset before we got to it
                continue
            self.accepted += 1
            try:
                self.on_accept(conn, addr[:2], local)
            except Exception:
                log.failure("session setup failed on {listener}", listener=self.logPrefix())
                with contextlib.suppress(OSError):
                    conn.close()
