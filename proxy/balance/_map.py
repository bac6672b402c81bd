"""The server map shared by ``static-rr`` and ``hash-type map-based`` (HAProxy's lb_map).

User weights are divided by the GCD of all the backend's weights (computed once,
at start, as HAProxy does), and a table of ``T = sum(weights)`` slots is filled
so that each server appears ``weight`` times, spread out: for each slot, every
usable server adds its weight to a score, the highest ``(score + T) // T`` wins
(the first in config order on ties), and the winner's score drops by ``T``.
The table covers the active servers, or the backups when no active server is
usable. It is rebuilt on every change of the usable set, which is why these
algorithms are "static": a weight change is a rebuild, not a smooth move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from proxy.balance._base import Algorithm
from proxy.server import Server


def weight_gcd(servers: Sequence[Server]) -> int:
    """The GCD of the non-zero user weights (1 if there are none)."""
    g = 0
    for s in servers:
        g = math.gcd(g, s.weight)
    return g or 1


def build_map(servers: Sequence[Server], gcd: int) -> list[Server]:
    """The slot table for ``servers`` (usable, config order), weights divided by ``gcd``."""
    weights = [-(-s.weight // gcd) for s in servers]  # ceil, as HAProxy rounds up
    total = sum(weights)
    if total == 0:
        return []
    if total == 1:
        return [servers[weights.index(1)]]
    score = [0] * len(servers)
    table: list[Server] = []
    for _ in range(total):
        best = -1
        best_v = 0
        for i, w in enumerate(weights):
            if not w:
                continue
            score[i] += w
            v = (score[i] + total) // total
            if best < 0 or v > best_v:
                best, best_v = i, v
        table.append(servers[best])
        score[best] -= total
    return table


class MapAlgorithm(Algorithm):
    """An algorithm over the server map (``static-rr``, ``source`` map-based): the map
    covers the active servers, else the first backup (all of them with
    ``allbackups``), and every change of the usable set or a weight rebuilds it."""

    def __init__(self, servers: Sequence[Server], *, allbackups: bool = False) -> None:
        super().__init__(servers, allbackups=allbackups)
        self._gcd = weight_gcd(self.servers)
        self._map: list[Server] = []
        self._rebuild()

    def _rebuild(self) -> None:
        if self.active_count:
            members = self.group(False)
        elif self.first_backup is not None:
            members = [self.first_backup]
        else:
            members = self.group(True)
        self._map = build_map(members, self._gcd)

    def _up(self, s: Server) -> None:
        self._rebuild()

    def _down(self, s: Server) -> None:
        self._rebuild()

    def _reweight(self, s: Server, old_eweight: int) -> None:
        self._rebuild()
