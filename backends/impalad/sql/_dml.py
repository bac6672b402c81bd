"""Writing data: INSERT (INTO and OVERWRITE, partitioned), the writer that puts a query's
rows into the warehouse as Parquet or text files, and LOAD DATA."""

from __future__ import annotations

import os
import pathlib
import shutil
import uuid

import duckdb
from sqlglot import exp

from ._catalog import (
    DataFile,
    Table,
)
from ._engine_base import _lit, _q, _strip_file_scheme, _unlink
from ._errors import analysis
from ._queries import _Queries
from ._recognize import (
    partition_values,
    unquote_string,
)
from ._results import Session, Statement, translate_duckdb_error


class _Dml(_Queries):
    """INSERT, the data-file writer and LOAD DATA."""

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
