"""The HS2 metadata calls (GetSchemas, GetTables, GetColumns, ...) as Impala answers them.

Read from Impala 4.5.0's ``fe/.../service/MetadataOp.java``, ``util/PatternMatcher.java``
and ``catalog/Type.java``:

- a search pattern is a JDBC pattern turned into a Java regex the way Impala turns it
  (``%`` -> ``.*``, ``_`` -> ``.``, ``\\%`` and ``\\_`` literal, anything else is
  regex), matched against the whole name, case-sensitively; None or empty matches
  all. So ``sales%`` (JDBC tools) and ``.*`` (impyla's cursor API) both work;
- the result columns, their types and the JDBC facts per type (java.sql.Types code,
  COLUMN_SIZE, DECIMAL_DIGITS, NUM_PREC_RADIX) are Impala's;
- GetFunctions lists functions only for an empty schema pattern (Impala's built-in
  functions have no schema: ``schemaName='.*'``, as impyla sends, returns none);
- GetTables filters by ``tableTypes`` (``TABLE``, ``VIEW``, any case);
- GetPrimaryKeys and GetCrossReference answer Impala's columns; no table here has
  constraints (the DDL takes none), so they hold no rows.

The catalog is read through a :class:`Reader` (SQL on the engine, in ``server``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence

Row = list[object]


@dataclasses.dataclass(frozen=True)
class Col:
    """A column of a protocol-made result (same fields as the engine's ColumnDesc)."""

    name: str
    type: str = "STRING"
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    comment: str = ""


def _cols(spec: str) -> list[Col]:
    """``"NAME TYPE, ..."`` (TYPE defaults to STRING) as columns."""
    out = []
    for item in spec.split(","):
        name, _, kind = item.strip().partition(" ")
        out.append(Col(name, kind or "STRING"))
    return out


SCHEMAS: dict[str, list[Col]] = {
    "catalogs": _cols("TABLE_CAT"),
    "schemas": _cols("TABLE_SCHEM, TABLE_CATALOG"),
    "table_types": _cols("TABLE_TYPE"),
    "tables": _cols("TABLE_CAT, TABLE_SCHEM, TABLE_NAME, TABLE_TYPE, REMARKS"),
    "columns": _cols(
        "TABLE_CAT, TABLE_SCHEM, TABLE_NAME, COLUMN_NAME, DATA_TYPE INT, TYPE_NAME, "
        "COLUMN_SIZE INT, BUFFER_LENGTH INT, DECIMAL_DIGITS INT, NUM_PREC_RADIX INT, "
        "NULLABLE INT, REMARKS, COLUMN_DEF, SQL_DATA_TYPE INT, SQL_DATETIME_SUB INT, "
        "CHAR_OCTET_LENGTH INT, ORDINAL_POSITION INT, IS_NULLABLE, SCOPE_CATALOG, "
        "SCOPE_SCHEMA, SCOPE_TABLE, SOURCE_DATA_TYPE SMALLINT, IS_AUTO_INCREMENT"
    ),
    "type_info": _cols(
        "TYPE_NAME, DATA_TYPE INT, PRECISION INT, LITERAL_PREFIX, LITERAL_SUFFIX, "
        "CREATE_PARAMS, NULLABLE INT, CASE_SENSITIVE BOOLEAN, SEARCHABLE SMALLINT, "
        "UNSIGNED_ATTRIBUTE BOOLEAN, FIXED_PREC_SCALE BOOLEAN, AUTO_INCREMENT BOOLEAN, "
        "LOCAL_TYPE_NAME, MINIMUM_SCALE SMALLINT, MAXIMUM_SCALE SMALLINT, "
        "SQL_DATA_TYPE INT, SQL_DATETIME_SUB INT, NUM_PREC_RADIX INT"
    ),
    "functions": _cols(
        "FUNCTION_CAT, FUNCTION_SCHEM, FUNCTION_NAME, REMARKS, FUNCTION_TYPE INT, SPECIFIC_NAME"
    ),
    "primary_keys": _cols("TABLE_CAT, TABLE_SCHEM, TABLE_NAME, COLUMN_NAME, KEQ_SEQ INT, PK_NAME"),
    "cross_reference": _cols(
        "PKTABLE_CAT, PKTABLE_SCHEM, PKTABLE_NAME, PKCOLUMN_NAME, FKTABLE_CAT, "
        "FKTABLE_SCHEM, FKTABLE_NAME, FKCOLUMN_NAME, KEQ_SEQ INT, UPDATE_RULE INT, "
        "DELETE_RULE INT, FK_NAME, PK_NAME, DEFERRABILITY INT"
    ),
}

#: java.sql.Types of Impala's types (Type.getJavaSqlType)
JAVA_SQL_TYPES = {
    "BOOLEAN": 16,
    "TINYINT": -6,
    "SMALLINT": 5,
    "INT": 4,
    "BIGINT": -5,
    "FLOAT": 6,
    "DOUBLE": 8,
    "TIMESTAMP": 93,
    "DATE": 91,
    "STRING": 12,
    "VARCHAR": 12,
    "BINARY": -2,
    "DECIMAL": 3,
    "CHAR": 1,
    "ARRAY": 2003,
    "MAP": 2003,
    "STRUCT": 2002,
}
_PRECISION = {"TINYINT": 3, "SMALLINT": 5, "INT": 10, "BIGINT": 19, "FLOAT": 7, "DOUBLE": 15}
_DIGITS = {
    "BOOLEAN": 0,
    "TINYINT": 0,
    "SMALLINT": 0,
    "INT": 0,
    "BIGINT": 0,
    "DATE": 0,
    "FLOAT": 7,
    "DOUBLE": 15,
    "TIMESTAMP": 9,
}
_NUMERIC = {*_PRECISION, "DECIMAL"}
_STRINGS = {"STRING", "VARCHAR", "CHAR", "BINARY"}
#: GetTypeInfo's rows, in Impala's order: the scalar types (PrimitiveType order, less
#: the internal and unsupported ones), then ARRAY, MAP and STRUCT
TYPE_INFO_ORDER = (
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INT",
    "BIGINT",
    "FLOAT",
    "DOUBLE",
    "TIMESTAMP",
    "DATE",
    "STRING",
    "VARCHAR",
    "BINARY",
    "DECIMAL",
    "CHAR",
    "ARRAY",
    "MAP",
    "STRUCT",
)
_DATABASE_META_NULLABLE = 1  # DatabaseMetaData.columnNullable / typeNullable
_TYPE_SEARCHABLE = 3  # DatabaseMetaData.typeSearchable
_FUNCTION_NO_TABLE = 1  # DatabaseMetaData.functionNoTable


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """An Impala column type as DESCRIBE prints it, with its JDBC facts."""

    text: str

    @property
    def base(self) -> str:
        return re.split(r"[(<\s]", self.text.strip().upper(), maxsplit=1)[0]

    @property
    def scalar(self) -> bool:
        return self.base not in ("ARRAY", "MAP", "STRUCT")

    def _args(self) -> list[int]:
        found = re.search(r"\(([\d,\s]+)\)", self.text)
        return [int(x) for x in found.group(1).split(",")] if found else []

    @property
    def type_name(self) -> str:
        """TYPE_NAME: the primitive name for a scalar, the full SQL for a complex type."""
        return self.base if self.scalar else self.text.strip().upper()

    @property
    def java_sql_type(self) -> int:
        return JAVA_SQL_TYPES.get(self.base, 12)

    @property
    def precision(self) -> int | None:
        if self.base == "DECIMAL":
            args = self._args()
            return args[0] if args else 9
        return _PRECISION.get(self.base)

    @property
    def column_size(self) -> int | None:
        if self.base in _NUMERIC:
            return self.precision
        if self.base in ("STRING", "BINARY"):
            return 2**31 - 1
        if self.base == "TIMESTAMP":
            return 29
        if self.base == "DATE":
            return 10
        if self.base in ("CHAR", "VARCHAR"):
            args = self._args()
            return args[0] if args else None
        return None

    @property
    def decimal_digits(self) -> int | None:
        if self.base == "DECIMAL":
            args = self._args()
            return args[1] if len(args) > 1 else 0
        return _DIGITS.get(self.base)

    @property
    def num_prec_radix(self) -> int | None:
        return 10 if self.base in _NUMERIC else None


def jdbc_pattern(pattern: str | None) -> Callable[[str], bool]:
    """Impala's PatternMatcher.createJdbcPatternMatcher: a predicate on names."""
    if not pattern:
        return lambda name: True
    regex = pattern
    for find, replace in (
        (r"([^\\])%", r"\1.*"),
        (r"\\%", "%"),
        (r"^%", ".*"),
        (r"([^\\])_", r"\1."),
        (r"\\_", "_"),
        (r"^_", "."),
    ):
        regex = re.sub(find, replace, regex)
    try:
        compiled = re.compile(regex)
    except re.error:
        compiled = re.compile(re.escape(pattern))
    return lambda name: compiled.fullmatch(name) is not None


def is_empty_pattern(pattern: str | None) -> bool:
    """MetadataOp.isEmptyPattern: None, empty or ``%``."""
    return not pattern or pattern == "%"


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """What GetTables says of a table beyond its name."""

    kind: str  # TABLE | VIEW
    comment: str


@dataclasses.dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: ColumnType
    comment: str


class Reader:
    """The catalog as the metadata calls read it (asynchronously, from the engine):
    names are listed cheaply; a table's kind and comment (``describe``) and its columns
    are read only for the tables a pattern matched."""

    def __init__(
        self,
        databases: Callable[[], Awaitable[list[str]]],
        tables: Callable[[str], Awaitable[list[str]]],
        describe: Callable[[str, str], Awaitable[TableInfo]],
        columns: Callable[[str, str], Awaitable[list[ColumnInfo]]],
        functions: Callable[[str], Awaitable[list[tuple[str, str]]]],
    ) -> None:
        self.databases = databases
        self.tables = tables
        self.describe = describe
        self.columns = columns
        self.functions = functions


async def schemas(reader: Reader, schema: str | None) -> list[Row]:
    match = jdbc_pattern(schema)
    return [[db, ""] for db in await reader.databases() if match(db)]


async def catalogs(reader: Reader) -> list[Row]:
    return []


async def table_types(reader: Reader) -> list[Row]:
    return [["TABLE"], ["VIEW"]]


async def tables(
    reader: Reader, schema: str | None, table: str | None, types: Sequence[str] | None
) -> list[Row]:
    wanted = [t.upper() for t in types] if types else None
    if wanted is not None and not {"TABLE", "VIEW"} & set(wanted):
        return []
    match_db, match_table = jdbc_pattern(schema), jdbc_pattern(table)
    out: list[Row] = []
    for db in await reader.databases():
        if not match_db(db):
            continue
        for name in await reader.tables(db):
            if not match_table(name):
                continue
            info = await reader.describe(db, name)
            if wanted is None or info.kind in wanted:
                out.append(["", db, name, info.kind, info.comment])
    return out


async def columns(
    reader: Reader, schema: str | None, table: str | None, column: str | None
) -> list[Row]:
    match_db, match_table = jdbc_pattern(schema), jdbc_pattern(table)
    match_column = jdbc_pattern(column)
    out: list[Row] = []
    for db in await reader.databases():
        if not match_db(db):
            continue
        for name in await reader.tables(db):
            if not match_table(name):
                continue
            for position, col in enumerate(await reader.columns(db, name), 1):
                if not match_column(col.name):
                    continue
                ty = col.type
                out.append(
                    [
                        None,
                        db,
                        name,
                        col.name,
                        ty.java_sql_type,
                        ty.type_name,
                        ty.column_size,
                        None,
                        ty.decimal_digits,
                        ty.num_prec_radix,
                        _DATABASE_META_NULLABLE,
                        col.comment,
                        None,
                        None,
                        None,
                        None,
                        position,
                        "YES",
                        None,
                        None,
                        None,
                        None,
                        "NO",
                    ]
                )
    return out


async def type_info(reader: Reader) -> list[Row]:
    out: list[Row] = []
    for name in TYPE_INFO_ORDER:
        ty = ColumnType(name if name not in ("ARRAY", "MAP") else f"{name}<INT>")
        numeric = ty.base in _NUMERIC
        out.append(
            [
                name,
                ty.java_sql_type,
                ty.precision,
                None,
                None,
                None,
                _DATABASE_META_NULLABLE,
                ty.base in _STRINGS,
                _TYPE_SEARCHABLE,
                not numeric,
                False,
                False,
                None,
                0,
                0,
                None,
                None,
                ty.num_prec_radix,
            ]
        )
    return out


async def functions(
    reader: Reader, catalog: str | None, schema: str | None, function: str | None
) -> list[Row]:
    if not is_empty_pattern(catalog) or not is_empty_pattern(schema):
        return []  # Impala's built-in functions have no catalog or schema
    match = jdbc_pattern(function)
    out: list[Row] = []
    for db in await reader.databases():
        for name, signature in await reader.functions(db):
            if match(name):
                out.append([None, db, name, "", _FUNCTION_NO_TABLE, signature])
    return out


async def primary_keys(reader: Reader, schema: str | None, table: str | None) -> list[Row]:
    return []  # no table here has a primary key: CREATE TABLE takes no constraints


async def cross_reference(reader: Reader) -> list[Row]:
    return []  # nor a foreign key
