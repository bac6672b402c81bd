"""The CatalogService AMP commands over an in-memory connection (iosim), no sockets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from twisted.protocols import amp
from twisted.test import iosim

from backends.catalog.protocol import ExecDdl, GetCatalogDelta, encode_op
from backends.catalog.server import CatalogServiceProtocol
from tests.catalog._fixtures import sample_table
from tests.catalog.test_server import make


def test_exec_ddl_and_delta_travel_over_amp(tmp_path: Path) -> None:
    """ExecDdl's in-band answer and GetCatalogDelta's objects arrive intact through AMP."""
    server, _, _ = make(tmp_path, ha=False)
    client, _server, pump = iosim.connectedServerAndClient(
        lambda: CatalogServiceProtocol(server), amp.AMP
    )
    results: list[Any] = []
    table = dataclasses.replace(sample_table(files=2), location="")
    d = client.callRemote(
        ExecDdl, op="create_table", args=encode_op(table=table, if_not_exists=False)
    )
    d.addCallback(results.append)
    pump.flush()
    first = results[0]["result"]
    assert first["ok"] and first["entries"][0]["object"]["files"][1]["size"] == 101
    client.callRemote(GetCatalogDelta, from_version=first["version"] - 1).addCallback(
        results.append
    )
    pump.flush()
    assert [e["key"] for e in results[1]["result"]["entries"]] == ["TABLE:default.t"]
    server.stop()


def test_standby_refusal_travels_in_band(tmp_path: Path) -> None:
    """A standby's refusal is an answer, not a broken link: the caller can retry elsewhere."""
    server, _, _ = make(tmp_path, ha=True)
    client, _, pump = iosim.connectedServerAndClient(
        lambda: CatalogServiceProtocol(server), amp.AMP
    )
    results: list[Any] = []
    client.callRemote(GetCatalogDelta, from_version=0).addCallback(results.append)
    pump.flush()
    assert results[0]["result"]["error_kind"] == "CATALOG_IN_STANDBY_MODE"
