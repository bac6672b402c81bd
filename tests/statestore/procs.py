"""A harness for real statestored and subscriber processes on loopback, bounded in time."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from backends.common.rpc import SetStatestoreDebugAction, call_blocking
from tests.support.procs import Proc, free_port

HEARTBEAT_MS = 100
MAX_MISSED = 5
TIMING = [
    f"--statestore_heartbeat_frequency_ms={HEARTBEAT_MS}",
    f"--statestore_max_missed_heartbeats={MAX_MISSED}",
]
STATESTORE_TIMING = [
    *TIMING,
    "--statestore_heartbeat_tcp_timeout_seconds=1",
    "--statestore_priority_update_frequency_ms=100",
    "--statestore_update_frequency_ms=500",
    "--statestore_ha_heartbeat_monitoring_frequency_ms=100",
    "--statestore_ha_preemption_wait_period_ms=1500",
    "--statestore_ha_client_rpc_timeout_ms=500",
    "--statestore_update_statestore_tcp_timeout_seconds=1",
    "--use_network_address_as_statestore_priority",
    "--debug_actions=DISABLE_STATESTORE_NETWORK",
]


def statestored_argv(host: str, port: int, web_port: int) -> list[str]:
    """``-m backends.statestore.main`` with its RPC and web ports on ``host`` alone."""
    return [
        "-m",
        "backends.statestore.main",
        f"--hostname={host}",
        f"--listen_host={host}",
        f"--webserver_interface={host}",
        f"--state_store_port={port}",
        f"--webserver_port={web_port}",
    ]


class Statestored:
    def __init__(self, index: int, tmp: Path) -> None:
        self.index = index
        self.host = f"127.0.0.{2 + index}"
        self.port = free_port(self.host)
        self.ha_port = free_port(self.host)
        self.web_port = free_port(self.host)
        self.tmp = tmp
        self.proc: Proc | None = None

    def start(self, peer: Statestored | None, *extra: str) -> None:
        argv = [
            *statestored_argv(self.host, self.port, self.web_port),
            *STATESTORE_TIMING,
        ]
        if peer is not None:
            argv += [
                "--enable_statestored_ha",
                f"--state_store_ha_port={self.ha_port}",
                f"--state_store_peer_host={peer.host}",
                f"--state_store_peer_ha_port={peer.ha_port}",
            ]
        log = self.tmp / f"ss{self.index}.log"
        self.proc = Proc(f"ss{self.index}", argv + list(extra), log).start()

    def get(self, path: str) -> Any:
        url = f"http://{self.host}:{self.web_port}{path}"
        with urllib.request.urlopen(url, timeout=1) as answer:
            return json.loads(answer.read())

    def metrics(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/jsonmetrics")
        return result

    def role(self) -> str | None:
        try:
            role: str = self.get("/ha?json")["role"]
            return role
        except OSError:
            return None

    def debug(self, cut_peer_link: bool = False, isolate: tuple[str, ...] = ()) -> None:
        call_blocking(
            self.host,
            self.port,
            SetStatestoreDebugAction,
            disable_network=False,
            cut_peer_link=cut_peer_link,
            isolate_subscribers=list(isolate),
        )


class Subscriber:
    def __init__(self, name: str, stores: list[Statestored], tmp: Path, *extra: str) -> None:
        self.name = name
        self.status = tmp / f"{name}.json"
        self.applied = tmp / f"{name}.applied"
        argv = [
            "-m",
            "backends.statestore.subscriber_cli",
            f"--subscriber_id={name}",
            "--hostname=127.0.0.1",
            "--listen_host=127.0.0.1",
            "--state_store_subscriber_port=0",
            f"--state_store_host={stores[0].host}",
            f"--state_store_port={stores[0].port}",
            "--statestore_subscriber_recovery_grace_period_ms=300",
            f"--status_file={self.status}",
            f"--applied_log={self.applied}",
            *TIMING,
            *extra,
        ]
        if len(stores) > 1:
            argv += [
                "--enable_statestored_ha",
                f"--state_store_2_host={stores[1].host}",
                f"--state_store_2_port={stores[1].port}",
            ]
        self.proc = Proc(name, argv, tmp / f"{name}.log").start()

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.status.read_text())
        return result

    def primary_index(self) -> int | None:
        try:
            index: int | None = self.state()["primary_index"]
            return index
        except (OSError, ValueError):
            return None

    def membership(self) -> list[str]:
        try:
            members: list[str] = self.state()["membership"]
            return members
        except (OSError, ValueError):
            return []

    def applied_records(self) -> list[dict[str, Any]]:
        if not self.applied.exists():
            return []
        return [json.loads(line) for line in self.applied.read_text().splitlines() if line]

    def check_only_primary_applied(self) -> int:
        """Every applied update came from the statestore held primary then; returns count."""
        held = None
        count = 0
        for record in self.applied_records():
            if record["event"] == "primary":
                held = record["statestore_id"]
            else:
                assert record["statestore_id"] == held == record["held_primary_id"], record
                count += 1
        return count
