"""``balance source``: the client's IP address chooses the server.

The hash is HAProxy's: the IPv4 address as a big-endian 32-bit number, or for
IPv6 the XOR of its four 32-bit words. Two ways to turn it into a server
(``hash-type``), each its own class in :data:`HASH_TYPES`:

- ``map-based`` (default): ``map[h mod T]`` over the static-rr map (weights / GCD).
  Static: any change in the usable set remaps most clients, and the lookup
  ignores the server to avoid, so a redispatch lands on the same server again
  (spec 1.9, a measured HAProxy pitfall we keep). With a single usable server it
  is always chosen. The ``avalanche`` modifier mixes ``h`` first.
- ``consistent``: a ring of ``16 x weight`` points per server at
  ``mix(id * 4096 + i)``; the client, at ``mix(h)``, goes to the closest point
  (ties to the one before). Only a failed or added server's clients move,
  weights are dynamic, and the lookup steps past the server to avoid.

``mix`` is HAProxy's ``full_hash``: Bob Jenkins' 32-bit integer hash followed by
a multiplication by 3221225473 (mod 2^32). Measured against HAProxy 2.6.12 on
loopback (60 client addresses, 3 servers): ``map-based`` raw and with
``avalanche`` and ``consistent`` all choose the same servers as this module; with
``consistent`` the client hash is mixed whether or not ``avalanche`` is given
(the results are identical), so ``127.0.0.x`` clients do spread over the ring.
The hash function word of ``hash-type`` (``sdbm``, ``djb2``, ...) only applies to
string keys (uri, headers), never to ``source``.

A hashed server is returned whatever its load; the pool queues the connection
there if it is full (spec 1.12).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
from collections.abc import Sequence

from proxy.balance._base import Algorithm, split_hash_type
from proxy.balance._map import MapAlgorithm
from proxy.server import Server

_MASK = 0xFFFFFFFF


def full_hash(a: int) -> int:
    """HAProxy's ``full_hash``: Bob Jenkins' 32-bit integer hash (public domain), then a
    multiplication by a large prime near 3/4 of 2^32 to spread values over the ring."""
    a &= _MASK
    a = ((a + 0x7ED55D16) + (a << 12)) & _MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & _MASK
    a = ((a + 0x165667B1) + (a << 5)) & _MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & _MASK
    a = ((a + 0xFD7046C5) + (a << 3)) & _MASK
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & _MASK
    return (a * 3221225473) & _MASK


@functools.lru_cache(maxsize=4096)
def source_hash(client_ip: str) -> int:
    """The 32-bit hash of an address: IPv4 as a number, IPv6 as the XOR of its words.

    An unparsable address (it cannot come from a socket) hashes to 0."""
    try:
        packed = ipaddress.ip_address(client_ip.split("%", 1)[0]).packed
    except ValueError:
        return 0
    h = 0
    for i in range(0, len(packed), 4):
        h ^= int.from_bytes(packed[i : i + 4], "big")
    return h


@functools.lru_cache(maxsize=4096)
def mixed_source_hash(client_ip: str) -> int:
    """``full_hash(source_hash(ip))``, cached: clients come back."""
    return full_hash(source_hash(client_ip))


class SourceMap(MapAlgorithm):
    """``hash-type map-based``: ``map[h mod T]``."""

    name = "source"
    dynamic = False
    fair_backend_queue = False

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, avalanche: bool = False
    ) -> None:
        self.avalanche = avalanche
        super().__init__(servers, allbackups=allbackups)

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        if not self._map:
            return None
        if self.active_count + self.backup_count == 1:
            return self._map[0]  # HAProxy does not even hash with one server left
        h = mixed_source_hash(client_ip) if self.avalanche else source_hash(client_ip)
        return self._map[h % len(self._map)]


class SourceConsistent(Algorithm):
    """``hash-type consistent``: a hash ring, dynamic weights, honours ``avoid``."""

    name = "source"
    dynamic = True
    fair_backend_queue = False

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, avalanche: bool = False
    ) -> None:
        super().__init__(servers, allbackups=allbackups)
        self.avalanche = avalanche
        # per group: sorted (key, puid, server position) points
        self._rings: dict[bool, list[tuple[int, int, int]]] = {False: [], True: []}
        self._keys: dict[bool, list[int]] = {False: [], True: []}
        self._point_cache: dict[int, list[int]] = {}
        self._rebuild(False)
        self._rebuild(True)

    def _rebuild(self, backup: bool) -> None:
        ring: list[tuple[int, int, int]] = []
        for pos, s in enumerate(self.servers):
            if s.backup != backup or not self.is_usable(s):
                continue
            points = self._points(s)
            ring.extend((points[i], pos, i) for i in range(s.eweight))
        ring.sort()
        self._rings[backup] = ring
        self._keys[backup] = [p[0] for p in ring]

    def _points(self, s: Server) -> list[int]:
        """The ring keys of ``s``: ``jenkins(id * 4096 + i)``, computed once per server."""
        points = self._point_cache.get(s.puid, [])
        if len(points) < s.eweight:
            base = s.puid * 4096
            points = points + [full_hash(base + i) for i in range(len(points), s.eweight)]
            self._point_cache[s.puid] = points
        return points

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        ring = self._rings[backup]
        if not ring:
            return None
        h = mixed_source_hash(client_ip)  # mixed with or without avalanche (measured)
        keys = self._keys[backup]
        n = len(ring)
        i = bisect.bisect_left(keys, h)
        if i == n:
            i = 0
        prev = i - 1 if i > 0 else n - 1
        nsrv = self.servers[ring[i][1]]
        psrv = self.servers[ring[prev][1]]
        if nsrv is not psrv:
            dp = (h - ring[prev][0]) & _MASK
            dn = (ring[i][0] - h) & _MASK
            if dp <= dn:
                i, nsrv = prev, psrv
        steps = 0
        while nsrv is avoid and steps < n:
            i = (i + 1) % n
            nsrv = self.servers[ring[i][1]]
            steps += 1
        return nsrv

    def _up(self, s: Server) -> None:
        self._rebuild(s.backup)

    def _down(self, s: Server) -> None:
        self._rebuild(s.backup)

    def _reweight(self, s: Server, old_eweight: int) -> None:
        self._rebuild(s.backup)


#: ``hash-type`` method -> implementation of ``balance source``.
HASH_TYPES: dict[str, type[SourceMap] | type[SourceConsistent]] = {
    "map-based": SourceMap,
    "consistent": SourceConsistent,
}


def make_source(
    servers: Sequence[Server], *, allbackups: bool = False, hash_type: str = "map-based"
) -> Algorithm:
    """The registry's factory for ``source``: the ``hash-type`` chooses the class."""
    method, avalanche = split_hash_type(hash_type)
    cls = HASH_TYPES.get(method)
    if cls is None:
        raise ValueError(
            f"unknown hash-type {method!r} (expected one of {', '.join(sorted(HASH_TYPES))})"
        )
    return cls(servers, allbackups=allbackups, avalanche=avalanche)
