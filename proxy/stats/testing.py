"""Test helpers shipped with the stats: a small in-memory balancer view.

Real :class:`~proxy.server.Server` objects and real checkers over a
MemoryReactorClock, with a minimal pool (name, servers, queue length)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from haconfig import model
from proxy.checks import CheckService, start_checks
from proxy.pool import BackendPool
from proxy.server import Server
from proxy.stats import BackendInfo, FrontendInfo, FrontendSample, ProxyInfo, StatsState


@dataclass
class World:
    reactor: MemoryReactorClock
    state: StatsState
    servers: dict[str, Server]
    checks: CheckService
    killed: list[Server] = field(default_factory=list)


BACKEND = model.Proxy(
    kind=model.SectionKind.BACKEND,
    name="be",
    balance=model.Balance("roundrobin"),
    servers=(
        model.Server("a", "127.0.0.1", 21050, params=model.ServerParams(check=True, weight=5)),
        model.Server("b", "127.0.0.2", 21050, params=model.ServerParams(check=True)),
        model.Server("c", "127.0.0.3", 21050),
    ),
)


def make_world(level_agent: bool = False) -> World:
    reactor = MemoryReactorClock()
    clock: Any = reactor
    servers = {
        "a": Server("a", clock=clock, backend="be", puid=1, host="127.0.0.1", port=21050, weight=5),
        "b": Server("b", clock=clock, backend="be", puid=2, host="127.0.0.2", port=21050),
        "c": Server("c", clock=clock, backend="be", puid=3, host="127.0.0.3", port=21050),
    }
    pool = BackendPool("be", list(servers.values()), "roundrobin", timeout_queue=None, clock=clock)
    checks = start_checks(pool, BACKEND, reactor)
    backend = BackendInfo(
        "be",
        lambda: pool.servers,
        algo="roundrobin",
        queued=lambda: pool.queued,
        checks=checks,
        pool=pool,
    )
    frontend = FrontendInfo("fe", lambda: FrontendSample(scur=1, smax=2, slim=100, stot=7))
    world = World(reactor, StatsState(reactor, pid=42), servers, checks)

    def kill(server: Server) -> int:
        world.killed.append(server)
        return 0

    world.state.proxies = [
        ProxyInfo("fe", 2, frontend=frontend),
        ProxyInfo("be", 3, backend=backend),
    ]
    world.state.kill_sessions = kill
    return world
