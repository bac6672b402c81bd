"""impyla 0.24.0 against a real impalad: NOSASL, PLAIN, hs2-http, big results, concurrency."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from impala.dbapi import connect

from tests.support.impalad import Impalad
from tests.support.procs import wait_for

ROWS = 1_000_000


def modes(d: Impalad) -> dict[str, dict[str, Any]]:
    return {
        "nosasl": {"port": d.hs2_port},
        "plain": {"port": d.hs2_port, "auth_mechanism": "PLAIN", "user": "carol", "password": "x"},
        "http": {"port": d.hs2_http_port, "use_http_transport": True, "http_path": "cliservice"},
    }


@pytest.mark.parametrize("mode", ["nosasl", "plain", "http"])
def test_impyla_query_dml_and_error(impalad: Impalad, mode: str) -> None:
    """Each impyla transport runs a query, reports a DML rowcount and raises Impala's error."""
    conn = connect(host=impalad.host, timeout=30, **modes(impalad)[mode])
    cur = conn.cursor()
    try:
        cur.execute(f"create table if not exists imp_{mode} (n int, s string)")
        cur.execute(f"insert into imp_{mode} values (1, 'a'), (2, NULL), (3, 'c')")
        assert cur.rowcount == 3
        cur.execute(f"select n, s from imp_{mode} order by n")
        assert cur.fetchall() == [(1, "a"), (2, None), (3, "c")]
        assert [d[:2] for d in cur.description] == [("n", "INT"), ("s", "STRING")]
        with pytest.raises(Exception, match="AnalysisException"):
            cur.execute("select * from missing_table_xyz")
        assert cur.ping()
    finally:
        cur.close()
        conn.close()


def test_plain_user_is_session_user(impalad: Impalad) -> None:
    """impyla PLAIN's user is the user the server runs the session as."""
    conn = connect(host=impalad.host, **modes(impalad)["plain"])
    cur = conn.cursor()
    try:
        cur.execute("select 1")
        cur.fetchall()
        _, body = impalad.get("/sessions?json")
        assert b'"user": "carol"' in body
    finally:
        cur.close()
        conn.close()


def test_fetchmany_million_rows_in_bounded_memory(impalad: Impalad) -> None:
    """fetchmany over 1,000,000 rows streams: the daemon's RSS does not grow with the result."""
    conn = connect(host=impalad.host, port=impalad.hs2_port, timeout=120)
    cur = conn.cursor()
    try:
        cur.execute("select count(*) from range(10)")  # warm the engine
        cur.fetchall()
        before = impalad.rss_kb()
        cur.execute(f"select range, 'payload-string-' || range from range({ROWS})")
        seen, peak, expected = 0, before, 0
        while True:
            rows = cur.fetchmany(10_000)
            if not rows:
                break
            assert rows[0][0] == expected
            expected += len(rows)
            seen += len(rows)
            if seen % 100_000 == 0:
                peak = max(peak, impalad.rss_kb())
        assert seen == ROWS
        # Held as Python objects the result would take >100 MB; streamed, it adds ~10 MB.
        assert peak - before < 60_000, (before, peak)
    finally:
        cur.close()
        conn.close()


def test_thirty_two_concurrent_sessions(impalad: Impalad) -> None:
    """32 sessions open at once each run queries and get their own answers."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(32, timeout=60)

    def client(i: int) -> None:
        try:
            conn = connect(host=impalad.host, port=impalad.hs2_port, timeout=60)
            cur = conn.cursor()
            barrier.wait()
            for _ in range(3):
                cur.execute(f"select {i} + 0")
                assert cur.fetchall() == [(i,)]
            barrier.wait()  # all 32 sessions are open here
            cur.close()
            conn.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[:3]
    assert time.monotonic() - started < 120


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _completed_state(impalad: Impalad, stmt: str) -> str | None:
    """The state ``/queries`` shows for ``stmt`` once it completed (None before)."""
    queries = json.loads(impalad.get("/queries?json")[1])
    states = {q["stmt"]: q["state"] for q in queries["completed_queries"]}
    state: str | None = states.get(stmt)
    return state


def test_cancel_interrupts_a_running_query(impalad: Impalad) -> None:
    """cancel_operation stops a long DuckDB query: it is CANCELLED and burns no more CPU."""
    conn = connect(host=impalad.host, port=impalad.hs2_port, timeout=60)
    cur = conn.cursor()
    stmt = "select count(*) from range(50000000000) a"
    try:
        cur.execute_async(stmt)
        wait_for("the query to run", lambda: cur.status() == "RUNNING_STATE")
        cur.cancel_operation()
        wait_for(
            "the query to be cancelled", lambda: _completed_state(impalad, stmt) == "CANCELLED"
        )
        before = _cpu_seconds(impalad.pid)
        time.sleep(1.0)  # a measuring window, not a wait for a condition
        assert _cpu_seconds(impalad.pid) - before < 0.5  # DuckDB was interrupted
        assert _completed_state(impalad, stmt) == "CANCELLED"
        cur.execute("select 1")
        assert cur.fetchall() == [(1,)]
    finally:
        cur.close()
        conn.close()


def test_every_type_converts_in_impyla(impalad: Impalad) -> None:
    """impyla turns each column type into its Python type, and NULLs into None."""
    conn = connect(host=impalad.host, port=impalad.hs2_port)
    cur = conn.cursor()
    try:
        cur.execute(
            "select true, cast(1 as tinyint), cast(2 as smallint), cast(3 as int),"
            " cast(4 as bigint), cast(1.5 as float), cast(2.25 as double), 'str',"
            " cast('2024-01-02 03:04:05.5' as timestamp), cast('2024-01-02' as date),"
            " cast(12.34 as decimal(10,2)), cast('ab' as binary)"
            " union all select null, null, null, null, null, null, null, null, null, null,"
            " null, null"
        )
        rows = cur.fetchall()
        assert sorted(rows, key=lambda r: r[0] is None)[0] == (
            True, 1, 2, 3, 4, 1.5, 2.25, "str",
            datetime.datetime(2024, 1, 2, 3, 4, 5, 500000), datetime.date(2024, 1, 2),
            decimal.Decimal("12.34"), b"ab",
        )  # fmt: skip
        assert (None,) * 12 in rows
        types = [d[1] for d in cur.description]
        assert types == [
            "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "STRING",
            "TIMESTAMP", "DATE", "DECIMAL", "BINARY",
        ]  # fmt: skip
    finally:
        cur.close()
        conn.close()
