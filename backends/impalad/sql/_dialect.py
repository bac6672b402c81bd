"""Impala's SQL dialect, translated to DuckDB's through sqlglot.

sqlglot has no Impala dialect, but Impala's SQL is Hive's with a few differences:
NULLs sort as the largest values, some functions are Impala's own (``zeroifnull``,
``ndv``, ``days_add``...) or mean something else (``group_concat`` separates with
``", "``, ``trunc`` takes Oracle-style units, ``isnull`` takes two arguments). The
:class:`Impala` dialect below is Hive's with those functions left unparsed, and
:func:`rewrite_functions` turns them into DuckDB expressions *after* the result column
labels were taken from the statement as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.dialects.hive import Hive

# Functions Impala defines differently from Hive; parsed as plain calls, rewritten below.
_OWN = (
    "ISNULL",
    "GROUP_CONCAT",
    "TRUNC",
    "NOW",
    "CURRENT_TIMESTAMP",
    "DAYOFWEEK",
    "MONTHS_BETWEEN",
    "INT_MONTHS_BETWEEN",
    "TO_TIMESTAMP",
    "FROM_TIMESTAMP",
    "PERCENTILE",
    "NVL",
    "IFNULL",
    "INSTR",
    "LOCATE",
    "REGEXP_EXTRACT",
    "DATE_ADD",
    "DATE_SUB",
    "DATEDIFF",
    "UNIX_TIMESTAMP",
    "CURRENT_DATE",
    "YEAR",
    "MONTH",
    "DAY",
    "DAYOFMONTH",
    "HOUR",
    "MINUTE",
    "SECOND",
    "DAYOFYEAR",
    "WEEKOFYEAR",
    "QUARTER",
    "LENGTH",
    "CHAR_LENGTH",
    "ASCII",
)

# Functions Impala types INT where DuckDB computes BIGINT.
_INT_RESULT = (
    "year",
    "month",
    "day",
    "dayofmonth",
    "hour",
    "minute",
    "second",
    "dayofyear",
    "weekofyear",
    "quarter",
    "length",
    "char_length",
    "ascii",
)


class Impala(Hive):
    """Hive's dialect with Impala's NULL ordering and Impala-only functions kept as calls."""

    NULL_ORDERING = "nulls_are_large"

    class Parser(Hive.Parser):  # type: ignore[valid-type,misc]
        """Hive's parser minus the functions Impala gives another meaning."""

        FUNCTIONS = {k: v for k, v in Hive.Parser.FUNCTIONS.items() if k not in _OWN}

        def _parse_types(self, *args: Any, **kwargs: Any) -> Any:
            # Hive (and Spark) read CAST(x AS VARCHAR(n)) as STRING; Impala truncates to n,
            # so skip Hive's override and keep the length.
            return super(Hive.Parser, self)._parse_types(*args, **kwargs)  # type: ignore[misc]


def _lit(text: str) -> exp.Expression:
    return exp.Literal.string(text)


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _interval(unit: str, sign: int) -> Callable[[list[exp.Expression]], exp.Expression]:
    def build(args: list[exp.Expression]) -> exp.Expression:
        amount: exp.Expression = args[1]
        if sign < 0:
            amount = exp.Neg(this=exp.Paren(this=amount))
        return exp.Add(
            this=exp.Cast(this=args[0], to=exp.DataType.build("TIMESTAMP")),
            expression=exp.Interval(this=exp.Paren(this=amount), unit=exp.var(unit)),
        )

    return build


_TRUNC_UNITS = {
    "SYYYY": "year",
    "YYYY": "year",
    "YEAR": "year",
    "SYEAR": "year",
    "YYY": "year",
    "YY": "year",
    "Y": "year",
    "Q": "quarter",
    "MONTH": "month",
    "MON": "month",
    "MM": "month",
    "RM": "month",
    "WW": "week",
    "W": "week",
    "IW": "week",
    "DDD": "day",
    "DD": "day",
    "J": "day",
    "DAY": "day",
    "DY": "day",
    "D": "day",
    "HH": "hour",
    "HH12": "hour",
    "HH24": "hour",
    "MI": "minute",
}


def _trunc(args: list[exp.Expression]) -> exp.Expression:
    if len(args) == 2 and isinstance(args[1], exp.Literal) and args[1].is_string:
        unit = _TRUNC_UNITS.get(args[1].name.upper(), args[1].name.lower())
        return exp.Cast(
            this=_call("date_trunc", _lit(unit), args[0]), to=exp.DataType.build("TIMESTAMP")
        )
    return _call("trunc", *args)


def _months_between(args: list[exp.Expression]) -> exp.Expression:
    a, b = (exp.Cast(this=x, to=exp.DataType.build("DATE")) for x in args[:2])

    def months(d: exp.Expression) -> exp.Expression:
        return exp.Paren(
            this=exp.Add(
                this=exp.Mul(this=_call("year", d), expression=exp.Literal.number(12)),
                expression=_call("month", d.copy()),
            )
        )

    earlier_day = exp.Case(
        ifs=[
            exp.If(
                this=exp.LT(this=_call("day", a.copy()), expression=_call("day", b.copy())),
                true=exp.Literal.number(1),
            )
        ],
        default=exp.Literal.number(0),
    )
    return _int(
        exp.Paren(
            this=exp.Sub(
                this=exp.Sub(this=months(a), expression=months(b)),
                expression=exp.Paren(this=earlier_day),
            )
        )
    )


def _java_format(fmt: exp.Expression) -> exp.Expression:
    """A Java/Impala datetime pattern (``yyyy-MM-dd HH:mm:ss``) as a strftime pattern."""
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        return fmt
    text = fmt.name
    for java, c in (
        ("yyyy", "%Y"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSSSSSSSS", "%n"),
        ("SSSSSS", "%f"),
        ("SSS", "%g"),
        ("yy", "%y"),
    ):
        text = text.replace(java, c)
    return _lit(text)


_NOW = exp.Cast(this=_call("now"), to=exp.DataType.build("TIMESTAMP"))


def _int(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("INT"))


def _locate(args: list[exp.Expression]) -> exp.Expression:
    if len(args) < 3:
        return _int(_call("strpos", args[1], args[0]))
    found = _call("strpos", _call("substr", args[1], args[2]), args[0])
    return _int(
        exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=found, expression=exp.Literal.number(0)),
                    true=exp.Literal.number(0),
                )
            ],
            default=exp.Sub(
                this=exp.Add(this=found.copy(), expression=args[2].copy()),
                expression=exp.Literal.number(1),
            ),
        )
    )


def _unix_timestamp(args: list[exp.Expression]) -> exp.Expression:
    if not args:
        moment: exp.Expression = _NOW.copy()
    elif len(args) == 1:
        moment = exp.Cast(this=args[0], to=exp.DataType.build("TIMESTAMP"))
    else:
        moment = _call("try_strptime", args[0], _java_format(args[1]))
    return exp.Cast(this=_call("epoch", moment), to=exp.DataType.build("BIGINT"))


def _datediff(args: list[exp.Expression]) -> exp.Expression:
    a, b = (exp.Cast(this=x, to=exp.DataType.build("DATE")) for x in args[:2])
    return _int(_call("date_diff", _lit("day"), b, a))


REWRITES: dict[str, Callable[[list[exp.Expression]], exp.Expression]] = {
    "nvl": lambda a: exp.Coalesce(this=a[0], expressions=a[1:]),
    "ifnull": lambda a: exp.Coalesce(this=a[0], expressions=a[1:]),
    "instr": lambda a: _int(_call("strpos", a[0], a[1])),
    "locate": _locate,
    "regexp_extract": lambda a: _call("regexp_extract", *a),
    "date_add": _interval("DAY", 1),
    "date_sub": _interval("DAY", -1),
    "datediff": _datediff,
    "unix_timestamp": _unix_timestamp,
    "current_date": lambda a: _call("today"),
    "isnull": lambda a: exp.Coalesce(this=a[0], expressions=a[1:]),
    "zeroifnull": lambda a: exp.Coalesce(this=a[0], expressions=[exp.Literal.number(0)]),
    "nullifzero": lambda a: exp.Nullif(this=a[0], expression=exp.Literal.number(0)),
    "nvl2": lambda a: exp.If(
        this=exp.Not(this=exp.Is(this=a[0], expression=exp.Null())), true=a[1], false=a[2]
    ),
    "strleft": lambda a: _call("left", *a),
    "strright": lambda a: _call("right", *a),
    "group_concat": lambda a: _call("string_agg", a[0], a[1] if len(a) > 1 else _lit(", ")),
    "appx_median": lambda a: _call("approx_quantile", a[0], exp.Literal.number(0.5)),
    "ndv": lambda a: _call("approx_count_distinct", a[0]),
    "percentile": lambda a: _call("quantile_cont", *a),
    "trunc": _trunc,
    "now": lambda a: _NOW.copy(),
    "current_timestamp": lambda a: _NOW.copy(),
    "dayofweek": lambda a: exp.Add(this=_call("dayofweek", *a), expression=exp.Literal.number(1)),
    "days_add": _interval("DAY", 1),
    "days_sub": _interval("DAY", -1),
    "adddate": _interval("DAY", 1),
    "subdate": _interval("DAY", -1),
    "weeks_add": _interval("WEEK", 1),
    "weeks_sub": _interval("WEEK", -1),
    "months_add": _interval("MONTH", 1),
    "months_sub": _interval("MONTH", -1),
    "years_add": _interval("YEAR", 1),
    "years_sub": _interval("YEAR", -1),
    "hours_add": _interval("HOUR", 1),
    "hours_sub": _interval("HOUR", -1),
    "minutes_add": _interval("MINUTE", 1),
    "minutes_sub": _interval("MINUTE", -1),
    "seconds_add": _interval("SECOND", 1),
    "seconds_sub": _interval("SECOND", -1),
    "int_months_between": _months_between,
    "months_between": lambda a: exp.Cast(this=_months_between(a), to=exp.DataType.build("DOUBLE")),
    "from_timestamp": lambda a: _call(
        "strftime", exp.Cast(this=a[0], to=exp.DataType.build("TIMESTAMP")), _java_format(a[1])
    ),
    "to_timestamp": lambda a: (
        _call("to_timestamp", a[0])
        if len(a) == 1
        else exp.Cast(
            this=_call("try_strptime", a[0], _java_format(a[1])), to=exp.DataType.build("TIMESTAMP")
        )
    ),
    "isnan": lambda a: _call("isnan", *a),
    "is_nan": lambda a: _call("isnan", *a),
    "is_inf": lambda a: _call("isinf", *a),
    "fnv_hash": lambda a: _call("hash", *a),
}


def _sized_string(node: exp.Cast) -> exp.Expression:
    """CAST(x AS VARCHAR(n)) truncates to n characters; CHAR(n) also pads with blanks."""
    params = [p.name for p in node.to.expressions]
    if not params or not params[0].isdigit():
        return node
    length = exp.Literal.number(int(params[0]))
    text = node.__class__(this=node.this, to=exp.DataType.build("VARCHAR"))
    value = _call("left", text, length)
    if node.to.this == exp.DataType.Type.CHAR:
        value = _call("rpad", value, length.copy(), _lit(" "))
    return value


def rewrite_functions(
    tree: exp.Expression, session_values: dict[str, exp.Expression]
) -> exp.Expression:
    """Replace Impala-only calls (and session functions such as ``user()``) by DuckDB's."""

    def visit(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name in session_values:
                return session_values[name].copy()
            build = REWRITES.get(name)
            if build is not None:
                return build(list(node.expressions))
        elif isinstance(node, exp.CurrentUser):
            return session_values["user"].copy()
        elif isinstance(node, exp.Cast) and node.to.this in (
            exp.DataType.Type.VARCHAR,
            exp.DataType.Type.CHAR,
        ):
            return _sized_string(node)
        elif isinstance(node, exp.CurrentDate):
            return _call("today")
        elif isinstance(node, exp.CurrentTimestamp):
            return _NOW.copy()
        elif isinstance(node, exp.CurrentDatabase | exp.CurrentSchema):
            return session_values["current_database"].copy()
        return node

    return tree.transform(visit)


def _int_of(name: str) -> Callable[[list[exp.Expression]], exp.Expression]:
    return lambda args: _int(_call(name, *args))


for _name in _INT_RESULT:
    REWRITES.setdefault(_name, _int_of(_name))
