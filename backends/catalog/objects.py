"""Catalog objects as they travel: topic keys, versioned values, and the merging cache.

The ``catalog-update`` topic (spec 3.2) holds one entry per object, keyed like Impala's
``Catalog.toCatalogObjectKey``: ``DATABASE:db`` and ``TABLE:db.tbl``, plus one
``CATALOG_SERVICE_ID`` entry naming the publishing catalogd and the catalog version.
A value is JSON: ``{"type", "version", "object"}`` for a live object and
``{"type", "version", "deleted": true}`` for a removed one. Removals travel as
*tombstone values* rather than topic deletions so that their version travels too: a
receiver never lets an older message undo a newer one.

:class:`ObjectCache` is that rule in one place: ``apply`` keeps, per key, the entry
with the highest version (tombstones included). impalad's remote catalog and the
standby catalogd both feed it from the topic, from DDL answers and from direct
fetches, in any order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from backends.impalad.sql import Database, DataFile, Table, table_from_dict

CATALOG_TOPIC = "catalog-update"
SERVICE_ID_KEY = "CATALOG_SERVICE_ID"
DATABASE, TABLE = "DATABASE", "TABLE"


class DecodeError(ValueError):
    """A topic value or RPC argument is not a catalog object."""


def database_key(name: str) -> str:
    return f"{DATABASE}:{name.lower()}"


def table_key(db: str, name: str) -> str:
    return f"{TABLE}:{db.lower()}.{name.lower()}"


def key_of(obj: Database | Table) -> str:
    if isinstance(obj, Database):
        return database_key(obj.name)
    return table_key(obj.db, obj.name)


# ----------------------------------------------------------------------------- to/from JSON


def database_to_json(d: Database) -> dict[str, Any]:
    return dataclasses.asdict(d)


def database_from_json(raw: Any) -> Database:
    try:
        return Database(
            str(raw["name"]), str(raw["comment"]), str(raw["location"]), str(raw.get("owner", ""))
        )
    except (KeyError, TypeError) as e:
        raise DecodeError(f"bad database: {e!r}") from None


def table_to_json(t: Table) -> dict[str, Any]:
    return dataclasses.asdict(t)


def datafile_from_json(raw: Any) -> DataFile:
    try:
        return DataFile(
            str(raw["path"]),
            int(raw["size"]),
            tuple((str(k), str(v)) for k, v in raw.get("partition", ())),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise DecodeError(f"bad data file: {e!r}") from None


def table_from_json(raw: Any) -> Table:
    try:
        return table_from_dict(dict(raw))
    except (KeyError, TypeError, ValueError) as e:
        raise DecodeError(f"bad table: {e!r}") from None


# ----------------------------------------------------------------------------- entries


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One object at one version; ``obj`` is None for a removal (a tombstone)."""

    key: str
    version: int
    obj: Database | Table | None

    @property
    def deleted(self) -> bool:
        return self.obj is None

    def to_json(self) -> dict[str, Any]:
        kind = self.key.split(":", 1)[0]
        out: dict[str, Any] = {"key": self.key, "type": kind, "version": self.version}
        if self.obj is None:
            out["deleted"] = True
        elif isinstance(self.obj, Database):
            out["object"] = database_to_json(self.obj)
        else:
            out["object"] = table_to_json(self.obj)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> CatalogEntry:
        if not isinstance(raw, dict):
            raise DecodeError("a catalog entry must be an object")
        key, kind, version = raw.get("key"), raw.get("type"), raw.get("version")
        if not isinstance(key, str) or not isinstance(version, int) or isinstance(version, bool):
            raise DecodeError("a catalog entry needs a string 'key' and an integer 'version'")
        if kind not in (DATABASE, TABLE) or not key.startswith(f"{kind}:"):
            raise DecodeError(f"catalog entry {key!r} has an unknown type {kind!r}")
        if raw.get("deleted"):
            return cls(key, version, None)
        obj: Database | Table = (
            database_from_json(raw.get("object"))
            if kind == DATABASE
            else table_from_json(raw.get("object"))
        )
        if key_of(obj) != key:
            raise DecodeError(f"catalog entry {key!r} holds {key_of(obj)!r}")
        return cls(key, version, obj)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CatalogEntry:
        try:
            raw = json.loads(data)
        except ValueError as e:
            raise DecodeError(f"catalog entry is not JSON: {e}") from None
        return cls.from_json(raw)


@dataclasses.dataclass(frozen=True)
class ServiceIdEntry:
    """The ``CATALOG_SERVICE_ID`` entry: who published, at which catalog version."""

    service_id: str
    catalog_version: int

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"catalog_service_id": self.service_id, "catalog_version": self.catalog_version}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ServiceIdEntry:
        try:
            raw = json.loads(data)
            version = raw["catalog_version"]
            if not isinstance(version, int) or isinstance(version, bool):
                raise TypeError("catalog_version must be an integer")
            return cls(str(raw["catalog_service_id"]), version)
        except (ValueError, KeyError, TypeError) as e:
            raise DecodeError(f"bad {SERVICE_ID_KEY} entry: {e}") from None


def encode_topic(
    entries: Iterable[CatalogEntry], service_id: str, version: int
) -> list[tuple[str, bytes]]:
    """The topic writes for one publish: every entry, then the service-id entry."""
    out = [(e.key, e.to_bytes()) for e in entries]
    out.append((SERVICE_ID_KEY, ServiceIdEntry(service_id, version).to_bytes()))
    return out


def decode_topic(
    items: Mapping[str, bytes],
) -> tuple[list[CatalogEntry], ServiceIdEntry | None, list[str]]:
    """Entries, the service-id entry (if present) and the errors of a topic view or delta."""
    entries: list[CatalogEntry] = []
    service: ServiceIdEntry | None = None
    errors: list[str] = []
    for key, value in items.items():
        try:
            if key == SERVICE_ID_KEY:
                service = ServiceIdEntry.from_bytes(value)
            else:
                entry = CatalogEntry.from_bytes(value)
                if entry.key != key:
                    raise DecodeError(f"topic key {key!r} holds {entry.key!r}")
                entries.append(entry)
        except DecodeError as e:
            errors.append(f"{key}: {e}")
    return entries, service, errors


# ----------------------------------------------------------------------------- the cache


class ObjectCache:
    """Objects by key, each at its highest version seen; tombstones are kept as well."""

    def __init__(self) -> None:
        self._entries: dict[str, CatalogEntry] = {}

    def apply(self, entry: CatalogEntry) -> bool:
        """Take ``entry`` unless a newer (or same) version is already held; True if taken."""
        held = self._entries.get(entry.key)
        if held is not None and held.version >= entry.version:
            return False
        self._entries[entry.key] = entry
        return True

    def apply_full(self, entries: Iterable[CatalogEntry], version: int) -> None:
        """A complete live set as of ``version``: what it lacks (and is older) is removed."""
        fresh = {e.key: e for e in entries}
        for e in fresh.values():
            self.apply(e)
        for key, held in list(self._entries.items()):
            if key not in fresh and held.version <= version and held.obj is not None:
                self._entries[key] = CatalogEntry(key, version, None)

    def get(self, key: str) -> Database | Table | None:
        held = self._entries.get(key)
        return None if held is None else held.obj

    def entry(self, key: str) -> CatalogEntry | None:
        return self._entries.get(key)

    def entries(self) -> list[CatalogEntry]:
        return list(self._entries.values())

    def databases(self) -> list[Database]:
        return sorted(
            (e.obj for e in self._entries.values() if isinstance(e.obj, Database)),
            key=lambda d: d.name,
        )

    def tables(self, db: str) -> list[Table]:
        low = db.lower()
        return sorted(
            (e.obj for e in self._entries.values() if isinstance(e.obj, Table) and e.obj.db == low),
            key=lambda t: t.name,
        )

    @property
    def max_version(self) -> int:
        return max((e.version for e in self._entries.values()), default=0)
