"""Errors read like Impala's: the kind prefix exact, the message clear, the engine unharmed."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from backends.impalad.sql import Engine, ImpalaError, Session


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "warehouse")
    yield e
    e.close()


def error(engine: Engine, sql: str, session: Session | None = None) -> ImpalaError:
    with pytest.raises(ImpalaError) as info:
        st = engine.execute(session or Session("u"), sql)
        st.fetch(10)
    return info.value


def test_unknown_table_is_could_not_resolve_table_reference(engine: Engine) -> None:
    """Selecting from a missing table names it as Impala does, qualified by database."""
    err = error(engine, "select * from nosuch")
    assert str(err) == "AnalysisException: Could not resolve table reference: 'default.nosuch'"
    assert err.kind == "AnalysisException"
    err = error(engine, "select * from db9.t")
    assert err.message == "Could not resolve table reference: 'db9.t'"


def test_unknown_database_on_use_and_show(engine: Engine) -> None:
    """USE or SHOW TABLES IN a missing database is `Database does not exist: x`."""
    assert str(error(engine, "use x")) == "AnalysisException: Database does not exist: x"
    assert str(error(engine, "show tables in x")) == "AnalysisException: Database does not exist: x"


def test_syntax_error_is_a_parse_exception_with_the_line(engine: Engine) -> None:
    """A malformed statement is `ParseException: Syntax error in line 1:` plus the line."""
    for sql in ("selec 1", "select from where", "create tabel t (a int)"):
        err = error(engine, sql)
        assert err.kind == "ParseException", sql
        assert str(err).startswith("ParseException: Syntax error in line 1:\n"), sql


def test_existing_table_and_database(engine: Engine) -> None:
    """Creating what exists is `Table already exists: db.t` / `Database already exists: d`."""
    session = Session("u")
    engine.execute(session, "create table t (a int)")
    assert str(error(engine, "create table t (a int)")) == (
        "AnalysisException: Table already exists: default.t"
    )
    engine.execute(session, "create database d")
    assert str(error(engine, "create database d")) == (
        "AnalysisException: Database already exists: d"
    )


def test_unknown_column_and_function(engine: Engine) -> None:
    """Unknown columns and functions are AnalysisExceptions naming them."""
    session = Session("u")
    engine.execute(session, "create table t (a int) stored as parquet")
    err = error(engine, "select nocol from t")
    assert str(err) == "AnalysisException: Could not resolve column/field reference: 'nocol'"
    err = error(engine, "select nosuchfn(1)")
    assert err.kind == "AnalysisException" and "nosuchfn" in err.message


def test_insert_column_count_mismatch(engine: Engine) -> None:
    """INSERT with too few values says the target has more columns, as Impala does."""
    session = Session("u")
    engine.execute(session, "create table t (a int, b int) stored as parquet")
    err = error(engine, "insert into t values (1)")
    assert err.message == (
        "Target table 'default.t' has more columns (2) than the SELECT / VALUES clause returns (1)"
    )


def test_describe_missing_table_and_bad_types(engine: Engine) -> None:
    """DESCRIBE of a missing table cannot resolve the path; bad DDL types are rejected."""
    assert str(error(engine, "describe nosuch")) == (
        "AnalysisException: Could not resolve path: 'nosuch'"
    )
    assert error(engine, "create table t (a decimal(50,2))").kind == "AnalysisException"
    assert error(engine, "create table t (a int, a string)").message == "Duplicate column name: a"


def test_runtime_error_surfaces_on_fetch_and_engine_keeps_working(engine: Engine) -> None:
    """A failure while running is an ImpalaError from fetch; the next statement still runs."""
    session = Session("u")
    st = engine.execute(session, "select cast(300 as tinyint) + 0 from (select 1) q")
    # Impala returns NULL for an out-of-range cast; DuckDB's TRY_CAST does too.
    assert st.fetch(10) == [[None]]
    err = error(engine, "select 1 / 0, cast(9223372036854775807 as bigint) + 1")
    assert err.kind == "ImpalaRuntimeException"
    assert engine.execute(session, "select 1").fetch(1) == [[1]]


def test_empty_and_unsupported_statements(engine: Engine) -> None:
    """An empty statement is a ParseException; unsupported DDL is a clear AnalysisException."""
    assert error(engine, "  -- just a comment\n").kind == "ParseException"
    err = error(engine, "create function f(int) returns int location 'x.so' symbol='f'")
    assert err.kind in ("AnalysisException", "ParseException")
    err = error(engine, "create index i on t (a)")
    assert err.kind == "AnalysisException" and "not supported" in err.message


@pytest.mark.parametrize(
    "sql",
    [
        "select",
        "select 1 +",
        "select (((",
        "insert into",
        "insert into nosuch values (1)",
        "create table",
        "drop",
        "show",
        "show tables in",
        "describe",
        "set =1",
        "use",
        "select * from (select 1) q where",
        "values",
        "refresh nosuch",
        "compute stats nosuch",
        "explain drop table x",
        "alter table nosuch rename to x",
        "truncate table nosuch",
        "select 'unterminated",
        "select `",
        "\x00\xff",
        ";;;",
        "select 1; select 2",
        "create table t (a nosuchtype)",
        "create table t (a int) stored as orc",
        "insert into t partition (zz=1) values (1)",
        ":shutdown()",
    ],
)
def test_bad_statements_are_impala_errors_never_crashes(engine: Engine, sql: str) -> None:
    """Any malformed or meaningless statement raises ImpalaError, and the engine still works."""
    engine.execute(Session("u"), "create table if not exists t (a int)")
    err = error(engine, sql)
    assert err.kind in ("ParseException", "AnalysisException"), (sql, str(err))
    assert str(err) == f"{err.kind}: {err.message}"
    assert engine.execute(Session("u"), "select 1").fetch(1) == [[1]]
