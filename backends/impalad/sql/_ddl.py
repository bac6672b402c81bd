"""DDL: CREATE (databases, tables, views, CREATE TABLE AS SELECT), DROP, TRUNCATE, ALTER
and COMPUTE STATS, each telling the catalog what changed."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from typing import Any

import duckdb
from sqlglot import exp

from ._catalog import (
    ColumnStats,
    Database,
    Table,
)
from ._dialect import Impala
from ._dml import _Dml
from ._engine_base import _q, _strip_file_scheme, _unlink
from ._errors import analysis
from ._results import Session, Statement, translate_duckdb_error
from ._show import (
    VARIABLE_SIZE,
    cols,
    fixed_size,
)
from ._types import ColumnDesc, column_from_sqlglot


class _Ddl(_Dml):
    """CREATE, DROP, TRUNCATE, ALTER and COMPUTE STATS."""

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


def _drop_target(tree: exp.Drop) -> exp.Expression:
    tables = tree.args.get("tables") or []
    target = tables[0] if tables else tree.this
    if not isinstance(target, exp.Expression):
        raise analysis("DROP needs a name")
    return target


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
