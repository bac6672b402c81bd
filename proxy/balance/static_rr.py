"""``balance static-rr``: weighted round-robin over a precomputed map.

The map (see :mod:`proxy.balance._map`) is walked one slot per connection,
skipping saturated servers; the position survives rebuilds, so a returning
server is used at once. Cheaper than FWRR and exact in its proportions, but
weights are static: at runtime only 0 and 100% make sense (spec 1.6).
Measured in HAProxy: 3:2:1 -> ``a a b a b c``.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.balance._map import MapAlgorithm
from proxy.server import Server


class StaticRR(MapAlgorithm):
    """Round-robin through the weight map."""

    name = "static-rr"
    dynamic = False
    fair_backend_queue = True

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, hash_type: str = ""
    ) -> None:
        self._index = 0
        super().__init__(servers, allbackups=allbackups)

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        table = self._map
        total = len(table)
        if not total:
            return None
        if not 0 <= self._index < total:
            self._index = 0
        start = idx = self._index
        avoided: Server | None = None
        avoided_idx = 0
        while True:
            s = table[idx]
            idx += 1
            if s.has_free_slot:
                avoided, avoided_idx = s, idx
                if s is not avoid:
                    self._index = idx
                    return s
            if idx == total:
                idx = 0
            if idx == start:
                break
        if avoided is not None:
            self._index = avoided_idx
        return avoided
