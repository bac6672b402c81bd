"""Queries: parsed by sqlglot in the Impala dialect, every table reference rewritten to a
scan of its files, views expanded, generated as DuckDB SQL with Impala's column labels
and types; and EXPLAIN."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from ._arith import type_int_literal, type_literal_projections, widen_integer_arithmetic
from ._catalog import (
    Table,
)
from ._dialect import Impala, rewrite_functions
from ._engine_base import VERSION, _EngineBase, _q
from ._errors import ImpalaError, analysis, parse_error
from ._results import Session, Statement, _DuckQuery, translate_duckdb_error
from ._show import (
    cols,
    human_size,
)
from ._types import ColumnDesc, map_result_column


@dataclasses.dataclass
class _Compiled:
    """A query compiled to DuckDB SQL, with the tables it reads."""

    sql: str
    tables: list[Table]
    labels: list[str] | None  # None: take DuckDB's output names
    plain_names: set[str]  # names projected as bare columns (or * was used)
    sized: dict[str, ColumnDesc] = dataclasses.field(default_factory=dict)  # CAST AS VARCHAR(n)


class _Queries(_EngineBase):
    """Compiling and running queries (SELECT, VALUES, WITH) and EXPLAIN."""

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
