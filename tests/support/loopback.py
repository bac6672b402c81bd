"""In-process loopback servers for balancer tests: an echo backend (optionally greeting
with a banner) and a fixed-reply endpoint (an agent-check agent, a greeter).

Each listens on ``127.0.0.1`` (port 0 unless told), serves from daemon threads, and is
ended with :meth:`close`::

    a = Echo(banner=b"a")          # says b"a\\n", then echoes
    agent = Replier(b"ready up\\n")  # answers every connection with ``agent.reply``
    ...
    a.close(); agent.close()
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Echo:
    """A loopback echo backend, a thread per client; greets with ``banner + b"\\n"`` first
    when a banner is given (so a client learns which server it reached)."""

    def __init__(self, banner: bytes | None = None, port: int = 0) -> None:
        self.banner = banner
        self.sock = socket.create_server(("127.0.0.1", port), backlog=128)
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.banner is not None:
                    conn.sendall(self.banner + b"\n")
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        """Stop listening (established clients end with their threads)."""
        self.sock.close()


class Replier:
    """A loopback endpoint answering every connection with the current ``reply``, then
    closing it; ``reply`` may be changed at any time (an agent-check agent)."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(self.reply)

    def close(self) -> None:
        """Stop listening and wait (bounded) for the accept thread to end."""
        self.sock.close()
        self.thread.join(5)
