"""The engine: one Impala statement in, a :class:`Statement` out.

Impala-only statements (SHOW, DESCRIBE, SET, USE, REFRESH...) are recognized by
``_recognize``; everything else is parsed by sqlglot in the :class:`Impala` dialect.
Queries are rewritten so that every table reference reads the table's files
(``read_parquet``/``read_csv`` over the catalog's file list), then generated as DuckDB
SQL and run on a cursor of one shared in-memory DuckDB database. DDL and DML change
files under the warehouse directory and tell the :class:`Catalog` about it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from . import _options
from ._arith import type_int_literal, type_literal_projections, widen_integer_arithmetic
from ._catalog import (
    BUILTINS_DB,
    DEFAULT_DB,
    Catalog,
    ColumnStats,
    Database,
    DataFile,
    LocalCatalog,
    Table,
    scan_files,
)
from ._dialect import REWRITES, Impala, rewrite_functions
from ._errors import ImpalaError, analysis, parse_error
from ._recognize import (
    Recognized,
    like_matcher,
    partition_values,
    recognize,
    split_name,
    strip_hints,
    strip_statement,
    unquote_name,
    unquote_string,
)
from ._results import Session, Statement, _DuckQuery, translate_duckdb_error
from ._show import (
    VARIABLE_SIZE,
    cols,
    column_stats,
    create_table_text,
    describe_formatted,
    fixed_size,
    human_size,
    table_stats,
)
from ._types import ColumnDesc, column_from_sqlglot, map_result_column

VERSION = (
    f"impalad version 4.5.0-impala-lb RELEASE (build impala-lb 0.1.0, DuckDB {duckdb.__version__})"
)

_S = "STRING"


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclasses.dataclass
class _Compiled:
    """A query compiled to DuckDB SQL, with the tables it reads."""

    sql: str
    tables: list[Table]
    labels: list[str] | None  # None: take DuckDB's output names
    plain_names: set[str]  # names projected as bare columns (or * was used)
    sized: dict[str, ColumnDesc] = dataclasses.field(default_factory=dict)  # CAST AS VARCHAR(n)


class Engine:
    """Executes Impala statements on DuckDB over the warehouse's Parquet and text files."""

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

    # -- the public API -------------------------------------------------------------------

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

    def execute(self, session: Session, sql: str) -> Statement:
        """Run (or, for a query, prepare) one statement; raises ImpalaError."""
        started = time.monotonic()
        text = strip_statement(sql)
        if not text:
            raise parse_error(sql, "Encountered: EOF")
        try:
            recognized = recognize(text)
            if recognized is not None:
                stmt = self._impala_only(session, recognized, text)
            else:
                stmt = self._parsed(session, strip_hints(text))
        except ImpalaError:
            raise
        except duckdb.Error as err:
            raise translate_duckdb_error(err, session.database) from None
        except sqlglot.errors.SqlglotError as err:
            raise analysis(f"Statement not supported by impala-lb: {err}") from None
        except OSError as err:
            raise ImpalaError("ImpalaRuntimeException", f"Filesystem error: {err}") from None
        stmt.note(
            analysis_s=round(time.monotonic() - started, 6),
            statement_type=stmt.statement_type,
            sql=text,
        )
        return stmt

    # -- helpers --------------------------------------------------------------------------

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

    # -- Impala-only statements -------------------------------------------------------------

    def _impala_only(self, session: Session, r: Recognized, text: str) -> Statement:
        p = r.parts
        kind = r.kind
        set_schema = cols("option", "value", "level")
        if kind == "set_all":
            return self._rows_statement(set_schema, self.query_options(session), "SET")
        if kind == "set_list":
            rows = [row for row in self.query_options(session) if row[2] in ("REGULAR", "ADVANCED")]
            return self._rows_statement(set_schema, rows, "SET")
        if kind == "set":
            value = unquote_string(p["value"].strip())
            if value == "":
                key = p["key"].upper()
                if key not in _options.BY_NAME:
                    raise ImpalaError("AnalysisException", f"Invalid query option: {p['key']}")
                session.options.pop(key, None)
            else:
                key, value = _options.normalize(p["key"], value)
                session.options[key] = value
            return self._rows_statement(set_schema, [], "SET")
        if kind == "unset":
            key = p["key"].upper()
            if key not in _options.BY_NAME:
                raise ImpalaError("AnalysisException", f"Invalid query option: {p['key']}")
            session.options.pop(key, None)
            return self._rows_statement(set_schema, [], "SET")
        if kind == "use":
            name = unquote_name(p["name"])
            self._need_db(name)
            session.database = name
            return Statement(statement_type="USE", schema=None)
        if kind == "show_databases":
            dbs = self.catalog.databases()
            if "like" in p:
                rx = like_matcher(unquote_string(p["like"]))
                dbs = [d for d in dbs if rx.match(d.name)]
            return self._rows_statement(cols("name", "comment"), [(d.name, d.comment) for d in dbs])
        if kind == "show_tables":
            db = unquote_name(p.get("db", session.database))
            self._need_db(db)
            names = [t.name for t in self.catalog.tables(db)]
            if "like" in p:
                rx = like_matcher(unquote_string(p["like"]))
                names = [n for n in names if rx.match(n)]
            return self._rows_statement(cols("name"), [(n,) for n in names])
        if kind == "show_functions":
            return self._show_functions(session, p)
        if kind == "show_create_table":
            t = self._need_table(session, p["name"])
            if t.is_view:
                return self._rows_statement(
                    cols("result"), [(f"CREATE VIEW {t.full_name} AS\n{t.view_text}",)]
                )
            return self._rows_statement(cols("result"), [(create_table_text(t),)])
        if kind in ("show_table_stats", "show_partitions"):
            t = self._need_table(session, p["name"], files=True)
            if kind == "show_partitions" and not t.partition_columns:
                raise analysis(f"Table is not partitioned: {t.full_name}")
            return self._rows_statement(*table_stats(t))
        if kind == "show_column_stats":
            return self._rows_statement(*column_stats(self._need_table(session, p["name"])))
        if kind == "show_files":
            t = self._need_table(session, p["name"], files=True)
            file_rows = [
                (
                    os.path.join(t.location, f.path),
                    human_size(f.size),
                    "/".join(f"{k}={v}" for k, v in f.partition),
                    "NONE",
                )
                for f in t.files
            ]
            return self._rows_statement(cols("Path", "Size", "Partition", "EC Policy"), file_rows)
        if kind == "describe_database":
            d = self._need_db(unquote_name(p["name"]))
            return self._rows_statement(
                cols("name", "location", "comment"), [(d.name, d.location, d.comment)]
            )
        if kind == "describe":
            t = self._need_table(session, p["name"], path_error=True)
            if p.get("formatted"):
                return self._rows_statement(*describe_formatted(t))
            rows = [(c.name, c.type_sql().lower(), c.comment) for c in t.all_columns]
            return self._rows_statement(cols("name", "type", "comment"), rows)
        if kind == "refresh":
            t = self._need_table(session, p["name"])
            self._rescan(t)
            return self._done("DDL", "Table has been refreshed.")
        if kind == "invalidate":
            if "name" in p:
                self._rescan(self._need_table(session, p["name"]))
            else:
                for d in self.catalog.databases():
                    for t in self.catalog.tables(d.name):
                        self._rescan(t)
            return self._done(
                "DDL",
                "Metadata of all tables has been invalidated."
                if "name" not in p
                else "Table metadata has been invalidated.",
            )
        if kind == "compute_stats":
            return self._compute_stats(session, self._need_table(session, p["name"], files=True))
        if kind == "load_data":
            return self._load_data(session, p)
        if kind == "explain":
            return self._explain(session, p["body"])
        if kind == "shutdown":
            raise analysis(":shutdown() is handled by the impalad service, not the SQL engine")
        raise parse_error(text)

    def _load_data(self, session: Session, p: dict[str, str]) -> Statement:
        """LOAD DATA INPATH: move files into the table (or partition) directory."""
        t = self._need_table(session, p["name"], files=True)
        source = pathlib.Path(_strip_file_scheme(unquote_string(p["path"])))
        if not source.exists():
            raise analysis(f"INPATH location '{source}' does not exist.")
        spec: tuple[tuple[str, str], ...] = ()
        if "partition" in p:
            values = partition_values(p["partition"])
            keys = [c.name for c in t.partition_columns]
            if sorted(values) != sorted(keys):
                raise analysis(
                    f"Items in partition spec must exactly match the partition columns in the "
                    f"table definition: {t.full_name}"
                )
            spec = tuple((k, values[k]) for k in keys)
        elif t.partition_columns:
            raise analysis(
                f"Table is partitioned but no partition spec was specified: {t.full_name}"
            )
        files = (
            [source]
            if source.is_file()
            else sorted(
                f for f in source.iterdir() if f.is_file() and not f.name.startswith((".", "_"))
            )
        )
        target = pathlib.Path(t.location, *(f"{k}={v}" for k, v in spec))
        target.mkdir(parents=True, exist_ok=True)
        if p.get("overwrite"):
            for old in t.files:
                if old.partition == spec:
                    _unlink(os.path.join(t.location, old.path))
        for moved in files:
            destination = target / moved.name
            if destination.exists():
                destination = target / f"{uuid.uuid4().hex}_{moved.name}"
            shutil.move(str(moved), destination)
        self._rescan(t)
        now = self.catalog.table(t.db, t.name) or t
        total = sum(1 for f in now.files if f.partition == spec)
        stmt = self._done(
            "LOAD",
            f"Loaded {len(files)} file(s). Total files in destination location: {total}",
        )
        return stmt

    def _show_functions(self, session: Session, p: dict[str, str]) -> Statement:
        db = unquote_name(p.get("db", session.database))
        self._need_db(db)
        schema = cols("return type", "signature", "binary type", "is persistent")
        rows: list[tuple[str, str, str, str]] = []
        if db == BUILTINS_DB:
            names = sorted(
                set(REWRITES)
                | {
                    "abs",
                    "avg",
                    "ceil",
                    "coalesce",
                    "concat",
                    "concat_ws",
                    "count",
                    "current_database",
                    "date_add",
                    "date_sub",
                    "datediff",
                    "effective_user",
                    "floor",
                    "from_unixtime",
                    "ifnull",
                    "instr",
                    "length",
                    "locate",
                    "lower",
                    "max",
                    "min",
                    "now",
                    "nvl",
                    "regexp_extract",
                    "regexp_replace",
                    "round",
                    "substr",
                    "sum",
                    "to_date",
                    "trim",
                    "unix_timestamp",
                    "upper",
                    "user",
                    "version",
                }
            )
            rows = [("STRING", f"{n}(...)", "BUILTIN", "true") for n in names]
        if "like" in p:
            rx = like_matcher(unquote_string(p["like"]))
            rows = [r for r in rows if rx.match(r[1].split("(")[0])]
        return self._rows_statement(schema, rows)

    # -- files on disk --------------------------------------------------------------------

    def _rescan(self, t: Table) -> int:
        if t.is_view:
            return self.catalog.version
        return self.catalog.replace_files(t.db, t.name, scan_files(t))

    def _default_location(self, db: str, name: str) -> str:
        d = self._need_db(db)
        base = pathlib.Path(d.location) if d.location else self.warehouse_dir / f"{db}.db"
        return str(base / name)

    # -- reading tables -------------------------------------------------------------------

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

    # -- queries --------------------------------------------------------------------------

    def _parse(self, text: str) -> exp.Expression:
        try:
            trees = sqlglot.parse(text, read=Impala)
        except sqlglot.errors.ParseError as err:
            raise self._parse_exception(text, err) from None
        except sqlglot.errors.TokenError as err:
            raise parse_error(text, str(err)) from None
        trees = [t for t in trees if t is not None]
        if len(trees) != 1:
            raise parse_error(text, "Encountered: ;\nExpected: one statement")
        tree: exp.Expression = trees[0]  # type: ignore[assignment]
        if isinstance(tree, exp.Command):
            word = text.split()[0].upper() if text.split() else "EOF"
            raise parse_error(
                text,
                f"Encountered: {word}\nExpected: ALTER, COMPUTE, CREATE, "
                "DESCRIBE, DROP, EXPLAIN, INSERT, INVALIDATE, REFRESH, SELECT, SET, "
                "SHOW, TRUNCATE, USE, VALUES, WITH",
            )
        return tree

    @staticmethod
    def _parse_exception(text: str, err: sqlglot.errors.ParseError) -> ImpalaError:
        info = err.errors[0] if err.errors else {}
        line_no = int(info.get("line") or 1)
        col = int(info.get("col") or 1)
        lines = text.splitlines() or [""]
        line = lines[min(line_no, len(lines)) - 1]
        highlight = str(info.get("highlight") or "")
        caret = " " * max(col - len(highlight), 0) + "^"
        message = f"Syntax error in line {line_no}:\n{line}\n{caret}\n"
        description = str(info.get("description") or "").strip()
        message += f"Encountered: {highlight or 'EOF'}"
        if description:
            message += f"\n{description}"
        return ImpalaError("ParseException", message)

    def _session_values(self, session: Session) -> dict[str, exp.Expression]:
        user = exp.Literal.string(session.user)
        return {
            "current_database": exp.Literal.string(session.database),
            "user": user,
            "effective_user": user.copy(),
            "current_user": user.copy(),
            "session_user": user.copy(),
            "logged_in_user": user.copy(),
            "version": exp.Literal.string(VERSION),
            "pid": exp.Literal.number(os.getpid()),
            "coordinator": exp.Literal.string("localhost"),
        }

    def _schema_for(
        self, session: Session, tree: exp.Expression
    ) -> dict[str, dict[str, dict[str, str]]]:
        """The column types of the catalog tables a query names, for sqlglot's optimizer."""
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for node in tree.find_all(exp.Table):
            if not isinstance(node.this, exp.Identifier):
                continue
            db = node.db.lower() or session.database
            t = self.catalog.table(db, node.name.lower())
            if t is not None:
                schema.setdefault(db, {})[t.name] = {c.name: c.type_sql() for c in t.all_columns}
        return schema

    def _view_sql(self, view: Table, depth: int) -> str:
        """A view's query compiled to DuckDB, its columns named as the view declares."""
        if depth > 32:
            raise analysis(f"View nesting too deep at {view.full_name}")
        context = Session("", view.db)
        compiled = self._compile(context, self._parse(view.view_text), label=True, depth=depth + 1)
        names = ", ".join(_q(c.name) for c in view.columns)
        return f"SELECT * FROM ({compiled.sql}) AS __impala_v({names})"

    def _compile(
        self, session: Session, tree: exp.Expression, *, label: bool, depth: int = 0
    ) -> _Compiled:
        """Resolve tables, rewrite functions, label projections; the DuckDB SQL."""
        tree = tree.copy()
        labels: list[str] | None = None
        plain: set[str] = set()
        sized: dict[str, ColumnDesc] = {}
        if label:
            labels = self._label(tree, plain, sized)
        for values in tree.find_all(exp.Values):
            for row in values.expressions:
                if isinstance(row, exp.Tuple):
                    row.set("expressions", [type_int_literal(e) for e in row.expressions])
        tree = rewrite_functions(tree, self._session_values(session))
        tree = widen_integer_arithmetic(
            tree, self._schema_for(session, tree), session.database, Impala
        )
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        scans: dict[str, str] = {}
        tables: list[Table] = []
        for node in list(tree.find_all(exp.Table)):
            if not isinstance(node.this, exp.Identifier):
                continue
            name = node.name.lower()
            db = node.db.lower()
            if not db and name in ctes:
                continue
            db = db or session.database
            t = self.catalog.table(db, name)
            if t is None:
                raise analysis(f"Could not resolve table reference: '{db}.{name}'")
            placeholder = f"__impala_scan_{len(scans)}"
            scans[placeholder] = self._view_sql(t, depth) if t.is_view else self._scan_sql(t)
            tables.append(t)
            alias = node.alias or name
            node.replace(
                exp.Table(
                    this=exp.to_identifier(placeholder, quoted=True),
                    alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
                )
            )
        sql = tree.sql(dialect="duckdb")
        for placeholder, scan in scans.items():
            sql = sql.replace(_q(placeholder), f"({scan})")
        return _Compiled(sql, tables, labels, plain, sized)

    @staticmethod
    def _label(
        tree: exp.Expression, plain: set[str], sized: dict[str, ColumnDesc]
    ) -> list[str] | None:
        """Alias each top-level projection with Impala's label; literal ints get their type."""
        select: Any = tree
        while isinstance(select, exp.SetOperation):
            type_literal_projections(select.expression)
            select = select.this
        if isinstance(select, exp.Subquery):
            select = select.unnest()
        if isinstance(tree, exp.Values) or isinstance(select, exp.Values):
            values = tree if isinstance(tree, exp.Values) else select
            assert values is not None
            first = values.expressions[0]
            items = first.expressions if isinstance(first, exp.Tuple) else [first]
            labels = [e.sql(dialect=Impala).lower() for e in items]
            for row in values.expressions:
                if isinstance(row, exp.Tuple):
                    row.set("expressions", [type_int_literal(e) for e in row.expressions])
            return labels
        if not isinstance(select, exp.Select):
            return None
        new: list[Any] = []
        for item in select.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                plain.add("*")
                new.append(item)
                continue
            if isinstance(item, exp.Alias):
                name = item.alias.lower()
                inner = item.this
            elif isinstance(item, exp.Column):
                name = item.name.lower()
                inner = item
            else:
                name = item.sql(dialect=Impala).lower()
                inner = item
            if isinstance(inner, exp.Column):
                plain.add(inner.name.lower())
            if isinstance(inner, exp.Cast) and inner.to.this in (
                exp.DataType.Type.VARCHAR,
                exp.DataType.Type.CHAR,
            ):
                params = [p.name for p in inner.to.expressions]
                if params and params[0].isdigit():
                    kind = "CHAR" if inner.to.this == exp.DataType.Type.CHAR else "VARCHAR"
                    sized[name] = ColumnDesc(name, kind, length=int(params[0]))
            inner = type_int_literal(inner)
            new.append(exp.alias_(inner, name, quoted=True))
        select.set("expressions", new)
        return None

    def _describe_sql(self, sql: str, database: str) -> list[tuple[str, str]]:
        cursor = self._cursor()
        try:
            rows = cursor.execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as err:
            raise translate_duckdb_error(err, database) from None
        finally:
            cursor.close()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _prepare_query(
        self, session: Session, tree: exp.Expression
    ) -> tuple[list[ColumnDesc], str, list[Any]]:
        """Compile a query: the Impala schema, the final DuckDB SQL and the converters."""
        compiled = self._compile(session, tree, label=True)
        described = self._describe_sql(compiled.sql, session.database)
        names = compiled.labels or [name.lower() for name, _ in described]
        if len(names) != len(described):
            names = [name.lower() for name, _ in described]
        declared: dict[str, ColumnDesc] = {}
        for t in compiled.tables:
            for c in t.all_columns:
                if c.type in ("VARCHAR", "CHAR"):
                    declared.setdefault(c.name, c)
        schema: list[ColumnDesc] = []
        outer: list[str] = []
        converters: list[Any] = []
        inner_names = [f"c{i}" for i in range(len(described))]
        for i, ((_, duck_type), label) in enumerate(zip(described, names, strict=True)):
            mapping = map_result_column(label, duck_type)
            column = mapping.column
            known = compiled.sized.get(label)
            if known is None and (label in compiled.plain_names or "*" in compiled.plain_names):
                known = declared.get(label)
            if known is not None and column.type == "STRING":
                column = known.renamed(label)
            schema.append(column)
            outer.append(f"{mapping.sql.format(_q(inner_names[i]))} AS {_q(label)}")
            converters.append(mapping.convert)
        sql = (
            f"SELECT {', '.join(outer)} FROM ({compiled.sql}) AS __impala_q"
            f"({', '.join(_q(n) for n in inner_names)})"
        )
        return schema, sql, converters

    def _query(self, session: Session, tree: exp.Expression) -> Statement:
        schema, sql, converters = self._prepare_query(session, tree)
        limit = self._effective_options(session).get("EXEC_TIME_LIMIT_S", "0")
        query = _DuckQuery(
            self._cursor,
            sql,
            converters,
            session.database,
            time_limit_s=float(limit) if limit.strip().isdigit() else 0,
        )
        return Statement(
            statement_type="QUERY",
            schema=schema,
            query=query,
            summary={"duckdb_sql": sql},
            plan=lambda: self._plan_text(sql),
        )

    def _plan_text(self, sql: str) -> str:
        """DuckDB's physical plan of a query, for the runtime profile."""
        cursor = self._cursor()
        try:
            rows = cursor.execute("EXPLAIN " + sql).fetchall()
        finally:
            cursor.close()
        return "\n".join(str(row[-1]) for row in rows)

    def _explain(self, session: Session, body: str) -> Statement:
        tree = self._parse(body)
        if isinstance(tree, exp.Insert):
            source = self._insert_source(tree)
            compiled = self._compile(session, source, label=False)
        elif isinstance(tree, exp.Query):
            compiled = self._compile(session, tree, label=True)
        else:
            raise analysis("EXPLAIN is only supported for queries and INSERT statements")
        cursor = self._cursor()
        try:
            plan_rows = cursor.execute("EXPLAIN " + compiled.sql).fetchall()
            threads_row = cursor.execute("SELECT current_setting('threads')").fetchone()
        except duckdb.Error as err:
            raise translate_duckdb_error(err, session.database) from None
        finally:
            cursor.close()
        level = self._effective_options(session).get("EXPLAIN_LEVEL", "1")
        threads = threads_row[0] if threads_row else "unknown"
        scanned = sum(f.size for t in compiled.tables for f in t.files)
        # DuckDB plans without memory reservations or estimates: the header says what is
        # known (its threads, the bytes the scans read) and that memory is not
        lines = [
            f"Max Per-Host Resource Reservation: Memory=unknown Threads={threads}",
            f"Per-Host Resource Estimates: Memory=unknown, scans {human_size(scanned)}",
        ]
        missing = [t.full_name for t in compiled.tables if t.row_count < 0 and not t.is_view]
        if missing:
            lines.append(
                "WARNING: The following tables are missing relevant table and/or column statistics."
            )
            lines.append(", ".join(sorted(set(missing))))
        if level in ("2", "3", "EXTENDED", "VERBOSE"):
            lines.append(f"Analyzed query: {compiled.sql}")
        lines += ["", "PLAN-ROOT SINK", "|"]
        for row in plan_rows:
            lines.extend(str(row[-1]).splitlines())
        for t in compiled.tables:
            lines.append(
                f"   {t.full_name}: {len(t.files)} file(s), "
                f"{human_size(sum(f.size for f in t.files))}"
            )
        stmt = self._rows_statement(cols("Explain String"), [(line,) for line in lines], "EXPLAIN")
        stmt.summary["plan"] = "\n".join(lines)
        return stmt

    # -- statements sqlglot parses --------------------------------------------------------

    def _parsed(self, session: Session, text: str) -> Statement:
        tree = self._parse(text)
        if isinstance(tree, exp.Query | exp.Values):
            return self._query(session, tree)
        if isinstance(tree, exp.Insert):
            return self._insert(session, tree)
        if isinstance(tree, exp.Create):
            return self._create(session, tree)
        if isinstance(tree, exp.Drop):
            return self._drop(session, tree)
        if isinstance(tree, exp.TruncateTable):
            return self._truncate(session, tree)
        if isinstance(tree, exp.Alter):
            return self._alter(session, tree)
        raise analysis(f"Statement not supported by impala-lb: {text.split()[0].upper()}")

    def _table_name(self, session: Session, node: exp.Expression) -> tuple[str, str]:
        table = node.this if isinstance(node, exp.Schema) else node
        if not isinstance(table, exp.Table):
            raise analysis("Expected a table name")
        return (table.db.lower() or session.database, table.name.lower())

    # DDL: databases and tables

    def _create(self, session: Session, tree: exp.Create) -> Statement:
        kind = str(tree.args.get("kind") or "").upper()
        exists = bool(tree.args.get("exists"))
        props = tree.args.get("properties")
        prop_list = list(props.expressions) if props is not None else []
        if kind in ("DATABASE", "SCHEMA"):
            name = tree.this.name.lower()
            comment = ""
            location = ""
            for prop in prop_list:
                if isinstance(prop, exp.SchemaCommentProperty):
                    comment = prop.this.name
                elif isinstance(prop, exp.LocationProperty):
                    location = _strip_file_scheme(prop.this.name)
            location = location or str(self.warehouse_dir / f"{name}.db")
            version = self.catalog.create_database(
                Database(name, comment, location, session.user), if_not_exists=exists
            )
            pathlib.Path(location).mkdir(parents=True, exist_ok=True)
            stmt = self._done("DDL", "Database has been created.")
            stmt.summary["catalog_version"] = version
            return stmt
        if kind == "VIEW":
            return self._create_view(session, tree)
        if kind != "TABLE":
            raise analysis(f"CREATE {kind} is not supported by impala-lb")
        db, name = self._table_name(session, tree.this)
        self._need_db(db)
        options = self._effective_options(session)
        default_format = (
            "PARQUET" if options.get("DEFAULT_FILE_FORMAT") == "PARQUET" else "TEXTFILE"
        )
        spec: dict[str, Any] = {"file_format": default_format, "external": False}
        like: exp.Table | None = None
        partition_names: list[str] = []
        partition_defs: list[ColumnDesc] = []
        for prop in prop_list:
            if isinstance(prop, exp.FileFormatProperty):
                fmt = prop.this.name.upper()
                if fmt not in ("PARQUET", "TEXTFILE"):
                    raise analysis(f"Unsupported file format for impala-lb: {fmt}")
                spec["file_format"] = fmt
            elif isinstance(prop, exp.LocationProperty):
                spec["location"] = _strip_file_scheme(prop.this.name)
            elif isinstance(prop, exp.SchemaCommentProperty):
                spec["comment"] = prop.this.name
            elif isinstance(prop, exp.RowFormatDelimitedProperty):
                fields = prop.args.get("fields")
                if fields is not None:
                    spec["field_delimiter"] = _delimiter(fields.name)
            elif isinstance(prop, exp.ExternalProperty):
                spec["external"] = True
            elif isinstance(prop, exp.LikeProperty):
                like = prop.this
            elif isinstance(prop, exp.PartitionedByProperty):
                schema = prop.this
                for item in schema.expressions if isinstance(schema, exp.Schema) else [schema]:
                    if isinstance(item, exp.ColumnDef):
                        partition_defs.append(_column_def(item))
                    else:
                        partition_names.append(item.name.lower())
        location = spec.pop("location", None) or self._default_location(db, name)
        if like is not None:
            source = self._need_table(session, f"{like.db}.{like.name}" if like.db else like.name)
            inherited: dict[str, Any] = {
                "file_format": source.file_format,
                "field_delimiter": source.field_delimiter,
            }
            if not _has_format(prop_list):
                spec.pop("file_format", None)  # LIKE keeps the source's format unless STORED AS
            table = Table(
                db,
                name,
                source.columns,
                source.partition_columns,
                location=location,
                owner=session.user,
                **{**inherited, **spec},
            )
            return self._create_table(table, exists)
        if tree.expression is not None:
            return self._ctas(session, tree, db, name, location, spec, partition_names, exists)
        schema_node = tree.this
        if not isinstance(schema_node, exp.Schema):
            raise analysis("CREATE TABLE needs a column list, LIKE or AS SELECT")
        columns = tuple(
            _column_def(c) for c in schema_node.expressions if isinstance(c, exp.ColumnDef)
        )
        _check_unique([c.name for c in columns] + [c.name for c in partition_defs])
        table = Table(
            db, name, columns, tuple(partition_defs), location=location, owner=session.user, **spec
        )
        return self._create_table(table, exists)

    def _view_definition(
        self, session: Session, db: str, name: str, query: Any, names: list[ColumnDesc]
    ) -> Table:
        """A view's catalog entry: its qualified query text and its result columns."""
        if not isinstance(query, exp.Query):
            raise analysis("A view needs a query: CREATE VIEW v AS SELECT ...")
        query = query.copy()
        ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
        for node in query.find_all(exp.Table):
            if (
                isinstance(node.this, exp.Identifier)
                and not node.db
                and node.name.lower() not in ctes
            ):
                node.set("db", exp.to_identifier(session.database))
        schema, _, _ = self._prepare_query(session, query)
        if names:
            if len(names) != len(schema):
                raise analysis(
                    f"Column-definition list has {'fewer' if len(names) < len(schema) else 'more'}"
                    f" columns ({len(names)}) than the view-definition query statement returns"
                    f" ({len(schema)})."
                )
            schema = [
                dataclasses.replace(c, name=n.name, comment=n.comment)
                for c, n in zip(schema, names, strict=True)
            ]
        _check_unique([c.name for c in schema])
        return Table(
            db,
            name,
            tuple(schema),
            owner=session.user,
            view_text=query.sql(dialect=Impala),
        )

    def _create_view(self, session: Session, tree: exp.Create) -> Statement:
        target = tree.this
        names: list[ColumnDesc] = []
        if isinstance(target, exp.Schema):
            for item in target.expressions:
                comment = ""
                for constraint in item.args.get("constraints") or []:
                    if isinstance(constraint.args.get("kind"), exp.CommentColumnConstraint):
                        comment = constraint.args["kind"].this.name
                names.append(ColumnDesc(item.name.lower(), "STRING", comment=comment))
        db, name = self._table_name(session, target)
        self._need_db(db)
        exists = bool(tree.args.get("exists"))
        if self.catalog.table(db, name) is not None:
            if exists:
                return self._done("DDL", "View already exists.")
            raise analysis(f"Table already exists: {db}.{name}")
        query = tree.expression
        if not isinstance(query, exp.Expression):
            raise analysis("A view needs a query: CREATE VIEW v AS SELECT ...")
        view = self._view_definition(session, db, name, query, names)
        self.catalog.create_table(view, if_not_exists=exists)
        return self._done("DDL", "View has been created.")

    def _create_table(self, table: Table, if_not_exists: bool) -> Statement:
        existed = self.catalog.table(table.db, table.name) is not None
        version = self.catalog.create_table(table, if_not_exists=if_not_exists)
        if existed:
            return self._done("DDL", "Table already exists.")
        pathlib.Path(table.location).mkdir(parents=True, exist_ok=True)
        if table.external:
            self._rescan(table)
        stmt = self._done("DDL", "Table has been created.")
        stmt.summary["catalog_version"] = version
        return stmt

    def _ctas(
        self,
        session: Session,
        tree: exp.Create,
        db: str,
        name: str,
        location: str,
        spec: dict[str, Any],
        partition_names: list[str],
        exists: bool,
    ) -> Statement:
        query = tree.expression
        assert isinstance(query, exp.Expression)
        if self.catalog.table(db, name) is not None:
            if exists:
                return self._done("DDL", "Table already exists.")
            raise analysis(f"Table already exists: {db}.{name}")
        schema, _, _ = self._prepare_query(session, query)
        _check_unique([c.name for c in schema])
        by_name = {c.name: c for c in schema}
        for p in partition_names:
            if p not in by_name:
                raise analysis(f"Partition column '{p}' is not in the SELECT list")
        if partition_names and [c.name for c in schema[-len(partition_names) :]] != partition_names:
            raise analysis(
                "Partition columns must be the last columns in the SELECT list, "
                "in the order of PARTITIONED BY"
            )
        data = [_storable(c) for c in schema if c.name not in partition_names]
        parts = [_storable(by_name[p]) for p in partition_names]
        table = Table(
            db, name, tuple(data), tuple(parts), location=location, owner=session.user, **spec
        )
        self._create_table(table, False)
        try:
            inserted = self._write(
                session,
                table,
                query,
                overwrite=False,
                static={},
                dynamic=list(partition_names),
                columns=None,
            )
        except BaseException:
            self.catalog.drop_table(db, name, if_exists=True)
            shutil.rmtree(location, ignore_errors=True)
            raise
        # Impala answers CTAS like DDL, with a one-row summary result set
        return Statement(
            statement_type="DDL",
            schema=cols("summary"),
            rows=[(f"Inserted {inserted} row(s)",)],
            rows_modified=inserted,
        )

    def _drop(self, session: Session, tree: exp.Drop) -> Statement:
        kind = str(tree.args.get("kind") or "").upper()
        exists = bool(tree.args.get("exists"))
        if kind in ("DATABASE", "SCHEMA"):
            table_node = _drop_target(tree)
            name = table_node.name.lower()
            d = self.catalog.database(name)
            if d is not None and name == session.database:
                raise analysis(f"Cannot drop current default database: {name}")
            tables = self.catalog.tables(name) if d is not None else []
            self.catalog.drop_database(
                name, if_exists=exists, cascade=bool(tree.args.get("cascade"))
            )
            if d is not None:
                for t in tables:
                    if not t.external and not t.is_view:
                        shutil.rmtree(t.location, ignore_errors=True)
                if d.location and pathlib.Path(d.location) != self.warehouse_dir:
                    shutil.rmtree(d.location, ignore_errors=True)
            return self._done("DDL", "Database has been dropped.")
        if kind not in ("TABLE", "VIEW"):
            raise analysis(f"DROP {kind} is not supported by impala-lb")
        db, name = self._table_name(session, _drop_target(tree))
        if not exists:
            self._need_db(db)
        existing = self.catalog.table(db, name)
        if existing is not None and existing.is_view != (kind == "VIEW"):
            what = "a view" if existing.is_view else "a table"
            raise analysis(f"DROP {kind} not allowed on {what}: {db}.{name}")
        dropped = self.catalog.table(db, name)
        self.catalog.drop_table(db, name, if_exists=exists)
        if dropped is not None and not dropped.external and not dropped.is_view:
            shutil.rmtree(dropped.location, ignore_errors=True)
        return self._done(
            "DDL", "View has been dropped." if kind == "VIEW" else "Table has been dropped."
        )

    def _truncate(self, session: Session, tree: exp.TruncateTable) -> Statement:
        for node in tree.expressions:
            db, name = self._table_name(session, node)
            t = self.catalog.table(db, name)
            if t is None:
                if tree.args.get("exists"):
                    continue
                raise analysis(f"Could not resolve table reference: '{db}.{name}'")
            if t.is_view:
                raise analysis(f"TRUNCATE TABLE not supported on a view: {t.full_name}")
            self.catalog.replace_files(db, name, [])
            self.catalog.set_row_count(db, name, -1)
            for f in t.files:
                _unlink(os.path.join(t.location, f.path))
        return self._done("DDL")

    def _alter(self, session: Session, tree: exp.Alter) -> Statement:
        db, name = self._table_name(session, tree.this)
        t = self.catalog.table(db, name)
        if t is None:
            raise analysis(f"Could not resolve table reference: '{db}.{name}'")
        kind = str(tree.args.get("kind") or "TABLE").upper()
        if (kind == "VIEW") != t.is_view:
            what = "a view" if t.is_view else "a table"
            raise analysis(f"ALTER {kind} not allowed on {what}: {t.full_name}")
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.Query) and t.is_view:
                view = self._view_definition(session, db, name, action, [])
                self.catalog.alter_table(db, name, dataclasses.replace(view, owner=t.owner))
                return self._done("DDL", "View has been altered.")
            if t.is_view and not isinstance(action, exp.AlterRename):
                raise analysis(f"ALTER VIEW supports AS SELECT and RENAME TO: {t.full_name}")
            if isinstance(action, exp.AlterRename):
                new_db = action.this.db.lower() or db
                new_name = action.this.name.lower()
                self._need_db(new_db)
                location = t.location
                moved = False
                if not t.external and t.location == self._default_location(db, name):
                    location = self._default_location(new_db, new_name)
                    moved = True
                renamed = dataclasses.replace(t, db=new_db, name=new_name, location=location)
                self.catalog.alter_table(db, name, renamed)
                if moved and os.path.isdir(t.location):
                    os.replace(t.location, location)
                t = renamed
                db, name = new_db, new_name
            elif isinstance(action, exp.Schema):
                added = [_column_def(c) for c in action.expressions if isinstance(c, exp.ColumnDef)]
                existing = {c.name for c in t.all_columns}
                for c in added:
                    if c.name in existing:
                        raise analysis(f"Column already exists: {c.name}")
                t = dataclasses.replace(t, columns=t.columns + tuple(added))
                self.catalog.alter_table(db, name, t)
            elif isinstance(action, exp.Drop) and str(action.args.get("kind")).upper() == "COLUMN":
                gone = {c.name.lower() for c in action.args.get("tables") or []}
                for column in gone:
                    if column not in {c.name for c in t.columns}:
                        raise analysis(f"Column '{column}' does not exist in table: {t.full_name}")
                t = dataclasses.replace(
                    t, columns=tuple(c for c in t.columns if c.name not in gone)
                )
                self.catalog.alter_table(db, name, t)
            elif isinstance(action, exp.AddPartition):
                spec = self._partition_spec(t, action.this)
                path = pathlib.Path(t.location, *(f"{k}={v}" for k, v in spec))
                path.mkdir(parents=True, exist_ok=True)
                return self._done("DDL", "New partition has been added to the table.")
            elif isinstance(action, exp.DropPartition):
                for part in action.expressions:
                    spec = self._partition_spec(t, part)
                    matching = [f for f in t.files if f.partition == spec]
                    if not matching and not action.args.get("exists"):
                        shown = ", ".join(f"{k}={v}" for k, v in spec)
                        raise analysis(f"No matching partition(s) found: ({shown})")
                    self.catalog.replace_files(db, name, [], [spec])
                    for f in matching:
                        _unlink(os.path.join(t.location, f.path))
                    shutil.rmtree(
                        pathlib.Path(t.location, *(f"{k}={v}" for k, v in spec)),
                        ignore_errors=True,
                    )
                return self._done("DDL", "Dropped 1 partition(s).")
            else:
                raise analysis(
                    f"ALTER TABLE {action.key.upper()} is not supported by impala-lb "
                    "(RENAME TO, ADD COLUMNS, DROP COLUMN, ADD/DROP PARTITION are)"
                )
        return self._done("DDL", "Table has been altered.")

    @staticmethod
    def _partition_spec(t: Table, node: exp.Expression) -> tuple[tuple[str, str], ...]:
        """A full ``PARTITION (k=v, ...)`` spec in the table's key order."""
        values: dict[str, str] = {}
        for item in node.expressions:
            if not isinstance(item, exp.EQ):
                raise analysis("A partition spec needs a value for every key: (k=v, ...)")
            value = item.expression
            values[item.this.name.lower()] = (
                "__HIVE_DEFAULT_PARTITION__" if isinstance(value, exp.Null) else value.name
            )
        keys = [c.name for c in t.partition_columns]
        if not keys:
            raise analysis(f"Table is not partitioned: {t.full_name}")
        if sorted(values) != sorted(keys):
            raise analysis(
                f"Items in partition spec must exactly match the partition columns in the "
                f"table definition: {t.full_name} ({len(values)} vs {len(keys)})"
            )
        return tuple((k, values[k]) for k in keys)

    def _compute_stats(self, session: Session, t: Table) -> Statement:
        """COMPUTE STATS: the row count, and per column what Impala's computes (NDV by
        HyperLogLog, NULLs, max and average size of variable-length values, the trues
        and falses of a BOOLEAN), in one scan."""
        columns = [c for c in t.all_columns if c.type not in ("ARRAY", "MAP", "STRUCT")]
        exprs = ["count(*)"]
        for c in columns:
            q = _q(c.name)
            exprs += [f"approx_count_distinct({q})", f"count(*) - count({q})"]
            if c.type in VARIABLE_SIZE:
                size = f"octet_length(CAST({q} AS BLOB))"
                exprs += [f"coalesce(max({size}), 0)", f"coalesce(avg({size}), 0)"]
            if c.type == "BOOLEAN":
                exprs += [f"count_if({q})", f"count_if(NOT {q})"]
        cursor = self._cursor()
        try:
            sql = f"SELECT {', '.join(exprs)} FROM ({self._scan_sql(t)}) AS s"
            row = cursor.execute(sql).fetchone()
        except duckdb.Error as err:
            raise translate_duckdb_error(err, session.database) from None
        finally:
            cursor.close()
        values = list(row) if row else [0] * len(exprs)
        count = int(values.pop(0))
        stats = []
        for c in columns:
            ndv, nulls = int(values.pop(0)), int(values.pop(0))
            max_size, avg_size = fixed_size(c), float(fixed_size(c))
            if c.type in VARIABLE_SIZE:
                max_size, avg_size = int(values.pop(0)), round(float(values.pop(0)), 4)
            trues = falses = -1
            if c.type == "BOOLEAN":
                trues, falses = int(values.pop(0)), int(values.pop(0))
            stats.append(ColumnStats(c.name, ndv, nulls, max_size, avg_size, trues, falses))
        self.catalog.set_row_count(t.db, t.name, count, stats)
        parts = len({f.partition for f in t.files}) if t.partition_columns else 1
        return self._done(
            "DDL", f"Updated {parts} partition(s) and {len(t.all_columns)} column(s)."
        )

    # DML

    @staticmethod
    def _insert_source(tree: exp.Insert) -> exp.Expression:
        source = tree.expression
        if not isinstance(source, exp.Expression):
            raise analysis("INSERT needs a SELECT or VALUES clause")
        source = source.copy()
        with_ = tree.args.get("with") or tree.args.get("with_")
        if with_ is not None:
            key = "with" if "with" in source.arg_types else "with_"
            source.set(key, with_.copy())
        return source

    def _insert(self, session: Session, tree: exp.Insert) -> Statement:
        target = tree.this
        columns: list[str] | None = None
        table_node = target
        if isinstance(target, exp.Schema):
            columns = [e.name.lower() for e in target.expressions]
            table_node = target.this
        if not isinstance(table_node, exp.Table):
            raise analysis("INSERT needs a target table")
        db, name = table_node.db.lower() or session.database, table_node.name.lower()
        t = self.catalog.table(db, name)
        if t is None:
            raise analysis(f"Could not resolve table reference: '{db}.{name}'")
        if t.is_view:
            raise analysis(f"Impala does not support INSERTing into views: {t.full_name}")
        static: dict[str, str] = {}
        dynamic: list[str] = []
        pnames = [c.name for c in t.partition_columns]
        spec = table_node.args.get("partition")
        if spec is not None:
            if not pnames:
                raise analysis(
                    f"PARTITION clause is only valid for INSERT into partitioned "
                    f"table. '{t.full_name}' is not partitioned"
                )
            for item in spec.expressions:
                if isinstance(item, exp.EQ):
                    key = item.this.name.lower()
                    value = item.expression
                    static[key] = (
                        "__HIVE_DEFAULT_PARTITION__" if isinstance(value, exp.Null) else value.name
                    )
                else:
                    dynamic.append(item.name.lower())
                    key = item.name.lower()
                if key not in pnames:
                    raise analysis(f"Partition column '{key}' not found in table: {t.full_name}")
            missing = [p for p in pnames if p not in static and p not in dynamic]
            if missing:
                raise analysis(
                    f"Not enough partition columns mentioned in query. Missing "
                    f"columns are: {', '.join(missing)}"
                )
        else:
            dynamic = list(pnames)
        source = self._insert_source(tree)
        rows = self._write(
            session,
            t,
            source,
            overwrite=bool(tree.args.get("overwrite")),
            static=static,
            dynamic=dynamic,
            columns=columns,
        )
        return Statement(
            statement_type="DML",
            schema=None,
            rows_modified=rows,
            summary={"summary": f"Modified {rows} row(s)"},
        )

    def _write(
        self,
        session: Session,
        t: Table,
        source: exp.Expression,
        *,
        overwrite: bool,
        static: dict[str, str],
        dynamic: list[str],
        columns: list[str] | None,
    ) -> int:
        """Write the source's rows as new files of ``t``; the number of rows written."""
        compiled = self._compile(session, source, label=False)
        described = self._describe_sql(compiled.sql, session.database)
        data_targets = columns if columns is not None else [c.name for c in t.columns]
        for target in data_targets:
            if t.column(target) is None or target in static:
                raise analysis(f"Unknown column '{target}' in column permutation")
        targets = data_targets + (
            dynamic if columns is None else [p for p in dynamic if p not in data_targets]
        )
        if len(described) != len(targets):
            more = "more" if len(targets) > len(described) else "fewer"
            raise analysis(
                f"Target table '{t.full_name}' has {more} columns ({len(targets)}) than the "
                f"SELECT / VALUES clause returns ({len(described)})"
            )
        position = {c: i for i, c in enumerate(targets)}
        inner = [f"c{i}" for i in range(len(described))]
        out = []
        for c in t.columns:
            if c.name in position:
                out.append(
                    f"CAST({_q(inner[position[c.name]])} AS {c.duckdb_type()}) AS {_q(c.name)}"
                )
            else:
                out.append(f"CAST(NULL AS {c.duckdb_type()}) AS {_q(c.name)}")
        for p in dynamic:
            out.append(f"{_q(inner[position[p]])} AS {_q(p)}")
        select = (
            f"SELECT {', '.join(out)} FROM ({compiled.sql}) AS __impala_i"
            f"({', '.join(_q(n) for n in inner)})"
        )
        text = t.file_format == "TEXTFILE"
        ext = ".txt" if text else ".parq"
        fmt = (
            (
                f"FORMAT csv, DELIMITER {_lit(t.field_delimiter)}, HEADER false, "
                "NULLSTR '\\N', QUOTE '', ESCAPE ''"
            )
            if text
            else "FORMAT parquet"
        )
        root = pathlib.Path(t.location)
        static_dir = "/".join(
            f"{p}={static[p]}" for p in [c.name for c in t.partition_columns] if p in static
        )
        written: list[DataFile] = []
        cursor = self._cursor()
        staging = root / "_impala_insert_staging" / uuid.uuid4().hex
        try:
            if dynamic:
                staging.mkdir(parents=True, exist_ok=True)
                by = ", ".join(_q(p) for p in dynamic)
                row = cursor.execute(
                    f"COPY ({select}) TO {_lit(str(staging))} "
                    f"({fmt}, PARTITION_BY ({by}), FILENAME_PATTERN 'f_{{uuid}}')"
                ).fetchone()
                count = int(row[0]) if row else 0
                for path in sorted(staging.rglob("*")):
                    if not path.is_file():
                        continue
                    rel_dirs = path.parent.relative_to(staging).parts
                    final_dir = root / static_dir / pathlib.Path(*rel_dirs) if rel_dirs else root
                    final_dir.mkdir(parents=True, exist_ok=True)
                    final = final_dir / f"{uuid.uuid4().hex}{ext}"
                    os.replace(path, final)
                    written.append(self._data_file(t, final))
            else:
                directory = root / static_dir if static_dir else root
                directory.mkdir(parents=True, exist_ok=True)
                final = directory / f"{uuid.uuid4().hex}{ext}"
                row = cursor.execute(f"COPY ({select}) TO {_lit(str(final))} ({fmt})").fetchone()
                count = int(row[0]) if row else 0
                if count:
                    written.append(self._data_file(t, final))
                else:
                    _unlink(str(final))
        except duckdb.Error as err:
            raise translate_duckdb_error(err, session.database) from None
        finally:
            cursor.close()
            shutil.rmtree(root / "_impala_insert_staging", ignore_errors=True)
        current = self.catalog.table(t.db, t.name) or t
        if overwrite:
            if t.partition_columns:
                touched = {f.partition for f in written}
                if not dynamic:
                    touched.add(tuple((p, static[p]) for p in static))
                old = [f for f in current.files if f.partition in touched]
                self.catalog.replace_files(t.db, t.name, written, touched)
            else:
                old = list(current.files)
                self.catalog.replace_files(t.db, t.name, written)
            for f in old:
                _unlink(os.path.join(t.location, f.path))
        elif written:
            self.catalog.add_files(t.db, t.name, written)
        return count

    @staticmethod
    def _data_file(t: Table, path: pathlib.Path) -> DataFile:
        rel = path.relative_to(t.location)
        keys = [c.name for c in t.partition_columns]
        part = tuple(tuple(d.split("=", 1)) for d in rel.parts[:-1] if "=" in d)
        ordered = tuple(sorted(part, key=lambda kv: keys.index(kv[0]) if kv[0] in keys else 99))
        return DataFile(str(rel), path.stat().st_size, ordered)  # type: ignore[arg-type]


def _drop_target(tree: exp.Drop) -> exp.Expression:
    tables = tree.args.get("tables") or []
    target = tables[0] if tables else tree.this
    if not isinstance(target, exp.Expression):
        raise analysis("DROP needs a name")
    return target


def _strip_file_scheme(location: str) -> str:
    if location.startswith("file://"):
        return location[len("file://") :]
    if location.startswith("file:"):
        return location[len("file:") :]
    return location


def _delimiter(text: str) -> str:
    if text.startswith("\\u") and len(text) == 6:
        return chr(int(text[2:], 16))
    if text.startswith("\\") and text[1:].isdigit():
        return chr(int(text[1:], 8))
    return {"\\t": "\t", "\\n": "\n"}.get(text, text[:1] or "\x01")


def _column_def(node: exp.ColumnDef) -> ColumnDesc:
    comment = ""
    for constraint in node.args.get("constraints") or []:
        if isinstance(constraint.args.get("kind"), exp.CommentColumnConstraint):
            comment = constraint.args["kind"].this.name
    kind = node.args.get("kind")
    return column_from_sqlglot(
        node.name.lower(), kind if isinstance(kind, exp.DataType) else None, comment
    )


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise analysis(f"Duplicate column name: {n}")
        seen.add(n)


def _storable(c: ColumnDesc) -> ColumnDesc:
    return dataclasses.replace(c, comment="")


def _has_format(props: list[exp.Expression]) -> bool:
    return any(isinstance(p, exp.FileFormatProperty) for p in props)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


__all__ = ["DEFAULT_DB", "VERSION", "Engine"]
