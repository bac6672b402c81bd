"""Many sessions at once, cancelling from another thread, and streaming large results."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from backends.impalad.sql import Engine, ImpalaError, Session, Statement
from tests.support.procs import wait_for

LONG_QUERY = "select count(*) from range(1000000000000) a"


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "warehouse")
    yield e
    e.close()


def test_cancel_from_another_thread_interrupts_a_running_query(engine: Engine) -> None:
    """cancel() from another thread stops a long DuckDB query within seconds, not minutes."""
    st = engine.execute(Session("u"), LONG_QUERY)
    outcome: list[BaseException | None] = []

    def fetch() -> None:
        try:
            st.fetch(1)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=fetch)
    worker.start()
    wait_for("the query to run inside DuckDB", lambda: st.in_engine)
    st.cancel()
    worker.join(timeout=30)
    assert not worker.is_alive()  # the running query was interrupted (it runs far longer)
    [err] = outcome
    assert isinstance(err, ImpalaError) and err.kind == "CANCELLED"
    with pytest.raises(ImpalaError, match="CANCELLED"):
        st.fetch(1)
    st.close()


def test_cancel_before_the_query_starts_prevents_it(engine: Engine) -> None:
    """A statement cancelled before its first fetch never runs and reports CANCELLED."""
    st = engine.execute(Session("u"), LONG_QUERY)
    st.cancel()
    with pytest.raises(ImpalaError) as info:
        st.wait()
    assert info.value.kind == "CANCELLED"
    assert not st.in_engine


def test_wait_runs_the_query_and_reports_runtime_errors(engine: Engine) -> None:
    """wait() runs the query up to its first rows and raises a runtime failure there."""
    st = engine.execute(Session("u"), "select cast(9223372036854775807 as bigint) + 1")
    with pytest.raises(ImpalaError) as info:
        st.wait()
    assert info.value.kind == "ImpalaRuntimeException"


_STREAM_SCRIPT = """
import pathlib, resource, sys, time
from backends.impalad.sql import Engine, Session
engine = Engine(pathlib.Path(sys.argv[1]))
st = engine.execute(Session("u"), "select range as i, repeat('x', 100) as s from range(2000000)")
total = checksum = 0
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    cols = st.fetch(10000)
    if not cols[0]:
        break
    assert len(cols[0]) <= 10000 and cols[1][0] == "x" * 100
    checksum += sum(cols[0])
    total += len(cols[0])
st.close()
engine.close()
print(total, checksum, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_two_million_rows_stream_with_bounded_memory(tmp_path: pathlib.Path) -> None:
    """A 2,000,000-row result streams in batches: the process never holds it whole."""
    done = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, str(tmp_path / "wh")],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=pathlib.Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    total, checksum, max_rss_mb = (int(v) for v in done.stdout.split())
    assert total == 2_000_000 and checksum == sum(range(2_000_000))
    # the whole result as Python objects would be ~460 MB on top of the interpreter
    assert max_rss_mb < 250, max_rss_mb


def test_thirty_two_sessions_run_statements_concurrently(engine: Engine) -> None:
    """32 sessions at once each create, fill and read their own table and a shared one."""
    setup = Session("setup")
    engine.execute(setup, "create table shared (who string, n int) stored as parquet")

    def session_work(i: int) -> tuple[int, int]:
        session = Session(f"user{i}")
        engine.execute(session, f"create database db{i}")
        engine.execute(session, f"use db{i}")
        engine.execute(session, "create table t (n int) stored as parquet")
        engine.execute(session, f"insert into t select range from range({i + 1})")
        engine.execute(session, f"insert into default.shared values ('user{i}', {i})")
        own = engine.execute(session, "select count(*), user() from t").fetch(10)
        assert own[1] == [f"user{i}"]
        return i, int(str(own[0][0]))

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(session_work, range(32), timeout=60))
    assert results == [(i, i + 1) for i in range(32)]
    cols = engine.execute(setup, "select count(*), sum(n) from shared").fetch(10)
    assert cols == [[32], [sum(range(32))]]
    assert len(engine.execute(setup, "show databases").fetch(100)[0]) == 34


def test_short_query_completes_while_a_long_one_runs(engine: Engine) -> None:
    """A long query on one session does not block a short one on another session."""
    long_st = engine.execute(Session("a"), LONG_QUERY)
    failures: list[str] = []

    def run_long() -> None:
        try:
            long_st.fetch(1)
        except ImpalaError as err:
            failures.append(err.kind)

    worker = threading.Thread(target=run_long)
    worker.start()
    try:
        wait_for("the long query to run inside DuckDB", lambda: long_st.in_engine)
        assert engine.execute(Session("b"), "select 41 + 1").fetch(1) == [[42]]
        assert worker.is_alive()  # the long query is still running meanwhile
    finally:
        long_st.cancel()
        worker.join(timeout=10)
    assert not worker.is_alive() and failures == ["CANCELLED"]


def test_exec_time_limit_interrupts_a_long_query(engine: Engine) -> None:
    """SET EXEC_TIME_LIMIT_S=1 stops a query that runs longer, with a clear error."""
    session = Session("u")
    engine.execute(session, "set exec_time_limit_s=1")
    st = engine.execute(session, LONG_QUERY)
    with pytest.raises(ImpalaError, match="execution time limit of 1s") as info:
        st.wait()
    with pytest.raises(ImpalaError) as again:
        st.fetch(1)
    assert again.value is info.value


def test_cancel_racing_the_query_start_always_stops_it(engine: Engine) -> None:
    """Cancelling just as a query enters DuckDB still stops it (20 tries, each within 5 s)."""
    for attempt in range(20):
        st = engine.execute(Session("u"), LONG_QUERY)
        kinds: list[str] = []

        def fetch(statement: Statement = st, out: list[str] = kinds) -> None:
            try:
                statement.fetch(1)
            except ImpalaError as err:
                out.append(err.kind)

        worker = threading.Thread(target=fetch)
        worker.start()
        time.sleep(0.001 * (attempt % 5))
        st.cancel()
        worker.join(timeout=5)
        assert not worker.is_alive(), f"attempt {attempt} kept running"
        assert kinds == ["CANCELLED"]
        st.close()


def test_summary_counts_rows_and_offers_the_plan(engine: Engine) -> None:
    """A query's summary counts the rows fetched and gives DuckDB's plan for the profile."""
    st = engine.execute(Session("u"), "select range from range(25)")
    while st.fetch(10)[0]:
        pass
    summary = st.summary
    assert summary["rows_produced"] == 25 and summary["statement_type"] == "QUERY"
    assert "RANGE" in str(summary["plan"]).upper()
    assert float(str(summary["duration_s"])) >= 0
