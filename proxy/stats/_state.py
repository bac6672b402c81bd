"""What the stats socket, the stats page and the metrics read: one view of the runtime.

:class:`StatsState` is a thin, read-mostly view over the live objects (the
:class:`~proxy.server.Server` objects, the pools and the checkers); it keeps no
copy of any state. It is built either from plain parts (tests, tools) or from
the balancer's runtime with :meth:`StatsState.from_runtime`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from proxy.checks import CheckService, ServerChecker
from proxy.server import Server

VERSION = "0.1.0"
RELEASE_DATE = "2026/11/22"


@dataclass(frozen=True)
class FrontendSample:
    """A frontend's counters at one moment."""

    scur: int = 0
    smax: int = 0
    slim: int = 0
    stot: int = 0
    bin: int = 0
    bout: int = 0
    status: str = "OPEN"


@dataclass
class FrontendInfo:
    name: str
    sample: Callable[[], FrontendSample] = FrontendSample
    mode: str = "tcp"


@dataclass
class BackendInfo:
    """A backend: its servers (live objects), algorithm, queue and checkers."""

    name: str
    servers: Callable[[], Sequence[Server]]
    algo: str = "roundrobin"
    mode: str = "tcp"
    queued: Callable[[], int] = lambda: 0
    max_queued: Callable[[], int] = lambda: 0
    checks: CheckService | None = None
    fullconn: int = 0
    #: the live ``proxy.pool.BackendPool`` when there is one: its own counters
    #: (sessions refused with NOSRV, backend queue max, whole-backend downtime)
    #: then fill the BACKEND row
    pool: Any = None

    def checker(self, server: Server) -> ServerChecker | None:
        return self.checks.checker(server.name) if self.checks else None

    def server(self, ref: str) -> Server | None:
        """A server by name or ``#<id>``."""
        for s in self.servers():
            if s.name == ref or (ref.startswith("#") and ref[1:] == str(s.puid)):
                return s
        return None

    @property
    def static(self) -> bool:
        """Static algorithms accept only 0% or 100% weights at runtime (spec 3.4)."""
        return self.algo in ("static-rr", "first", "source", "uri", "hdr", "url_param")


@dataclass
class ProxyInfo:
    """A config section as the stats see it: its frontend and/or backend halves."""

    name: str
    iid: int
    frontend: FrontendInfo | None = None
    backend: BackendInfo | None = None


SessionKiller = Callable[[Server], int]


class ServerAdder(Protocol):
    """``add server`` / ``del server`` (proxy.stats._wiring.DynamicServers): each returns
    the reply text."""

    def add(self, backend: str, words: list[str]) -> str: ...

    def delete(self, backend: str, name: str) -> str: ...


@dataclass
class StatsState:
    """Everything the runtime API can read or change, in config order."""

    clock: Any  # IReactorTime
    proxies: list[ProxyInfo] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)
    start_time: float | None = None
    maxconn: int = 0
    node: str = field(default_factory=lambda: os.uname().nodename)
    kill_sessions: SessionKiller | None = None
    current_conns: Callable[[], int] = lambda: 0
    cum_conns: Callable[[], int] = lambda: 0
    #: ``add server`` / ``del server``; None where servers cannot be added (a view
    #: built from plain parts)
    dynamic: ServerAdder | None = None

    def __post_init__(self) -> None:
        if self.start_time is None:
            self.start_time = self.clock.seconds()

    @property
    def backends(self) -> list[BackendInfo]:
        return [p.backend for p in self.proxies if p.backend is not None]

    def proxy(self, ref: str) -> ProxyInfo | None:
        """A proxy by name, ``#<iid>`` or numeric iid."""
        for p in self.proxies:
            if p.name == ref or ref.lstrip("#") == str(p.iid):
                return p
        return None

    def backend(self, ref: str) -> BackendInfo | None:
        for p in self.proxies:
            if p.backend is not None and (p.name == ref or ref == f"#{p.iid}"):
                return p.backend
        return None

    def iid_of(self, backend: BackendInfo) -> int:
        for p in self.proxies:
            if p.backend is backend:
                return p.iid
        return 0

    @classmethod
    def from_runtime(
        cls,
        runtime: Any,
        checks: Mapping[str, CheckService] | None = None,
        *,
        kill_sessions: SessionKiller | None = None,
    ) -> StatsState:
        """Build the view over a :class:`proxy.runtime.Runtime` (read by attribute).

        Proxy ids are given in config order from 2, as HAProxy numbers the first
        user proxy (spec 3.2)."""
        checks = checks or {}
        config = runtime.config
        proxies: list[ProxyInfo] = []
        iid = 2
        for section in config.sections:
            if section.kind.value == "defaults":
                continue
            resolved = config.resolve(section)
            info = ProxyInfo(section.name, iid)
            iid += 1
            if section.kind.has_frontend and section.name in runtime.frontends:
                fe = runtime.frontends[section.name]
                info.frontend = FrontendInfo(
                    section.name, _frontend_sampler(fe), resolved.effective_mode.value
                )
            if section.kind.has_backend and section.name in runtime.backends:
                be = runtime.backends[section.name]
                pool = be.pool
                info.backend = BackendInfo(
                    name=section.name,
                    servers=_reader(pool, "servers", list),
                    algo=resolved.algorithm,
                    mode=resolved.effective_mode.value,
                    queued=_reader(pool, "queued", int),
                    max_queued=_reader(pool, "max_queued", int),
                    checks=checks.get(section.name),
                    fullconn=resolved.fullconn or 0,
                    pool=pool,
                )
            proxies.append(info)
        return cls(
            clock=runtime.reactor,
            proxies=proxies,
            maxconn=int(getattr(runtime, "maxconn", 0)),
            kill_sessions=kill_sessions,
            current_conns=lambda: int(getattr(runtime, "actconn", 0)),
            cum_conns=lambda: int(getattr(runtime, "cum_conn", 0)),
        )


def _reader(obj: Any, name: str, kind: Callable[..., Any]) -> Callable[[], Any]:
    """A function reading ``obj.<name>`` now (0 / empty when the object lacks it)."""

    def read() -> Any:
        return kind(getattr(obj, name, kind()))

    return read


def _frontend_sampler(fe: Any) -> Callable[[], FrontendSample]:
    def sample() -> FrontendSample:
        return FrontendSample(
            scur=int(getattr(fe, "feconn", 0)),
            smax=int(getattr(fe, "max_conn", getattr(fe, "feconn", 0))),
            slim=int(getattr(fe, "maxconn", 0)),
            stot=int(getattr(fe, "cum_conn", 0)),
            bin=int(getattr(fe, "bytes_in", 0)),
            bout=int(getattr(fe, "bytes_out", 0)),
            status="STOP" if getattr(fe, "paused", False) else "OPEN",
        )

    return sample
