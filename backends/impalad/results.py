"""Engine columns -> HS2 V6 columnar results (TColumn, TRowSet, TTableSchema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.impalad.gen.TCLIService import ttypes as t

# Impala type name -> (TTypeId, TColumn member, column class, placeholder for NULL)
_TYPES: dict[str, tuple[int, str, Any, object]] = {
    "BOOLEAN": (t.TTypeId.BOOLEAN_TYPE, "boolVal", t.TBoolColumn, False),
    "TINYINT": (t.TTypeId.TINYINT_TYPE, "byteVal", t.TByteColumn, 0),
    "SMALLINT": (t.TTypeId.SMALLINT_TYPE, "i16Val", t.TI16Column, 0),
    "INT": (t.TTypeId.INT_TYPE, "i32Val", t.TI32Column, 0),
    "BIGINT": (t.TTypeId.BIGINT_TYPE, "i64Val", t.TI64Column, 0),
    "FLOAT": (t.TTypeId.FLOAT_TYPE, "doubleVal", t.TDoubleColumn, 0.0),
    "DOUBLE": (t.TTypeId.DOUBLE_TYPE, "doubleVal", t.TDoubleColumn, 0.0),
    "STRING": (t.TTypeId.STRING_TYPE, "stringVal", t.TStringColumn, ""),
    "VARCHAR": (t.TTypeId.VARCHAR_TYPE, "stringVal", t.TStringColumn, ""),
    "CHAR": (t.TTypeId.CHAR_TYPE, "stringVal", t.TStringColumn, ""),
    "TIMESTAMP": (t.TTypeId.TIMESTAMP_TYPE, "stringVal", t.TStringColumn, ""),
    "DATE": (t.TTypeId.DATE_TYPE, "stringVal", t.TStringColumn, ""),
    "DECIMAL": (t.TTypeId.DECIMAL_TYPE, "stringVal", t.TStringColumn, ""),
    "BINARY": (t.TTypeId.BINARY_TYPE, "binaryVal", t.TBinaryColumn, b""),
    "NULL": (t.TTypeId.NULL_TYPE, "stringVal", t.TStringColumn, ""),
}
# ARRAY/MAP/STRUCT and anything unknown are declared STRING, as Impala does.
_FALLBACK = _TYPES["STRING"]


def _entry(type_name: str) -> tuple[int, str, Any, object]:
    return _TYPES.get(type_name.upper(), _FALLBACK)


def column_desc(position: int, col: Any) -> t.TColumnDesc:
    """One TColumnDesc; DECIMAL carries precision/scale, CHAR/VARCHAR their length."""
    type_name = str(col.type).upper()
    type_id = _entry(type_name)[0]
    qualifiers = None
    if type_name == "DECIMAL":
        qualifiers = t.TTypeQualifiers(
            qualifiers={
                "precision": t.TTypeQualifierValue(i32Value=int(col.precision or 38)),
                "scale": t.TTypeQualifierValue(i32Value=int(col.scale or 0)),
            }
        )
    elif type_name in ("CHAR", "VARCHAR") and col.length is not None:
        qualifiers = t.TTypeQualifiers(
            qualifiers={"characterMaximumLength": t.TTypeQualifierValue(i32Value=int(col.length))}
        )
    entry = t.TTypeEntry(
        primitiveEntry=t.TPrimitiveTypeEntry(type=type_id, typeQualifiers=qualifiers)
    )
    return t.TColumnDesc(
        columnName=col.name,
        typeDesc=t.TTypeDesc(types=[entry]),
        position=position,
        comment=getattr(col, "comment", "") or None,
    )


def table_schema(schema: Sequence[Any]) -> t.TTableSchema:
    return t.TTableSchema(columns=[column_desc(i, c) for i, c in enumerate(schema)])


def null_bitmap(values: Sequence[object]) -> bytes:
    """Impala's LSB-first null bitmap: row i is NULL iff ``bits[i // 8] >> (i % 8) & 1``."""
    n = len(values)
    bits = bytearray((n + 7) // 8)
    if None in values:
        for i, v in enumerate(values):
            if v is None:
                bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def _clean(type_name: str, values: list[object], placeholder: object) -> list[object]:
    if type_name in ("FLOAT", "DOUBLE"):
        return [placeholder if v is None else float(v) for v in values]  # type: ignore[arg-type]
    if placeholder == "":
        return [v if v.__class__ is str else (placeholder if v is None else str(v)) for v in values]
    if type_name == "BINARY":
        return [
            v
            if v.__class__ is bytes
            else (b"" if v is None else (v.encode() if isinstance(v, str) else bytes(v)))  # type: ignore[call-overload]
            for v in values
        ]
    if None in values:
        return [placeholder if v is None else v for v in values]
    return values


def to_tcolumn(type_name: str, values: list[object]) -> t.TColumn:
    """One engine column (wire-form values, None = NULL) as a typed TColumn."""
    _, member, cls, placeholder = _entry(type_name)
    upper = type_name.upper()
    column = cls(values=_clean(upper, values, placeholder), nulls=null_bitmap(values))
    return t.TColumn(**{member: column})


def row_set(schema: Sequence[Any], columns: Sequence[list[object]], offset: int) -> t.TRowSet:
    """A TRowSet holding ``columns`` (one list per schema column; may be empty)."""
    tcols = []
    for i, col in enumerate(schema):
        values = columns[i] if i < len(columns) else []
        tcols.append(to_tcolumn(str(col.type), values))
    return t.TRowSet(startRowOffset=offset, rows=[], columns=tcols)
