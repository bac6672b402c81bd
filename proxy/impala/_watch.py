"""Polling every coordinator's web port and the cluster's membership; the last state
read stays until a new one is.

Each interval the watch reads every coordinator's ``/?json``, ``/jsonmetrics`` and
``/backends?json``, and takes the union of the memberships they list. A member
that is a coordinator and that no ``Coordinator`` watches yet is watched from then on
(named by its host), so a coordinator that joins the cluster is known within a poll; one
that leaves the membership is forgotten. Once the membership has been read, a
coordinator that reports itself ready is answered ``ready down`` while it is not in the
membership (not registered yet, or gone) or is blacklisted: Impala's own idea of who
serves decides, as HAProxy 3.1's ``init-state down`` keeps a new server out until it
is known good.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory, readBody

from proxy.impala._members import Member, read_members
from proxy.impala._state import CoordinatorState, State, UnreadableState, read_state

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
    #: learnt from the membership rather than configured
    discovered: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


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
        #: the membership last read (by watched name), None until it has been read once
        self.members: dict[str, Member] | None = None
        #: why the membership could not be read at the last poll ("" when it could)
        self.members_error = ""
        self._members_busy = False
        #: called with the membership after each poll that read it
        self.on_members: list[Callable[[dict[str, Member]], object]] = []
        #: how long a member stays after the last view that listed it
        self.grace = 3 * interval
        self._last_listed: dict[str, float] = {}

    def start(self) -> None:
        self._loop.start(self.interval, now=True)

    def configure(self, coordinators: Iterable[Coordinator]) -> None:
        """Watch these configured coordinators (a reload): new ones are added, configured
        ones no longer named are dropped; a kept one keeps its state; discovered ones
        stay while the membership lists them."""
        wanted = {c.name: c for c in coordinators}
        for name, c in list(self.coordinators.items()):
            if not c.discovered and name not in wanted:
                del self.coordinators[name]
        for name, c in wanted.items():
            current = self.coordinators.get(name)
            if current is None or current.url != c.url:
                self.coordinators[name] = c
            else:
                current.discovered = False

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def state(self, name: str) -> CoordinatorState | None:
        """What to tell the balancer of ``name``: its own state, except that a ready
        coordinator absent from the membership or blacklisted there is not ready."""
        c = self.coordinators.get(name)
        if c is None or c.state is None:
            return None
        state = c.state
        if self.members is None or state.state is not State.READY:
            return state
        member = self.members.get(name)
        if member is None:
            why = "not in the cluster membership"
        elif member.blacklisted:
            why = f"blacklisted: {member.cause}" if member.cause else "blacklisted"
        else:
            return state
        return dataclasses.replace(state, state=State.NOT_READY, detail=why)

    def name_of(self, member: Member) -> str:
        """The watched name of a member: the coordinator configured on its address (or
        web URL), else its host name as Impala reports it."""
        for c in self.coordinators.values():
            if c.url == member.web or (c.host and c.host in (member.ip, member.host)):
                return c.name
        return member.host

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
        if not self._members_busy:
            self._members_busy = True
            d = defer.Deferred.fromCoroutine(self._poll_members())
            d.addErrback(lambda f: log.failure("reading the membership failed", f))
            d.addBoth(self._members_idle)
        for c in list(self.coordinators.values()):
            self._poll_once(c)

    def _idle(self, _: object, name: str) -> None:
        self._busy.discard(name)

    def _members_idle(self, _: object) -> None:
        self._members_busy = False

    async def _poll_members(self) -> None:
        """Read ``/backends?json`` from every coordinator at once and follow the union of
        what they list: watch new coordinators, forget discovered ones that left.

        The union, so that one coordinator's lagging view (just restarted, or waiting
        for its first topic update after a statestore failover) cannot make the others
        vanish; and a member stays for :attr:`grace` after the last view that listed
        it, so a blip in the topic takes nobody out of the pool."""
        watched = list(self.coordinators.values())
        results = await defer.DeferredList(
            [self._fetch(c.url + "/backends?json") for c in watched], consumeErrors=True
        )
        views: list[list[Member]] = []
        errors: list[str] = []
        for c, (ok, result) in zip(watched, results, strict=True):
            body: Any = result
            try:
                if not ok:
                    raise body.value
                views.append(read_members(body))
            except Exception as e:
                errors.append(f"{c.name}: {str(e) or type(e).__name__}")
        if not views:
            why = "; ".join(errors) or "no coordinator known"
            if not self.members_error:
                log.warn(
                    "cannot read the cluster membership from any coordinator ({why}); "
                    "keeping what was known",
                    why=why,
                )
            self.members_error = why
            return
        joined = self._follow(_union(views, self.name_of))
        # read the newcomers now, so the pool can take them at this very poll
        await defer.DeferredList([self._poll_once(j) for j in joined])
        for callback in list(self.on_members):
            callback(self.members or {})

    def _poll_once(self, c: Coordinator) -> defer.Deferred[None]:
        if c.name in self._busy:
            return defer.succeed(None)
        self._busy.add(c.name)
        d = self.poll(c)
        d.addBoth(self._idle, c.name)
        return d

    def _follow(self, listed: dict[str, Member]) -> list[Coordinator]:
        """Take ``listed`` (by watched name) as the membership, with the members listed
        less than :attr:`grace` ago; the coordinators that joined."""
        if self.members_error:
            log.info("cluster membership readable again")
            self.members_error = ""
        now = self.reactor.seconds()
        for name in listed:
            self._last_listed[name] = now
        by_name = dict(listed)
        for name, m in (self.members or {}).items():
            if name not in by_name and now - self._last_listed.get(name, now) < self.grace:
                by_name[name] = m
        for name in list(self._last_listed):
            if name not in by_name:
                del self._last_listed[name]
        joined: list[Coordinator] = []
        for name, m in by_name.items():
            if name not in self.coordinators and m.coordinator and m.web:
                log.info("coordinator {name} joined the cluster ({web})", name=name, web=m.web)
                self.coordinators[name] = Coordinator(name, m.web, discovered=True)
                joined.append(self.coordinators[name])
        for name, c in list(self.coordinators.items()):
            if c.discovered and name not in by_name:
                log.info("coordinator {name} left the cluster", name=name)
                del self.coordinators[name]
        if self.members is None or set(self.members) != set(by_name):
            log.info(
                "cluster membership: {names}",
                names=", ".join(
                    f"{n}{'' if m.coordinator else ' (executor)'}"
                    for n, m in sorted(by_name.items())
                )
                or "empty",
            )
        self.members = by_name
        return joined

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


def _union(views: list[list[Member]], name_of: Callable[[Member], str]) -> dict[str, Member]:
    """Every member any view lists, by watched name: a coordinator if any view says so,
    quiescing or blacklisted if any view says so (Impala blacklists per coordinator)."""
    merged: dict[str, Member] = {}
    for view in views:
        for m in view:
            name = name_of(m)
            seen = merged.get(name)
            if seen is None:
                merged[name] = m
                continue
            merged[name] = dataclasses.replace(
                seen,
                ip=seen.ip or m.ip,
                web=seen.web or m.web,
                coordinator=seen.coordinator or m.coordinator,
                quiescing=seen.quiescing or m.quiescing,
                blacklisted=seen.blacklisted or m.blacklisted,
                cause=seen.cause or m.cause,
            )
    return merged


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
