"""The text of Impala's metadata answers: SHOW CREATE TABLE, table and column stats,
DESCRIBE FORMATTED. Pure functions of a catalog :class:`Table`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

from ._catalog import DataFile, Table
from ._types import ColumnDesc

_S = "STRING"

Rows = tuple[list[ColumnDesc], Sequence[Sequence[object]]]


def cols(*names: str, types: Sequence[str] = ()) -> list[ColumnDesc]:
    """Result columns by name (STRING unless a type is given)."""
    return [ColumnDesc(n, types[i] if i < len(types) else _S) for i, n in enumerate(names)]


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def human_size(n: int) -> str:
    """A byte count as Impala prints sizes: 123B, 1.21KB, 3.40MB..."""
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024:
            return f"{value:.2f}{unit}"
    return f"{value:.2f}PB"


def create_table_text(t: Table) -> str:
    """SHOW CREATE TABLE: DDL that recreates the table."""

    def col(c: ColumnDesc) -> str:
        text = f"  {c.name} {c.type_sql()}"
        if c.comment:
            text += " COMMENT " + sql_string(c.comment)
        return text

    lines = ["CREATE " + ("EXTERNAL " if t.external else "") + f"TABLE {t.db}.{t.name} ("]
    lines.append(",\n".join(col(c) for c in t.columns))
    lines.append(")")
    if t.partition_columns:
        lines.append("PARTITIONED BY (\n" + ",\n".join(col(c) for c in t.partition_columns) + "\n)")
    if t.comment:
        lines.append("COMMENT " + sql_string(t.comment))
    if t.file_format == "TEXTFILE":
        delim = t.field_delimiter
        shown = "\\u0001" if delim == "\x01" else delim
        lines.append(f"ROW FORMAT DELIMITED FIELDS TERMINATED BY '{shown}'")
        lines.append("STORED AS TEXTFILE")
    else:
        lines.append("STORED AS PARQUET")
    lines.append("LOCATION " + sql_string("file:" + t.location))
    props = [f"'numFiles'='{len(t.files)}'", f"'totalSize'='{sum(f.size for f in t.files)}'"]
    if t.row_count >= 0:
        props.append(f"'numRows'='{t.row_count}'")
    lines.append("TBLPROPERTIES (" + ", ".join(props) + ")")
    return "\n".join(lines)


def table_stats(t: Table) -> Rows:
    """SHOW TABLE STATS / SHOW PARTITIONS: one row per partition (and a Total), or one row."""
    fmt = "TEXT" if t.file_format == "TEXTFILE" else "PARQUET"
    tail = [
        "#Rows",
        "#Files",
        "Size",
        "Bytes Cached",
        "Cache Replication",
        "Format",
        "Incremental stats",
        "Location",
    ]
    tail_types = ["BIGINT", "BIGINT", _S, _S, _S, _S, _S, _S]
    pnames = [c.name for c in t.partition_columns]
    schema = cols(*pnames, *tail, types=[_S] * len(pnames) + tail_types)
    rows: list[list[object]] = []
    if t.partition_columns:
        groups: dict[tuple[tuple[str, str], ...], list[DataFile]] = {}
        for f in t.files:
            groups.setdefault(f.partition, []).append(f)
        for part in sorted(groups):
            files = groups[part]
            values = dict(part)
            location = os.path.join(t.location, "/".join(f"{k}={v}" for k, v in part))
            rows.append(
                [values.get(n, "") for n in pnames]
                + [
                    -1,
                    len(files),
                    human_size(sum(f.size for f in files)),
                    "NOT CACHED",
                    "NOT CACHED",
                    fmt,
                    "false",
                    location,
                ]
            )
        rows.append(
            ["Total"]
            + [""] * (len(pnames) - 1)
            + [
                t.row_count,
                len(t.files),
                human_size(sum(f.size for f in t.files)),
                "0B",
                "",
                "",
                "",
                "",
            ]
        )
    else:
        rows.append(
            [
                t.row_count,
                len(t.files),
                human_size(sum(f.size for f in t.files)),
                "NOT CACHED",
                "NOT CACHED",
                fmt,
                "false",
                t.location,
            ]
        )
    return schema, rows


def column_stats(t: Table) -> Rows:
    """SHOW COLUMN STATS: Impala's columns, with -1 where no statistics were computed."""
    schema = cols(
        "Column",
        "Type",
        "#Distinct Values",
        "#Nulls",
        "Max Size",
        "Avg Size",
        "#Trues",
        "#Falses",
        types=[_S, _S, "BIGINT", "BIGINT", "INT", "DOUBLE", "BIGINT", "BIGINT"],
    )
    rows = []
    for c in t.all_columns:
        s = t.stats_of(c.name)
        if s is None:
            size = fixed_size(c)
            rows.append([c.name, c.type_sql(), -1, -1, size, float(size), -1, -1])
        else:
            rows.append(
                [c.name, c.type_sql(), s.ndv, s.nulls, s.max_size, s.avg_size, s.trues, s.falses]
            )
    return schema, rows


#: the types whose values differ in size, measured by COMPUTE STATS
VARIABLE_SIZE = frozenset({"STRING", "VARCHAR", "BINARY"})
_FIXED_SIZES = {
    "BOOLEAN": 1,
    "TINYINT": 1,
    "SMALLINT": 2,
    "INT": 4,
    "BIGINT": 8,
    "FLOAT": 4,
    "DOUBLE": 8,
    "TIMESTAMP": 16,
    "DATE": 4,
}


def fixed_size(c: ColumnDesc) -> int:
    """The bytes a value of ``c``'s type takes in Impala (-1: it varies)."""
    if c.type == "DECIMAL":
        return 4 if (c.precision or 0) <= 9 else 8 if (c.precision or 0) <= 18 else 16
    if c.type == "CHAR":
        return c.length or -1
    return _FIXED_SIZES.get(c.type, -1)


def _table_type(t: Table) -> str:
    """The metastore's table type, as DESCRIBE FORMATTED prints it."""
    if t.is_view:
        return "VIRTUAL_VIEW"
    return "EXTERNAL_TABLE" if t.external else "MANAGED_TABLE"


def describe_formatted(t: Table) -> Rows:
    """DESCRIBE FORMATTED: columns, partition keys, table and storage details."""
    rows: list[tuple[str | None, str | None, str | None]] = [
        ("# col_name            ", "data_type           ", "comment             "),
        ("", None, None),
    ]
    rows += [(c.name, c.type_sql().lower(), c.comment or None) for c in t.columns]
    if t.partition_columns:
        rows += [
            ("", None, None),
            ("# Partition Information", None, None),
            ("# col_name            ", "data_type           ", "comment             "),
            ("", None, None),
        ]
        rows += [(c.name, c.type_sql().lower(), c.comment or None) for c in t.partition_columns]
    created = datetime.datetime.fromtimestamp(t.created).strftime("%a %b %d %H:%M:%S %Y")
    text = t.file_format == "TEXTFILE"
    rows += [
        ("", None, None),
        ("# Detailed Table Information", None, None),
        ("Database:           ", t.db, None),
        ("OwnerType:          ", "USER", None),
        ("Owner:              ", t.owner or "impala", None),
        ("CreateTime:         ", created, None),
        ("LastAccessTime:     ", "UNKNOWN", None),
        ("Retention:          ", "0", None),
        ("Location:           ", "file:" + t.location, None),
        ("Table Type:         ", _table_type(t), None),
        ("Table Parameters:", None, None),
    ]
    if t.comment:
        rows.append(("", "comment             ", t.comment))
    rows.append(("", "numFiles            ", str(len(t.files))))
    if t.row_count >= 0:
        rows.append(("", "numRows             ", str(t.row_count)))
    rows.append(("", "totalSize           ", str(sum(f.size for f in t.files))))
    rows += [
        ("", None, None),
        ("# Storage Information", None, None),
        (
            "SerDe Library:      ",
            "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
            if text
            else "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            None,
        ),
        (
            "InputFormat:        ",
            "org.apache.hadoop.mapred.TextInputFormat"
            if text
            else "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            None,
        ),
        (
            "OutputFormat:       ",
            "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
            if text
            else "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            None,
        ),
        ("Compressed:         ", "No", None),
        ("Num Buckets:        ", "0", None),
        ("Bucket Columns:     ", "[]", None),
        ("Sort Columns:       ", "[]", None),
    ]
    if text:
        rows.append(("Storage Desc Params:", None, None))
        rows.append(("", "field.delim         ", t.field_delimiter))
    return cols("name", "type", "comment"), rows
