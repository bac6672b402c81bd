"""Coordinator discovery from a running Impala: ``GET /backends?json`` on any impalad.

Real Impala (``ImpalaHttpHandler::BackendsHandler``) answers
``{"backends": [{"address": "host:port", "krpc_address": ..., "webserver_url":
"http://host:25000", "is_coordinator": true, "is_executor": true,
"is_quiescing": false, "is_blacklisted": false, "is_active": true, ...}], ...}``.
It carries the web port (in ``webserver_url``) but not the client ports, so the
HiveServer2 ports are the Impala defaults unless the caller says otherwise.

impala-lb's own impalad adds ``hs2_address`` and ``hs2_http_address``
(``host:port``) to each entry; when present they give the client ports.

Otherwise, several coordinators on one host (a minicluster: ``start-impala-cluster.py``
gives daemon ``n`` the ports 21050+n, 25000+n, 28000+n) get their client ports
offset from the defaults as their web ports are offset from the lowest one on
that host.

Only coordinators are kept (executor-only daemons never get clients), and not
those quiescing (``:shutdown()`` started: new sessions there would fail with
``SERVER_SHUTTING_DOWN``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from haconfig.layouts import Coordinator

__all__ = ["DiscoveryError", "backends_url", "coordinators_from_json", "fetch_coordinators"]


class DiscoveryError(ValueError):
    """The coordinator list could not be read; the message says from where and why."""


def backends_url(base: str) -> str:
    """``http://host:25000`` (or any path on it) -> ``http://host:25000/backends?json``."""
    parts = urllib.parse.urlsplit(base if "://" in base else f"http://{base}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DiscoveryError(f"{base}: not an http(s) URL of an impalad web server")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/backends", "json", ""))


def _split_host_port(text: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port`` or ``host`` -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host, int(port) if port.isdigit() else None


def coordinators_from_json(
    body: bytes,
    *,
    hs2_port: int = 21050,
    hs2_http_port: int = 28000,
    source: str = "/backends?json",
) -> tuple[Coordinator, ...]:
    """The usable coordinators listed in a ``/backends?json`` document, in its order."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise DiscoveryError(f"{source}: not JSON: {e}") from e
    backends = doc.get("backends") if isinstance(doc, dict) else None
    if not isinstance(backends, list):
        raise DiscoveryError(f"{source}: no 'backends' list (is this an impalad web server?)")
    found: list[tuple[str, int, int | None, int | None]] = []
    for i, b in enumerate(backends):
        if not isinstance(b, dict):
            raise DiscoveryError(f"{source}: backends[{i}] is not an object")
        if not b.get("is_coordinator", False) or b.get("is_quiescing", False):
            continue
        web = urllib.parse.urlsplit(str(b.get("webserver_url", "")))
        host, _ = _split_host_port(str(b.get("address", "")))
        host = host or (web.hostname or "")
        if not host:
            raise DiscoveryError(f"{source}: backends[{i}] has neither address nor webserver_url")
        try:
            web_port = web.port or 25000
        except ValueError as e:
            raise DiscoveryError(f"{source}: backends[{i}]: bad webserver_url: {e}") from e
        _, own_hs2 = _split_host_port(str(b.get("hs2_address", "")))
        _, own_http = _split_host_port(str(b.get("hs2_http_address", "")))
        found.append((host, web_port, own_hs2, own_http))
    lowest: dict[str, int] = {}
    for host, web_port, _, _ in found:
        lowest[host] = min(web_port, lowest.get(host, web_port))
    shared = {h for h in lowest if sum(1 for f in found if f[0] == h) > 1}
    out = []
    for host, web_port, own_hs2, own_http in found:
        offset = web_port - lowest[host] if host in shared else 0
        out.append(
            Coordinator(
                host=host,
                hs2_port=own_hs2 or hs2_port + offset,
                hs2_http_port=own_http or hs2_http_port + offset,
                web_port=web_port,
            )
        )
    return tuple(out)


def fetch_coordinators(
    base: str, *, hs2_port: int = 21050, hs2_http_port: int = 28000, timeout: float = 10.0
) -> tuple[Coordinator, ...]:
    """Ask the impalad at ``base`` for its coordinators (a blocking, bounded HTTP GET).

    Used by the ``impala-lb render`` command line only, which has no reactor
    running; the balancer's own discovery goes through Twisted."""
    url = backends_url(base)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(16 * 1024 * 1024)
    except urllib.error.HTTPError as e:
        raise DiscoveryError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DiscoveryError(f"{url}: cannot fetch: {reason}") from e
    found = coordinators_from_json(body, hs2_port=hs2_port, hs2_http_port=hs2_http_port, source=url)
    if not found:
        raise DiscoveryError(f"{url}: no coordinator that is not quiescing")
    return found
