"""Result types and values exactly as Impala reports them (schema and HS2 wire form)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from backends.impalad.sql import ColumnDesc, Engine, Session


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "warehouse")
    yield e
    e.close()


def run(engine: Engine, session: Session, sql: str) -> tuple[list[ColumnDesc], list[list[object]]]:
    st = engine.execute(session, sql)
    assert st.schema is not None
    columns: list[list[object]] = [[] for _ in st.schema]
    while True:
        batch = st.fetch(1000)
        if not batch[0]:
            break
        for acc, values in zip(columns, batch, strict=True):
            acc.extend(values)
    st.close()
    return st.schema, columns


def types(schema: list[ColumnDesc]) -> list[str]:
    return [c.type for c in schema]


def test_integer_literals_get_the_smallest_impala_int_type(engine: Engine) -> None:
    """`select 1` is TINYINT, 1000 SMALLINT, 100000 INT, 2^31 BIGINT, 2^64 DECIMAL(20,0)."""
    schema, cols = run(
        engine, Session("u"), "select 1, -128, 1000, 100000, 2147483648, 18446744073709551616"
    )
    assert types(schema) == ["TINYINT", "TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL"]
    assert (schema[5].precision, schema[5].scale) == (20, 0)
    assert cols == [[1], [-128], [1000], [100000], [2147483648], ["18446744073709551616"]]
    assert schema[0].name == "1"


def test_decimal_literal_and_arithmetic_carry_precision_and_scale(engine: Engine) -> None:
    """1.5 is DECIMAL(2,1) and its value prints with the column's scale."""
    schema, cols = run(engine, Session("u"), "select 1.5, cast(2 as decimal(10,3)), 0.001")
    assert [(c.type, c.precision, c.scale) for c in schema] == [
        ("DECIMAL", 2, 1),
        ("DECIMAL", 10, 3),
        ("DECIMAL", 3, 3),
    ]
    assert cols == [["1.5"], ["2.000"], ["0.001"]]


def test_string_literals_are_string_and_sums_of_ints_bigint(engine: Engine) -> None:
    """String literals are STRING (not VARCHAR) and sum/count of ints are BIGINT."""
    schema, cols = run(
        engine, Session("u"), "select 'a', sum(x), count(*) from (values (1), (2)) as t(x)"
    )
    assert types(schema) == ["STRING", "BIGINT", "BIGINT"]
    assert cols == [["a"], [3], [2]]


def test_timestamp_prints_fraction_only_when_non_zero(engine: Engine) -> None:
    """TIMESTAMP prints `YYYY-MM-DD HH:MM:SS` plus nine fractional digits only when non-zero."""
    schema, cols = run(
        engine,
        Session("u"),
        "select cast('2024-01-02 03:04:05' as timestamp), "
        "cast('2024-01-02 03:04:05.25' as timestamp), date '2024-01-02'",
    )
    assert types(schema) == ["TIMESTAMP", "TIMESTAMP", "DATE"]
    assert cols == [["2024-01-02 03:04:05"], ["2024-01-02 03:04:05.250000000"], ["2024-01-02"]]


def test_nanosecond_timestamps_from_parquet_print_all_nine_digits(
    engine: Engine, tmp_path: pathlib.Path
) -> None:
    """A TIMESTAMP_NS read from Parquet keeps and prints its nanoseconds."""
    session = Session("u")
    engine.execute(session, "create table ts (t timestamp) stored as parquet")
    path = tmp_path / "warehouse" / "ts" / "outside.parq"
    import duckdb

    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS t) "
            f"TO '{path}' (FORMAT parquet)"
        )
    engine.execute(session, "refresh ts")
    schema, cols = run(engine, session, "select t from ts")
    assert types(schema) == ["TIMESTAMP"]
    assert cols == [["2024-01-02 03:04:05.123456789"]]


def test_every_type_with_nulls_round_trips_through_a_parquet_table(engine: Engine) -> None:
    """Each Impala type stored in Parquet comes back with its Impala type, NULLs as None."""
    session = Session("u")
    engine.execute(
        session,
        "create table all_types (bo boolean, ti tinyint, si smallint, i int, bi bigint, "
        "f float, d double, s string, vc varchar(5), c char(3), ts timestamp, dt date, "
        "de decimal(9,2), bin binary) stored as parquet",
    )
    st = engine.execute(
        session,
        "insert into all_types values (true, 1, 2, 3, 4, 1.5, 2.5, 'str', 'hello', 'ab', "
        "'2024-01-02 03:04:05.5', '2024-01-02', 12.34, cast('xy' as binary)), "
        "(null, null, null, null, null, null, null, null, null, null, null, null, null, null)",
    )
    assert st.rows_modified == 2
    schema, cols = run(engine, session, "select * from all_types order by i nulls last")
    assert [c.type_sql() for c in schema] == [
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INT",
        "BIGINT",
        "FLOAT",
        "DOUBLE",
        "STRING",
        "VARCHAR(5)",
        "CHAR(3)",
        "TIMESTAMP",
        "DATE",
        "DECIMAL(9,2)",
        "BINARY",
    ]
    first = [c[0] for c in cols]
    assert first == [
        True,
        1,
        2,
        3,
        4,
        1.5,
        2.5,
        "str",
        "hello",
        "ab ",
        "2024-01-02 03:04:05.500000000",
        "2024-01-02",
        "12.34",
        b"xy",
    ]
    assert [c[1] for c in cols] == [None] * 14


def test_null_literal_is_reported_as_boolean(engine: Engine) -> None:
    """`select null` has Impala's NULL_TYPE, which HS2 clients see as BOOLEAN."""
    schema, cols = run(engine, Session("u"), "select null")
    assert types(schema) == ["BOOLEAN"]
    assert cols == [[None]]


def test_now_is_a_timestamp_without_time_zone(engine: Engine) -> None:
    """now() is TIMESTAMP (not TIMESTAMP WITH TIME ZONE) printed Impala's way."""
    schema, cols = run(engine, Session("u"), "select now()")
    assert types(schema) == ["TIMESTAMP"]
    value = cols[0][0]
    assert isinstance(value, str) and len(value) in (19, 29) and value[10] == " "


def test_nested_and_interval_values_are_reported_as_string(engine: Engine) -> None:
    """Types Impala cannot report (lists, intervals) arrive as STRING."""
    schema, cols = run(engine, Session("u"), "select [1, 2], interval 1 day")
    assert types(schema) == ["STRING", "STRING"]
    assert all(isinstance(c[0], str) for c in cols)


def test_union_of_literals_widens_to_the_widest_literal_type(engine: Engine) -> None:
    """`select 1 union all select 1000` is SMALLINT, as in Impala."""
    schema, cols = run(engine, Session("u"), "select 1 x union all select 1000")
    assert types(schema) == ["SMALLINT"]
    assert sorted(cols[0]) == [1, 1000]  # type: ignore[type-var]


def test_casts_to_sized_strings_truncate_pad_and_report_their_length(engine: Engine) -> None:
    """CAST AS VARCHAR(n) truncates, CHAR(n) pads, and both report their length like Impala."""
    schema, cols = run(
        engine, Session("u"), "select cast('abcdef' as varchar(3)), cast('ab' as char(4)) c"
    )
    assert [c.type_sql() for c in schema] == ["VARCHAR(3)", "CHAR(4)"]
    assert [c.length for c in schema] == [3, 4]
    assert cols == [["abc"], ["ab  "]]


def test_integer_arithmetic_widens_like_impala_instead_of_overflowing(engine: Engine) -> None:
    """INT + 1 is BIGINT and TINYINT + TINYINT SMALLINT: sums Impala allows never overflow."""
    session = Session("u")
    engine.execute(session, "create table i (a int, t tinyint) stored as parquet")
    engine.execute(session, "insert into i values (2147483647, 100)")
    schema, cols = run(engine, session, "select a + 1, t + t, a * 2, t - 1, 100 + 100 from i")
    assert types(schema) == ["BIGINT", "SMALLINT", "BIGINT", "SMALLINT", "SMALLINT"]
    assert cols == [[2147483648], [200], [4294967294], [99], [200]]
