"""Real statestored, catalogd and impalad processes on 127.0.0.x, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from impala.dbapi import connect

from tests.statestore.procs import statestored_argv
from tests.support import procs
from tests.support.procs import Proc, free_port, free_ports

T = TypeVar("T")
HEARTBEAT = [
    "--statestore_heartbeat_frequency_ms=100",
    "--statestore_max_missed_heartbeats=5",
]


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns something truthy; any error means "not yet"."""
    return procs.wait_for(what, check, timeout, tolerate=(Exception,))


def daemon(name: str, argv: list[str], log: Path) -> Proc:
    """A cluster daemon: stopped with SIGINT (its orderly shutdown), SIGKILL waits 10 s."""
    return Proc(name, argv, log, stop_signal=signal.SIGINT, kill_timeout=10)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read())


class Catalogd:
    def __init__(self, index: int, tmp: Path, statestore: list[str], ha: bool) -> None:
        self.host = f"127.0.0.{10 + index}"
        # three distinct free ports at once: a subscriber port of 0 could be handed the
        # service port the daemon has not bound yet (seen once: "Address already in use")
        self.port, self.web_port, sub_port = free_ports(self.host, 3)
        self.address = f"{self.host}:{self.port}"
        self.argv = [
            "-m",
            "backends.catalog.main",
            f"--listen_host={self.host}",
            f"--catalog_service_port={self.port}",
            f"--webserver_port={self.web_port}",
            *statestore,
            f"--state_store_subscriber_port={sub_port}",
            f"--warehouse_dir={tmp / 'warehouse'}",
            *HEARTBEAT,
        ]
        if ha:
            self.argv.append("--enable_catalogd_ha")
        self.proc = daemon(f"catalogd{index}", self.argv, tmp / f"catalogd{index}.log")

    def metrics(self) -> dict[str, Any]:
        result: dict[str, Any] = get_json(f"http://{self.host}:{self.web_port}/jsonmetrics?json")
        return result

    def is_active(self) -> bool:
        try:
            return bool(self.metrics()["catalog-server.active-status"])
        except OSError:
            return False


class Impalad:
    def __init__(
        self, index: int, tmp: Path, statestore: list[str], catalogd: str, sync_reads: bool
    ) -> None:
        self.host = f"127.0.0.{20 + index}"
        self.hs2_port = free_port(self.host)
        self.web_port = free_port(self.host)
        host, port = catalogd.rsplit(":", 1)
        self.argv = [
            "-m",
            "backends.impalad.main",
            f"--listen_host={self.host}",
            f"--hs2_port={self.hs2_port}",
            f"--beeswax_port={free_port(self.host)}",
            "--hs2_http_port=0",
            f"--webserver_port={self.web_port}",
            *statestore,
            f"--state_store_subscriber_port={free_port(self.host)}",
            f"--catalog_service_host={host}",
            f"--catalog_service_port={port}",
            f"--warehouse_dir={tmp / 'warehouse'}",
            "--catalog_client_rpc_retry_interval_ms=200",
            "--catalog_client_connection_num_retries=30",
            "--sync_ddl_timeout_s=20",
            f"--catalog_sync_reads={str(sync_reads).lower()}",
            *HEARTBEAT,
        ]
        self.proc = daemon(f"impalad{index}", self.argv, tmp / f"impalad{index}.log")

    def run(self, sql: str, options: dict[str, str] | None = None) -> list[tuple[Any, ...]]:
        """One statement on a fresh connection; the rows it returned."""
        conn = connect(host=self.host, port=self.hs2_port, timeout=60)
        try:
            cur = conn.cursor(configuration=options or {})
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else []
            cur.close()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def ready(self) -> bool:
        with socket.create_connection((self.host, self.hs2_port), timeout=1):
            return True


class Statestored:
    def __init__(self, index: int, tmp: Path, pair: bool, ha: bool) -> None:
        self.host = f"127.0.0.{5 + index}"
        self.port = free_port(self.host)
        self.ha_port = free_port(self.host)
        self.web_port = free_port(self.host)
        self.argv = [
            *statestored_argv(self.host, self.port, self.web_port),
            "--statestore_update_frequency_ms=100",
            "--statestore_heartbeat_tcp_timeout_seconds=1",
            "--catalogd_ha_preemption_wait_period_ms=1500",
            "--use_subscriber_id_as_catalogd_priority",
            *HEARTBEAT,
        ]
        if ha:
            self.argv.append("--enable_catalogd_ha")
        if pair:
            self.argv += [
                "--enable_statestored_ha",
                f"--state_store_ha_port={self.ha_port}",
                "--statestore_ha_heartbeat_monitoring_frequency_ms=100",
                "--statestore_ha_preemption_wait_period_ms=1500",
                "--statestore_ha_client_rpc_timeout_ms=500",
                "--use_network_address_as_statestore_priority",
            ]
        self.proc = daemon(f"statestored{index}", self.argv, tmp / f"statestored{index}.log")

    def peer_with(self, other: Statestored) -> None:
        self.proc.argv += [
            f"--state_store_peer_host={other.host}",
            f"--state_store_peer_ha_port={other.ha_port}",
        ]

    def is_active(self) -> bool:
        url = f"http://{self.host}:{self.web_port}/jsonmetrics"
        try:
            return bool(get_json(url)["statestore.active-status"])
        except OSError:
            return False


class Cluster:
    """One or two statestoreds, two HA catalogds (or one), three impalads, one warehouse."""

    def __init__(
        self,
        tmp: Path,
        *,
        catalogds: int = 2,
        statestores: int = 1,
        ha: bool = True,
        sync_reads: bool = True,
        catalogd_flags: tuple[str, ...] = (),
    ) -> None:
        self.tmp = tmp
        (tmp / "warehouse").mkdir(exist_ok=True)
        pair = statestores == 2
        self.statestoreds = [Statestored(i, tmp, pair, ha) for i in range(statestores)]
        if pair:
            self.statestoreds[0].peer_with(self.statestoreds[1])
            self.statestoreds[1].peer_with(self.statestoreds[0])
        first_ss = self.statestoreds[0]
        ss = [f"--state_store_host={first_ss.host}", f"--state_store_port={first_ss.port}"]
        if pair:
            second = self.statestoreds[1]
            ss += [
                "--enable_statestored_ha",
                f"--state_store_2_host={second.host}",
                f"--state_store_2_port={second.port}",
            ]
        self.catalogds = [Catalogd(i, tmp, ss, ha) for i in range(catalogds)]
        for c in self.catalogds:
            c.proc.argv.extend(catalogd_flags)
        first = self.catalogds[0].address
        self.impalads = [Impalad(i, tmp, ss, first, sync_reads) for i in range(3)]

    def start(self) -> None:
        for s in self.statestoreds:
            s.proc.start()
        for c in self.catalogds:
            c.proc.start()
        for d in self.impalads:
            d.proc.start()
        wait_for("one active catalogd", self.active, timeout=30)
        for d in self.impalads:
            wait_for(f"{d.proc.name} listening", d.ready, timeout=30)

    def active(self) -> Catalogd | None:
        actives = [c for c in self.catalogds if c.proc.running and c.is_active()]
        return actives[0] if len(actives) == 1 else None

    def active_statestored(self) -> Statestored | None:
        actives = [s for s in self.statestoreds if s.proc.running and s.is_active()]
        return actives[0] if len(actives) == 1 else None

    def stop(self) -> None:
        for p in [d.proc for d in self.impalads] + [c.proc for c in self.catalogds]:
            p.stop()
        for s in self.statestoreds:
            s.proc.stop()

    def logs(self) -> str:
        out = []
        for log in sorted(self.tmp.glob("*.log")):
            out.append(f"==== {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)


@contextlib.contextmanager
def running_cluster(tmp: Path, **kw: Any) -> Iterator[Cluster]:
    cluster = Cluster(tmp, **kw)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
