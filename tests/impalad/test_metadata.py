"""The HS2 metadata calls as real tools make them: impyla's cursor API, the raw calls with
JDBC patterns, and SQLAlchemy reflection through impyla's dialect (how Superset, DBeaver
and dbt discover tables). The answers follow Impala's MetadataOp (backends/impalad/metadata.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from impala.dbapi import connect
from impala.hiveserver2 import HiveServer2Cursor
from thrift.Thrift import TMessageType

from backends.impalad import metadata
from backends.impalad.gen.TCLIService import TCLIService
from backends.impalad.gen.TCLIService import ttypes as t
from tests.support.impalad import Impalad


@pytest.fixture(scope="module")
def catalog(impalad: Impalad) -> Impalad:
    """Two databases, tables with typed and commented columns, and a view."""
    conn = connect(host=impalad.host, port=impalad.hs2_port, timeout=60)
    cur = conn.cursor()
    for sql in (
        "create database if not exists meta_sales",
        "create table if not exists meta_sales.orders (id bigint comment 'order id', "
        "amount decimal(10,2), placed timestamp, note varchar(20), ok boolean)",
        "create table if not exists meta_sales.order_items (order_id bigint, sku string)",
        "create table if not exists meta_sales.orders_x (c char(3), d date, f float, g double)",
        "create view if not exists meta_sales.big_orders as "
        "select id from meta_sales.orders where amount > 100",
    ):
        cur.execute(sql)
    cur.close()
    conn.close()
    return impalad


@pytest.fixture
def cursor(catalog: Impalad) -> Iterator[HiveServer2Cursor]:
    conn = connect(host=catalog.host, port=catalog.hs2_port, timeout=60)
    cur = conn.cursor()
    try:
        yield cur
    finally:
        cur.close()
        conn.close()


def _call(client: Any, name: str, req: Any) -> Any:
    """``name`` over impyla's connection, for the calls impyla's client lacks
    (GetPrimaryKeys, GetCrossReference): our IDL's argument and result structs."""
    oprot, iprot = client._oprot, client._iprot
    oprot.writeMessageBegin(name, TMessageType.CALL, 0)
    getattr(TCLIService, f"{name}_args")(req=req).write(oprot)
    oprot.writeMessageEnd()
    oprot.trans.flush()
    _, kind, _ = iprot.readMessageBegin()
    assert kind == TMessageType.REPLY
    result = getattr(TCLIService, f"{name}_result")()
    result.read(iprot)
    iprot.readMessageEnd()
    return result.success


def _rpc(cur: HiveServer2Cursor, name: str, req: Any) -> list[tuple[Any, ...]]:
    """One raw metadata call on impyla's session, all rows fetched."""
    req.sessionHandle = cur.session.handle
    if hasattr(cur.session.client, name):
        resp = getattr(cur.session.client, name)(req)
    else:
        resp = _call(cur.session.client, name, req)
    assert resp.status.statusCode == t.TStatusCode.SUCCESS_STATUS, resp.status
    cur._last_operation = None
    op = cur.session._get_operation(resp.operationHandle)
    rows = []
    while True:
        batch = op.fetch(max_rows=1000)
        if not batch:
            break
        rows += [tuple(r) for r in batch]
    op.close()
    return rows


def test_impyla_cursor_api_with_its_default_regex_patterns(cursor: HiveServer2Cursor) -> None:
    """impyla sends '.*' (a regex) by default: Impala matches it as one, so databases,
    tables and a table's schema are found."""
    cursor.get_databases()
    assert ("meta_sales", "") in [tuple(r) for r in cursor.fetchall()]
    cursor.get_tables(database_name="meta_sales")
    tables = {(r[1], r[2], r[3]) for r in cursor.fetchall()}
    assert ("meta_sales", "orders", "TABLE") in tables
    assert ("meta_sales", "big_orders", "VIEW") in tables
    schema = cursor.get_table_schema("orders", database_name="meta_sales")
    assert schema == [
        ("id", "BIGINT"),
        ("amount", "DECIMAL"),
        ("placed", "TIMESTAMP"),
        ("note", "VARCHAR"),
        ("ok", "BOOLEAN"),
    ]
    assert cursor.table_exists("order_items", database_name="meta_sales")
    assert not cursor.table_exists("nope", database_name="meta_sales")
    assert cursor.database_exists("meta_sales")
    # GetFunctions with a schema pattern ('.*', impyla's default) finds none, as on Impala
    cursor.get_functions()
    assert cursor.fetchall() == []


def test_jdbc_patterns_match_as_impala_matches_them(cursor: HiveServer2Cursor) -> None:
    """% and _ are wildcards, \\_ is a literal underscore, the match is whole-name and
    case-sensitive; tableTypes filters."""

    def tables(schema: str | None, table: str | None, types: list[str] | None = None) -> set[str]:
        req = t.TGetTablesReq(schemaName=schema, tableName=table, tableTypes=types)
        return {r[2] for r in _rpc(cursor, "GetTables", req) if r[1] == "meta_sales"}

    everything = {"orders", "order_items", "orders_x", "big_orders"}
    assert tables("meta_sales", None) == everything
    assert tables("meta%", "%") == everything
    assert tables("meta_sales", "order_") == {"orders"}  # _ is any one character
    assert tables("meta_sales", "order\\_%") == {"order_items"}
    assert tables("meta_sales", "orders%") == {"orders", "orders_x"}
    assert tables("meta_sales", "ORDERS") == set()
    assert tables("meta_sales", None, ["view"]) == {"big_orders"}
    assert tables("meta_sales", None, ["TABLE"]) == everything - {"big_orders"}
    assert tables("meta_sales", None, ["SYNONYM"]) == set()
    schemas = _rpc(cursor, "GetSchemas", t.TGetSchemasReq(schemaName="meta\\_s%"))
    assert schemas == [("meta_sales", "")]


def test_get_columns_carries_impalas_jdbc_facts(cursor: HiveServer2Cursor) -> None:
    """DATA_TYPE, TYPE_NAME, COLUMN_SIZE, DECIMAL_DIGITS, NUM_PREC_RADIX, REMARKS and
    ORDINAL_POSITION per column, as Impala's Type.java gives them."""
    req = t.TGetColumnsReq(schemaName="meta_sales", tableName="orders%", columnName="%")
    rows = {(r[2], r[3]): r for r in _rpc(cursor, "GetColumns", req)}
    facts = {k: (r[4], r[5], r[6], r[8], r[9], r[16]) for k, r in rows.items()}
    assert facts[("orders", "id")] == (-5, "BIGINT", 19, 0, 10, 1)
    assert facts[("orders", "amount")] == (3, "DECIMAL", 10, 2, 10, 2)
    assert facts[("orders", "placed")] == (93, "TIMESTAMP", 29, 9, None, 3)
    assert facts[("orders", "note")] == (12, "VARCHAR", 20, None, None, 4)
    assert facts[("orders", "ok")] == (16, "BOOLEAN", None, 0, None, 5)
    assert facts[("orders_x", "c")] == (1, "CHAR", 3, None, None, 1)
    assert facts[("orders_x", "d")] == (91, "DATE", 10, 0, None, 2)
    assert facts[("orders_x", "f")] == (6, "FLOAT", 7, 7, 10, 3)
    assert facts[("orders_x", "g")] == (8, "DOUBLE", 15, 15, 10, 4)
    row = rows[("orders", "id")]
    assert (row[0], row[10], row[11], row[17], row[22]) == (None, 1, "order id", "YES", "NO")
    only = t.TGetColumnsReq(schemaName="meta_sales", tableName="orders", columnName="am%")
    assert [r[3] for r in _rpc(cursor, "GetColumns", only)] == ["amount"]


def test_type_info_functions_keys_and_catalogs(cursor: HiveServer2Cursor) -> None:
    """GetTypeInfo lists Impala's types in its order; GetFunctions finds the built-ins
    with no schema pattern; keys, cross references and catalogs answer empty sets."""
    types = _rpc(cursor, "GetTypeInfo", t.TGetTypeInfoReq())
    assert [r[0] for r in types] == list(metadata.TYPE_INFO_ORDER)
    by_name = {r[0]: r for r in types}
    assert by_name["DECIMAL"][1:3] == (3, 9) and by_name["STRING"][7] is True
    fns = _rpc(cursor, "GetFunctions", t.TGetFunctionsReq(functionName="upp%"))
    assert {(r[1], r[2]) for r in fns} == {("_impala_builtins", "upper")}
    none = t.TGetFunctionsReq(schemaName="_impala_builtins", functionName="upp%")
    assert _rpc(cursor, "GetFunctions", none) == []
    pk = t.TGetPrimaryKeysReq(schemaName="meta_sales", tableName="orders")
    assert _rpc(cursor, "GetPrimaryKeys", pk) == []
    fk = t.TGetCrossReferenceReq(foreignSchemaName="meta_sales", foreignTableName="orders")
    assert _rpc(cursor, "GetCrossReference", fk) == []
    assert _rpc(cursor, "GetCatalogs", t.TGetCatalogsReq()) == []
    assert _rpc(cursor, "GetTableTypes", t.TGetTableTypesReq()) == [("TABLE",), ("VIEW",)]


def test_sqlalchemy_reflection_through_impylas_dialect(catalog: Impalad) -> None:
    """SQLAlchemy's inspector (impala4 dialect) lists schemas, tables and typed columns,
    and reflects a Table; a query through the engine works."""
    engine = sqlalchemy.create_engine(f"impala4://{catalog.host}:{catalog.hs2_port}/default")
    try:
        inspector = sqlalchemy.inspect(engine)
        assert {"default", "meta_sales"} <= set(inspector.get_schema_names())
        assert {"orders", "order_items"} <= set(inspector.get_table_names(schema="meta_sales"))
        columns = inspector.get_columns("orders", schema="meta_sales")
        assert [(c["name"], type(c["type"]).__name__) for c in columns] == [
            ("id", "BIGINT"),
            ("amount", "DECIMAL"),
            ("placed", "TIMESTAMP"),
            ("note", "VARCHAR"),
            ("ok", "BOOLEAN"),
        ]
        orders = sqlalchemy.Table("orders", sqlalchemy.MetaData(), autoload_with=engine,
                                  schema="meta_sales")  # fmt: skip
        assert [c.name for c in orders.columns][:2] == ["id", "amount"]
        with engine.connect() as conn:
            count = conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(orders))
            assert count.scalar() == 0
    finally:
        engine.dispose()
