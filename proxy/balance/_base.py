"""The small interface every balancing algorithm implements (HAProxy's ``struct lb_ops``).

An algorithm is told about servers through optional hooks and asked for a server
through :meth:`Algorithm.pick`:

- ``server_up(s)`` / ``server_down(s)``: ``s`` became usable / unusable;
- ``weight_changed(s, old_eweight)``: a usable server's effective weight changed;
- ``take_conn(s)`` / ``drop_conn(s)``: ``s``'s load (served + queued) went up / down.

The pool (:mod:`proxy.pool`) calls them; algorithms override only what they need
(round-robin ignores connection counts, leastconn lives on them).

Backups are handled here, once, as HAProxy does for every algorithm: active
servers only while at least one is usable; otherwise the first usable backup in
config order, or, with ``option allbackups``, the algorithm runs over the usable
backups as it would over the actives (each algorithm keeps one group of each).

``pick`` returns a server or ``None``. Non-hash algorithms skip saturated
servers (``maxconn`` reached or someone already queued there) and return
``None`` when every usable server is saturated, which sends the connection to the
backend queue. Hash algorithms return the hashed server whatever its load; the
pool then queues the connection on that server (spec 1.12).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol

from proxy.server import Server


class Algorithm(ABC):
    """Base class: backup selection and the usable-server bookkeeping."""

    #: The ``balance`` keyword.
    name: ClassVar[str]
    #: Weights apply at once (so slowstart ramps them); false for map algorithms.
    dynamic: ClassVar[bool] = True
    #: New connections wait behind the backend queue when it is not empty
    #: (HAProxy does this for roundrobin, static-rr and first: all servers are full).
    fair_backend_queue: ClassVar[bool] = False

    def __init__(self, servers: Sequence[Server], *, allbackups: bool = False) -> None:
        self.servers: list[Server] = list(servers)
        self.allbackups = allbackups
        self._usable: set[Server] = {s for s in self.servers if s.usable}
        self.active_count = 0
        self.backup_count = 0
        self.first_backup: Server | None = None
        self._recount()

    # -- selection -----------------------------------------------------------

    def pick(self, client_ip: str, avoid: Server | None = None) -> Server | None:
        """The server for a new connection from ``client_ip``, avoiding ``avoid`` if
        another one is possible; ``None`` if none can take it now."""
        if self.active_count:
            return self._pick(False, client_ip, avoid)
        if self.first_backup is not None:
            return self.first_backup
        if self.backup_count:
            return self._pick(True, client_ip, avoid)
        return None

    @abstractmethod
    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        """Pick among the usable servers of one group (active or backup)."""

    # -- hooks (the pool calls these) ---------------------------------------

    def server_up(self, server: Server) -> None:
        if server in self._usable:
            return
        self._usable.add(server)
        self._recount()
        self._up(server)

    def server_down(self, server: Server) -> None:
        if server not in self._usable:
            return
        self._usable.discard(server)
        self._recount()
        self._down(server)

    def weight_changed(self, server: Server, old_eweight: int) -> None:
        if server in self._usable and server.eweight != old_eweight:
            self._reweight(server, old_eweight)

    def take_conn(self, server: Server) -> None:  # noqa: B027 (optional hook)
        """The server's load grew (a connection assigned or queued there)."""

    def drop_conn(self, server: Server) -> None:  # noqa: B027 (optional hook)
        """The server's load shrank (a connection ended or left its queue)."""

    # -- what subclasses override --------------------------------------------

    def _up(self, server: Server) -> None:  # noqa: B027 (optional hook)
        """``server`` joined the usable set."""

    def _down(self, server: Server) -> None:  # noqa: B027 (optional hook)
        """``server`` left the usable set."""

    def _reweight(self, server: Server, old_eweight: int) -> None:  # noqa: B027 (optional hook)
        """A usable server's effective weight changed."""

    # -- helpers --------------------------------------------------------------

    def is_usable(self, server: Server) -> bool:
        """Whether the algorithm counts ``server`` as usable (what it was last told)."""
        return server in self._usable

    def group(self, backup: bool) -> list[Server]:
        """The usable servers of one group, in config order."""
        return [s for s in self.servers if s.backup == backup and s in self._usable]

    def _recount(self) -> None:
        self.active_count = sum(1 for s in self._usable if not s.backup)
        self.backup_count = len(self._usable) - self.active_count
        self.first_backup = None
        if not self.allbackups:
            self.first_backup = next(
                (s for s in self.servers if s.backup and s in self._usable), None
            )


class AlgorithmFactory(Protocol):
    """What the registry holds: builds an algorithm over a backend's servers."""

    def __call__(
        self, servers: Sequence[Server], *, allbackups: bool, hash_type: str
    ) -> Algorithm: ...


#: ``hash-type`` hash functions; they apply to string keys only, never to ``source``.
HASH_FUNCTIONS = ("sdbm", "djb2", "wt6", "crc32", "none")


def split_hash_type(hash_type: str) -> tuple[str, bool]:
    """``"<method> [<function>] [avalanche]"`` -> ``(method, avalanche)``.

    ``"consistent sdbm avalanche"`` -> ``("consistent", True)``. HAProxy 2.6 wants
    the function before the modifier (``consistent avalanche`` is a config error
    there); we accept both orders. Unknown words raise ValueError."""
    words = hash_type.split()
    method = words[0] if words else "map-based"
    rest = words[1:]
    unknown = [w for w in rest if w != "avalanche" and w not in HASH_FUNCTIONS]
    if unknown:
        raise ValueError(
            f"unknown hash-type word {unknown[0]!r} (function: {', '.join(HASH_FUNCTIONS)};"
            " modifier: avalanche)"
        )
    return method, "avalanche" in rest
