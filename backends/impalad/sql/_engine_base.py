"""What every kind of statement shares: the engine's state (the catalog, one in-memory
DuckDB database, the default query options), looking databases and tables up, and
reading a table's files (the scan each query's table reference becomes)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
from sqlglot import exp

from . import _options
from ._catalog import (
    Catalog,
    Database,
    LocalCatalog,
    Table,
    scan_files,
)
from ._errors import analysis
from ._recognize import (
    split_name,
)
from ._results import Session, Statement
from ._show import (
    cols,
)
from ._types import ColumnDesc


class _EngineBase:
    """The engine's state and the lookups and scans every statement uses."""

    def __init__(
        self,
        warehouse_dir: pathlib.Path,
        *,
        catalog_path: pathlib.Path | None = None,
        default_options: Mapping[str, str] = {},
        catalog: Catalog | None = None,
    ) -> None:
        self.warehouse_dir = pathlib.Path(warehouse_dir).resolve()
        self.warehouse_dir.mkdir(parents=True, exist_ok=True)
        self._own_catalog: LocalCatalog | None = None
        if catalog is None:
            path = catalog_path or self.warehouse_dir / ".impala-lb-metastore.duckdb"
            self._own_catalog = LocalCatalog(self.warehouse_dir, pathlib.Path(path))
            catalog = self._own_catalog
        self.catalog: Catalog = catalog
        self._defaults = _options.defaults(default_options)
        self._db = duckdb.connect(":memory:")
        self._db_lock = threading.Lock()
        self._file_columns: dict[tuple[str, int], frozenset[str]] = {}

    def close(self) -> None:
        """Close the DuckDB database and the catalog file."""
        with self._db_lock:
            self._db.close()
        if self._own_catalog is not None:
            self._own_catalog.close()

    def query_options(self, session: Session) -> list[tuple[str, str, str]]:
        """Rows for ``SET ALL``: (option NAME, value, level)."""
        values = self._effective_options(session)
        return [(o.name, values[o.name], o.level) for o in _options.OPTIONS]

    def _effective_options(self, session: Session) -> dict[str, str]:
        values = dict(self._defaults)
        for key, value in session.options.items():
            name = key.upper()
            if name in values:
                values[name] = value
        return values

    def _cursor(self) -> Any:
        with self._db_lock:
            return self._db.cursor()

    def _need_db(self, name: str) -> Database:
        d = self.catalog.database(name)
        if d is None:
            raise analysis(f"Database does not exist: {name}")
        return d

    def _need_table(
        self, session: Session, qualified: str, *, path_error: bool = False, files: bool = False
    ) -> Table:
        db, name = split_name(qualified, session.database)
        t = self.catalog.table(db, name)
        if t is None:
            if path_error:
                raise analysis(f"Could not resolve path: '{qualified.replace('`', '')}'")
            raise analysis(f"Could not resolve table reference: '{db}.{name}'")
        if files and t.is_view:
            raise analysis(f"Statement not applicable to a view: {t.full_name}")
        return t

    def _table_name(self, session: Session, node: exp.Expression) -> tuple[str, str]:
        table = node.this if isinstance(node, exp.Schema) else node
        if not isinstance(table, exp.Table):
            raise analysis("Expected a table name")
        return (table.db.lower() or session.database, table.name.lower())

    @staticmethod
    def _rows_statement(
        schema: list[ColumnDesc], rows: Sequence[Sequence[object]], kind: str = "DDL"
    ) -> Statement:
        return Statement(statement_type=kind, schema=schema, rows=rows)

    @staticmethod
    def _done(kind: str = "DDL", summary: str | None = None) -> Statement:
        if summary is None:
            return Statement(statement_type=kind, schema=None)
        return Statement(statement_type=kind, schema=cols("summary"), rows=[(summary,)])

    def _rescan(self, t: Table) -> int:
        if t.is_view:
            return self.catalog.version
        return self.catalog.replace_files(t.db, t.name, scan_files(t))

    def _default_location(self, db: str, name: str) -> str:
        d = self._need_db(db)
        base = pathlib.Path(d.location) if d.location else self.warehouse_dir / f"{db}.db"
        return str(base / name)

    def _scan_sql(self, t: Table) -> str:
        """A DuckDB subquery producing a table's rows with its Impala-declared types."""

        def typed(c: ColumnDesc, source: str, lenient: bool) -> str:
            cast = "TRY_CAST" if lenient else "CAST"
            value = f"{cast}({source} AS {c.duckdb_type()})"
            if c.type == "CHAR":
                value = f"rpad(CAST({value} AS VARCHAR), {c.length}, ' ')"
            elif c.type == "VARCHAR":
                value = f"left({value}, {c.length})"
            return f"{value} AS {_q(c.name)}"

        if not t.files:
            cols = ", ".join(typed(c, "NULL", False) for c in t.all_columns)
            return f"SELECT {cols} WHERE false"
        paths = "[" + ", ".join(_lit(os.path.join(t.location, f.path)) for f in t.files) + "]"
        hive = "true" if t.partition_columns else "false"
        text = t.file_format == "TEXTFILE"
        if text:
            columns = "{" + ", ".join(f"{_lit(c.name)}: 'VARCHAR'" for c in t.columns) + "}"
            source = (
                f"read_csv({paths}, delim={_lit(t.field_delimiter)}, header=false, quote='', "
                f"escape='', nullstr='\\N', auto_detect=false, columns={columns}, "
                f"hive_partitioning={hive}, null_padding=true, strict_mode=false)"
            )
        else:
            source = f"read_parquet({paths}, union_by_name=true, hive_partitioning={hive})"
        present = None if text else self._parquet_columns(t)
        projected = [
            typed(c, _q(c.name) if present is None or c.name in present else "NULL", text)
            for c in t.columns
        ]
        projected += [typed(c, f"CAST({_q(c.name)} AS VARCHAR)", True) for c in t.partition_columns]
        return f"SELECT {', '.join(projected)} FROM {source}"

    def _parquet_columns(self, t: Table) -> set[str] | None:
        """The column names found in any of a table's Parquet files (cached per file)."""
        present: set[str] = set()
        unknown: list[tuple[str, int]] = []
        for f in t.files:
            key = (os.path.join(t.location, f.path), f.size)
            names = self._file_columns.get(key)
            if names is None:
                unknown.append(key)
            else:
                present |= names
        if unknown:
            cursor = self._cursor()
            try:
                for key in unknown:
                    rows = cursor.execute(
                        "SELECT name FROM parquet_schema(?) WHERE num_children IS NULL "
                        "OR num_children = 0",
                        [key[0]],
                    ).fetchall()
                    names = frozenset(str(r[0]).lower() for r in rows)
                    with self._db_lock:
                        if len(self._file_columns) > 100_000:
                            self._file_columns.clear()
                        self._file_columns[key] = names
                    present |= names
            except duckdb.Error:
                return None  # unreadable file: let the scan itself report it
            finally:
                cursor.close()
        return present


VERSION = (
    f"impalad version 4.5.0-impala-lb RELEASE (build impala-lb 0.1.0, DuckDB {duckdb.__version__})"
)


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _strip_file_scheme(location: str) -> str:
    if location.startswith("file://"):
        return location[len("file://") :]
    if location.startswith("file:"):
        return location[len("file:") :]
    return location


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
