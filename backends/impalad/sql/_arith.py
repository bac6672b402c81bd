"""Impala's typing of literals and of integer arithmetic.

A literal gets the smallest type that holds it (``1`` TINYINT, ``1000`` SMALLINT,
``0.001`` DECIMAL(3,3)), where DuckDB would say INTEGER or DECIMAL(4,3).

Integer ``+``, ``-`` and ``*`` widen instead of overflowing.

Impala types ``INT + INT`` as BIGINT and ``TINYINT + TINYINT`` as SMALLINT (one size up,
capped at BIGINT), so ``2147483647 + 1`` is 2147483648. DuckDB keeps the operand type and
raises an overflow error. sqlglot's optimizer resolves each column against the catalog's
schema (``qualify``) and types every expression (``annotate_types``); each integer
``+ - *`` then gets its operands cast to Impala's result type. When the query cannot be
qualified (unknown columns, syntax sqlglot's optimizer does not follow), it is left as it
is and DuckDB reports the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from ._types import smallest_int_type

_RANK = {"TINYINT": 0, "SMALLINT": 1, "INT": 2, "BIGINT": 3}
_NAMES = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_SQLGLOT = {
    exp.DataType.Type.TINYINT: "TINYINT",
    exp.DataType.Type.SMALLINT: "SMALLINT",
    exp.DataType.Type.INT: "INT",
    exp.DataType.Type.BIGINT: "BIGINT",
}

Schema = Mapping[str, Mapping[str, Mapping[str, str]]]


def _int_type(node: exp.Expression) -> str | None:
    """The Impala integer type of an operand, or None when it is not an integer."""
    if isinstance(node, exp.Paren):
        return _int_type(node.this)
    if isinstance(node, exp.Literal) and not node.is_string and node.name.isdigit():
        return smallest_int_type(int(node.name))
    if (
        isinstance(node, exp.Neg)
        and isinstance(node.this, exp.Literal)
        and not node.this.is_string
        and node.this.name.isdigit()
    ):
        return smallest_int_type(-int(node.this.name))
    dtype = node.type
    if dtype is None:
        return None
    return _SQLGLOT.get(dtype.this)


def widen_integer_arithmetic(
    tree: exp.Expression, schema: Schema, database: str, dialect: Any
) -> exp.Expression:
    """The query with each integer ``+ - *`` computed in Impala's wider result type."""
    if not any(True for _ in tree.find_all(exp.Add, exp.Sub, exp.Mul)):
        return tree
    try:
        typed = qualify(
            tree.copy(),
            schema=dict(schema),
            dialect=dialect,
            db=database,
            quote_identifiers=False,
            validate_qualify_columns=True,
        )
        typed = annotate_types(typed, schema=dict(schema), dialect=dialect)
    except (SqlglotError, KeyError, ValueError, TypeError, AttributeError):
        return tree
    nodes = [n for n in typed.walk(bfs=False) if isinstance(n, exp.Add | exp.Sub | exp.Mul)]
    for node in reversed(nodes):  # operands before the operations that use them
        left, right = _int_type(node.this), _int_type(node.expression)
        if left is None or right is None:
            continue
        result = _NAMES[min(max(_RANK[left], _RANK[right]) + 1, 3)]
        duck = "INTEGER" if result == "INT" else result
        for key in ("this", "expression"):
            node.set(key, exp.Cast(this=node.args[key], to=exp.DataType.build(duck)))
        node.type = exp.DataType.build(duck)
    return typed


def type_literal_projections(node: exp.Expression) -> None:
    """Type the bare integer literals a SELECT (or each SELECT of a UNION) projects."""
    if isinstance(node, exp.SetOperation):
        type_literal_projections(node.this)
        type_literal_projections(node.expression)
    elif isinstance(node, exp.Select):
        node.set("expressions", [_type_projection(e) for e in node.expressions])


def _type_projection(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Alias):
        node.set("this", type_int_literal(node.this))
        return node
    return type_int_literal(node)


def type_int_literal(node: exp.Expression) -> exp.Expression:
    """An integer literal cast to the smallest Impala integer type that holds it."""
    value: int | None = None
    if isinstance(node, exp.Literal) and not node.is_string and node.name.lstrip("-").isdigit():
        value = int(node.name)
    elif (
        isinstance(node, exp.Neg)
        and isinstance(node.this, exp.Literal)
        and not node.this.is_string
        and node.this.name.isdigit()
    ):
        value = -int(node.this.name)
    if value is None:
        return _type_decimal_literal(node)
    impala = smallest_int_type(value)
    if impala is None:
        digits = len(str(abs(value)))
        if digits > 38:
            return node
        return exp.Cast(this=node, to=exp.DataType.build(f"DECIMAL({digits}, 0)"))
    duck = "INTEGER" if impala == "INT" else impala
    return exp.Cast(this=node, to=exp.DataType.build(duck))


def _type_decimal_literal(node: exp.Expression) -> exp.Expression:
    """A decimal literal typed as Impala types it: 0.001 is DECIMAL(3,3), 1.5 DECIMAL(2,1)."""
    literal = node.this if isinstance(node, exp.Neg) else node
    if not isinstance(literal, exp.Literal) or literal.is_string:
        return node
    text = literal.name
    if text.count(".") != 1 or not text.replace(".", "").isdigit():
        return node
    whole, frac = text.split(".")
    whole = whole.lstrip("0")
    scale = len(frac)
    precision = max(len(whole) + scale, 1)
    if precision > 38:
        return node
    return exp.Cast(this=node, to=exp.DataType.build(f"DECIMAL({precision}, {scale})"))
