"""One check over the network: connect, optional TLS, then a :class:`Dialogue`.

Never blocks: a check is a TCP connection driven by the reactor and bounded by
one timer. Timeouts follow spec 1.10: with ``timeout check`` set, the connect
part is bounded by ``min(timeout connect, inter)`` and the rest by ``timeout
check``; without it, ``inter`` bounds the whole check. The phase the timer
fires in names the code: ``L4TOUT`` while connecting, ``L6TOUT`` during the
TLS handshake, the dialogue's own (``L7TOUT``) after.

Check connections are closed with a reset (``abortConnection``), like
HAProxy's, so that a thousand checks a second leave no TIME_WAIT behind.
"""

from __future__ import annotations

import contextlib
import enum
import os
from dataclasses import dataclass
from typing import Any

from twisted.internet import error
from twisted.internet.base import DelayedCall
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

from proxy.checks._dialogue import Dialogue
from proxy.checks._status import CheckResult, CheckStatus


@dataclass(frozen=True)
class ProbeTimeouts:
    """Seconds: ``connect`` bounds the TCP connect; ``rest`` (if set) the TLS and dialogue
    part, else ``connect`` bounds the whole check."""

    connect: float
    rest: float | None = None

    @classmethod
    def from_config(
        cls, inter_ms: int, timeout_check_ms: int | None, timeout_connect_ms: int | None
    ) -> ProbeTimeouts:
        if timeout_check_ms:
            connect = min(timeout_connect_ms or inter_ms, inter_ms)
            return cls(connect / 1000, timeout_check_ms / 1000)
        return cls(inter_ms / 1000, None)


class _Phase(enum.Enum):
    CONNECTING = 1
    TLS = 2
    DIALOGUE = 3
    DONE = 4


def _connect_error_info(exc: BaseException) -> str:
    if isinstance(exc, error.ConnectError):
        if isinstance(exc.osError, int):
            return os.strerror(exc.osError)
        if exc.osError:
            return str(exc.osError)
        if exc.__doc__:
            return exc.__doc__.strip().split("\n")[0].rstrip(".")
    return str(exc) or type(exc).__name__


@implementer(IHandshakeListener)
class _ProbeProtocol(Protocol):
    def __init__(self, probe: _Probe) -> None:
        self._probe = probe

    def connectionMade(self) -> None:
        self._probe.connected(self)

    def handshakeCompleted(self) -> None:
        self._probe.handshake_done()

    def dataReceived(self, data: bytes) -> None:
        self._probe.data(data)

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self._probe.lost(reason)


class _Probe(ClientFactory):
    """Runs one check and fires :attr:`done` with its :class:`CheckResult` (never errbacks)."""

    noisy = False  # no "Starting factory" log line per check

    def __init__(
        self,
        reactor: Any,
        dialogue: Dialogue,
        timeouts: ProbeTimeouts,
        tls: object | None,
    ) -> None:
        self._reactor: Any = reactor
        self._dialogue = dialogue
        self._timeouts = timeouts
        self._tls = tls
        self._phase = _Phase.CONNECTING
        self._start = reactor.seconds()
        self._timer: DelayedCall = reactor.callLater(timeouts.connect, self._timed_out)
        self._connector: Any = None
        self._proto: _ProbeProtocol | None = None
        self.done: Deferred[CheckResult] = Deferred()

    # factory side
    def buildProtocol(self, addr: object) -> _ProbeProtocol:
        return _ProbeProtocol(self)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self._connector = None
        if self._phase is not _Phase.CONNECTING:
            return
        exc = reason.value
        if isinstance(exc, error.TimeoutError):
            self._finish(CheckResult(CheckStatus.L4TOUT))
        else:
            self._finish(CheckResult(CheckStatus.L4CON, _connect_error_info(exc or Exception())))

    # protocol side
    def connected(self, proto: _ProbeProtocol) -> None:
        self._proto = proto
        if self._phase is _Phase.DONE:
            self._close()
            return
        if self._timeouts.rest is not None:
            self._timer.cancel()
            self._timer = self._reactor.callLater(self._timeouts.rest, self._timed_out)
        if self._tls is not None:
            self._phase = _Phase.TLS
            assert proto.transport is not None
            transport: Any = proto.transport
            transport.startTLS(self._tls)
            return
        self._begin_dialogue()

    def handshake_done(self) -> None:
        if self._phase is _Phase.TLS:
            self._begin_dialogue()

    def _begin_dialogue(self) -> None:
        self._phase = _Phase.DIALOGUE
        out, result = self._dialogue.start()
        self._send(out)
        if result is not None:
            self._finish(result)

    def data(self, data: bytes) -> None:
        if self._phase is not _Phase.DIALOGUE:
            return
        out, result = self._dialogue.feed(data)
        self._send(out)
        if result is not None:
            self._finish(result)

    def lost(self, reason: Failure) -> None:
        if self._phase is _Phase.TLS:
            self._finish(CheckResult(CheckStatus.L6RSP, "SSL handshake failure"))
        elif self._phase is _Phase.DIALOGUE:
            self._finish(self._dialogue.eof())
        elif self._phase is _Phase.CONNECTING:
            self._finish(
                CheckResult(CheckStatus.L4CON, _connect_error_info(reason.value or Exception()))
            )

    def _send(self, out: bytes) -> None:
        if out and self._proto is not None and self._proto.transport is not None:
            transport: Any = self._proto.transport
            transport.write(out)

    def _timed_out(self) -> None:
        phase = self._phase
        if phase is _Phase.CONNECTING:
            self._finish(CheckResult(CheckStatus.L4TOUT))
        elif phase is _Phase.TLS:
            self._finish(CheckResult(CheckStatus.L6TOUT))
        elif phase is _Phase.DIALOGUE:
            self._finish(self._dialogue.timeout())

    def _finish(self, result: CheckResult) -> None:
        if self._phase is _Phase.DONE:
            return
        self._phase = _Phase.DONE
        if self._timer.active():
            self._timer.cancel()
        elapsed = max(0, int((self._reactor.seconds() - self._start) * 1000))
        self._close()
        self.done.callback(result.with_duration(elapsed))

    def _close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            transport: Any = self._proto.transport
            transport.abortConnection()
        elif self._connector is not None:
            connector, self._connector = self._connector, None
            with contextlib.suppress(error.NotConnectingError):
                connector.stopConnecting()


def probe(
    reactor: Any,
    host: str,
    port: int,
    dialogue: Dialogue,
    timeouts: ProbeTimeouts,
    tls: object | None = None,
    bind_address: tuple[str, int] | None = None,
) -> Deferred[CheckResult]:
    """Run one check against ``host:port``; the Deferred always fires with a result.

    ``reactor`` provides :class:`IReactorTCP` and :class:`IReactorTime`; ``tls`` is
    a client context factory (``twisted.internet.ssl.CertificateOptions``) for
    ``check-ssl``."""
    runner = _Probe(reactor, dialogue, timeouts, tls)
    # our own timer bounds the connect; the reactor's is only a backstop
    runner._connector = reactor.connectTCP(
        host, port, runner, timeout=timeouts.connect + 30, bindAddress=bind_address
    )
    return runner.done
