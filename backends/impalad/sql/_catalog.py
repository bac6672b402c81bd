"""The metadata the engine reads: databases, tables, columns, formats, files, row counts.

Queries only *read* a :class:`Catalog`. Every change is one explicit operation on it
(``create_database``, ``create_table``, ``replace_files``...) that returns the new catalog
version, as catalogd's ``ExecDdl``/``ResetMetadata`` do. :class:`LocalCatalog` keeps the
metadata in memory and persists each change in a DuckDB file; a later implementation
fed by catalogd over RPC and the ``catalog-update`` topic plugs in behind the same
Protocol.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import duckdb

from ._errors import ImpalaError, analysis
from ._types import ColumnDesc

BUILTINS_DB = "_impala_builtins"
DEFAULT_DB = "default"


@dataclasses.dataclass(frozen=True)
class Database:
    """A database: name, comment and the directory its tables live under."""

    name: str
    comment: str
    location: str
    owner: str = ""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One data file of a table, by its path relative to the table's location."""

    path: str  # relative to the table location, e.g. "year=2024/ab12.parq"
    size: int
    partition: tuple[tuple[str, str], ...] = ()  # (key, value as written in the path)


@dataclasses.dataclass(frozen=True)
class ColumnStats:
    """What COMPUTE STATS found in one column: distinct values (HyperLogLog, as Impala's
    NDV), NULLs, the largest and average size in bytes, and for a BOOLEAN the trues and
    falses (-1 where a figure does not apply)."""

    name: str
    ndv: int
    nulls: int
    max_size: int
    avg_size: float
    trues: int = -1
    falses: int = -1


@dataclasses.dataclass(frozen=True)
class Table:
    """A table: schema, partition keys, storage and the files that hold its rows."""

    db: str
    name: str
    columns: tuple[ColumnDesc, ...]
    partition_columns: tuple[ColumnDesc, ...] = ()
    file_format: str = "PARQUET"  # PARQUET | TEXTFILE
    location: str = ""
    comment: str = ""
    field_delimiter: str = "\x01"
    external: bool = False
    owner: str = ""
    created: float = 0.0
    row_count: int = -1  # -1 until COMPUTE STATS
    files: tuple[DataFile, ...] = ()
    view_text: str = ""  # a view's query (Impala SQL, table names qualified); "" for tables
    column_stats: tuple[ColumnStats, ...] = ()  # () until COMPUTE STATS

    @property
    def is_view(self) -> bool:
        """Whether this is a view (no files; its query is read instead)."""
        return bool(self.view_text)

    @property
    def full_name(self) -> str:
        """``db.table``."""
        return f"{self.db}.{self.name}"

    @property
    def all_columns(self) -> tuple[ColumnDesc, ...]:
        """Data columns then partition columns, the order ``SELECT *`` shows."""
        return self.columns + self.partition_columns

    def stats_of(self, name: str) -> ColumnStats | None:
        """The column's statistics from the last COMPUTE STATS, if any."""
        return next((s for s in self.column_stats if s.name == name), None)

    def column(self, name: str) -> ColumnDesc | None:
        """The column (data or partition) called ``name``, case-insensitively."""
        low = name.lower()
        for c in self.all_columns:
            if c.name == low:
                return c
        return None


class Catalog(Protocol):
    """What the engine needs from the metastore: reads plus versioned change operations."""

    @property
    def version(self) -> int:
        """The catalog version, bumped by every change."""

    def databases(self) -> list[Database]:
        """All databases, sorted by name."""

    def database(self, name: str) -> Database | None:
        """One database, or None."""

    def tables(self, db: str) -> list[Table]:
        """The tables of a database, sorted by name."""

    def table(self, db: str, name: str) -> Table | None:
        """One table, or None."""

    def create_database(self, database: Database, *, if_not_exists: bool) -> int:
        """Add a database."""

    def drop_database(self, name: str, *, if_exists: bool, cascade: bool) -> int:
        """Remove a database (and with ``cascade`` its tables)."""

    def create_table(self, table: Table, *, if_not_exists: bool) -> int:
        """Add a table."""

    def alter_table(self, db: str, name: str, table: Table) -> int:
        """Replace a table's definition (rename, new columns...)."""

    def drop_table(self, db: str, name: str, *, if_exists: bool) -> int:
        """Remove a table."""

    def add_files(self, db: str, name: str, files: Sequence[DataFile]) -> int:
        """Record new data files of a table (INSERT INTO)."""

    def replace_files(
        self,
        db: str,
        name: str,
        files: Sequence[DataFile],
        partitions: Iterable[tuple[tuple[str, str], ...]] | None = None,
    ) -> int:
        """Replace a table's files: all of them, or those of the given partitions."""

    def set_row_count(
        self, db: str, name: str, rows: int, column_stats: Sequence[ColumnStats] | None = None
    ) -> int:
        """Record the row count (and, when given, the column statistics) COMPUTE STATS
        found; an INSERT resets the count and keeps the columns' figures, as Impala."""


def _no_db(name: str) -> ImpalaError:
    return analysis(f"Database does not exist: {name}")


def _no_table(db: str, name: str) -> ImpalaError:
    return analysis(f"Table does not exist: {db}.{name}")


def _table_to_json(t: Table) -> str:
    return json.dumps(dataclasses.asdict(t))


def _table_from_json(text: str) -> Table:
    return table_from_dict(json.loads(text))


def table_from_dict(raw: dict[str, object]) -> Table:
    """A table from its ``dataclasses.asdict`` form (the metastore file, catalogd's RPCs
    and topic); raises KeyError, TypeError or ValueError on a malformed one."""
    d: dict[str, object] = dict(raw)
    d["columns"] = tuple(ColumnDesc(**c) for c in _items(d["columns"]))
    d["partition_columns"] = tuple(ColumnDesc(**c) for c in _items(d.get("partition_columns")))
    d["files"] = tuple(
        DataFile(
            str(f["path"]),
            int(f["size"]),
            tuple((str(k), str(v)) for k, v in f.get("partition", ())),
        )
        for f in _items(d.get("files"))
    )
    d["column_stats"] = column_stats_from(d.get("column_stats"))
    return Table(**d)  # type: ignore[arg-type]


def column_stats_from(raw: object) -> tuple[ColumnStats, ...]:
    """Column statistics from their ``asdict`` form (absent: none)."""
    return tuple(ColumnStats(**s) for s in _items(raw))


def _items(raw: object) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise TypeError(f"expected a list, got {type(raw).__name__}")
    return [dict(x) for x in raw]


class LocalCatalog:
    """A :class:`Catalog` held in memory and persisted, change by change, in DuckDB."""

    def __init__(self, warehouse_dir: pathlib.Path, path: pathlib.Path) -> None:
        self._warehouse = warehouse_dir
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._store = duckdb.connect(str(path))
        self._store.execute(
            "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value BIGINT);"
            "CREATE TABLE IF NOT EXISTS databases (name VARCHAR PRIMARY KEY, body VARCHAR);"
            "CREATE TABLE IF NOT EXISTS tables (db VARCHAR, name VARCHAR, body VARCHAR,"
            " PRIMARY KEY (db, name));"
        )
        row = self._store.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        self._version = int(row[0]) if row else 0
        self._dbs: dict[str, Database] = {}
        for (body,) in self._store.execute("SELECT body FROM databases").fetchall():
            d = Database(**json.loads(body))
            self._dbs[d.name] = d
        self._tables: dict[tuple[str, str], Table] = {}
        for (body,) in self._store.execute("SELECT body FROM tables").fetchall():
            t = _table_from_json(body)
            self._tables[(t.db, t.name)] = t
        with self._lock:
            if DEFAULT_DB not in self._dbs:
                self._put_db(Database(DEFAULT_DB, "Default Hive database", str(warehouse_dir)))
            if BUILTINS_DB not in self._dbs:
                self._put_db(
                    Database(BUILTINS_DB, "System database for Impala builtin functions", "")
                )

    def close(self) -> None:
        """Close the DuckDB file."""
        with self._lock:
            self._store.close()

    # -- reads --------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The catalog version, bumped by every change."""
        return self._version

    def databases(self) -> list[Database]:
        """All databases, sorted by name."""
        return sorted(self._dbs.values(), key=lambda d: d.name)

    def database(self, name: str) -> Database | None:
        """One database, or None."""
        return self._dbs.get(name.lower())

    def tables(self, db: str) -> list[Table]:
        """The tables of a database, sorted by name."""
        low = db.lower()
        return sorted(
            (t for (d, _), t in list(self._tables.items()) if d == low), key=lambda t: t.name
        )

    def table(self, db: str, name: str) -> Table | None:
        """One table, or None."""
        return self._tables.get((db.lower(), name.lower()))

    # -- changes ------------------------------------------------------------------------

    def _bump(self) -> int:
        self._version += 1
        self._store.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", [self._version])
        return self._version

    def _put_db(self, d: Database) -> int:
        self._store.execute(
            "INSERT OR REPLACE INTO databases VALUES (?, ?)",
            [d.name, json.dumps(dataclasses.asdict(d))],
        )
        self._dbs[d.name] = d
        return self._bump()

    def _put_table(self, t: Table) -> int:
        self._store.execute(
            "INSERT OR REPLACE INTO tables VALUES (?, ?, ?)", [t.db, t.name, _table_to_json(t)]
        )
        self._tables[(t.db, t.name)] = t
        return self._bump()

    def _del_table(self, db: str, name: str) -> None:
        self._store.execute("DELETE FROM tables WHERE db = ? AND name = ?", [db, name])
        del self._tables[(db, name)]

    def _existing(self, db: str, name: str) -> Table:
        if db not in self._dbs:
            raise _no_db(db)
        t = self._tables.get((db, name))
        if t is None:
            raise _no_table(db, name)
        return t

    def create_database(self, database: Database, *, if_not_exists: bool) -> int:
        """Add a database."""
        with self._lock:
            if database.name in self._dbs:
                if if_not_exists:
                    return self._version
                raise analysis(f"Database already exists: {database.name}")
            return self._put_db(database)

    def drop_database(self, name: str, *, if_exists: bool, cascade: bool) -> int:
        """Remove a database (and with ``cascade`` its tables)."""
        with self._lock:
            if name not in self._dbs:
                if if_exists:
                    return self._version
                raise _no_db(name)
            if name in (DEFAULT_DB, BUILTINS_DB):
                raise analysis(f"Cannot drop {name} database.")
            owned = [k for k in self._tables if k[0] == name]
            if owned and not cascade:
                raise ImpalaError(
                    "ImpalaRuntimeException",
                    f"Error making 'dropDatabase' RPC to Hive Metastore: \n"
                    f"CAUSED BY: InvalidOperationException: Database {name} is not empty. "
                    f"One or more tables exist.",
                )
            for db, t in owned:
                self._del_table(db, t)
            self._store.execute("DELETE FROM databases WHERE name = ?", [name])
            del self._dbs[name]
            return self._bump()

    def create_table(self, table: Table, *, if_not_exists: bool) -> int:
        """Add a table."""
        with self._lock:
            if table.db not in self._dbs:
                raise _no_db(table.db)
            if (table.db, table.name) in self._tables:
                if if_not_exists:
                    return self._version
                raise analysis(f"Table already exists: {table.full_name}")
            return self._put_table(dataclasses.replace(table, created=table.created or time.time()))

    def alter_table(self, db: str, name: str, table: Table) -> int:
        """Replace a table's definition (rename, new columns...)."""
        with self._lock:
            self._existing(db, name)
            if (table.db, table.name) != (db, name):
                if table.db not in self._dbs:
                    raise _no_db(table.db)
                if (table.db, table.name) in self._tables:
                    raise analysis(f"Table already exists: {table.full_name}")
                self._del_table(db, name)
            return self._put_table(table)

    def drop_table(self, db: str, name: str, *, if_exists: bool) -> int:
        """Remove a table."""
        with self._lock:
            if db not in self._dbs:
                if if_exists:
                    return self._version
                raise _no_db(db)
            if (db, name) not in self._tables:
                if if_exists:
                    return self._version
                raise _no_table(db, name)
            self._del_table(db, name)
            return self._bump()

    def add_files(self, db: str, name: str, files: Sequence[DataFile]) -> int:
        """Record new data files of a table (INSERT INTO)."""
        with self._lock:
            t = self._existing(db, name)
            return self._put_table(dataclasses.replace(t, files=t.files + tuple(files)))

    def replace_files(
        self,
        db: str,
        name: str,
        files: Sequence[DataFile],
        partitions: Iterable[tuple[tuple[str, str], ...]] | None = None,
    ) -> int:
        """Replace a table's files: all of them, or those of the given partitions."""
        with self._lock:
            t = self._existing(db, name)
            if partitions is None:
                kept: tuple[DataFile, ...] = ()
            else:
                gone = set(partitions)
                kept = tuple(f for f in t.files if f.partition not in gone)
            return self._put_table(dataclasses.replace(t, files=kept + tuple(files)))

    def set_row_count(
        self, db: str, name: str, rows: int, column_stats: Sequence[ColumnStats] | None = None
    ) -> int:
        """Record the row count (and the column statistics) COMPUTE STATS found."""
        with self._lock:
            t = self._existing(db, name)
            stats = t.column_stats if column_stats is None else tuple(column_stats)
            return self._put_table(dataclasses.replace(t, row_count=rows, column_stats=stats))


def scan_files(t: Table) -> list[DataFile]:
    """The data files now in a table's directory, as Impala sees them: partition directories
    ``key=value`` in the partition columns' order, hidden (``.``/``_``) names skipped."""
    root = pathlib.Path(t.location)
    keys = [c.name for c in t.partition_columns]
    found: list[DataFile] = []
    if not t.location or not root.is_dir():
        return found

    def walk(directory: pathlib.Path, depth: int, part: tuple[tuple[str, str], ...]) -> None:
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if depth < len(keys):
                if entry.is_dir() and "=" in entry.name:
                    k, v = entry.name.split("=", 1)
                    if k.lower() == keys[depth]:
                        walk(entry, depth + 1, (*part, (keys[depth], v)))
            elif entry.is_file():
                found.append(DataFile(str(entry.relative_to(root)), entry.stat().st_size, part))

    walk(root, 0, ())
    return found
