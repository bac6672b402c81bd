"""DDL and DML on real files: Impala's warehouse layout, INSERT, OVERWRITE, CTAS, REFRESH."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import duckdb
import pytest

from backends.impalad.sql import Engine, ImpalaError, Session


@pytest.fixture
def warehouse(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "warehouse"


@pytest.fixture
def engine(warehouse: pathlib.Path) -> Iterator[Engine]:
    e = Engine(warehouse)
    yield e
    e.close()


def rows(engine: Engine, session: Session, sql: str) -> list[tuple[object, ...]]:
    st = engine.execute(session, sql)
    assert st.schema is not None, sql
    cols = st.fetch(100_000)
    st.close()
    return list(zip(*cols, strict=True))


def data_files(root: pathlib.Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.parts)
    )


def test_create_database_and_table_make_impala_directories(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """A database lives in `<warehouse>/<db>.db`, its tables below; default's at the top."""
    session = Session("u")
    engine.execute(session, "create database sales")
    engine.execute(session, "create table sales.orders (id int) stored as parquet")
    engine.execute(session, "create table plain (id int)")
    assert (warehouse / "sales.db" / "orders").is_dir()
    assert (warehouse / "plain").is_dir()


def test_insert_writes_uuid_parquet_files_into_the_table_dir(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """INSERT INTO writes one new `<uuid>.parq` Parquet file per statement; rows_modified counts."""
    session = Session("u")
    engine.execute(session, "create table t (id int, name string) stored as parquet")
    st = engine.execute(session, "insert into t values (1, 'a'), (2, 'b')")
    assert (st.statement_type, st.rows_modified, st.schema) == ("DML", 2, None)
    engine.execute(session, "insert into table t select id + 10, name from t")
    files = data_files(warehouse / "t")
    assert len(files) == 2 and all(f.endswith(".parq") and len(f) == 32 + 5 for f in files)
    with duckdb.connect() as con:
        count = con.execute(f"select count(*) from read_parquet('{warehouse}/t/*.parq')").fetchone()
    assert count == (4,)
    assert rows(engine, session, "select id, name from t order by id") == [
        (1, "a"),
        (2, "b"),
        (11, "a"),
        (12, "b"),
    ]


def test_insert_with_column_list_fills_the_rest_with_null(engine: Engine) -> None:
    """INSERT INTO t (b) VALUES ... leaves the unnamed columns NULL."""
    session = Session("u")
    engine.execute(session, "create table t (a int, b string) stored as parquet")
    engine.execute(session, "insert into t (b) values ('x')")
    assert rows(engine, session, "select a, b from t") == [(None, "x")]


def test_partitioned_table_static_and_dynamic_inserts_use_key_dirs(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """Partitioned inserts write under `k=v/` directories; partition columns read back typed."""
    session = Session("u")
    engine.execute(
        session, "create table p (x int) partitioned by (year int, region string) stored as parquet"
    )
    engine.execute(session, "insert into p partition (year=2024, region='eu') values (1), (2)")
    st = engine.execute(
        session,
        "insert into p partition (year, region) values (3, 2025, 'us'), (4, 2025, 'eu')",
    )
    assert st.rows_modified == 2
    engine.execute(session, "insert into p partition (year=2026, region) select 5, 'eu'")
    dirs = sorted({str(pathlib.Path(f).parent) for f in data_files(warehouse / "p")})
    assert dirs == [
        "year=2024/region=eu",
        "year=2025/region=eu",
        "year=2025/region=us",
        "year=2026/region=eu",
    ]
    got = rows(engine, session, "select x, year, region from p order by x")
    assert got == [
        (1, 2024, "eu"),
        (2, 2024, "eu"),
        (3, 2025, "us"),
        (4, 2025, "eu"),
        (5, 2026, "eu"),
    ]
    schema = engine.execute(session, "select * from p").schema
    assert schema is not None and [c.type for c in schema] == ["INT", "INT", "STRING"]
    assert rows(engine, session, "select count(*) from p where year = 2025") == [(2,)]
    parts = rows(engine, session, "show partitions p")
    assert [r[:2] for r in parts] == [
        ("2024", "eu"),
        ("2025", "eu"),
        ("2025", "us"),
        ("2026", "eu"),
        ("Total", ""),
    ]


def test_insert_overwrite_replaces_files(engine: Engine, warehouse: pathlib.Path) -> None:
    """INSERT OVERWRITE replaces all of an unpartitioned table's files."""
    session = Session("u")
    engine.execute(session, "create table t (id int) stored as parquet")
    engine.execute(session, "insert into t values (1)")
    engine.execute(session, "insert into t values (2)")
    before = data_files(warehouse / "t")
    st = engine.execute(session, "insert overwrite table t values (9)")
    assert st.rows_modified == 1
    after = data_files(warehouse / "t")
    assert len(after) == 1 and not set(before) & set(after)
    assert rows(engine, session, "select id from t") == [(9,)]


def test_insert_overwrite_partition_only_replaces_that_partition(engine: Engine) -> None:
    """INSERT OVERWRITE ... PARTITION (k=v) leaves the other partitions alone."""
    session = Session("u")
    engine.execute(session, "create table p (x int) partitioned by (k string) stored as parquet")
    engine.execute(session, "insert into p partition (k) values (1, 'a'), (2, 'b')")
    engine.execute(session, "insert overwrite p partition (k='a') values (10), (11)")
    assert rows(engine, session, "select x, k from p order by x") == [
        (2, "b"),
        (10, "a"),
        (11, "a"),
    ]


def test_ctas_creates_table_from_query_types(engine: Engine, warehouse: pathlib.Path) -> None:
    """CREATE TABLE AS SELECT takes the query's Impala types and writes the rows."""
    session = Session("u")
    st = engine.execute(
        session,
        "create table c stored as parquet as select 1 as a, 'x' as b, cast(2.5 as decimal(4,2)) d",
    )
    assert st.rows_modified == 1 and st.fetch(10) == [["Inserted 1 row(s)"]]
    assert rows(engine, session, "describe c") == [
        ("a", "tinyint", ""),
        ("b", "string", ""),
        ("d", "decimal(4,2)", ""),
    ]
    assert rows(engine, session, "select * from c") == [(1, "x", "2.50")]
    assert len(data_files(warehouse / "c")) == 1


def test_partitioned_ctas_uses_trailing_columns_as_keys(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """CTAS with PARTITIONED BY (k) makes the trailing SELECT column a partition key."""
    session = Session("u")
    engine.execute(
        session,
        "create table pc partitioned by (k) stored as parquet as "
        "select * from (values (1, 'a'), (2, 'b')) as t(x, k)",
    )
    assert rows(engine, session, "describe pc") == [("x", "tinyint", ""), ("k", "string", "")]
    assert sorted(pathlib.Path(f).parent.name for f in data_files(warehouse / "pc")) == [
        "k=a",
        "k=b",
    ]


def test_text_tables_write_delimited_files(engine: Engine, warehouse: pathlib.Path) -> None:
    """A TEXTFILE table stores delimited text with \\N for NULL, and reads it back."""
    session = Session("u")
    engine.execute(
        session,
        "create table tx (a int, b string) row format delimited fields terminated by ',' "
        "stored as textfile",
    )
    engine.execute(session, "insert into tx values (1, 'x'), (2, null)")
    [name] = data_files(warehouse / "tx")
    assert (warehouse / "tx" / name).read_text() == "1,x\n2,\\N\n"
    assert rows(engine, session, "select a, b from tx order by a") == [(1, "x"), (2, None)]


def test_default_file_format_is_text_like_impala(engine: Engine) -> None:
    """Without STORED AS the table is TEXTFILE (DEFAULT_FILE_FORMAT=TEXT), unless SET."""
    session = Session("u")
    engine.execute(session, "create table t1 (a int)")
    assert "STORED AS TEXTFILE" in str(rows(engine, session, "show create table t1")[0][0])
    engine.execute(session, "set default_file_format=parquet")
    engine.execute(session, "create table t2 (a int)")
    assert "STORED AS PARQUET" in str(rows(engine, session, "show create table t2")[0][0])


def test_refresh_picks_up_a_parquet_file_written_outside(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """A Parquet file copied into the table dir is invisible until REFRESH, then read."""
    session = Session("u")
    engine.execute(session, "create table t (id int, name string) stored as parquet")
    engine.execute(session, "insert into t values (1, 'a')")
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT 2::INTEGER AS id, 'b' AS name) "
            f"TO '{warehouse}/t/external.parq' (FORMAT parquet)"
        )
    assert rows(engine, session, "select count(*) from t") == [(1,)]
    engine.execute(session, "refresh t")
    assert rows(engine, session, "select id, name from t order by id") == [(1, "a"), (2, "b")]


def test_invalidate_metadata_rescans_every_table(engine: Engine, warehouse: pathlib.Path) -> None:
    """INVALIDATE METADATA (bare or for one table) also picks up outside files."""
    session = Session("u")
    engine.execute(session, "create table p (x int) partitioned by (k int) stored as parquet")
    (warehouse / "p" / "k=7").mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 5 AS x) TO '{warehouse}/p/k=7/f.parq' (FORMAT parquet)")
    engine.execute(session, "invalidate metadata")
    assert rows(engine, session, "select x, k from p") == [(5, 7)]
    engine.execute(session, "invalidate metadata p")
    assert rows(engine, session, "select count(*) from p") == [(1,)]


def test_truncate_and_drop_remove_files(engine: Engine, warehouse: pathlib.Path) -> None:
    """TRUNCATE deletes the data files; DROP TABLE deletes the table directory."""
    session = Session("u")
    engine.execute(session, "create table t (id int) stored as parquet")
    engine.execute(session, "insert into t values (1)")
    engine.execute(session, "truncate table t")
    assert data_files(warehouse / "t") == []
    assert rows(engine, session, "select count(*) from t") == [(0,)]
    engine.execute(session, "drop table t purge")
    assert not (warehouse / "t").exists()
    assert rows(engine, session, "show tables") == []


def test_drop_database_cascade_removes_tables_and_directory(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """DROP DATABASE needs CASCADE when tables exist, and then removes everything."""
    session = Session("u")
    engine.execute(session, "create database d")
    engine.execute(session, "create table d.t (a int)")
    with pytest.raises(ImpalaError, match="is not empty"):
        engine.execute(session, "drop database d")
    engine.execute(session, "drop database if exists d cascade")
    assert not (warehouse / "d.db").exists()
    engine.execute(session, "drop database if exists d")


def test_external_table_keeps_its_files_on_drop(engine: Engine, tmp_path: pathlib.Path) -> None:
    """An EXTERNAL table at a LOCATION reads files already there and leaves them on DROP."""
    session = Session("u")
    data = tmp_path / "ext"
    data.mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 42 AS v) TO '{data}/a.parq' (FORMAT parquet)")
    engine.execute(session, f"create external table e (v int) stored as parquet location '{data}'")
    assert rows(engine, session, "select v from e") == [(42,)]
    engine.execute(session, "drop table e")
    assert (data / "a.parq").exists()


def test_alter_rename_and_add_columns(engine: Engine, warehouse: pathlib.Path) -> None:
    """RENAME TO moves the table's directory; ADD COLUMNS reads as NULL from older files."""
    session = Session("u")
    engine.execute(session, "create table t (id int) stored as parquet")
    engine.execute(session, "insert into t values (1)")
    engine.execute(session, "alter table t add columns (note string)")
    engine.execute(session, "insert into t values (2, 'n')")
    engine.execute(session, "alter table t rename to t2")
    assert not (warehouse / "t").exists() and (warehouse / "t2").is_dir()
    assert rows(engine, session, "select id, note from t2 order by id") == [(1, None), (2, "n")]


def test_compute_stats_records_row_count(engine: Engine) -> None:
    """COMPUTE STATS counts rows; SHOW TABLE STATS and DESCRIBE FORMATTED then show it."""
    session = Session("u")
    engine.execute(session, "create table t (id int) stored as parquet")
    engine.execute(session, "insert into t values (1), (2), (3)")
    assert rows(engine, session, "show table stats t")[0][0] == -1
    assert rows(engine, session, "compute stats t") == [
        ("Updated 1 partition(s) and 1 column(s).",)
    ]
    stats = rows(engine, session, "show table stats t")
    assert stats[0][:2] == (3, 1) and stats[0][5] == "PARQUET"
    col_stats = rows(engine, session, "show column stats t")
    assert col_stats == [("id", "INT", 3, 0, 4, 4.0, -1, -1)]  # NDV 3, no NULLs


def test_create_table_like_copies_the_schema(engine: Engine) -> None:
    """CREATE TABLE ... LIKE other copies columns and partition keys, not data."""
    session = Session("u")
    engine.execute(session, "create table src (a int, b string) partitioned by (k int)")
    engine.execute(session, "insert into src partition (k=1) values (1, 'x')")
    engine.execute(session, "create table dst like src")
    assert rows(engine, session, "describe dst") == rows(engine, session, "describe src")
    assert rows(engine, session, "select count(*) from dst") == [(0,)]


def test_metadata_persists_across_engine_restarts(warehouse: pathlib.Path) -> None:
    """The local catalog file keeps databases, tables and files for the next Engine."""
    first = Engine(warehouse)
    session = Session("u")
    first.execute(session, "create database keep")
    first.execute(session, "create table keep.t (a int) stored as parquet")
    first.execute(session, "insert into keep.t values (7)")
    first.close()
    assert (warehouse / ".impala-lb-metastore.duckdb").exists()
    second = Engine(warehouse)
    try:
        assert rows(second, session, "select a from keep.t") == [(7,)]
    finally:
        second.close()


def test_alter_add_and_drop_partition_and_drop_column(
    engine: Engine, warehouse: pathlib.Path
) -> None:
    """ADD PARTITION makes the key directory; DROP PARTITION deletes its files; DROP COLUMN."""
    session = Session("u")
    engine.execute(
        session, "create table p (x int, y string) partitioned by (k int) stored as parquet"
    )
    engine.execute(session, "alter table p add partition (k=3)")
    assert (warehouse / "p" / "k=3").is_dir()
    engine.execute(session, "insert into p partition (k) values (1, 'a', 1), (2, 'b', 2)")
    engine.execute(session, "alter table p drop partition (k=1)")
    assert not (warehouse / "p" / "k=1").exists()
    assert rows(engine, session, "select x, k from p") == [(2, 2)]
    with pytest.raises(ImpalaError, match="No matching partition"):
        engine.execute(session, "alter table p drop partition (k=9)")
    engine.execute(session, "alter table p drop column y")
    assert rows(engine, session, "select * from p") == [(2, 2)]


def test_views_store_a_qualified_query_and_read_through_it(engine: Engine) -> None:
    """CREATE VIEW keeps the query (names qualified by the creating session's database)."""
    session = Session("u")
    engine.execute(session, "create table a (id int, v string) stored as parquet")
    engine.execute(session, "insert into a values (1, 'x'), (2, 'y')")
    engine.execute(session, "create view va as select id, upper(v) uv from a where id > 1")
    engine.execute(session, "create view vb (n comment 'num') as select count(*) from va")
    assert rows(engine, session, "describe vb") == [("n", "bigint", "num")]
    engine.execute(session, "create database other")
    engine.execute(session, "use other")
    assert rows(engine, session, "select * from default.va") == [(2, "Y")]
    assert rows(engine, session, "select n from default.vb") == [(1,)]
    engine.execute(session, "alter view default.va as select id from default.a")
    assert rows(engine, session, "select n from default.vb") == [(2,)]
    text = str(rows(engine, session, "show create table default.va")[0][0])
    assert text.startswith("CREATE VIEW default.va AS") and "default.a" in text
    with pytest.raises(ImpalaError, match="INSERTing into views"):
        engine.execute(session, "insert into default.va values (3)")
    with pytest.raises(ImpalaError, match="DROP TABLE not allowed on a view"):
        engine.execute(session, "drop table default.va")
    engine.execute(session, "drop view default.va")
    assert rows(engine, session, "show tables in default") == [("a",), ("vb",)]


def test_load_data_moves_files_into_the_partition(
    engine: Engine, warehouse: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """LOAD DATA INPATH moves the files into the table's partition directory and reads them."""
    session = Session("u")
    engine.execute(session, "create table p (x int) partitioned by (k string) stored as parquet")
    staging = tmp_path / "incoming"
    staging.mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 1 AS x) TO '{staging}/one.parq' (FORMAT parquet)")
        con.execute(f"COPY (SELECT 2 AS x) TO '{staging}/two.parq' (FORMAT parquet)")
    st = engine.execute(session, f"load data inpath '{staging}' into table p partition (k='a')")
    assert st.statement_type == "LOAD"
    assert st.fetch(10) == [["Loaded 2 file(s). Total files in destination location: 2"]]
    assert sorted(data_files(warehouse / "p")) == ["k=a/one.parq", "k=a/two.parq"]
    assert list(staging.iterdir()) == []
    assert rows(engine, session, "select sum(x), max(k) from p") == [(3, "a")]
