"""Beeswax on --beeswax_port, against the real impala-shell (--protocol=beeswax) and
Impala's own generated Beeswax client (impala_thrift_gen, from the impala-shell wheel):
the same sessions, SQL, errors and shutdown rules as HS2."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from impala_thrift_gen.beeswax import BeeswaxService  # type: ignore[import-untyped]
from impala_thrift_gen.beeswax.BeeswaxService import QueryState  # type: ignore[import-untyped]
from impala_thrift_gen.ImpalaService import ImpalaService  # type: ignore[import-untyped]
from thrift.protocol import TBinaryProtocol
from thrift.transport.TSocket import TSocket
from thrift.transport.TTransport import TBufferedTransport

from haconfig.layouts import description_from_mapping, layout
from haconfig.render import render
from tests.support.impalad import VENV_BIN, Impalad
from tests.support.procs import wait_for

SHELL = str(VENV_BIN / "impala-shell")
SCRIPT = (
    "create table bw (id int, s string, b boolean, x double, d decimal(9,2)); "
    "insert into bw values (1,'a',true,1.5,2.25),(2,null,false,null,null); "
    "select * from bw order by id; select count(*), sum(d) from bw"
)


def _shell(protocol: str, port: int, host: str, query: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHELL, f"--protocol={protocol}", "-i", f"{host}:{port}", "-B", "-q", query],
        capture_output=True,
        text=True,
        timeout=90,
    )


class Client:
    """Impala's generated Beeswax client on one connection (one Beeswax session)."""

    def __init__(self, host: str, port: int) -> None:
        self.transport = TBufferedTransport(TSocket(host, port))
        self.transport.open()
        self.rpc = ImpalaService.Client(TBinaryProtocol.TBinaryProtocolAccelerated(self.transport))

    def run(self, sql: str, **options: str) -> Any:
        conf = [f"{k}={v}" for k, v in options.items()]
        return self.rpc.query(BeeswaxService.Query(query=sql, configuration=conf, hadoop_user="bw"))

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
def client(impalad: Impalad) -> Iterator[Client]:
    c = Client(impalad.host, impalad.beeswax_port)
    try:
        yield c
    finally:
        c.close()


def _metric(d: Impalad, name: str) -> Any:
    status, body = d.get("/jsonmetrics?json")
    assert status == 200
    return json.loads(body)[name]


def test_impala_shell_over_beeswax_answers_as_over_hs2(impalad: Impalad) -> None:
    """The same statements through --protocol=beeswax and hs2 print the same rows."""
    bw = _shell("beeswax", impalad.beeswax_port, impalad.host, SCRIPT)
    assert bw.returncode == 0, bw.stderr
    hs2 = _shell("hs2", impalad.hs2_port, impalad.host, "select * from bw order by id; "
                 "select count(*), sum(d) from bw")  # fmt: skip
    assert hs2.returncode == 0, hs2.stderr
    assert bw.stdout.splitlines()[-3:] == hs2.stdout.splitlines()[-3:]
    assert bw.stdout.splitlines()[-3:] == [
        "1\ta\ttrue\t1.5\t2.25",
        "2\tNULL\tfalse\tNULL\tNULL",
        "2\t2.25",
    ]


def test_an_error_reads_the_same_on_both(impalad: Impalad) -> None:
    """A failing statement fails the shell with the same message over both protocols."""
    bw = _shell("beeswax", impalad.beeswax_port, impalad.host, "select nosuch from bw_missing")
    hs2 = _shell("hs2", impalad.hs2_port, impalad.host, "select nosuch from bw_missing")
    assert bw.returncode != 0 and hs2.returncode != 0
    message = "AnalysisException: Could not resolve table reference: 'default.bw_missing'"
    assert message in bw.stderr and message in hs2.stderr


def test_beeswax_calls_as_impalas_client_makes_them(impalad: Impalad, client: Client) -> None:
    """query -> get_state -> get_results_metadata -> fetch (tab-separated text) -> close;
    a closed or unknown handle is QueryNotFoundException; a bad query BeeswaxException."""
    handle = client.run("select 7 as n, 'x' as s, cast(null as int) as z", MEM_LIMIT="1g")
    wait_for("FINISHED", lambda: client.rpc.get_state(handle) == QueryState.FINISHED)
    meta = client.rpc.get_results_metadata(handle)
    assert [(f.name, f.type) for f in meta.schema.fieldSchemas] == [
        ("n", "tinyint"),
        ("s", "string"),
        ("z", "int"),
    ]
    results = client.rpc.fetch(handle, False, 100)
    assert results.data == ["7\tx\tNULL"] and not results.has_more and results.ready
    assert "Query (id=" in client.rpc.GetRuntimeProfile(handle)
    client.rpc.close(handle)
    with pytest.raises(BeeswaxService.QueryNotFoundException):
        client.rpc.get_state(handle)
    with pytest.raises(BeeswaxService.BeeswaxException) as bad:
        client.run("select nosuch")
    assert "AnalysisException" in bad.value.message and bad.value.SQLState == "HY000"
    dml = client.run("create table if not exists bw_dml (i int)")
    client.rpc.close(dml)
    ins = client.run("insert into bw_dml values (1), (2), (3)")
    wait_for("the insert", lambda: client.rpc.get_state(ins) == QueryState.FINISHED)
    assert client.rpc.CloseInsert(ins).rows_modified == {"": 3}
    waited = client.rpc.executeAndWait(BeeswaxService.Query(query="select 5"), "ctx")
    assert client.rpc.get_state(waited) == QueryState.FINISHED
    assert client.rpc.fetch(waited, False, 10).data == ["5"]
    assert "PLAN-ROOT SINK" in client.rpc.explain(BeeswaxService.Query(query="select 1")).textual
    client.rpc.close(waited)
    options = {c.key: c.value for c in client.rpc.get_default_configuration(False)}
    assert "MEM_LIMIT" in options and "QUERY_TIMEOUT_S" in options
    assert client.rpc.PingImpalaService().version.startswith("impalad version")


def test_one_session_per_connection(impalad: Impalad) -> None:
    """A Beeswax connection is a session: counted while open, closed with the connection."""
    before = _metric(impalad, "impala-server.num-open-beeswax-sessions")
    c = Client(impalad.host, impalad.beeswax_port)
    c.rpc.close(c.run("set sync_ddl=1"))
    wait_for(
        "the session to count",
        lambda: _metric(impalad, "impala-server.num-open-beeswax-sessions") == before + 1,
    )
    c.close()
    wait_for(
        "the session to close with its connection",
        lambda: _metric(impalad, "impala-server.num-open-beeswax-sessions") == before,
    )


def test_shutdown_refuses_new_beeswax_queries_as_hs2(tmp_path: Path) -> None:
    """After :shutdown(), a new query is refused with the message HS2 clients get."""
    d = Impalad.start(tmp_path, flags=["--shutdown_grace_period_s=60"])
    c = Client(d.host, d.beeswax_port)
    try:
        c.rpc.close(c.run(":shutdown()"))
        with pytest.raises(BeeswaxService.BeeswaxException) as refused:
            c.run("select 1")
        hs2 = _shell("hs2", d.hs2_port, d.host, "select 1")
    finally:
        c.close()
        d.stop()
    assert refused.value.message.startswith("Server is being shut down: ")
    assert "Server is being shut down: " in hs2.stderr


def test_the_layout_renders_beeswax_as_impalas_documented_sample(tmp_path: Path) -> None:
    """[frontends.beeswax] renders a leastconn listen on the coordinators' 21000, and
    real HAProxy accepts it."""
    desc = description_from_mapping(
        {
            "coordinator": [{"host": "127.0.0.11"}, {"host": "127.0.0.12", "beeswax_port": 21001}],
            "frontends": {"beeswax": {"port": 25003}},
        },
        source="test",
    )
    text = render(layout(desc))
    section = text[text.index("listen impala_beeswax") :].split("\nlisten ")[0]
    assert "balance leastconn" in section and ":25003" in section
    assert "127.0.0.11:21000" in section and "127.0.0.12:21001" in section
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    real = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert real.returncode == 0, real.stdout + real.stderr
