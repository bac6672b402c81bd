"""A backend's servers, its balancing algorithm and its queues (spec 1.6, 1.12, 2.5).

The connection path asks :meth:`BackendPool.acquire` for a server and gets a
Deferred that fires with a :class:`~proxy.server.Server` whose connection slot
is already taken; when the connection ends (or its connect fails) it calls
:meth:`BackendPool.release`. In between, the pool decides as HAProxy does:

- no usable server at all: fail at once with :class:`NoServerAvailable`
  (HAProxy closes with ``<NOSRV>``);
- the algorithm picks a server with a free slot: take it now;
- the algorithm picks a full server (a hash algorithm, leastconn with
  ``maxqueue``, the single backup): wait in *that server's* queue, capped by its
  ``maxqueue`` (:class:`QueueFull` beyond);
- every server is saturated: wait in the *backend* queue (roundrobin, static-rr
  and first also send new connections there while it is not empty, so nobody
  overtakes the queue).

Queues are FIFO. When a slot frees on a server, it takes the oldest of the head
of its own queue and the head of the backend queue (the latter only if the
server is usable, and for a backup only while it is the one serving). A server
coming UP, a raised ``maxconn`` or a slowstart step take from the queues the
same way. When a server goes DOWN (or into maintenance) with ``option
redispatch``, its queued clients are dispatched again (another server, or the
backend queue); without it they stay until it comes back or ``timeout queue``
(:class:`QueueTimeout`, HAProxy's ``sQ``). Cancelling the Deferred (the client
left) removes the entry cleanly.

The pool listens to every server's state changes and tells the algorithm
(``server_up`` / ``server_down`` / ``weight_changed``) and feeds it the load
changes (``take_conn`` / ``drop_conn``); nothing else keeps a copy of a server's
state. All of this runs on the reactor thread: no locks.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from proxy.balance import Algorithm, build
from proxy.server import DelayedCall, OpState, Server, StateChange, TrafficCounters, as_timer

log = Logger()


class NoServerAvailable(Exception):
    """No usable server in the backend (HAProxy's ``<NOSRV>``, flags ``SC``)."""


class QueueFull(NoServerAvailable):
    """The chosen server's queue has reached its ``maxqueue``."""


class QueueTimeout(Exception):
    """The connection waited ``timeout queue`` in a queue (HAProxy flags ``sQ``)."""


@dataclass
class BackendCounters(TrafficCounters):
    """A BACKEND row: the traffic counters and the refusals only a backend counts.

    ``cum_sessions`` counts connections that came to the backend (first ``acquire`` of a
    connection, i.e. without ``avoid``); ``lbtot`` counts every server selection,
    redispatches included; ``max_queue`` is the backend queue's."""

    nosrv: int = 0  # refused at once: no usable server
    queue_full: int = 0
    queue_timeouts: int = 0


_sequence = itertools.count()


class _Pending:
    """A connection waiting for a server."""

    __slots__ = ("avoid", "client_ip", "deferred", "queue", "seq", "since", "timer")

    def __init__(self, client_ip: str, avoid: Server | None, since: float) -> None:
        self.client_ip = client_ip
        self.avoid = avoid
        self.since = since
        self.seq = 0
        self.deferred: Deferred[Server] = Deferred()
        self.timer: DelayedCall | None = None
        #: the server whose queue holds it, None for the backend queue
        self.queue: Server | None = None


class BackendPool:
    """One backend: servers in config order, the algorithm, the server and backend queues."""

    def __init__(
        self,
        name: str,
        servers: Sequence[Server],
        algorithm: str,
        *,
        hash_type: str = "map-based",
        allbackups: bool = False,
        redispatch: bool = False,
        timeout_queue: float | None,
        clock: IReactorTime,
    ) -> None:
        if timeout_queue is not None and timeout_queue < 0:
            raise ValueError(f"backend {name}: timeout queue must be >= 0")
        names = [s.name for s in servers]
        dups = {n for n in names if names.count(n) > 1}
        if dups:
            raise ValueError(f"backend {name}: duplicate server name(s) {', '.join(sorted(dups))}")
        self.name = name
        self.algorithm = algorithm
        self.hash_type = hash_type
        self.allbackups = allbackups
        self.redispatch = redispatch
        #: seconds; None or 0 = wait for ever (HAProxy: 0 means no timeout)
        self.timeout_queue = timeout_queue or None
        self._clock = as_timer(clock)
        self._servers: list[Server] = list(servers)
        self._backend_queue: dict[_Pending, None] = {}
        self._server_queues: dict[Server, dict[_Pending, None]] = {}
        self._requeued: dict[Server, int] = {}
        self._served = sum(s.served for s in servers)
        self._queued_on_servers = 0
        self.counters = BackendCounters(last_change=self._clock.seconds())
        self._algo: Algorithm = self._build(self._servers)
        for s in self._servers:
            self._attach(s)
        self._up = self._any_usable()
        self._down_since: float | None = None if self._up else self._clock.seconds()

    # -- reading ---------------------------------------------------------------

    @property
    def servers(self) -> tuple[Server, ...]:
        """The servers in config order."""
        return tuple(self._servers)

    def server(self, name: str) -> Server | None:
        """The server called ``name``, or None."""
        for s in self._servers:
            if s.name == name:
                return s
        return None

    @property
    def balancer(self) -> Algorithm:
        """The algorithm instance (rebuilt when servers are added or removed)."""
        return self._algo

    @property
    def queued(self) -> int:
        """Length of the backend queue (BACKEND ``qcur``)."""
        return len(self._backend_queue)

    @property
    def queued_total(self) -> int:
        """Connections waiting anywhere in this backend (backend and server queues)."""
        return len(self._backend_queue) + self._queued_on_servers

    @property
    def served(self) -> int:
        """Connections currently holding a slot on one of this backend's servers."""
        return self._served

    @property
    def sessions(self) -> int:
        """BACKEND ``scur``: connections served or waiting."""
        return self.served + self.queued_total

    @property
    def status(self) -> str:
        """``UP`` when at least one server is usable, else ``DOWN``."""
        return "UP" if self._up else "DOWN"

    @property
    def active_usable(self) -> int:
        """BACKEND ``act``: usable active servers."""
        return sum(1 for s in self._servers if s.usable and not s.backup)

    @property
    def backup_usable(self) -> int:
        """BACKEND ``bck``: usable backup servers."""
        return sum(1 for s in self._servers if s.usable and s.backup)

    @property
    def weight(self) -> int:
        """BACKEND ``weight``: effective weights of the usable actives (or of the
        backups in use when no active is usable)."""
        usable = [s for s in self._servers if s.usable]
        active = [s for s in usable if not s.backup]
        group = active or usable
        return sum(s.effective_weight for s in group)

    @property
    def uweight(self) -> int:
        """BACKEND ``uweight``: the user weights of the same servers."""
        usable = [s for s in self._servers if s.usable]
        active = [s for s in usable if not s.backup]
        return sum(s.weight for s in (active or usable))

    def requeued(self, server: Server) -> int:
        """How many queued connections ``server`` handed back when it last went DOWN
        (the "N requeued" of HAProxy's DOWN log line; 0 without ``option redispatch``)."""
        return self._requeued.get(server, 0)

    def downtime(self) -> float:
        """Seconds the whole backend has spent DOWN, the current period included."""
        extra = 0.0 if self._down_since is None else self._clock.seconds() - self._down_since
        return self.counters.downtime + extra

    # -- acquire / release -----------------------------------------------------

    def acquire(self, client_ip: str, avoid: Server | None = None) -> Deferred[Server]:
        """A server for a new connection from ``client_ip``, its slot already taken.

        ``avoid`` is the server that just failed (a redispatch): another one is
        chosen if the algorithm can. Fires at once, or after waiting in a queue;
        fails with :class:`NoServerAvailable`, :class:`QueueFull` or
        :class:`QueueTimeout`. Cancel the Deferred if the client goes away."""
        now = self._clock.seconds()
        pending = _Pending(client_ip, avoid, now)
        pending.deferred = Deferred(lambda _d: self._cancel(pending))
        if avoid is None:
            self.counters.cum_sessions += 1
        self._dispatch(pending, fresh=True)
        return pending.deferred

    def take(self, client_ip: str, avoid: Server | None = None) -> Server | Deferred[Server]:
        """:meth:`acquire`, with the common case without a Deferred: the server itself
        when one takes the connection at once (its slot taken, everything counted as
        ``acquire`` counts it), else the Deferred ``acquire`` would return. The
        algorithm is asked once either way (roundrobin's position moves once)."""
        algo = self._algo
        picked: Server | None = None
        if (algo.active_count or algo.backup_count) and not (
            algo.fair_backend_queue and self._backend_queue
        ):
            picked = algo.pick(client_ip, avoid)
            if picked is not None and picked.has_free_slot:
                if avoid is None:
                    self.counters.cum_sessions += 1
                self._take(picked)
                return picked
            pending = _Pending(client_ip, avoid, self._clock.seconds())
            pending.deferred = Deferred(lambda _d: self._cancel(pending))
            if avoid is None:
                self.counters.cum_sessions += 1
            self._place(pending, picked)
            return pending.deferred
        return self.acquire(client_ip, avoid)

    def release(self, server: Server) -> None:
        """The connection on ``server`` ended (or failed to connect): free its slot and
        give it to the next queued connection."""
        server.release_slot()
        if server not in self._server_queues:
            return  # removed by a reload; its last connections are draining
        self._served -= 1
        self._algo.drop_conn(server)
        self._serve_queues(server)

    # -- reload ------------------------------------------------------------------

    def add_server(self, server: Server) -> None:
        """Add a server (reload). The algorithm is rebuilt over the new list."""
        if self.server(server.name) is not None:
            raise ValueError(f"backend {self.name}: server {server.name} already exists")
        self._servers.append(server)
        self._served += server.served
        self._algo = self._build(self._servers)
        self._attach(server)
        self._after_change()

    def remove_server(self, name: str) -> Server:
        """Remove a server (reload): its queued connections are dispatched again; its
        established connections stay and end through :meth:`release` as usual."""
        server = self.server(name)
        if server is None:
            raise KeyError(f"backend {self.name}: no server {name}")
        server.unsubscribe(self._on_change)
        server.stop()
        self._servers.remove(server)
        waiting = list(self._server_queues.pop(server))
        server.queue_shrank(len(waiting))
        self._queued_on_servers -= len(waiting)
        self._served -= server.served
        self._algo = self._build(self._servers)
        for p in waiting:
            p.queue = None
            self._dispatch(p, fresh=False)
        self._after_change()
        return server

    def reconfigure(
        self, algorithm: str, *, hash_type: str = "map-based", allbackups: bool = False
    ) -> None:
        """Rebuild the algorithm over the same servers (reload: a changed ``balance``,
        ``hash-type``, ``allbackups``, or a server's ``backup`` flag). Load counts come
        from the servers themselves, so established connections are accounted for."""
        self.algorithm = algorithm
        self.hash_type = hash_type
        self.allbackups = allbackups
        self._algo = self._build(self._servers)
        self._after_change()

    def reorder(self, names: Sequence[str]) -> bool:
        """Put the servers in the order of ``names`` (reload: config order matters to
        ``first``, ``static-rr`` and the hash maps); rebuilds the algorithm if the order
        changed. Whether it changed."""
        rank = {name: i for i, name in enumerate(names)}
        ordered = sorted(self._servers, key=lambda s: rank.get(s.name, len(rank)))
        if ordered == self._servers:
            return False
        self._servers = ordered
        self.reconfigure(self.algorithm, hash_type=self.hash_type, allbackups=self.allbackups)
        return True

    def close(self) -> None:
        """Fail every queued connection and stop all timers (the backend goes away)."""
        for p in list(self._backend_queue) + [p for q in self._server_queues.values() for p in q]:
            self._unqueue(p)
            self._stop_timer(p)
            p.deferred.errback(NoServerAvailable(f"backend {self.name} closed"))
        for s in self._servers:
            s.unsubscribe(self._on_change)
            s.stop()

    # -- internals: dispatching ----------------------------------------------------

    def _build(self, servers: Sequence[Server]) -> Algorithm:
        algo = build(self.algorithm, servers, allbackups=self.allbackups, hash_type=self.hash_type)
        if any(s.dynamic_weights != algo.dynamic for s in servers):
            # slowstart scales weights only for dynamic algorithms: set that first,
            # then build again so that the algorithm starts from the right weights
            for s in servers:
                s.set_dynamic_weights(algo.dynamic)
            algo = build(
                self.algorithm, servers, allbackups=self.allbackups, hash_type=self.hash_type
            )
        return algo

    def _attach(self, server: Server) -> None:
        server.backend = server.backend or self.name
        self._server_queues.setdefault(server, {})
        server.subscribe(self._on_change)

    def _any_usable(self) -> bool:
        return bool(self._algo.active_count or self._algo.backup_count)

    def _dispatch(self, p: _Pending, *, fresh: bool) -> None:
        if not self._any_usable():
            if fresh:
                self.counters.nosrv += 1
                p.deferred.errback(NoServerAvailable(f"backend {self.name} has no server"))
            else:
                self._enqueue(p, None)
            return
        if self._algo.fair_backend_queue and self._backend_queue:
            self._enqueue(p, None)
            return
        self._place(p, self._algo.pick(p.client_ip, p.avoid))

    def _place(self, p: _Pending, server: Server | None) -> None:
        """``p`` with the algorithm's choice: assigned, queued, or refused (queue full)."""
        if server is None:
            self._enqueue(p, None)
        elif server.has_free_slot:
            self._assign(p, server)
        elif server.maxqueue and server.queued >= server.maxqueue:
            self._stop_timer(p)
            self.counters.queue_full += 1
            p.deferred.errback(
                QueueFull(f"server {self.name}/{server.name}: queue full ({server.maxqueue})")
            )
        else:
            self._enqueue(p, server)

    def _enqueue(self, p: _Pending, server: Server | None) -> None:
        p.seq = next(_sequence)
        p.queue = server
        if server is None:
            self._backend_queue[p] = None
            self.counters.max_queue = max(self.counters.max_queue, len(self._backend_queue))
        else:
            self._server_queues[server][p] = None
            server.queue_grew()
            self._queued_on_servers += 1
            self._algo.take_conn(server)
        self.counters.max_sessions = max(self.counters.max_sessions, self.sessions)
        if p.timer is None and self.timeout_queue is not None:
            p.timer = self._clock.callLater(self.timeout_queue, self._expire, p)

    def _unqueue(self, p: _Pending) -> None:
        """Take ``p`` out of whichever queue holds it."""
        server = p.queue
        if server is None:
            self._backend_queue.pop(p, None)
            return
        queue = self._server_queues.get(server)
        if queue is not None and p in queue:
            del queue[p]
            server.queue_shrank()
            self._queued_on_servers -= 1
            self._algo.drop_conn(server)
        p.queue = None

    def _assign(self, p: _Pending, server: Server, *, from_server_queue: bool = False) -> None:
        self._stop_timer(p)
        if from_server_queue:
            server.queue_shrank()  # moves from queued to served: the load is unchanged
            self._queued_on_servers -= 1
        self._take(server)
        p.deferred.callback(server)

    def _take(self, server: Server) -> None:
        """A connection is given ``server``: its slot, the algorithm's load, the counts."""
        server.take_slot()
        self._served += 1
        self._algo.take_conn(server)
        c = self.counters
        c.lbtot += 1
        c.last_session = self._clock.seconds()
        c.max_sessions = max(c.max_sessions, self.sessions)

    def _serve_queues(self, server: Server) -> None:
        """Give free slots of ``server`` to the oldest waiting connections."""
        own = self._server_queues.get(server)
        if own is None:
            return
        while not server.maxconn or server.served < server.dynamic_maxconn:
            head_own = next(iter(own), None) if server.running else None
            head_be = next(iter(self._backend_queue), None) if self._takes_backend(server) else None
            if head_own is not None and (head_be is None or head_own.seq < head_be.seq):
                del own[head_own]
                head_own.queue = None
                self._assign(head_own, server, from_server_queue=True)
            elif head_be is not None:
                del self._backend_queue[head_be]
                self._assign(head_be, server)
            else:
                return

    def _takes_backend(self, server: Server) -> bool:
        """Whether ``server`` may serve the backend queue (HAProxy's ``px_ok``)."""
        if not self._algo.is_usable(server):
            return False
        if not server.backup:
            return True
        return not self._algo.active_count and (
            self.allbackups or server is self._algo.first_backup
        )

    def _expire(self, p: _Pending) -> None:
        p.timer = None
        self._unqueue(p)
        self.counters.queue_timeouts += 1
        p.deferred.errback(
            QueueTimeout(f"backend {self.name}: waited {self.timeout_queue}s in queue")
        )

    def _cancel(self, p: _Pending) -> None:
        self._unqueue(p)
        self._stop_timer(p)

    @staticmethod
    def _stop_timer(p: _Pending) -> None:
        if p.timer is not None and p.timer.active():
            p.timer.cancel()
        p.timer = None

    # -- internals: state changes ----------------------------------------------------

    def _on_change(self, change: StateChange) -> None:
        s = change.server
        now_usable = s.usable
        if change.was_usable and not now_usable:
            self._algo.server_down(s)
        elif now_usable and not change.was_usable:
            self._algo.server_up(s)
        elif now_usable and s.eweight != change.old_eweight:
            self._algo.weight_changed(s, change.old_eweight)
        was_running = change.old_op is not OpState.DOWN and not change.old_admin.maint
        if was_running and not s.running:
            self._requeued[s] = 0
            if self.redispatch:
                self._redistribute(s)
        self._after_change()

    def _redistribute(self, server: Server) -> None:
        """Dispatch again the connections waiting on ``server`` (it went DOWN)."""
        queue = self._server_queues.get(server)
        if not queue:
            return
        waiting = list(queue)
        self._requeued[server] = len(waiting)
        for p in waiting:
            self._unqueue(p)
        log.info(
            "server {backend}/{server}: {count} requeued",
            backend=self.name,
            server=server.name,
            count=len(waiting),
        )
        for p in waiting:
            self._dispatch(p, fresh=False)

    def _after_change(self) -> None:
        up = self._any_usable()
        if up != self._up:
            now = self._clock.seconds()
            self._up = up
            self.counters.last_change = now
            if up:
                if self._down_since is not None:
                    self.counters.downtime += now - self._down_since
                self._down_since = None
            else:
                self.counters.chkdown += 1
                self._down_since = now
                # the health checker logs HAProxy's "has no server available!" line
                log.debug("backend {backend} is DOWN", backend=self.name)
        for s in list(self._servers):
            self._serve_queues(s)
