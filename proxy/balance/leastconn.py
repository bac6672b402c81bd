"""``balance leastconn``: HAProxy's weighted least-connections (FWLC).

Each usable server sits in a tree under the key ``(n + 1) * 4096 / e`` where ``n``
is its load (connections served plus queued on it) and ``e`` its effective
weight (16 x user weight); an idle server has key 0 whatever its weight. The
smallest key wins. Equal keys are FIFO and a server is re-inserted every time
its load changes, which rotates round-robin among equally loaded servers and
starts in config order (spec 1.6: 1:1:1 -> ``a b c a b c``).

A server is eligible when it has no ``maxconn`` or ``n < maxconn + maxqueue``: with
``maxqueue`` set, leastconn may choose a full server and the connection waits in
that server's queue. If no server is eligible, ``pick`` returns ``None`` and the
connection goes to the backend queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.balance._base import Algorithm
from proxy.balance._tree import Tree
from proxy.server import MAX_WEIGHT, WEIGHT_SCALE, Server

EWEIGHT_MAX = MAX_WEIGHT * WEIGHT_SCALE


def lc_key(load: int, eweight: int) -> int:
    """The FWLC key: 0 when idle, else ``(load + 1) * 4096 // eweight``."""
    return (load + 1) * EWEIGHT_MAX // eweight if load else 0


class LeastConn(Algorithm):
    """The least loaded server (relative to its weight); ties in FIFO order."""

    name = "leastconn"
    dynamic = True
    fair_backend_queue = False

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, hash_type: str = ""
    ) -> None:
        super().__init__(servers, allbackups=allbackups)
        self._trees: dict[bool, Tree[Server]] = {False: Tree(), True: Tree()}
        for s in self.servers:
            if self.is_usable(s):
                self._reposition(s)

    def _reposition(self, s: Server) -> None:
        tree = self._trees[s.backup]
        key = lc_key(s.served + s.queued, s.eweight)
        if s in tree and tree.key(s) == key:
            return  # no change: keep its place among equals (HAProxy 2.6 does the same)
        tree.insert(key, s)

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        avoided: Server | None = None
        for s in self._trees[backup]:
            if not s.maxconn or s.served + s.queued < s.dynamic_maxconn + s.maxqueue:
                if s is not avoid:
                    return s
                avoided = s
        return avoided

    def take_conn(self, server: Server) -> None:
        if self.is_usable(server):
            self._reposition(server)

    def drop_conn(self, server: Server) -> None:
        if self.is_usable(server):
            self._reposition(server)

    def _up(self, s: Server) -> None:
        self._reposition(s)

    def _down(self, s: Server) -> None:
        self._trees[s.backup].remove(s)

    def _reweight(self, s: Server, old_eweight: int) -> None:
        self._reposition(s)
