"""The local Catalog: explicit, versioned metadata operations persisted in a DuckDB file."""

from __future__ import annotations

import pathlib

import pytest

from backends.impalad.sql import (
    Catalog,
    ColumnDesc,
    Database,
    DataFile,
    Engine,
    ImpalaError,
    LocalCatalog,
    Session,
    Table,
)


def make(tmp_path: pathlib.Path) -> LocalCatalog:
    return LocalCatalog(tmp_path, tmp_path / "meta.duckdb")


def table(name: str = "t", db: str = "default") -> Table:
    return Table(db, name, (ColumnDesc("a", "INT"),), location=f"/w/{name}")


def test_starts_with_default_and_builtins_databases(tmp_path: pathlib.Path) -> None:
    """A new catalog holds `default` (at the warehouse) and `_impala_builtins`."""
    catalog = make(tmp_path)
    assert [d.name for d in catalog.databases()] == ["_impala_builtins", "default"]
    default = catalog.database("default")
    assert default is not None and default.location == str(tmp_path)
    catalog.close()


def test_every_change_returns_a_higher_version(tmp_path: pathlib.Path) -> None:
    """Each operation returns the new catalog version, strictly increasing."""
    catalog: Catalog = make(tmp_path)
    versions = [
        catalog.create_database(Database("d", "", "/w/d.db"), if_not_exists=False),
        catalog.create_table(table(), if_not_exists=False),
        catalog.add_files("default", "t", [DataFile("x.parq", 10)]),
        catalog.replace_files("default", "t", [DataFile("y.parq", 20)]),
        catalog.set_row_count("default", "t", 5),
        catalog.alter_table("default", "t", table("u")),
        catalog.drop_table("default", "u", if_exists=False),
        catalog.drop_database("d", if_exists=False, cascade=False),
    ]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert catalog.version == versions[-1]


def test_replace_files_of_some_partitions_keeps_the_others(tmp_path: pathlib.Path) -> None:
    """replace_files with partitions swaps only those partitions' files."""
    catalog = make(tmp_path)
    catalog.create_table(table(), if_not_exists=False)
    a = DataFile("k=a/1.parq", 1, (("k", "a"),))
    b = DataFile("k=b/2.parq", 2, (("k", "b"),))
    catalog.add_files("default", "t", [a, b])
    new_a = DataFile("k=a/3.parq", 3, (("k", "a"),))
    catalog.replace_files("default", "t", [new_a], [(("k", "a"),)])
    current = catalog.table("default", "t")
    assert current is not None and current.files == (b, new_a)


def test_changes_persist_in_the_duckdb_file(tmp_path: pathlib.Path) -> None:
    """A reopened catalog has the same databases, tables, files and version."""
    catalog = make(tmp_path)
    catalog.create_database(Database("d", "c", "/w/d.db"), if_not_exists=False)
    catalog.create_table(table("t", "d"), if_not_exists=False)
    catalog.add_files("d", "t", [DataFile("f.parq", 9)])
    version = catalog.version
    catalog.close()
    again = make(tmp_path)
    t = again.table("d", "t")
    assert t is not None and t.files == (DataFile("f.parq", 9),)
    assert t.columns == (ColumnDesc("a", "INT"),)
    assert again.version == version
    again.close()


def test_errors_name_the_missing_or_existing_object(tmp_path: pathlib.Path) -> None:
    """Missing databases/tables and duplicates raise Impala's AnalysisException texts."""
    catalog = make(tmp_path)
    with pytest.raises(ImpalaError, match="Database does not exist: nope"):
        catalog.create_table(table("t", "nope"), if_not_exists=False)
    catalog.create_table(table(), if_not_exists=False)
    with pytest.raises(ImpalaError, match=r"Table already exists: default\.t"):
        catalog.create_table(table(), if_not_exists=False)
    assert catalog.create_table(table(), if_not_exists=True) == catalog.version
    with pytest.raises(ImpalaError, match=r"Table does not exist: default\.zz"):
        catalog.drop_table("default", "zz", if_exists=False)
    with pytest.raises(ImpalaError, match="Cannot drop default database"):
        catalog.drop_database("default", if_exists=False, cascade=True)


def test_engine_accepts_another_catalog_implementation(tmp_path: pathlib.Path) -> None:
    """Engine(catalog=...) reads and changes metadata only through the given Catalog."""
    catalog = LocalCatalog(tmp_path / "wh", tmp_path / "elsewhere.duckdb")
    engine = Engine(tmp_path / "wh", catalog=catalog)
    try:
        engine.execute(Session("u"), "create table t (a int) stored as parquet")
        assert catalog.table("default", "t") is not None
        before = catalog.version
        engine.execute(Session("u"), "insert into t values (1)")
        assert catalog.version > before
        assert not (tmp_path / "wh" / ".impala-lb-metastore.duckdb").exists()
    finally:
        engine.close()
        catalog.close()
