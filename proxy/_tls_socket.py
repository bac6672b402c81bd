"""A TLS leg that the byte pump drives like a plain socket.

:class:`TLSSocket` *is* a ``socket.socket`` (it takes over the descriptor of the
accepted or dialled one) whose ``recv``/``send``/``shutdown`` go through a
pyOpenSSL ``Connection`` bound to the same descriptor. The pump calls the same
three methods on every leg, so plain sessions keep their C-level socket methods
and pay nothing for TLS; TLS legs turn OpenSSL's want-read/want-write into
``EAGAIN``, which the pump already handles, and count clear bytes (what HAProxy
counts).

Reads drain whole records until OpenSSL wants more from the kernel, so no clear
text is ever left inside OpenSSL while the socket looks idle to ``epoll``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Any

from OpenSSL import SSL

#: The largest clear text of one TLS record: one ``SSL_read`` never returns more.
RECORD = 16384


def _is_eof(error: SSL.Error) -> bool:
    """OpenSSL 3 reports a TCP close without ``close_notify`` as an error."""
    return "unexpected eof" in str(error).lower()


class TLSSocket(socket.socket):
    """A non-blocking TCP socket with TLS on it; ``tls`` is the pyOpenSSL connection."""

    tls: SSL.Connection

    @classmethod
    def wrap(cls, raw: socket.socket, context: SSL.Context, *, server_side: bool) -> TLSSocket:
        """Take over ``raw``'s descriptor (``raw`` is detached) and put TLS on it."""
        family, type_, proto = raw.family, raw.type, raw.proto
        sock = cls(family, type_, proto, fileno=raw.detach())
        sock.setblocking(False)
        sock.tls = SSL.Connection(context, sock)
        if server_side:
            sock.tls.set_accept_state()
        else:
            sock.tls.set_connect_state()
        return sock

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if flags:
            # MSG_PEEK from the session's abort watch: look at the raw stream.
            return super().recv(bufsize, flags)
        conn = self.tls
        parts: list[bytes] = []
        total = 0
        # Whole records only (see the module docstring); a second one only if it fits.
        while not parts or total + RECORD <= bufsize:
            try:
                data = conn.recv(RECORD)
            except (SSL.WantReadError, SSL.WantWriteError):
                break
            except SSL.ZeroReturnError:
                data = b""
            except SSL.SysCallError as e:
                code = e.args[0] if e.args and isinstance(e.args[0], int) else -1
                if code in (-1, 0):
                    data = b""
                else:
                    raise OSError(code, f"TLS read: {e}") from e
            except SSL.Error as e:
                if not _is_eof(e):
                    raise OSError(errno.ECONNRESET, f"TLS read: {e}") from e
                data = b""
            if not data:
                if parts:
                    break  # the EOF is seen again on the next read
                return b""
            parts.append(data)
            total += len(data)
        if not parts:
            raise BlockingIOError(errno.EAGAIN, "TLS wants more")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return int(self.tls.send(data))
        except (SSL.WantReadError, SSL.WantWriteError) as e:
            raise BlockingIOError(errno.EAGAIN, "TLS wants more") from e
        except SSL.SysCallError as e:
            code = e.args[0] if e.args and isinstance(e.args[0], int) and e.args[0] > 0 else 0
            raise OSError(code or errno.EPIPE, f"TLS write: {e}") from e
        except SSL.Error as e:
            raise OSError(errno.ECONNRESET, f"TLS write: {e}") from e

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]

    def shutdown(self, how: int) -> None:
        """Send ``close_notify`` (best effort) before shutting the TCP direction."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            with contextlib.suppress(SSL.Error):
                self.tls.shutdown()
        try:
            super().shutdown(how)
        except OSError as e:
            # Our close_notify went to a peer that had closed already: it answered with
            # a reset. Its stream ended cleanly before that, as HAProxy logs it (``--``).
            if e.errno not in (errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE):
                raise
