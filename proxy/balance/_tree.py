"""An ordered multiset of servers, FIFO among equal keys: HAProxy's eb32 tree with dups.

HAProxy keeps servers in elastic binary trees where equal keys stay in insertion
order; every algorithm's tie-breaking (config order at start, round-robin among
equally loaded servers in leastconn) follows from that. A sorted Python list of
``(key, sequence, server)`` gives the same order; with at most a few thousand
servers per backend, ``bisect`` insertion is fast enough and much simpler.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_sequence = itertools.count()


class Tree(Generic[T]):
    """Items ordered by ``(key, insertion order)``; each item is in the tree at most once."""

    __slots__ = ("_entries", "_where")

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, T]] = []
        self._where: dict[T, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item: T) -> bool:
        return item in self._where

    def __iter__(self) -> Iterator[T]:
        return (entry[2] for entry in list(self._entries))

    def insert(self, key: int, item: T) -> None:
        """Insert ``item`` after every item with a key <= ``key``."""
        if item in self._where:
            self.remove(item)
        node = (key, next(_sequence))
        bisect.insort(self._entries, (node[0], node[1], item))
        self._where[item] = node

    def remove(self, item: T) -> None:
        """Remove ``item`` if it is present."""
        node = self._where.pop(item, None)
        if node is None:
            return
        # (key, seq) sorts just before (key, seq, item): seq is unique, items never compare.
        i = bisect.bisect_left(self._entries, node)
        del self._entries[i]

    def key(self, item: T) -> int | None:
        node = self._where.get(item)
        return None if node is None else node[0]

    def first(self) -> T | None:
        return self._entries[0][2] if self._entries else None

    def clear(self) -> None:
        self._entries.clear()
        self._where.clear()
