"""The real impala-shell 4.6.0 against a real impalad (DuckDB engine) on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.impalad import Impalad, run_shell


def shell(d: Impalad, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    done = run_shell(["-i", d.hs2_address, *args], timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def test_select_prints_a_table(impalad: Impalad) -> None:
    """-q 'select 1' prints Impala's boxed table and the server version."""
    rc, out, err = shell(impalad, "-q", "select 1")
    assert rc == 0, err
    assert "+---+\n| 1 |\n+---+\n| 1 |\n+---+" in out
    assert "Server version: impalad version" in err
    assert "Coordinator: http://127.0.0.1:" in err


def test_delimited_output_with_header(impalad: Impalad) -> None:
    """-B --print_header prints tab-separated rows under a header line."""
    rc, out, err = shell(impalad, "-B", "--print_header", "-q", "select 1 as a, 'x' as b")
    assert rc == 0, err
    assert out.splitlines() == ["a\tb", "1\tx"]


def test_dml_counts_and_every_type_with_nulls(impalad: Impalad) -> None:
    """INSERT reports 'Modified 2 row(s)' and every column type round-trips, NULLs too."""
    rc, out, err = shell(
        impalad,
        "-B",
        "-q",
        "create table types_t (b boolean, ti tinyint, si smallint, i int, bi bigint,"
        " f float, d double, s string, vc varchar(10), c char(3), ts timestamp, dt date,"
        " dec decimal(10,2));"
        "insert into types_t values (true, 1, 2, 3, 4, 1.5, 2.25, 'str',"
        " cast('vc' as varchar(10)), cast('abc' as char(3)),"
        " cast('2024-01-02 03:04:05.123' as timestamp), cast('2024-01-02' as date), 12.34),"
        " (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        "select * from types_t order by i",
    )
    assert rc == 0, err
    assert "Modified 2 row(s)" in err
    rows = [line.split("\t") for line in out.splitlines()[-2:]]
    assert rows[0] == [
        "true", "1", "2", "3", "4", "1.5", "2.25", "str", "vc", "abc",
        "2024-01-02 03:04:05.123000000", "2024-01-02", "12.34",
    ]  # fmt: skip
    assert rows[1] == ["NULL"] * 13


def test_query_file_and_database(impalad: Impalad, tmp_path: Path) -> None:
    """-f runs a file of statements and -d selects the database."""
    script = tmp_path / "q.sql"
    script.write_text("create database if not exists shop;\ncreate table shop.items (n int);\n")
    rc, _, err = shell(impalad, "-f", str(script))
    assert rc == 0, err
    rc, out, err = shell(impalad, "-d", "shop", "-B", "-q", "show tables")
    assert rc == 0, err
    assert out.split() == ["items"]


def test_errors_read_like_impala(impalad: Impalad) -> None:
    """An analysis error prints 'ERROR: AnalysisException: ...' and exits non-zero."""
    rc, _, err = shell(impalad, "-q", "select * from no_such_table")
    assert rc != 0
    assert "ERROR: AnalysisException:" in err


def test_profile_and_summary(impalad: Impalad) -> None:
    """-p prints the runtime profile and 'summary' the exec summary table."""
    rc, out, err = shell(impalad, "-p", "-q", "select count(*) from range(5); summary")
    assert rc == 0, err
    assert "Query Runtime Profile:" in out and "Sql Statement: select count(*)" in out
    assert "| Operator" in out and "#Rows" in out


def test_hs2_http_protocol_keeps_the_connection_alive(impalad: Impalad) -> None:
    """--protocol hs2-http runs a dozen RPCs over one kept-alive HTTP connection."""
    key = "impala.thrift-server.hiveserver2-http-frontend.total-connections"
    before = json.loads(impalad.get("/jsonmetrics")[1])[key]
    done = run_shell(["--protocol", "hs2-http", "-i", impalad.http_address, "-B", "-q", "select 7"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
    assert json.loads(impalad.get("/jsonmetrics")[1])[key] == before + 1


def test_ldap_plain_user_becomes_session_user(impalad: Impalad) -> None:
    """-l (SASL PLAIN) authenticates and its user is the query's user."""
    rc, out, err = shell(
        impalad,
        "-l",
        "-u",
        "alice",
        "--auth_creds_ok_in_clear",
        "--ldap_password_cmd=echo secret",
        "-p",
        "-q",
        "select 1",
    )
    assert rc == 0, err
    assert "User: alice" in out


def test_ldap_over_http_basic_auth(impalad: Impalad) -> None:
    """hs2-http with -l sends Basic auth, whose user becomes the session user."""
    done = run_shell(
        [
            "--protocol",
            "hs2-http",
            "-i",
            impalad.http_address,
            "-l",
            "-u",
            "bob",
            "--auth_creds_ok_in_clear",
            "--ldap_password_cmd=echo pw",
            "-p",
            "-q",
            "select 1",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "User: bob" in done.stdout
