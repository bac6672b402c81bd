"""An in-memory engine with the real Engine's interface, for protocol unit tests.

It understands just enough statements to drive every RPC: ``set all``,
``select <int> [x <rows>]`` (a BIGINT column ``n`` counting up), ``typed``
(one row of every type, and one all-NULL row), ``fail at fetch``, ``dml <n>``,
``use <db>``, ``show databases``, ``show tables in <db>``, ``show functions in <db>``,
``describe <t>``,
and raises an ImpalaError-like error for anything else.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any


class FakeImpalaError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclasses.dataclass(frozen=True)
class FakeColumn:
    name: str
    type: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    comment: str = ""


@dataclasses.dataclass
class FakeSession:
    user: str
    database: str = "default"
    options: dict[str, str] = dataclasses.field(default_factory=dict)


TYPED_SCHEMA = [
    FakeColumn("b", "BOOLEAN"),
    FakeColumn("ti", "TINYINT"),
    FakeColumn("si", "SMALLINT"),
    FakeColumn("i", "INT"),
    FakeColumn("bi", "BIGINT"),
    FakeColumn("f", "FLOAT"),
    FakeColumn("d", "DOUBLE"),
    FakeColumn("s", "STRING"),
    FakeColumn("vc", "VARCHAR", length=10),
    FakeColumn("c", "CHAR", length=3),
    FakeColumn("ts", "TIMESTAMP"),
    FakeColumn("dt", "DATE"),
    FakeColumn("dec", "DECIMAL", precision=10, scale=2),
    FakeColumn("bin", "BINARY"),
]
TYPED_ROW: list[object] = [
    True,
    1,
    2,
    3,
    4,
    1.5,
    2.25,
    "str",
    "vc",
    "abc",
    "2024-01-02 03:04:05.123456000",
    "2024-01-02",
    "12.34",
    b"\x00\xff",
]


class FakeStatement:
    def __init__(
        self,
        schema: list[FakeColumn] | None,
        rows: int,
        *,
        typed: bool = False,
        fail: bool = False,
        statement_type: str = "QUERY",
        rows_modified: int | None = None,
        table: list[list[object]] | None = None,
    ) -> None:
        self.schema = schema
        self.statement_type = statement_type
        self.rows_modified = rows_modified
        self.summary: dict[str, object] = {"plan": "00:SCAN FAKE"}
        self._total = rows
        self._next = 0
        self._typed = typed
        self._fail = fail
        self._table = table
        self.cancelled = threading.Event()
        self.closed = False

    def fetch(self, max_rows: int) -> list[list[object]]:
        if self._fail:
            raise FakeImpalaError("RuntimeException", "boom at fetch")
        assert self.schema is not None
        if self._table is not None:
            take, self._table = self._table[:max_rows], self._table[max_rows:]
            return [[r[i] for r in take] for i in range(len(self.schema))]
        if self._typed:
            if self._next:
                return [[] for _ in self.schema]
            self._next = 2
            return [[v, None] for v in TYPED_ROW]
        n = min(max_rows, self._total - self._next)
        col: list[object] = list(range(self._next, self._next + n))
        self._next += n
        return [col]

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """Answers a handful of statements; records every statement it was given."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.statements: list[FakeStatement] = []

    def execute(self, session: FakeSession, sql: str) -> FakeStatement:
        self.executed.append(sql)
        words = sql.strip().rstrip(";").split()
        low = [w.lower() for w in words]
        st: FakeStatement
        if low[:2] == ["set", "all"]:
            schema = [
                FakeColumn("option", "STRING"),
                FakeColumn("value", "STRING"),
                FakeColumn("level", "STRING"),
            ]
            st = FakeStatement(
                schema,
                0,
                statement_type="SET",
                table=[[name, value, level] for name, value, level in self.query_options(session)],
            )
        elif low[:1] == ["select"] and len(low) >= 2 and low[1].isdigit():
            rows = int(low[3]) if len(low) >= 4 and low[2] == "x" else 1
            st = FakeStatement([FakeColumn("n", "BIGINT")], rows)
        elif low == ["typed"]:
            st = FakeStatement(TYPED_SCHEMA, 2, typed=True)
        elif low == ["fail", "at", "fetch"]:
            st = FakeStatement([FakeColumn("n", "BIGINT")], 1, fail=True)
        elif low[:1] == ["dml"]:
            st = FakeStatement(None, 0, statement_type="DML", rows_modified=int(low[1]))
        elif low[:1] == ["use"]:
            session.database = words[1].strip("`")
            st = FakeStatement(None, 0, statement_type="USE")
        elif low[:2] == ["show", "databases"]:
            st = FakeStatement(
                [FakeColumn("name", "STRING"), FakeColumn("comment", "STRING")],
                0,
                table=[["default", ""], ["sales", ""]],
            )
        elif low[:3] == ["show", "functions", "in"]:
            schema = [FakeColumn("return type", "STRING"), FakeColumn("signature", "STRING")]
            builtins: list[list[object]] = [["INT", "abs(INT)"], ["STRING", "upper(STRING)"]]
            st = FakeStatement(schema, 0, table=builtins if "_impala_builtins" in low[3] else [])
        elif low[:3] == ["show", "tables", "in"]:
            st = FakeStatement([FakeColumn("name", "STRING")], 0, table=[["t1"]])
        elif low[:1] == ["describe"]:
            schema = [
                FakeColumn("name", "STRING"),
                FakeColumn("type", "STRING"),
                FakeColumn("comment", "STRING"),
            ]
            st = FakeStatement(schema, 0, table=[["id", "int", ""], ["name", "string", "x"]])
        else:
            raise FakeImpalaError("AnalysisException", f"Syntax error in: {sql}")
        self.statements.append(st)
        return st

    def query_options(self, session: FakeSession) -> list[tuple[str, str, str]]:
        return [
            ("MEM_LIMIT", session.options.get("MEM_LIMIT", "0"), "REGULAR"),
            ("CLIENT_IDENTIFIER", "", "ADVANCED"),
        ]

    def close(self) -> None:
        pass


def fake_session(user: str) -> Any:
    return FakeSession(user)
