"""Polling every coordinator's web port; the last state read stays until a new one is."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory, readBody

from proxy.impala._state import CoordinatorState, UnreadableState, read_state

log = Logger()

Fetch = Callable[[str], "defer.Deferred[bytes]"]


@dataclass
class Coordinator:
    """One coordinator as the agent sees it: the name the balancer sends, its web URL."""

    name: str
    url: str  # http://host:25000
    state: CoordinatorState | None = None
    #: why the last poll could not be read ("" once it could)
    error: str = ""


class Watch:
    """Polls ``/?json`` and ``/jsonmetrics`` of every coordinator each ``interval``
    seconds. A poll that fails (no answer, a 500, HTML, a missing field, a hang past
    the interval) changes nothing for that coordinator but one log line when it
    starts failing and one when it reads again."""

    def __init__(
        self,
        reactor: Any,
        coordinators: Iterable[Coordinator],
        *,
        interval: float = 1.0,
        fetch: Fetch | None = None,
    ) -> None:
        self.reactor = reactor
        self.coordinators = {c.name: c for c in coordinators}
        self.interval = interval
        self._fetch = fetch or self._http_get
        self._agent = None
        if fetch is None:
            pool = HTTPConnectionPool(reactor, persistent=True)
            pool.maxPersistentPerHost = 1
            pool._factory = _QuietFactory  # no "Starting/Stopping factory" line per poll
            self._agent = Agent(reactor, connectTimeout=interval, pool=pool)
        self._loop = LoopingCall(self.poll_all)
        self._loop.clock = reactor
        self._busy: set[str] = set()

    def start(self) -> None:
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def state(self, name: str) -> CoordinatorState | None:
        c = self.coordinators.get(name)
        return c.state if c is not None else None

    def _http_get(self, url: str) -> defer.Deferred[bytes]:
        assert self._agent is not None
        d = self._agent.request(b"GET", url.encode())

        def body(response: Any) -> defer.Deferred[bytes]:
            if response.code != 200:
                response.deliverBody(_Discard())
                raise UnreadableState(f"HTTP {response.code}")
            return readBody(response)

        d.addCallback(body)
        # a hung web port: give up before the next poll
        return d.addTimeout(self.interval, self.reactor)

    def poll_all(self) -> None:
        for c in self.coordinators.values():
            if c.name not in self._busy:
                self._busy.add(c.name)
                self.poll(c).addBoth(self._idle, c.name)

    def _idle(self, _: object, name: str) -> None:
        self._busy.discard(name)

    def poll(self, c: Coordinator) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._poll(c))

    async def _poll(self, c: Coordinator) -> None:
        try:
            root = await self._fetch(c.url + "/?json")
            metrics = await self._fetch(c.url + "/jsonmetrics?json")
            new = read_state(root, metrics)
        except Exception as e:
            why = str(e) or type(e).__name__
            if not c.error:
                log.warn(
                    "coordinator {name}: cannot read its state ({why}); keeping {state}",
                    name=c.name,
                    why=why,
                    state=str(c.state) if c.state else "no state",
                )
            c.error = why
            return
        if c.error:
            log.info("coordinator {name}: state readable again", name=c.name)
            c.error = ""
        if new != c.state:
            log.info(
                "coordinator {name}: {old} -> {new}",
                name=c.name,
                old=str(c.state) if c.state else "unknown",
                new=str(new),
            )
            c.state = new


class _QuietFactory(_HTTP11ClientFactory):
    noisy = False


class _Discard:
    """An IProtocol that throws a response body away."""

    def makeConnection(self, transport: Any) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        pass
