"""Versioned topics, as ``Statestore::Topic`` keeps them (spec section 1.3).

A topic maps keys to ``(value, version, deleted)``. Every write gets the next
version of its topic, so versions are unique and increasing; the update log keeps
one version per key (its latest). A subscriber that has processed version V gets
every entry newer than V, deletions included; one that has processed nothing
gets every live entry. Deletions are kept as tombstones (with a new version) so
deltas can carry them. Pure data: no clocks, no I/O.
"""

from __future__ import annotations

import dataclasses

from backends.common.rpc import TopicDelta, TopicItem

PRIORITY_SUFFIXES = ("impala-membership", "impala-request-queue")


def is_prioritized(name: str) -> bool:
    """Membership and request-queue topics go out on the fast (priority) schedule."""
    return name.endswith(PRIORITY_SUFFIXES)


@dataclasses.dataclass
class TopicEntry:
    value: bytes
    version: int
    deleted: bool = False


class Topic:
    """One topic: entries, the version log, and delta building."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[str, TopicEntry] = {}
        self._log: dict[int, str] = {}
        self._last_version = 0

    @property
    def version(self) -> int:
        """The newest version in the log (0 when the log is empty)."""
        return max(self._log, default=0)

    @property
    def oldest_version(self) -> int:
        return min(self._log, default=0)

    @property
    def num_live_entries(self) -> int:
        return sum(1 for e in self.entries.values() if not e.deleted)

    @property
    def key_bytes(self) -> int:
        return sum(len(k.encode()) for k in self.entries)

    @property
    def value_bytes(self) -> int:
        return sum(len(e.value) for e in self.entries.values())

    def put(self, key: str, value: bytes, deleted: bool = False) -> int:
        """Write (or tombstone) ``key``; return the version it got."""
        self._last_version += 1
        version = self._last_version
        old = self.entries.get(key)
        if old is not None:
            self._log.pop(old.version, None)
        self.entries[key] = TopicEntry(b"" if deleted else value, version, deleted)
        self._log[version] = key
        return version

    def delete_if_version_matches(self, key: str, version: int) -> bool:
        """Tombstone ``key`` only if nobody overwrote it since ``version``."""
        entry = self.entries.get(key)
        if entry is None or entry.deleted or entry.version != version:
            return False
        self.put(key, b"", deleted=True)
        return True

    def clear(self) -> None:
        """Drop every entry and the log; the version counter keeps counting."""
        self.entries.clear()
        self._log.clear()

    def build_delta(self, last_processed: int, filter_prefix: str = "") -> TopicDelta:
        """What a subscriber that processed ``last_processed`` should get next."""
        to_version = self.version
        if last_processed > 0:
            changed = [self._log[v] for v in sorted(self._log) if v > last_processed]
            items = tuple(
                TopicItem(key, self.entries[key].value, self.entries[key].deleted)
                for key in changed
                if key.startswith(filter_prefix)
            )
            return TopicDelta(self.name, items, True, last_processed, to_version)
        live = [self._log[v] for v in sorted(self._log)]
        items = tuple(
            TopicItem(key, self.entries[key].value)
            for key in live
            if key.startswith(filter_prefix) and not self.entries[key].deleted
        )
        return TopicDelta(self.name, items, False, 0, to_version)
