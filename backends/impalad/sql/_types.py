"""Impala's types: their names, their DuckDB storage, and their values in HS2 wire form.

Impala reports a narrower set of types than DuckDB computes (no unsigned or 128-bit
integers, no intervals, TIMESTAMP without time zone), so every result column is mapped
here: the DuckDB type of a result decides the Impala type reported, the SQL cast that
brings the value into that type, and the Python function that turns the fetched value
into what the HS2 layer sends (``str`` for TIMESTAMP, DATE, DECIMAL, CHAR and VARCHAR).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import re
from collections.abc import Callable

from sqlglot import exp

from ._errors import analysis

IMPALA_TYPES = frozenset(
    {
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INT",
        "BIGINT",
        "FLOAT",
        "DOUBLE",
        "STRING",
        "VARCHAR",
        "CHAR",
        "TIMESTAMP",
        "DATE",
        "DECIMAL",
        "BINARY",
    }
)


@dataclasses.dataclass(frozen=True)
class ColumnDesc:
    """One column as Impala describes it: name, type name and the type's parameters."""

    name: str
    type: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    comment: str = ""

    def type_sql(self) -> str:
        """The type as Impala writes it in DDL and DESCRIBE (lower case there)."""
        if self.type == "DECIMAL":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.type in ("VARCHAR", "CHAR"):
            return f"{self.type}({self.length})"
        return self.type

    def duckdb_type(self) -> str:
        """The DuckDB type the column's values are held in while a query runs."""
        if self.type == "DECIMAL":
            return f"DECIMAL({self.precision},{self.scale})"
        return _DUCKDB_STORAGE.get(self.type, self.type)

    def renamed(self, name: str) -> ColumnDesc:
        """The same column under another name."""
        return dataclasses.replace(self, name=name)


_DUCKDB_STORAGE = {
    "STRING": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "CHAR": "VARCHAR",
    "BINARY": "BLOB",
    "INT": "INTEGER",
    "TIMESTAMP": "TIMESTAMP_NS",  # Impala keeps nanoseconds
}

_SQLGLOT_TO_IMPALA = {
    exp.DataType.Type.BOOLEAN: "BOOLEAN",
    exp.DataType.Type.TINYINT: "TINYINT",
    exp.DataType.Type.SMALLINT: "SMALLINT",
    exp.DataType.Type.INT: "INT",
    exp.DataType.Type.BIGINT: "BIGINT",
    exp.DataType.Type.FLOAT: "FLOAT",
    exp.DataType.Type.DOUBLE: "DOUBLE",
    exp.DataType.Type.TEXT: "STRING",
    exp.DataType.Type.VARCHAR: "VARCHAR",
    exp.DataType.Type.CHAR: "CHAR",
    exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
    exp.DataType.Type.DATETIME: "TIMESTAMP",
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.DECIMAL: "DECIMAL",
    exp.DataType.Type.BINARY: "BINARY",
    exp.DataType.Type.VARBINARY: "BINARY",
}


def column_from_sqlglot(name: str, kind: exp.DataType | None, comment: str = "") -> ColumnDesc:
    """A column from a parsed DDL type; unsupported types are an AnalysisException."""
    if kind is None:
        raise analysis(f"Missing type for column '{name}'")
    impala = _SQLGLOT_TO_IMPALA.get(kind.this)
    if impala is None:
        raise analysis(f"Unsupported type '{kind.sql(dialect='hive')}' for column '{name}'")
    params = [int(p.name) for p in kind.expressions if p.name.isdigit()]
    if impala == "DECIMAL":
        precision = params[0] if params else 9
        scale = params[1] if len(params) > 1 else 0
        if not 1 <= precision <= 38 or not 0 <= scale <= precision:
            raise analysis(
                f"Decimal precision must be > 0 and <= 38 and scale <= precision: "
                f"DECIMAL({precision},{scale})"
            )
        return ColumnDesc(name, "DECIMAL", precision=precision, scale=scale, comment=comment)
    if impala in ("VARCHAR", "CHAR"):
        if not params:
            raise analysis(f"{impala} requires a length: column '{name}'")
        limit = 65535 if impala == "VARCHAR" else 255
        if not 1 <= params[0] <= limit:
            raise analysis(f"{impala} size must be > 0 and <= {limit}: {params[0]}")
        return ColumnDesc(name, impala, length=params[0], comment=comment)
    return ColumnDesc(name, impala, comment=comment)


_IMPALA_TYPE_RE = re.compile(r"^\s*(\w+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


# ----------------------------------------------------------------------------------------
# Result columns: DuckDB type -> Impala type, SQL cast, Python converter

Converter = Callable[[object], object]


def format_timestamp(value: object) -> object:
    """A TIMESTAMP as Impala prints it: fractional seconds (9 digits) only when non-zero."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        text = f"{value.year:04d}-{value.month:02d}-{value.day:02d} " + value.strftime("%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond * 1000:09d}"
        return text
    return str(value)


_EPOCH = datetime.datetime(1970, 1, 1)


def format_timestamp_ns(value: object) -> object:
    """A TIMESTAMP held as nanoseconds since the epoch, printed to the nanosecond."""
    if value is None:
        return None
    assert isinstance(value, int)
    seconds, nanos = divmod(value, 1_000_000_000)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} " + moment.strftime("%H:%M:%S")
    if nanos:
        text += f".{nanos:09d}"
    return text


def format_date(value: object) -> object:
    """A DATE as ``YYYY-MM-DD``."""
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return str(value)


def format_decimal(value: object) -> object:
    """A DECIMAL as a plain decimal string carrying the column's scale."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


def format_binary(value: object) -> object:
    """A BINARY value as bytes."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


@dataclasses.dataclass(frozen=True)
class ResultMapping:
    """How one DuckDB result column is reported: Impala column, SQL wrapper, converter."""

    column: ColumnDesc
    sql: str  # a format string with {0} for the inner column reference
    convert: Converter | None


_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")

_SIMPLE = {
    "BOOLEAN": ("BOOLEAN", "{0}"),
    "TINYINT": ("TINYINT", "{0}"),
    "SMALLINT": ("SMALLINT", "{0}"),
    "INTEGER": ("INT", "{0}"),
    "BIGINT": ("BIGINT", "{0}"),
    "UTINYINT": ("SMALLINT", "CAST({0} AS SMALLINT)"),
    "USMALLINT": ("INT", "CAST({0} AS INTEGER)"),
    "UINTEGER": ("BIGINT", "CAST({0} AS BIGINT)"),
    "UBIGINT": ("BIGINT", "CAST({0} AS BIGINT)"),
    "HUGEINT": ("BIGINT", "CAST({0} AS BIGINT)"),
    "UHUGEINT": ("BIGINT", "CAST({0} AS BIGINT)"),
    "FLOAT": ("FLOAT", "{0}"),
    "DOUBLE": ("DOUBLE", "{0}"),
    "VARCHAR": ("STRING", "{0}"),
    "BLOB": ("BINARY", "{0}"),
    "DATE": ("DATE", "{0}"),
    "TIMESTAMP": ("TIMESTAMP", "{0}"),
    "TIMESTAMP_S": ("TIMESTAMP", "CAST({0} AS TIMESTAMP)"),
    "TIMESTAMP_MS": ("TIMESTAMP", "CAST({0} AS TIMESTAMP)"),
    "TIMESTAMP WITH TIME ZONE": ("TIMESTAMP", "CAST({0} AS TIMESTAMP)"),
    "TIMESTAMP_NS": ("TIMESTAMP", "epoch_ns({0})"),
    '"NULL"': ("BOOLEAN", "CAST({0} AS BOOLEAN)"),
    "NULL": ("BOOLEAN", "CAST({0} AS BOOLEAN)"),
}

_CONVERTERS: dict[str, Converter | None] = {
    "DATE": format_date,
    "TIMESTAMP": format_timestamp,
    "BINARY": format_binary,
}


def map_result_column(name: str, duckdb_type: str) -> ResultMapping:
    """How a result column of the given DuckDB type is reported to Impala clients."""
    t = duckdb_type.strip()
    m = _DECIMAL_RE.match(t)
    if m:
        column = ColumnDesc(name, "DECIMAL", precision=int(m.group(1)), scale=int(m.group(2)))
        return ResultMapping(column, "{0}", format_decimal)
    simple = _SIMPLE.get(t)
    if simple is not None:
        impala, sql = simple
        convert = format_timestamp_ns if t == "TIMESTAMP_NS" else _CONVERTERS.get(impala)
        return ResultMapping(ColumnDesc(name, impala), sql, convert)
    # lists, structs, maps, intervals, times, uuids, enums...: Impala shows them as STRING
    return ResultMapping(ColumnDesc(name, "STRING"), "CAST({0} AS VARCHAR)", None)


def smallest_int_type(value: int) -> str | None:
    """The smallest Impala integer type holding ``value`` (None when it needs DECIMAL)."""
    for name, bits in (("TINYINT", 8), ("SMALLINT", 16), ("INT", 32), ("BIGINT", 64)):
        if -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            return name
    return None
