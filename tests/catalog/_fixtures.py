"""Shared test data for the catalog tests: a table, a database, an in-memory publisher."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from backends.impalad.sql import ColumnDesc, Database, DataFile, Table


def result_of(d: defer.Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired (inline runner); fails otherwise."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def sample_table(name: str = "t", db: str = "default", files: int = 0) -> Table:
    return Table(
        db=db,
        name=name,
        columns=(ColumnDesc("id", "INT"), ColumnDesc("price", "DECIMAL", 10, 2)),
        partition_columns=(ColumnDesc("year", "INT"),),
        location=f"/warehouse/{name}",
        files=tuple(
            DataFile(f"year=2024/f{i}.parq", 100 + i, (("year", "2024"),)) for i in range(files)
        ),
    )


def sample_db(name: str = "sales") -> Database:
    return Database(name, "a comment", f"/warehouse/{name}.db")


class ListPublisher:
    """Collects topic writes as the statestore subscriber would queue them."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, bytes]] = []

    def publish(self, topic: str, key: str, value: bytes) -> None:
        self.writes.append((topic, key, value))

    def view(self, topic: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for t, k, v in self.writes:
            if t == topic:
                out[k] = v
        return out
