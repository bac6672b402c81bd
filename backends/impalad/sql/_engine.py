"""The engine: one Impala statement in, a :class:`Statement` out.

Impala-only statements (SHOW, DESCRIBE, SET, USE, REFRESH...) are recognized by
``_recognize``; everything else is parsed by sqlglot in the :class:`Impala` dialect.
Queries are rewritten so that every table reference reads the table's files
(``read_parquet``/``read_csv`` over the catalog's file list), then generated as DuckDB
SQL and run on a cursor of one shared in-memory DuckDB database. DDL and DML change
files under the warehouse directory and tell the :class:`Catalog` about it.

:class:`Engine` dispatches statements through two tables (Impala-only ones by their
recognized kind, parsed ones by their sqlglot node); the work is in its bases, one
module each: :mod:`._engine_base` (state, lookups, scans), :mod:`._queries`,
:mod:`._dml`, :mod:`._ddl`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from . import _options
from ._catalog import (
    BUILTINS_DB,
    DEFAULT_DB,
)
from ._ddl import _Ddl
from ._dialect import REWRITES
from ._engine_base import VERSION
from ._errors import ImpalaError, analysis, parse_error
from ._recognize import (
    Recognized,
    like_matcher,
    recognize,
    strip_hints,
    strip_statement,
    unquote_name,
    unquote_string,
)
from ._results import Session, Statement, translate_duckdb_error
from ._show import (
    cols,
    column_stats,
    create_table_text,
    describe_formatted,
    human_size,
    table_stats,
)


class Engine(_Ddl):
    """Executes Impala statements on DuckDB over the warehouse's Parquet and text files."""

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

    def _impala_only(self, session: Session, r: Recognized, text: str) -> Statement:
        handler = _IMPALA_ONLY.get(r.kind)
        if handler is None:
            raise parse_error(text)
        return handler(self, session, r.parts)

    # -- Impala-only statements, one method per recognized kind ---------------------------

    def _set_all(self, session: Session, p: Parts) -> Statement:
        return self._rows_statement(_SET_SCHEMA, self.query_options(session), "SET")

    def _set_list(self, session: Session, p: Parts) -> Statement:
        rows = [row for row in self.query_options(session) if row[2] in ("REGULAR", "ADVANCED")]
        return self._rows_statement(_SET_SCHEMA, rows, "SET")

    def _set(self, session: Session, p: Parts) -> Statement:
        value = unquote_string(p["value"].strip())
        if value == "":
            return self._unset(session, p)
        key, value = _options.normalize(p["key"], value)
        session.options[key] = value
        return self._rows_statement(_SET_SCHEMA, [], "SET")

    def _unset(self, session: Session, p: Parts) -> Statement:
        key = p["key"].upper()
        if key not in _options.BY_NAME:
            raise ImpalaError("AnalysisException", f"Invalid query option: {p['key']}")
        session.options.pop(key, None)
        return self._rows_statement(_SET_SCHEMA, [], "SET")

    def _use(self, session: Session, p: Parts) -> Statement:
        name = unquote_name(p["name"])
        self._need_db(name)
        session.database = name
        return Statement(statement_type="USE", schema=None)

    def _show_databases(self, session: Session, p: Parts) -> Statement:
        dbs = self.catalog.databases()
        if "like" in p:
            rx = like_matcher(unquote_string(p["like"]))
            dbs = [d for d in dbs if rx.match(d.name)]
        return self._rows_statement(cols("name", "comment"), [(d.name, d.comment) for d in dbs])

    def _show_tables(self, session: Session, p: Parts) -> Statement:
        db = unquote_name(p.get("db", session.database))
        self._need_db(db)
        names = [t.name for t in self.catalog.tables(db)]
        if "like" in p:
            rx = like_matcher(unquote_string(p["like"]))
            names = [n for n in names if rx.match(n)]
        return self._rows_statement(cols("name"), [(n,) for n in names])

    def _show_create_table(self, session: Session, p: Parts) -> Statement:
        t = self._need_table(session, p["name"])
        if t.is_view:
            return self._rows_statement(
                cols("result"), [(f"CREATE VIEW {t.full_name} AS\n{t.view_text}",)]
            )
        return self._rows_statement(cols("result"), [(create_table_text(t),)])

    def _show_table_stats(self, session: Session, p: Parts) -> Statement:
        t = self._need_table(session, p["name"], files=True)
        return self._rows_statement(*table_stats(t))

    def _show_partitions(self, session: Session, p: Parts) -> Statement:
        t = self._need_table(session, p["name"], files=True)
        if not t.partition_columns:
            raise analysis(f"Table is not partitioned: {t.full_name}")
        return self._rows_statement(*table_stats(t))

    def _show_column_stats(self, session: Session, p: Parts) -> Statement:
        return self._rows_statement(*column_stats(self._need_table(session, p["name"])))

    def _show_files(self, session: Session, p: Parts) -> Statement:
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

    def _describe_database(self, session: Session, p: Parts) -> Statement:
        d = self._need_db(unquote_name(p["name"]))
        return self._rows_statement(
            cols("name", "location", "comment"), [(d.name, d.location, d.comment)]
        )

    def _describe(self, session: Session, p: Parts) -> Statement:
        t = self._need_table(session, p["name"], path_error=True)
        if p.get("formatted"):
            return self._rows_statement(*describe_formatted(t))
        rows = [(c.name, c.type_sql().lower(), c.comment) for c in t.all_columns]
        return self._rows_statement(cols("name", "type", "comment"), rows)

    def _refresh(self, session: Session, p: Parts) -> Statement:
        self._rescan(self._need_table(session, p["name"]))
        return self._done("DDL", "Table has been refreshed.")

    def _invalidate(self, session: Session, p: Parts) -> Statement:
        if "name" in p:
            self._rescan(self._need_table(session, p["name"]))
            return self._done("DDL", "Table metadata has been invalidated.")
        for d in self.catalog.databases():
            for t in self.catalog.tables(d.name):
                self._rescan(t)
        return self._done("DDL", "Metadata of all tables has been invalidated.")

    def _compute_stats_statement(self, session: Session, p: Parts) -> Statement:
        return self._compute_stats(session, self._need_table(session, p["name"], files=True))

    def _explain_statement(self, session: Session, p: Parts) -> Statement:
        return self._explain(session, p["body"])

    def _shutdown(self, session: Session, p: Parts) -> Statement:
        raise analysis(":shutdown() is handled by the impalad service, not the SQL engine")

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

    def _parsed(self, session: Session, text: str) -> Statement:
        tree = self._parse(text)
        for node, handler in _PARSED:
            if isinstance(tree, node):
                return handler(self, session, tree)
        raise analysis(f"Statement not supported by impala-lb: {text.split()[0].upper()}")


Parts = dict[str, str]
_SET_SCHEMA = cols("option", "value", "level")

#: Impala-only statements: the kind ``_recognize`` names -> its method
_IMPALA_ONLY: dict[str, Callable[[Engine, Session, Parts], Statement]] = {
    "set_all": Engine._set_all,
    "set_list": Engine._set_list,
    "set": Engine._set,
    "unset": Engine._unset,
    "use": Engine._use,
    "show_databases": Engine._show_databases,
    "show_tables": Engine._show_tables,
    "show_functions": Engine._show_functions,
    "show_create_table": Engine._show_create_table,
    "show_table_stats": Engine._show_table_stats,
    "show_partitions": Engine._show_partitions,
    "show_column_stats": Engine._show_column_stats,
    "show_files": Engine._show_files,
    "describe_database": Engine._describe_database,
    "describe": Engine._describe,
    "refresh": Engine._refresh,
    "invalidate": Engine._invalidate,
    "compute_stats": Engine._compute_stats_statement,
    "load_data": Engine._load_data,
    "explain": Engine._explain_statement,
    "shutdown": Engine._shutdown,
}

#: parsed statements: the first sqlglot node type the tree is -> its method
_PARSED: tuple[tuple[Any, Callable[[Engine, Session, Any], Statement]], ...] = (
    ((exp.Query, exp.Values), Engine._query),
    (exp.Insert, Engine._insert),
    (exp.Create, Engine._create),
    (exp.Drop, Engine._drop),
    (exp.TruncateTable, Engine._truncate),
    (exp.Alter, Engine._alter),
)


__all__ = ["DEFAULT_DB", "VERSION", "Engine"]
