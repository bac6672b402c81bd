"""impalad as a daemon: web endpoints, metrics, graceful shutdown and signals."""

from __future__ import annotations

import json
import os
import signal
import time

from impala.dbapi import connect

from tests.support.impalad import Impalad, run_shell
from tests.support.procs import holds


def test_healthz_and_metrics(impalad: Impalad) -> None:
    """/healthz is 200 OK once ready; /metrics is Prometheus text with Impala's names."""
    assert impalad.get("/healthz") == (200, b"OK\n")
    status, body = impalad.get("/metrics")
    assert status == 200
    assert b"impala_server_num_open_hiveserver2_sessions " in body
    assert b"impala_server_ready 1" in body
    flat = json.loads(impalad.get("/jsonmetrics")[1])
    assert flat["impala-server.ready"] is True
    assert "impala-server.num-queries-registered" in flat


def test_sessions_queries_and_backends_pages(impalad: Impalad) -> None:
    """/sessions, /queries and /backends answer JSON with Impala's field names."""
    conn = connect(host=impalad.host, port=impalad.hs2_port)
    cur = conn.cursor(user="webby")
    try:
        cur.execute("select 'seen-on-queries-page'")
        cur.fetchall()
        sessions = json.loads(impalad.get("/sessions?json")[1])
        assert any(s["user"] == "webby" for s in sessions["sessions"])
        flat = json.loads(impalad.get("/jsonmetrics")[1])
        assert flat["impala-server.num-open-hiveserver2-sessions"] >= 1
    finally:
        cur.close()
        conn.close()
    queries = json.loads(impalad.get("/queries?json")[1])
    stmts = [q["stmt"] for q in queries["completed_queries"] + queries["in_flight_queries"]]
    assert "select 'seen-on-queries-page'" in stmts
    backends = json.loads(impalad.get("/backends?json")[1])["backends"]
    assert backends[0]["is_coordinator"] and backends[0]["is_active"]
    assert backends[0]["is_quiescing"] is False


def test_shutdown_statement_drains_and_exits(fresh_impalad: Impalad) -> None:
    """:shutdown() quiesces as Impala does: /healthz stays 200, /?json says
    is_quiescing with a shutdown_status, new sessions are refused, and the daemon
    exits 0."""
    d = fresh_impalad
    conn = connect(host=d.host, port=d.hs2_port)
    cur = conn.cursor()
    done = run_shell(["-i", d.hs2_address, "-B", "-q", ":shutdown()"])
    assert done.returncode == 0, done.stderr
    assert "shutdown grace period left" in done.stdout
    assert d.get("/healthz")[0] == 200
    root = json.loads(d.get("/?json")[1])
    assert root["is_quiescing"] is True and root["is_coordinator"] is True
    assert root["shutdown_status"].startswith("shutdown grace period left: ")
    backends = json.loads(d.get("/backends?json")[1])["backends"]
    assert backends[0]["is_quiescing"] is True
    refused = run_shell(["-i", d.hs2_address, "-q", "select 1"])
    assert refused.returncode != 0
    assert "Server is being shut down" in refused.stderr
    try:
        cur.execute("select 1")
        raise AssertionError("a new query during shutdown must fail")
    except Exception as e:
        assert "Server is being shut down" in str(e)
    cur.close()
    conn.close()
    assert d.wait(15) == 0


def test_running_session_finishes_during_grace(fresh_impalad: Impalad) -> None:
    """SIGRTMIN starts the drain; an open query can still fetch before the exit."""
    d = fresh_impalad
    conn = connect(host=d.host, port=d.hs2_port)
    cur = conn.cursor()
    cur.execute("select range from range(50000)")
    os.kill(d.pid, signal.SIGRTMIN)
    deadline = time.monotonic() + 10
    while not json.loads(d.get("/?json")[1])["is_quiescing"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(d.get("/?json")[1])["is_quiescing"]
    assert d.get("/healthz")[0] == 200
    # past the 1 s grace period: the registered query holds the exit
    holds("the quiescing daemon staying up", lambda: d.proc.poll() is None, seconds=1.5)
    assert len(cur.fetchall()) == 50000  # impyla closes the finished query here
    assert d.wait(15) == 0


def test_sigterm_exits_at_once(fresh_impalad: Impalad) -> None:
    """SIGTERM ends the daemon immediately with status 0, as Impala's does."""
    os.kill(fresh_impalad.pid, signal.SIGTERM)
    assert fresh_impalad.wait(5) == 0
