"""Stage 3: server addresses, resolved with the system resolver."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from haconfig.model import (
    Config,
    SectionKind,
)
from haconfig.parse._checks import _resolvable
from haconfig.parse._diagnostics import Level, Message
from haconfig.parse._words import _is_ip

if TYPE_CHECKING:
    from haconfig.parse._parser import _Parser


# --------------------------------------------------------------------------------------
# stage 3: server addresses


def _first_address(host: str) -> str:
    """The address the runtime connects to for ``host``: its first IPv4 address, else
    its first one; raises ``OSError`` when it does not resolve."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    for family, _, _, _, sockaddr in infos:
        if family == socket.AF_INET:
            return str(sockaddr[0])
    return str(infos[0][4][0])


def _resolve_addresses(ps: _Parser, config: Config, found: dict[str, str]) -> bool:
    """Stage 3: resolve every server host name once (into ``found``; ``""`` for a name
    that did not resolve, so that nobody tries again)."""
    ok = True
    resolvable = _resolvable(config)
    for raw in config.sections:
        if not raw.kind.has_backend or raw.kind is SectionKind.DEFAULTS:
            continue
        p = resolvable.resolve(raw)
        for s in p.servers:
            host = s.host
            if not host or host == "*" or host.startswith("/") or "@" in host or _is_ip(host):
                continue
            if host in found:
                continue
            try:
                found[host] = _first_address(host)
            except (OSError, UnicodeError, IndexError):
                found[host] = ""  # tried: the runtime must not look it up again
                tag = f"[{s.location}] : 'server {p.name}/{s.name}' : "
                init_addr = p.server_params(s).init_addr or ""
                if "none" in init_addr.split(","):
                    ps.messages.append(
                        Message(
                            Level.WARNING,
                            tag + f"could not resolve address '{host}', disabling server.",
                            s.location,
                        )
                    )
                else:
                    ps.messages.append(
                        Message(
                            Level.ALERT, tag + f"could not resolve address '{host}'.", s.location
                        )
                    )
                    ok = False
    return ok
