"""The cluster's membership as a coordinator's ``/backends?json`` shows it.

Real Impala (be/src/service/impala-http-handler.cc, BackendsHandler) lists every
member of the ``impala-membership`` topic::

    {"backends": [{"address": "host:27000", "krpc_address": "10.0.0.11:27000",
                   "webserver_url": "http://host:25000", "is_coordinator": true,
                   "is_executor": true, "is_quiescing": false, "is_blacklisted": false,
                   "blacklist_cause": "...", ...}], "num_active_backends": 3, ...}

``address`` carries Impala's host name, ``krpc_address`` the address it resolved.
Only the fields a balancer needs are read; a document that lacks one of them is
unreadable as a whole (the caller keeps what it knew).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from proxy.impala._state import UnreadableState, read_document


@dataclass(frozen=True)
class Member:
    """One impalad of the membership."""

    #: Impala's host name for it (``address`` without the port)
    host: str
    #: an IP address for it when Impala gave one (``krpc_address``, else ``address``)
    ip: str
    #: its web server (``webserver_url``), "" when not shown
    web: str
    coordinator: bool
    executor: bool
    quiescing: bool
    blacklisted: bool
    #: ``blacklist_cause`` (only shown while blacklisted)
    cause: str = ""

    @property
    def takes_clients(self) -> bool:
        """A coordinator that is not blacklisted (a quiescing one keeps its sessions)."""
        return self.coordinator and not self.blacklisted


def _host(address: str) -> str:
    host, sep, _ = address.rpartition(":")
    host = host if sep else address
    return host.strip("[]")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _flag(entry: dict[str, Any], key: str, default: bool | None = None) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise UnreadableState(f"/backends?json: an entry has no boolean {key!r}")
    return value


def read_members(body: bytes) -> list[Member]:
    """The members listed in a ``/backends?json`` body; :class:`UnreadableState` for a
    body Impala would not have served (not JSON, no ``backends`` list, an entry without
    ``address`` or ``is_coordinator``)."""
    doc = read_document(body, "/backends?json")
    entries = doc.get("backends")
    if not isinstance(entries, list):
        raise UnreadableState("/backends?json has no 'backends' list")
    members: list[Member] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise UnreadableState("/backends?json: an entry has no 'address'")
        host = _host(entry["address"])
        krpc = entry.get("krpc_address")
        krpc_host = _host(krpc) if isinstance(krpc, str) else ""
        ip = krpc_host if _is_ip(krpc_host) else (host if _is_ip(host) else "")
        web = entry.get("webserver_url")
        web = web if isinstance(web, str) else ""
        if web and not web.startswith(("http://", "https://")):
            web = "http://" + web
        cause = entry.get("blacklist_cause")
        members.append(
            Member(
                host=host,
                ip=ip,
                web=web.rstrip("/"),
                coordinator=_flag(entry, "is_coordinator"),
                executor=_flag(entry, "is_executor", True),
                quiescing=_flag(entry, "is_quiescing", False),
                blacklisted=_flag(entry, "is_blacklisted", False),
                cause=cause if isinstance(cause, str) else "",
            )
        )
    return members
