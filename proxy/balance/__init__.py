"""Balancing algorithms: one module each, behind the small interface of ``_base``.

:data:`REGISTRY` maps a ``balance`` keyword to the factory that builds it; the
config parser checks names against it and the pool builds through it, so adding
an algorithm is adding a module and a line here, never an ``if/elif`` on names.
``balance source`` has a second level, :data:`HASH_TYPES` (``hash-type``).
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.balance._base import Algorithm, AlgorithmFactory, split_hash_type
from proxy.balance.first import First
from proxy.balance.leastconn import LeastConn
from proxy.balance.roundrobin import RoundRobin
from proxy.balance.source import HASH_TYPES, make_source
from proxy.balance.static_rr import StaticRR
from proxy.server import Server

REGISTRY: dict[str, AlgorithmFactory] = {
    "roundrobin": RoundRobin,
    "static-rr": StaticRR,
    "leastconn": LeastConn,
    "source": make_source,
    "first": First,
}

#: ``balance`` with no argument, or no ``balance`` at all, means this.
DEFAULT_ALGORITHM = "roundrobin"


class UnknownAlgorithm(ValueError):
    """A ``balance`` name this balancer does not implement."""


def build(
    name: str,
    servers: Sequence[Server],
    *,
    allbackups: bool = False,
    hash_type: str = "map-based",
) -> Algorithm:
    """Build the algorithm ``name`` (empty = roundrobin) over ``servers``."""
    factory = REGISTRY.get(name or DEFAULT_ALGORITHM)
    if factory is None:
        raise UnknownAlgorithm(
            f"unknown balance algorithm {name!r} (expected one of {', '.join(REGISTRY)})"
        )
    return factory(servers, allbackups=allbackups, hash_type=hash_type)


__all__ = [
    "DEFAULT_ALGORITHM",
    "HASH_TYPES",
    "REGISTRY",
    "Algorithm",
    "AlgorithmFactory",
    "UnknownAlgorithm",
    "build",
    "split_hash_type",
]
