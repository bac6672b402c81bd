"""A stand-in impalad for tests and demos: ``python -m backends.statestore.subscriber_cli``.

It registers like an impalad (with one or both statestores), publishes its
membership descriptor, and exposes what it has applied:

- ``--status_file``: a JSON snapshot (primary, per-statestore view, membership,
  metrics), rewritten atomically whenever it changes;
- ``--applied_log``: one JSON line per event: ``{"event": "primary", ...}`` when it
  changes its primary, ``{"event": "applied", ...}`` for every topic update it
  applied, naming the statestore it came from and the primary held at that time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from twisted.application import internet, service
from twisted.logger import Logger

from backends.common import daemon
from backends.common.flags import FlagError, Flags, FlagSet
from backends.common.rpc import (
    SUBSCRIBER_TYPES,
    RpcError,
    TopicRegistration,
)
from backends.common.subscriber import (
    MEMBERSHIP_TOPIC,
    BackendDescriptor,
    ClusterMembership,
    StatestoreAddress,
    StatestoreSubscriber,
    TopicUpdate,
    subscriber_from_flags,
)

log = Logger()


def flag_set() -> FlagSet:
    fs = FlagSet("subscriber_cli")
    d = fs.define
    d("subscriber_id", "", "subscriber id (default: impalad@<hostname>:<port>)")
    d("subscriber_type", "COORDINATOR_EXECUTOR", "one of " + ", ".join(sorted(SUBSCRIBER_TYPES)))
    d("hostname", "", "name advertised to the statestore (default: the machine's name)")
    d("listen_host", "", "address the callback port listens on (default: all)")
    d("state_store_subscriber_port", 23000, "callback port for statestore RPCs (0: any free)")
    d("state_store_host", "localhost", "first statestore")
    d("state_store_port", 24000, "first statestore's registration port")
    d("enable_statestored_ha", False, "register with a second statestore too")
    d("state_store_2_host", "localhost", "second statestore")
    d("state_store_2_port", 24000, "second statestore's registration port")
    d("statestore_heartbeat_frequency_ms", 1000, "expected heartbeat period")
    d("statestore_max_missed_heartbeats", 10, "missed periods until a statestore is lost")
    d("statestore_subscriber_recovery_grace_period_ms", 30000, "membership freeze on failover")
    d("hs2_port", 21050, "descriptor: HS2 port")
    d("webserver_port", 25000, "descriptor: web port")
    d("is_coordinator", True, "descriptor: coordinator role")
    d("is_executor", True, "descriptor: executor role")
    d("status_file", "", "JSON snapshot of what this subscriber sees")
    d("applied_log", "", "JSON lines: primary changes and applied updates")
    d("ssl_server_certificate", "", "PEM certificate: serve the callback port over TLS")
    d("ssl_private_key", "", "PEM private key of --ssl_server_certificate")
    d("ssl_client_ca_certificate", "", "PEM CA: connect to statestores over TLS")
    return fs


class Recorder:
    """Writes the status snapshot and the applied log."""

    def __init__(
        self,
        sub: StatestoreSubscriber,
        members: ClusterMembership,
        status_file: str,
        applied_log: IO[str] | None,
    ) -> None:
        self.sub = sub
        self.members = members
        self.status_file = status_file
        self.applied_log = applied_log
        self.num_applied = 0
        self._last = ""
        sub.on_primary_change(self.primary_changed)
        for topic in sub.topics:
            sub.add_topic_callback(topic, self.applied)

    def _write_line(self, record: dict[str, Any]) -> None:
        if self.applied_log is not None:
            self.applied_log.write(json.dumps(record, sort_keys=True) + "\n")
            self.applied_log.flush()

    def primary_changed(self, address: StatestoreAddress | None) -> None:
        self._write_line(
            {
                "event": "primary",
                "t": time.time(),
                "index": None if address is None else address.index,
                "statestore_id": None if address is None else address.statestore_id,
            }
        )
        self.snapshot()

    def applied(self, update: TopicUpdate) -> None:
        self.num_applied += 1
        primary = self.sub.current_primary
        self._write_line(
            {
                "event": "applied",
                "t": time.time(),
                "topic": update.delta.topic,
                "statestore_id": update.statestore_id,
                "held_primary_id": None if primary is None else primary.statestore_id,
                "is_delta": update.delta.is_delta,
                "from_version": update.delta.from_version,
                "to_version": update.delta.to_version,
                "num_items": len(update.delta.items),
            }
        )

    def snapshot(self) -> None:
        if not self.status_file:
            return
        primary = self.sub.current_primary
        state = {
            "subscriber_id": self.sub.subscriber_id,
            "location": self.sub.location,
            "pid": os.getpid(),
            "primary_index": None if primary is None else primary.index,
            "primary_id": None if primary is None else primary.statestore_id,
            "stubs": self.sub.role_view(),
            "membership": sorted(self.members.reported or {}),
            "membership_applied": sorted(self.members.backends),
            "num_primary_changes": self.sub.num_primary_changes,
            "metrics": self.sub.metrics(),
        }
        text = json.dumps(state, indent=1, sort_keys=True)
        if text == self._last:
            return
        self._last = text
        tmp = self.status_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.status_file)


def make_service(flags: Flags, reactor: Any) -> service.MultiService:
    kind = flags.get_str("subscriber_type")
    if kind not in SUBSCRIBER_TYPES:
        raise FlagError(f"--subscriber_type must be one of {sorted(SUBSCRIBER_TYPES)}")
    hostname = flags.get_str("hostname") or socket.gethostname()
    port = flags.get_int("state_store_subscriber_port")
    daemon.positive(flags, "statestore_heartbeat_frequency_ms")
    daemon.positive(flags, "statestore_max_missed_heartbeats")
    subscriber_id = flags.get_str("subscriber_id") or f"impalad@{hostname}:{port}"
    try:
        sub = subscriber_from_flags(
            flags,
            reactor,
            subscriber_id=subscriber_id,
            subscriber_type=kind,
            topics=[TopicRegistration(MEMBERSHIP_TOPIC, is_transient=True)],
            hostname=hostname,
            listen_interface=flags.get_str("listen_host"),
        )
    except RpcError as e:
        raise FlagError(str(e)) from None
    descriptor = BackendDescriptor(
        backend_id=subscriber_id,
        address=f"{hostname}:{port}",
        hs2_port=flags.get_int("hs2_port"),
        webserver_port=flags.get_int("webserver_port"),
        is_coordinator=flags.get_bool("is_coordinator"),
        is_executor=flags.get_bool("is_executor"),
    )
    members = ClusterMembership(
        sub,
        descriptor,
        grace_period=flags.get_int("statestore_subscriber_recovery_grace_period_ms") / 1000.0,
    )
    log_path = flags.get_str("applied_log")
    applied_log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
    recorder = Recorder(sub, members, flags.get_str("status_file"), applied_log)
    top = service.MultiService()
    sub.setServiceParent(top)  # type: ignore[no-untyped-call]
    timer = internet.TimerService(0.05, recorder.snapshot)
    timer.clock = reactor
    timer.setServiceParent(top)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    top = daemon.build(
        flag_set(), argv, lambda flags: make_service(flags, reactor), help_words=("--help",)
    )
    if isinstance(top, int):
        return top
    daemon.begin_logging()
    return daemon.run(reactor, top, "subscriber_cli")


if __name__ == "__main__":
    sys.exit(main())
