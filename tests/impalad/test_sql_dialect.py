"""Impala's own statements (SET, USE, SHOW, DESCRIBE, EXPLAIN) and Impala's functions."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from backends.impalad.sql import VERSION, ColumnDesc, Engine, ImpalaError, Session


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "warehouse", default_options={"mem_limit": "4g"})
    yield e
    e.close()


def run(engine: Engine, session: Session, sql: str) -> tuple[list[ColumnDesc], list[list[object]]]:
    st = engine.execute(session, sql)
    assert st.schema is not None, sql
    columns = st.fetch(100_000)
    assert not st.fetch(10)[0]
    st.close()
    return st.schema, columns


def rows(engine: Engine, session: Session, sql: str) -> list[tuple[object, ...]]:
    return list(zip(*run(engine, session, sql)[1], strict=True))


def one(engine: Engine, session: Session, sql: str) -> object:
    return run(engine, session, sql)[1][0][0]


def test_set_all_lists_impala_options_with_levels(engine: Engine) -> None:
    """SET ALL answers three STRING columns with Impala's option names, values and levels."""
    schema, cols = run(engine, Session("u"), "set all")
    assert [(c.name, c.type) for c in schema] == [
        ("option", "STRING"),
        ("value", "STRING"),
        ("level", "STRING"),
    ]
    options = {name: (value, level) for name, value, level in zip(*cols, strict=True)}
    assert options["SYNC_DDL"] == ("0", "REGULAR")
    assert options["EXPLAIN_LEVEL"] == ("1", "REGULAR")
    assert options["MEM_LIMIT"] == ("4g", "REGULAR")  # the daemon's default_query_options
    assert options["CLIENT_IDENTIFIER"][1] == "ADVANCED"
    assert len(options) > 50


def test_set_and_unset_change_only_the_session(engine: Engine) -> None:
    """SET k=v changes this session's option (booleans as 0/1); UNSET restores the default."""
    s1, s2 = Session("a"), Session("b")
    st = engine.execute(s1, "SET sync_ddl=true")
    assert st.statement_type == "SET" and st.fetch(10) == [[], [], []]
    assert s1.options == {"SYNC_DDL": "1"}
    values = {name: value for name, value, _ in engine.query_options(s1)}
    assert values["SYNC_DDL"] == "1"
    assert {n: v for n, v, _ in engine.query_options(s2)}["SYNC_DDL"] == "0"
    engine.execute(s1, "unset SYNC_DDL")
    assert s1.options == {}
    engine.execute(s1, "set mem_limit='2g'")
    assert s1.options == {"MEM_LIMIT": "2g"}


def test_set_rejects_unknown_options_and_bad_values(engine: Engine) -> None:
    """An unknown option or a non-boolean for a boolean option is an AnalysisException."""
    with pytest.raises(ImpalaError, match="Invalid query option: nosuch"):
        engine.execute(Session("u"), "set nosuch=1")
    with pytest.raises(ImpalaError) as info:
        engine.execute(Session("u"), "set sync_ddl=maybe")
    assert info.value.kind == "AnalysisException"


def test_bare_set_lists_regular_and_advanced_options(engine: Engine) -> None:
    """A bare SET answers the same three columns without DEVELOPMENT options."""
    _, cols = run(engine, Session("u"), "set")
    assert "MEM_LIMIT" in cols[0]
    assert "DEVELOPMENT" not in cols[2]


def test_use_switches_database_and_current_database_follows(engine: Engine) -> None:
    """USE changes the session's database, and current_database() reports it."""
    session = Session("u")
    engine.execute(session, "create database sales")
    st = engine.execute(session, "use sales")
    assert st.schema is None and st.statement_type == "USE"
    assert session.database == "sales"
    assert one(engine, session, "select current_database()") == "sales"


def test_show_databases_and_tables_with_impala_patterns(engine: Engine) -> None:
    """SHOW DATABASES/TABLES list names (with comments) and filter with `*` and `|`."""
    session = Session("u")
    engine.execute(session, "create database sales comment 'money'")
    for t in ("orders", "order_items", "customers"):
        engine.execute(session, f"create table sales.{t} (id int)")
    assert rows(engine, session, "show databases") == [
        ("_impala_builtins", "System database for Impala builtin functions"),
        ("default", "Default Hive database"),
        ("sales", "money"),
    ]
    assert rows(engine, session, "show schemas like 'sa*'") == [("sales", "money")]
    assert rows(engine, session, "show tables in sales") == [
        ("customers",),
        ("order_items",),
        ("orders",),
    ]
    assert rows(engine, session, "show tables in sales like 'order*|cust*'") == [
        ("customers",),
        ("order_items",),
        ("orders",),
    ]
    assert rows(engine, session, "show tables in sales 'ORDERS'") == [("orders",)]


def test_describe_shows_name_type_comment_in_lower_case_types(engine: Engine) -> None:
    """DESCRIBE t lists name, type (lower case, with parameters) and comment per column."""
    session = Session("u")
    engine.execute(
        session,
        "create table t (id bigint comment 'key', price decimal(10,2), code varchar(8)) "
        "partitioned by (day date) stored as parquet",
    )
    schema, _ = run(engine, session, "describe t")
    assert [c.name for c in schema] == ["name", "type", "comment"]
    assert rows(engine, session, "describe t") == [
        ("id", "bigint", "key"),
        ("price", "decimal(10,2)", ""),
        ("code", "varchar(8)", ""),
        ("day", "date", ""),
    ]
    formatted = rows(engine, session, "describe formatted t")
    labels = [str(r[0]).strip() for r in formatted]
    assert "# Partition Information" in labels and "Location:" in labels
    assert any(r[1] == "MANAGED_TABLE" for r in formatted)


def test_describe_database_shows_location_and_comment(engine: Engine) -> None:
    """DESCRIBE DATABASE answers name, location and comment."""
    session = Session("u")
    engine.execute(session, "create database d comment 'c'")
    [(name, location, comment)] = rows(engine, session, "describe database d")
    assert (name, comment) == ("d", "c")
    assert str(location).endswith("/d.db")


def test_show_create_table_round_trips(engine: Engine) -> None:
    """SHOW CREATE TABLE prints DDL that recreates the same columns and storage."""
    session = Session("u")
    engine.execute(
        session,
        "create table src (a int comment 'x', b string) partitioned by (k int) "
        "comment 'tbl' row format delimited fields terminated by ',' stored as textfile",
    )
    text = str(one(engine, session, "show create table src"))
    assert "PARTITIONED BY" in text and "STORED AS TEXTFILE" in text
    assert "FIELDS TERMINATED BY ','" in text
    engine.execute(session, "create database other")
    ddl = text.replace("default.src", "other.copy").split("\nLOCATION")[0]
    engine.execute(session, ddl)
    assert rows(engine, session, "describe other.copy") == rows(engine, session, "describe src")


def test_show_functions_lists_builtins_only_in_impala_builtins(engine: Engine) -> None:
    """SHOW FUNCTIONS IN _impala_builtins lists builtins; user databases have none."""
    session = Session("u")
    schema, cols = run(engine, session, "show functions in _impala_builtins like 'nd*'")
    assert [c.name for c in schema] == ["return type", "signature", "binary type", "is persistent"]
    assert cols[1] == ["ndv(...)"]
    assert run(engine, session, "show functions")[1] == [[], [], [], []]


def test_explain_returns_a_plan_text(engine: Engine) -> None:
    """EXPLAIN answers one STRING column `Explain String` whose lines describe the plan."""
    session = Session("u")
    engine.execute(session, "create table t (a int) stored as parquet")
    st = engine.execute(session, "explain select count(*) from t where a > 1")
    assert st.statement_type == "EXPLAIN"
    assert st.schema is not None and st.schema[0].name == "Explain String"
    text = "\n".join(str(v) for v in st.fetch(1000)[0])
    assert "PLAN-ROOT SINK" in text and "default.t" in text
    assert str(st.summary["plan"]).startswith("Max Per-Host")


def test_version_user_and_session_functions(engine: Engine) -> None:
    """version() says impala-lb; user() and effective_user() are the session's user."""
    session = Session("alice")
    assert one(engine, session, "select version()") == VERSION
    assert "impala-lb" in VERSION and VERSION.startswith("impalad version")
    assert rows(engine, session, "select user(), effective_user(), current_database()") == [
        ("alice", "alice", "default")
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("from_unixtime(0)", "1970-01-01 00:00:00"),
        ("from_unixtime(86400, 'yyyy-MM-dd')", "1970-01-02"),
        ("unix_timestamp('1970-01-02 00:00:00')", 86400),
        ("to_date(cast('2024-05-17 10:11:12' as timestamp))", "2024-05-17"),
        ("nvl(null, 'a')", "a"),
        ("isnull(null, 'b')", "b"),
        ("ifnull(null, 'c')", "c"),
        ("zeroifnull(cast(null as int))", 0),
        ("nullifzero(0)", None),
        ("instr('hello', 'l')", 3),
        ("locate('l', 'hello')", 3),
        ("locate('l', 'hello', 4)", 4),
        ("strleft('hello', 2)", "he"),
        ("strright('hello', 2)", "lo"),
        ("concat_ws('-', 'a', 'b')", "a-b"),
        ("regexp_extract('abcbc', '(b)(c)', 2)", "c"),
        ("regexp_replace('aaa', 'a', 'b')", "bbb"),
        ("datediff('2024-01-10', '2024-01-01')", 9),
        ("date_add('2024-01-01', 3)", "2024-01-04 00:00:00"),
        ("date_sub('2024-01-10', 3)", "2024-01-07 00:00:00"),
        ("days_add(cast('2024-01-01' as timestamp), 2)", "2024-01-03 00:00:00"),
        ("months_add(cast('2024-01-31' as timestamp), 1)", "2024-02-29 00:00:00"),
        ("trunc(cast('2024-05-17 10:11:12' as timestamp), 'MM')", "2024-05-01 00:00:00"),
        ("extract(year from cast('2024-05-17' as timestamp))", 2024),
        ("year(cast('2024-05-17' as date))", 2024),
        ("cast(12 as string)", "12"),
        ("cast('x' as int)", None),
        ("int_months_between('2024-05-01', '2024-01-15')", 3),
        ("dayofweek(cast('2024-01-07' as date))", 1),
        ("from_timestamp(cast('2024-01-07 10:00:00' as timestamp), 'yyyy/MM/dd')", "2024/01/07"),
        ("if(1 > 0, 'y', 'n')", "y"),
    ],
)
def test_impala_functions_translate_to_duckdb(engine: Engine, expr: str, expected: object) -> None:
    """Impala's scalar functions give Impala's answers on DuckDB."""
    assert one(engine, Session("u"), f"select {expr}") == expected


def test_impala_function_result_types(engine: Engine) -> None:
    """Functions whose Impala type differs from DuckDB's report Impala's (INT, BIGINT...)."""
    schema, _ = run(
        engine,
        Session("u"),
        "select instr('a','a'), datediff(now(), now()), year(now()), length('a'), "
        "unix_timestamp(), ndv(1), count(1)",
    )
    assert [c.type for c in schema] == ["INT", "INT", "INT", "INT", "BIGINT", "BIGINT", "BIGINT"]


def test_aggregates_group_concat_appx_median_ndv_percentile(engine: Engine) -> None:
    """group_concat joins with ', ' by default; appx_median, ndv and percentile work."""
    session = Session("u")
    got = rows(
        engine,
        session,
        "select group_concat(v), group_concat(v, '|'), appx_median(x), ndv(x), "
        "percentile(x, 0.5) from (select * from (values ('a', 1), ('b', 2), ('c', 3)) "
        "as t(v, x) order by x) q",
    )
    assert got[0][0] in ("a, b, c",)
    assert got[0][1] == "a|b|c"
    assert got[0][2:] == (2, 3, 2)


def test_column_labels_follow_impala(engine: Engine) -> None:
    """Labels are lower-cased aliases, column names, or the expression's text."""
    schema, _ = run(engine, Session("u"), "select 1 + 1, count(*) AS Total, 'x' from (select 1) q")
    assert [c.name for c in schema] == ["1 + 1", "total", "'x'"]


def test_joins_ctes_windows_limit_offset_and_values(engine: Engine) -> None:
    """SELECT with joins, CTEs, window functions, ORDER BY, LIMIT/OFFSET and VALUES works."""
    session = Session("u")
    engine.execute(session, "create table a (id int, v string) stored as parquet")
    engine.execute(session, "create table b (id int, w double) stored as parquet")
    engine.execute(session, "insert into a values (1, 'x'), (2, 'y'), (3, null)")
    engine.execute(session, "insert into b values (1, 1.5), (2, 2.5), (4, 4.0)")
    assert rows(engine, session, "select * from a join b on a.id = b.id order by a.id") == [
        (1, "x", 1, 1.5),
        (2, "y", 2, 2.5),
    ]
    schema, _ = run(engine, session, "select * from a join b on a.id = b.id")
    assert [c.name for c in schema] == ["id", "v", "id", "w"]
    assert rows(
        engine,
        session,
        "with q as (select id, v from a) select id, row_number() over (order by id desc) rn "
        "from q order by id limit 2 offset 1",
    ) == [(2, 2), (3, 1)]
    assert rows(engine, session, "select id, v from a order by v") == [
        (1, "x"),
        (2, "y"),
        (3, None),
    ]  # Impala: NULLs sort last ascending
    assert rows(
        engine, session, "select id from a left semi join b on a.id = b.id order by id"
    ) == [
        (1,),
        (2,),
    ]
    assert rows(engine, session, "values (1, 'a'), (2, 'b')") == [(1, "a"), (2, "b")]
