"""Test fakes: an in-memory network of endpoints joined by ``twisted.test.iosim`` pumps.

``MemoryNetwork.server(host, port)`` and ``.client(host, port)`` give endpoints that
behave like TCP ones (connection refused when nobody listens; port 0 picks a free
one), so the real statestore and subscriber code runs unchanged over AMP in memory.
Drive time with :meth:`MemoryNetwork.run`, which advances the ``task.Clock`` in small
steps and delivers every byte in between.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, error, task
from twisted.internet.address import IPv4Address
from twisted.test import iosim

from backends.statestore.statestore import StatestoreConfig

# Statestore timing for in-memory tests: 0.1 s heartbeats, lost after 5 missed, short
# RPC timeouts, and the fault-injection RPC enabled.
FAST_CONFIG = StatestoreConfig(
    heartbeat_interval=0.1,
    max_missed_heartbeats=5,
    heartbeat_timeout=0.3,
    update_interval=0.5,
    priority_update_interval=0.1,
    update_timeout=1.0,
    role_rpc_timeout=0.3,
    debug_actions=frozenset({"DISABLE_STATESTORE_NETWORK"}),
)


class _Listening:
    def __init__(self, net: MemoryNetwork, host: str, port: int) -> None:
        self._net, self._host, self._port = net, host, port

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", self._host, self._port)

    def stopListening(self) -> None:
        self._net.close(self._host, self._port)


class _ServerEndpoint:
    def __init__(self, net: MemoryNetwork, host: str, port: int) -> None:
        self._net, self._host, self._port = net, host, port

    def listen(self, factory: Any) -> defer.Deferred[_Listening]:
        port = self._port or self._net.free_port()
        if (self._host, port) in self._net.listeners:
            return defer.fail(error.CannotListenError(self._host, port, "address in use"))
        self._net.listeners[(self._host, port)] = factory
        return defer.succeed(_Listening(self._net, self._host, port))


class _ClientEndpoint:
    def __init__(self, net: MemoryNetwork, host: str, port: int) -> None:
        self._net, self._host, self._port = net, host, port

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        return self._net.connect(self._host, self._port, factory)


class MemoryNetwork:
    """Listeners by (host, port), and the pumps of every open connection."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.listeners: dict[tuple[str, int], Any] = {}
        self._connections: list[tuple[tuple[str, int], iosim.IOPump]] = []
        self._next_port = 40000

    def free_port(self) -> int:
        self._next_port += 1
        return self._next_port

    def server(self, host: str, port: int) -> _ServerEndpoint:
        return _ServerEndpoint(self, host, port)

    def client(self, host: str, port: int) -> _ClientEndpoint:
        return _ClientEndpoint(self, host, port)

    def connect(self, host: str, port: int, factory: Any) -> defer.Deferred[Any]:
        server_factory = self.listeners.get((host, port))
        if server_factory is None:
            return defer.fail(error.ConnectionRefusedError(f"{host}:{port}"))
        address = IPv4Address("TCP", host, port)
        server = server_factory.buildProtocol(address)
        client = factory.buildProtocol(address)
        pump = iosim.connect(
            server,
            iosim.FakeTransport(server, isServer=True, hostAddress=address),
            client,
            iosim.FakeTransport(client, isServer=False, peerAddress=address),
            greet=False,
        )
        self._connections.append(((host, port), pump))
        return defer.succeed(client)

    def close(self, host: str, port: int) -> None:
        """Stop listening on ``host:port`` and cut every connection to it (a crash)."""
        self.listeners.pop((host, port), None)
        for target, pump in self._connections:
            if target == (host, port):
                pump.clientIO.loseConnection()
                pump.serverIO.loseConnection()
        self.flush()

    def flush(self) -> None:
        for _ in range(1000):
            moved = [pump.pump() for _, pump in self._connections]
            self._connections = [
                (t, p) for t, p in self._connections if not (p.clientIO.disconnected)
            ]
            if not any(moved):
                return

    def run(self, seconds: float, step: float = 0.01) -> None:
        """Advance the clock by ``seconds`` in ``step``s, delivering bytes after each."""
        self.flush()
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.flush()
