"""Impala's SQL as users write it: plan hints, COMPUTE STATS figures, honest EXPLAIN and
execution summaries."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from backends.impalad.gen.ImpalaService import ttypes as imp
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.sql import Engine, Session
from backends.impalad.sql._recognize import strip_hints
from tests.impalad.test_protocol import OK, Harness
from tests.impalad.test_sql_dialect import rows


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "warehouse")
    s = Session("u")
    for sql in (
        "create table a (id int, s string, b boolean, d decimal(12,2), v varchar(5))",
        "insert into a values (1,'xx',true,1.5,'ab'), (2,'yyyy',false,2.5,null), "
        "(3,null,true,null,'abcde'), (3,'',null,1.5,'a')",
        "create table c (id int, w double)",
        "insert into c values (1, 0.5), (3, 1.5)",
    ):
        e.execute(s, sql).close()
    yield e
    e.close()


PLAIN = "select a.id, c.w from a join c on a.id = c.id order by a.id"


@pytest.mark.parametrize(
    "hinted",
    [
        "select a.id, c.w from a join [shuffle] c on a.id = c.id order by a.id",
        "select a.id, c.w from a join [BROADCAST] c on a.id = c.id order by a.id",
        "select a.id, c.w from a inner join /* +SHUFFLE */ c on a.id = c.id order by a.id",
        "select a.id, c.w from a join -- +broadcast\n c on a.id = c.id order by a.id",
        "select straight_join a.id, c.w from a join c on a.id = c.id order by a.id",
        "select /* +straight_join */ a.id, c.w from a join c on a.id = c.id order by a.id",
        "select a.id, c.w from a [schedule_random_replica] join [shuffle] c on a.id = c.id "
        "order by a.id",
    ],
)
def test_join_hints_are_accepted_and_change_no_answer(engine: Engine, hinted: str) -> None:
    """Every form of Impala's join hints parses, and the answer is the unhinted one's."""
    s = Session("u")
    assert rows(engine, s, hinted) == rows(engine, s, PLAIN)


def test_insert_hints_are_accepted(engine: Engine) -> None:
    """INSERT's [SHUFFLE]/[NOSHUFFLE] and /* +CLUSTERED */ forms insert the same rows."""
    s = Session("u")
    engine.execute(s, "create table ins (id int, w double)").close()
    engine.execute(s, "insert into ins [shuffle] select * from c").close()
    engine.execute(s, "insert into ins /* +noshuffle,clustered */ select * from c").close()
    assert rows(engine, s, "select count(*) from ins") == [(4,)]


def test_hints_are_not_looked_for_in_strings_or_names() -> None:
    """Text that looks like a hint inside a literal, a quoted name or a comment stays."""
    sql = "select '[shuffle]', `straight_join` from t /* [x] */ where s = 'select straight_join'"
    assert strip_hints(sql) == sql
    assert strip_hints("select straight_join x from a join [shuffle] b") == (
        "select  x from a join   b"
    )


def test_compute_stats_computes_the_column_statistics(engine: Engine) -> None:
    """SHOW COLUMN STATS shows -1 before COMPUTE STATS, then NDV, NULLs, max and average
    sizes (variable-length types measured, fixed ones their size) and BOOLEAN counts."""
    s = Session("u")
    before = rows(engine, s, "show column stats a")
    assert [r[2:4] for r in before] == [(-1, -1)] * 5
    assert [r[0] for r in rows(engine, s, "compute stats a")] == [
        "Updated 1 partition(s) and 5 column(s)."
    ]
    stats = {r[0]: r[2:] for r in rows(engine, s, "show column stats a")}
    assert stats["id"] == (3, 0, 4, 4.0, -1, -1)
    assert stats["s"] == (3, 1, 4, 2.0, -1, -1)
    assert stats["b"] == (2, 1, 1, 1.0, 2, 1)
    assert stats["d"] == (2, 1, 8, 8.0, -1, -1)
    assert stats["v"] == (3, 1, 5, pytest.approx(8 / 3, abs=1e-4), -1, -1)
    assert rows(engine, s, "show table stats a")[0][0] == 4
    # an INSERT afterwards keeps the column figures (Impala's stats go stale, not away)
    engine.execute(s, "insert into a values (9, 'z', true, 1, 'q')").close()
    assert {r[0]: r[2] for r in rows(engine, s, "show column stats a")}["id"] == 3


def test_column_statistics_survive_a_restart(tmp_path: pathlib.Path) -> None:
    """They are kept in the metastore with the table."""
    e = Engine(tmp_path / "wh")
    s = Session("u")
    e.execute(s, "create table k (x string)").close()
    e.execute(s, "insert into k values ('abc'), ('de')").close()
    e.execute(s, "compute stats k").close()
    e.close()
    again = Engine(tmp_path / "wh")
    try:
        assert rows(again, Session("u"), "show column stats k")[0][2:6] == (2, 0, 3, 2.5)
    finally:
        again.close()


def test_explain_says_what_it_knows_and_what_it_does_not(engine: Engine) -> None:
    """No made-up figures: memory is 'unknown', threads and scanned bytes are measured, and
    tables without statistics are named, as Impala warns."""
    s = Session("u")
    text = [str(r[0]) for r in rows(engine, s, f"explain {PLAIN}")]
    assert text[0].startswith("Max Per-Host Resource Reservation: Memory=unknown Threads=")
    assert text[1].startswith("Per-Host Resource Estimates: Memory=unknown, scans ")
    assert "Memory=0B" not in "\n".join(text) and "Memory=10MB" not in "\n".join(text)
    assert text[2].startswith("WARNING: The following tables are missing")
    assert text[3] == "default.a, default.c"
    engine.execute(s, "compute stats a").close()
    engine.execute(s, "compute stats c").close()
    text = [str(r[0]) for r in rows(engine, s, f"explain {PLAIN}")]
    assert not any(line.startswith("WARNING") for line in text)


def test_exec_summary_reports_cpu_time_and_no_made_up_memory() -> None:
    """cpu_time_ns is the CPU time of the threads that ran the statement (not its
    latency); the peak memory is left unset rather than reported as 0."""
    h = Harness()
    s = h.open()
    op = h.execute(s, "select 1 x 3").operationHandle
    assert h.fetch(op, 10).status.statusCode == OK
    resp = h.rpc("GetExecSummary", imp.TGetExecSummaryReq(operationHandle=op, sessionHandle=s))
    stats = resp.summary.nodes[0].exec_stats[0]
    server_op = h.server.operations[op.operationId.guid]
    assert stats.cpu_time_ns == server_op.cpu_ns
    assert stats.memory_used is None
    assert resp.summary.nodes[0].estimated_stats.memory_used == -1
    assert resp.status.statusCode == t.TStatusCode.SUCCESS_STATUS
