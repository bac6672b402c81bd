"""Topic encoding/decoding of catalog objects and the version rule of ObjectCache."""

from __future__ import annotations

import pytest

from backends.catalog.objects import (
    CatalogEntry,
    DecodeError,
    ObjectCache,
    ServiceIdEntry,
    decode_topic,
    encode_topic,
    table_key,
)
from tests.catalog._fixtures import sample_db, sample_table


def test_table_entry_round_trips_through_bytes() -> None:
    """A table with columns, partitions and files decodes to the same Table."""
    t = sample_table(files=2)
    entry = CatalogEntry(table_key("default", "t"), 7, t)
    assert CatalogEntry.from_bytes(entry.to_bytes()) == entry


def test_tombstone_round_trips_with_its_version() -> None:
    """A removal travels as a value that keeps its version."""
    entry = CatalogEntry("DATABASE:sales", 9, None)
    back = CatalogEntry.from_bytes(entry.to_bytes())
    assert back.deleted and back.version == 9


def test_encode_topic_ends_with_the_service_id_entry() -> None:
    """Every publish carries CATALOG_SERVICE_ID with the publisher's id and version."""
    writes = encode_topic([CatalogEntry("DATABASE:sales", 3, sample_db())], "sid-1", 3)
    entries, service, errors = decode_topic(dict(writes))
    assert service == ServiceIdEntry("sid-1", 3)
    assert [e.key for e in entries] == ["DATABASE:sales"] and errors == []


def test_decode_topic_reports_bad_values_without_failing() -> None:
    """Junk values and a key holding another object are reported, good ones kept."""
    good = CatalogEntry("DATABASE:sales", 1, sample_db())
    view = {
        "DATABASE:sales": good.to_bytes(),
        "TABLE:x.y": b"not json",
        "DATABASE:other": good.to_bytes(),
    }
    entries, service, errors = decode_topic(view)
    assert entries == [good] and service is None and len(errors) == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"key": "TABLE:a.b", "type": "TABLE"}',
        b'{"key": "VIEW:a.b", "type": "VIEW", "version": 1}',
        b'{"key": "TABLE:a.b", "type": "TABLE", "version": 1, "object": {"db": "a"}}',
    ],
)
def test_malformed_entries_raise_decode_error(raw: bytes) -> None:
    """Malformed entries raise DecodeError (a ValueError), never anything else."""
    with pytest.raises(DecodeError):
        CatalogEntry.from_bytes(raw)


def test_cache_keeps_the_newest_version_per_key() -> None:
    """An older message never undoes a newer one, whichever order they arrive in."""
    cache = ObjectCache()
    key = table_key("default", "t")
    assert cache.apply(CatalogEntry(key, 5, sample_table(files=1)))
    assert not cache.apply(CatalogEntry(key, 4, sample_table(files=0)))
    assert cache.apply(CatalogEntry(key, 6, None))
    assert not cache.apply(CatalogEntry(key, 5, sample_table(files=3)))
    assert cache.get(key) is None and cache.tables("default") == []


def test_full_update_removes_older_objects_it_lacks() -> None:
    """A complete set as of version V tombstones held objects at <= V that it lacks."""
    cache = ObjectCache()
    cache.apply(CatalogEntry(table_key("default", "old"), 3, sample_table("old")))
    cache.apply(CatalogEntry(table_key("default", "new"), 12, sample_table("new")))
    cache.apply_full([CatalogEntry("DATABASE:sales", 10, sample_db())], 10)
    assert [t.name for t in cache.tables("default")] == ["new"]
    assert [d.name for d in cache.databases()] == ["sales"]
