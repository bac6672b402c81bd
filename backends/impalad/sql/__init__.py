"""impalad's SQL engine: Impala's dialect executed by DuckDB over Parquet and text files.

Why sqlglot: Impala's SQL is Hive's with a few Impala-only statements and functions, and
sqlglot is a maintained transpiler that already parses Hive (DDL included: PARTITIONED BY,
STORED AS, ROW FORMAT, CTAS, INSERT ... PARTITION) and generates DuckDB. Writing our own
SQL parser would re-do that badly; instead a small dialect subclass (``_dialect``) adds
Impala's differences, and a small recognizer (``_recognize``) takes the statements only
Impala has (SHOW, DESCRIBE, SET, USE, REFRESH, INVALIDATE METADATA, COMPUTE STATS).

The contract with the protocol layer: :class:`Engine` ``.execute(session, sql)`` returns a
:class:`Statement` whose ``schema`` is known at once; ``fetch`` streams rows as columns in
HS2 wire form; ``cancel`` interrupts from any thread; errors are :class:`ImpalaError`.
A query does not run inside ``execute`` (so it can be cancelled as soon as the client has
its handle): it runs on the first ``fetch`` or on ``Statement.wait()``, which also raises
its runtime errors. DDL and DML are done when ``execute`` returns.
"""

from __future__ import annotations

from ._catalog import (
    Catalog,
    ColumnStats,
    Database,
    DataFile,
    LocalCatalog,
    Table,
    column_stats_from,
    scan_files,
    table_from_dict,
)
from ._engine import VERSION, Engine
from ._errors import ImpalaError
from ._results import Session, Statement
from ._types import ColumnDesc

__all__ = [
    "VERSION",
    "Catalog",
    "ColumnDesc",
    "ColumnStats",
    "DataFile",
    "Database",
    "Engine",
    "ImpalaError",
    "LocalCatalog",
    "Session",
    "Statement",
    "Table",
    "column_stats_from",
    "scan_files",
    "table_from_dict",
]
