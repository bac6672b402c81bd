"""Backends for the balancer's integration tests and benchmark, one process each.

    python tests/proxy/_servers.py echo PORT       echo every byte; EOF -> finish and close
    python tests/proxy/_servers.py firehose PORT   send zeros as fast as the peer takes them

Prints ``ready`` on stdout once listening. Plain ``selectors`` + non-blocking
sockets with large reads, so it is not the bottleneck.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys

CHUNK = 256 * 1024


def serve(mode: str, port: int) -> None:
    sel = selectors.DefaultSelector()
    lsock = socket.create_server(("127.0.0.1", port), backlog=1024)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    pending: dict[socket.socket, bytes] = {}
    eof: set[socket.socket] = set()
    zeros = bytes(CHUNK)
    print("ready", flush=True)

    def close(s: socket.socket) -> None:
        sel.unregister(s)
        pending.pop(s, None)
        eof.discard(s)
        s.close()

    while True:
        for key, events in sel.select():
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if key.data is None:
                try:
                    while True:
                        c, _ = s.accept()
                        c.setblocking(False)
                        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        mask = selectors.EVENT_READ
                        if mode == "firehose":
                            mask |= selectors.EVENT_WRITE
                            pending[c] = zeros
                        sel.register(c, mask, "c")
                except BlockingIOError:
                    pass
                continue
            try:
                if events & selectors.EVENT_WRITE and s in pending:
                    data = pending[s]
                    n = s.send(data)
                    if mode == "firehose":
                        continue
                    if n < len(data):
                        pending[s] = data[n:]
                        continue
                    del pending[s]
                    if s in eof:
                        close(s)
                    else:
                        sel.modify(s, selectors.EVENT_READ, "c")
                    continue
                if events & selectors.EVENT_READ:
                    data = s.recv(CHUNK)
                    if not data:
                        if s in pending and mode != "firehose":
                            eof.add(s)
                            sel.modify(s, selectors.EVENT_WRITE, "c")
                        else:
                            close(s)
                        continue
                    if mode == "echo":
                        n = 0
                        with contextlib.suppress(BlockingIOError):
                            n = s.send(data)
                        if n < len(data):
                            pending[s] = data[n:]
                            sel.modify(s, selectors.EVENT_WRITE, "c")
            except OSError:
                close(s)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
