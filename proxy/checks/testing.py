"""Test helpers shipped with the checks: drive check connections on a MemoryReactorClock.

``refuse`` / ``accept`` complete the last connection attempt a checker made, so
checker behaviour is tested in memory with the real probe code."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import error
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from proxy.checks import CheckSettings, ConnectOnly, ProbeTimeouts, ServerChecker
from proxy.pool import BackendPool
from proxy.server import Server


@dataclass
class Events:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))


def settings(
    inter: int = 2000,
    fastinter: int | None = None,
    downinter: int | None = None,
    rise: int = 2,
    fall: int = 3,
    **kw: Any,
) -> CheckSettings:
    return CheckSettings(
        host="127.0.0.1",
        port=25000,
        inter=inter,
        fastinter=fastinter,
        downinter=downinter,
        rise=rise,
        fall=fall,
        timeouts=ProbeTimeouts.from_config(inter, None, None),
        make_dialogue=kw.pop("make_dialogue", ConnectOnly),
        **kw,
    )


def make_checker(
    check: CheckSettings | None = None, *, backup_peer: bool = False, **kw: Any
) -> tuple[MemoryReactorClock, Server, ServerChecker, Events]:
    reactor = MemoryReactorClock()
    clock: Any = reactor
    server = Server("a", clock=clock, backend="be", host="127.0.0.1", port=21050)
    servers = [server]
    if backup_peer:
        servers.append(Server("bk", clock=clock, backend="be", backup=True, port=1))
    events = Events()
    pool = BackendPool("be", servers, "roundrobin", timeout_queue=None, clock=clock)
    checker = ServerChecker(server, pool, check or settings(), reactor, events=events, **kw)
    return reactor, server, checker, events


def pending(reactor: MemoryReactorClock) -> int:
    """How many connection attempts the checker has made so far."""
    return len(reactor.tcpClients)


def refuse(reactor: MemoryReactorClock) -> None:
    """Fail the last connection attempt with ECONNREFUSED."""
    factory = reactor.tcpClients[-1][2]
    factory.clientConnectionFailed(
        reactor.connectors[-1],
        Failure(error.ConnectionRefusedError(111, "Connection refused")),
    )


def accept(reactor: MemoryReactorClock, reply: bytes = b"") -> StringTransport:
    """Complete the last connection attempt; optionally have the server send ``reply``."""
    factory = reactor.tcpClients[-1][2]
    proto: Any = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    if reply:
        proto.dataReceived(reply)
    return transport


# --- loopback helpers: a private reactor pumped by the test, and tiny backends -------------


def new_reactor() -> Any:
    """A fresh, uninstalled reactor that a test drives with :func:`pump` (no threads)."""
    from twisted.internet.pollreactor import PollReactor

    return PollReactor()


def pump(reactor: Any, until: Callable[[], bool], timeout: float = 10.0) -> float:
    """Run ``reactor`` until ``until()`` is true; the seconds it took. Bounded by ``timeout``."""
    start = time.monotonic()
    while not until():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not reached in {timeout}s")
        reactor.iterate(0.005)
    return time.monotonic() - start


def pump_for(reactor: Any, seconds: float) -> None:
    """Run ``reactor`` for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        reactor.iterate(0.005)


class _Reply(Protocol):
    """Sends a fixed reply on connect (a line for agents), then keeps or drops the line."""

    def __init__(self, reply: bytes, close: bool) -> None:
        self.reply = reply
        self.close = close

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if self.reply:
            transport.write(self.reply)
        if self.close:
            transport.loseConnection()


class _Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        transport: Any = self.transport
        transport.write(data)


def reply_factory(reply: bytes = b"", close: bool = True) -> Factory:
    """A server factory whose connections get ``reply`` and are closed (agent, banner)."""
    return Factory.forProtocol(lambda: _Reply(reply, close))


def echo_factory() -> Factory:
    """A TCP echo server factory."""
    return Factory.forProtocol(_Echo)


class Healthz(Resource):
    """``GET /healthz`` answering ``code`` (settable), like impalad's web server."""

    isLeaf = True

    def __init__(self, code: int = 200) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.code = code
        self.hits = 0

    def render_GET(self, request: Any) -> bytes:
        self.hits += 1
        if request.path != b"/healthz":
            request.setResponseCode(404, b"File not found")
            return b"not found\n"
        request.setResponseCode(self.code)
        return b"OK\n" if self.code == 200 else b"not ready\n"


def healthz_site(resource: Healthz) -> Any:
    from twisted.web.server import Site

    return Site(resource)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m proxy.checks.testing tcp|healthz <port>``: a backend a test can kill.

    Prints ``ready`` once listening on 127.0.0.1:<port>."""
    import sys

    from twisted.internet import reactor as global_reactor

    args = list(sys.argv[1:] if argv is None else argv)
    kind, port = args[0], int(args[1])
    r: Any = global_reactor
    factory = healthz_site(Healthz()) if kind == "healthz" else echo_factory()
    r.listenTCP(port, factory, backlog=4096, interface="127.0.0.1")
    print("ready", flush=True)
    r.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
