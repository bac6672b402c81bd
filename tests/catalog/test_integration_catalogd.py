"""A real catalogd process on loopback without a statestore: RPCs, web pages, bad input."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from backends.catalog.objects import CatalogEntry
from backends.catalog.protocol import ExecDdl, GetCatalogDelta, encode_op
from backends.common.rpc import call_blocking
from backends.impalad.sql import ColumnDesc, Table
from tests.catalog._cluster import Catalogd, get_json, wait_for
from tests.support.procs import ROOT

# Nothing listens on port 1: the catalogd keeps trying to register, and works without.
NO_STATESTORE = ["--state_store_host=127.0.0.1", "--state_store_port=1"]


def _table(name: str) -> Table:
    return Table(db="default", name=name, columns=(ColumnDesc("id", "INT"),))


def test_standalone_catalogd_serves_ddl_and_deltas(tmp_path: Path) -> None:
    """Without HA a lone catalogd is active: ExecDdl persists, GetCatalogDelta answers it."""
    (tmp_path / "warehouse").mkdir()
    cat = Catalogd(0, tmp_path, NO_STATESTORE, ha=False)
    cat.proc.start()
    try:
        wait_for("catalogd web", cat.metrics, timeout=20)
        args = encode_op(table=_table("t"), if_not_exists=False)
        result = call_blocking(cat.host, cat.port, ExecDdl, op="create_table", args=args)["result"]
        assert result["ok"] and result["version"] > 0
        delta = call_blocking(cat.host, cat.port, GetCatalogDelta, from_version=0)["result"]
        keys = {CatalogEntry.from_json(e).key for e in delta["entries"]}
        assert "TABLE:default.t" in keys
        again = call_blocking(cat.host, cat.port, ExecDdl, op="create_table", args=args)
        assert again["result"]["error_message"] == "Table already exists: default.t"
        junk = call_blocking(cat.host, cat.port, ExecDdl, op="create_table", args={"x": 1})
        assert junk["result"]["ok"] is False
        metrics = get_json(f"http://{cat.host}:{cat.web_port}/jsonmetrics?json")
        assert metrics["catalog-server.active-status"] is True
        with urllib.request.urlopen(f"http://{cat.host}:{cat.web_port}/healthz", timeout=2) as r:
            assert r.status == 200 and r.read() == b"OK\n"
        page = get_json(f"http://{cat.host}:{cat.web_port}/catalog?json")
        tables = [t["name"] for d in page["databases"] for t in d["tables"]]
        assert tables == ["t"]
        assert cat.proc.running
    finally:
        cat.proc.stop()
    cat2 = Catalogd(0, tmp_path, NO_STATESTORE, ha=False)
    cat2.proc.start()
    try:
        wait_for("catalogd web", cat2.metrics, timeout=20)
        delta = call_blocking(cat2.host, cat2.port, GetCatalogDelta, from_version=0)["result"]
        assert "TABLE:default.t" in {e["key"] for e in delta["entries"]}
    finally:
        cat2.proc.stop()


def test_bad_flag_exits_with_status_2() -> None:
    """An unknown flag is refused at start with exit status 2 and the flag's name."""
    proc = subprocess.run(
        [sys.executable, "-m", "backends.catalog.main", "--no_such_flag=1"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2 and b"no_such_flag" in proc.stderr
