"""The stats socket: HAProxy's line protocol on a unix socket (spec 3.1).

One-shot by default: one request line (``;``-separated commands), each reply
followed by an empty line, then the connection is closed. ``prompt`` switches
to interactive mode, where each reply is followed by ``\\n> `` and ``quit``
closes. A client that half-closes after a line without a newline is answered
too, so ``echo -n "show info" | socat stdio unix:...`` works like with HAProxy.

Wiring::

    StatsSocketService(sock.path, sock.effective_level, sock.mode, state, reactor)
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer  # type: ignore[import-untyped]

from haconfig.model import StatsLevel
from proxy.stats._cli import Bare, Cli, CliParser, Level
from proxy.stats._state import StatsState

log = Logger()

DEFAULT_TIMEOUT = 10.0  # HAProxy's default ``stats timeout``


@implementer(IHalfCloseableProtocol)
class StatsProtocol(Protocol):
    """One client of the stats socket."""

    def __init__(self, cli: Cli, clock: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cli = cli
        self.parser = CliParser()
        self.interactive = False
        self._closing = False
        self._clock = clock
        self._timeout = timeout
        self._idle: Any = None

    def connectionMade(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        if self._timeout and not self._closing:
            self._idle = self._clock.callLater(self._timeout, self._close)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._arm()
        for line in self.parser.feed(data):
            self._run_line(line)
            if self._closing:
                return
        if self.parser.overflow:
            self._write("Command line too long.\n\n")
            self._close()

    def _run_line(self, line: list[list[str]]) -> None:
        if line == [[]]:  # empty line
            if self.interactive:
                self._write("\n> ")
            else:
                self._close()
            return
        for words in line:
            if words == ["quit"]:
                self._close()
                return
            if words == ["prompt"]:
                self.interactive = not self.interactive
                out = ""
            else:
                out = self.cli.execute(words)
            end = "\n" if not isinstance(out, Bare) else ""
            self._write(out + end + ("> " if self.interactive else ""))
        if not self.interactive:
            self._close()

    def readConnectionLost(self) -> None:
        """The client half-closed: answer a last line sent without a newline, then close."""
        pending = self.parser.pending()
        if pending.strip() and not self._closing:
            for line in self.parser.feed(b"\n"):
                self._run_line(line)
        self._close()

    def writeConnectionLost(self) -> None:
        self._close()

    def _write(self, text: str) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.write(text.encode("utf-8"))

    def _close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        self._closing = True
        if self._idle is not None and self._idle.active():
            self._idle.cancel()


class StatsFactory(Factory):
    """Builds :class:`StatsProtocol` instances at one access level."""

    def __init__(
        self, state: StatsState, level: Level, clock: Any, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.state = state
        self.level = level
        self.clock = clock
        self.timeout = timeout

    def buildProtocol(self, addr: object) -> StatsProtocol:
        return StatsProtocol(Cli(self.state, self.level), self.clock, self.timeout)


class StatsSocketService(Service):
    """``stats socket <path> [mode <octal>] [level user|operator|admin]``.

    ``reactor`` provides ``IReactorUNIX`` and ``IReactorTime``. A stale socket
    file left by a previous run is replaced; any other file at the path is an
    error (``OSError`` from ``startService``)."""

    def __init__(
        self,
        path: str,
        level: StatsLevel | Level | str,
        mode: int | None,
        state: StatsState,
        reactor: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = path
        self.level = level if isinstance(level, Level) else Level.of(level)
        self.mode = mode
        self.state = state
        self.reactor = reactor
        self.factory = StatsFactory(state, self.level, reactor, timeout)
        self.port: Any = None

    def startService(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        self.port = self.reactor.listenUNIX(
            self.path, self.factory, mode=0o666 if self.mode is None else self.mode
        )
        if self.mode is not None:
            os.chmod(self.path, self.mode)
        super().startService()  # type: ignore[no-untyped-call]
        log.info(
            "stats socket {path} listening at level {access}",
            path=self.path,
            access=self.level.name.lower(),
        )

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        port, self.port = self.port, None
        if port is None:
            return None
        return port.stopListening()  # Twisted removes the socket file
