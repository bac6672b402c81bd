"""The daemons' debug web servers (impalad 25000, statestored 25010, catalogd 25020).

Each daemon registers plain functions for its paths; this module turns them
into one twisted.web resource. A handler gets the request and returns a
:class:`Response`; it never touches the transport. Impala's pages answer JSON
when the query string holds ``json`` (``/backends?json``), so handlers are
told which form was asked for.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from twisted.logger import Logger
from twisted.web import http, resource, server

_log = Logger()


@dataclasses.dataclass(frozen=True)
class Response:
    """What a handler answers: a status, a body and its content type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(
            status, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n", "application/json"
        )

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode())

    @classmethod
    def metric_group(
        cls, name: str, metrics: Mapping[str, Any], *, gauges: bool = False
    ) -> Response:
        """Impala's ``/metrics?json``: one group ``name`` of metrics sorted by key; with
        ``gauges`` each metric also says ``"kind": "GAUGE"`` and describes itself by key."""
        extra: Callable[[str], dict[str, str]] = (
            (lambda key: {"kind": "GAUGE", "description": key}) if gauges else (lambda _: {})
        )
        listed = [{"name": k, "value": v, **extra(k)} for k, v in sorted(metrics.items())]
        return cls.json({"metric_group": {"name": name, "metrics": listed, "child_groups": []}})

    @classmethod
    def prometheus(cls, metrics: Mapping[str, object]) -> Response:
        """``/metrics_prometheus``: :func:`prometheus_text` (numbers only) as text 0.0.4."""
        return cls(200, prometheus_text(metrics), "text/plain; version=0.0.4")


@dataclasses.dataclass(frozen=True)
class WebRequest:
    """The parts of an HTTP request a handler may look at."""

    path: str
    args: Mapping[str, list[str]]
    method: str
    headers: Mapping[str, str]

    @property
    def wants_json(self) -> bool:
        return "json" in self.args


Handler = Callable[[WebRequest], Response]


class Router(resource.Resource):
    """Dispatches by exact path to registered handlers; everything else is 404."""

    isLeaf = True

    def __init__(self, routes: Mapping[str, Handler] | None = None) -> None:
        resource.Resource.__init__(self)
        self._routes: dict[str, Handler] = dict(routes or {})

    def add(self, path: str, handler: Handler) -> None:
        self._routes[path] = handler

    def render(self, request: server.Request) -> bytes:
        raw_path = (request.path or b"/").decode("latin-1")
        # urllib keeps a bare key (``/?json``, ``/metrics?json``); twisted's args drop it
        query = (request.uri or b"").decode("latin-1").partition("?")[2]
        args = urllib.parse.parse_qs(query, keep_blank_values=True)
        headers = {
            k.decode("latin-1").lower(): v[-1].decode("latin-1")
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        method = (request.method or b"GET").decode("latin-1")
        handler = self._routes.get(raw_path) or self._routes.get(raw_path.rstrip("/") or "/")
        if handler is None:
            answer = Response.text(f"No URI handler for '{raw_path}'\n", 404)
        else:
            answer = handler(WebRequest(raw_path, args, method, headers))
        request.setResponseCode(answer.status)
        request.setHeader(b"content-type", answer.content_type.encode())
        return answer.body


#: the largest request body a daemon's web port takes (Impala's pages take small forms)
MAX_BODY = 1 << 20


class LimitedChannel(http.HTTPChannel):
    """An HTTP channel that refuses a request whose ``Content-Length`` is over
    ``max_body`` at once (413, then closes), instead of waiting for a body it would
    never want; the rest of that connection's bytes are dropped unread."""

    max_body = MAX_BODY
    _refused = False

    def allHeadersReceived(self) -> None:
        length = self.length
        if length is not None and length > self.max_body:
            self._refused = True
            tx: Any = self.transport
            _log.info(
                "closing HTTP connection from {peer}: a body of {length} bytes exceeds {limit}",
                peer=getattr(tx.getPeer(), "host", "?"),
                length=length,
                limit=self.max_body,
            )
            tx.write(
                b"HTTP/1.1 413 Request Entity Too Large\r\n"
                b"Connection: close\r\nContent-Length: 0\r\n\r\n"
            )
            tx.loseConnection()
            return
        super().allHeadersReceived()  # type: ignore[no-untyped-call]

    def lineReceived(self, line: bytes) -> None:
        if not self._refused:
            super().lineReceived(line)  # type: ignore[no-untyped-call]

    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)


class _QuietSite(server.Site):
    """A Site without an access log line per request: health checks poll every few seconds.

    Server errors (5xx) are still logged, one line each."""

    def log(self, request: Any) -> None:
        code = getattr(request, "code", 200)
        if code >= 500:
            _log.warn(
                "{method} {path} answered {code}",
                method=(request.method or b"").decode("latin-1"),
                path=(request.uri or b"").decode("latin-1"),
                code=code,
            )


def make_site(routes: Mapping[str, Handler]) -> server.Site:
    """A quiet twisted.web Site serving ``routes`` (no access log; 5xx answers are logged)."""
    site = _QuietSite(Router(routes))  # type: ignore[no-untyped-call]
    site.protocol = LimitedChannel  # type: ignore[assignment,method-assign]
    site.displayTracebacks = False
    site.noisy = False
    return site


def healthz(is_ready: Callable[[], bool]) -> Handler:
    """Impala's ``/healthz``: 200 ``OK`` when ready, 503 ``Not Available`` otherwise."""

    def handler(_: WebRequest) -> Response:
        if is_ready():
            return Response.text("OK\n", 200)
        return Response.text("Not Available\n", 503)

    return handler


_PROM_NAME = re.compile(r"[^a-zA-Z0-9_:]")


def prometheus_name(name: str) -> str:
    """Impala key to Prometheus name: ``impala-server.ready`` -> ``impala_server_ready``."""
    prom = _PROM_NAME.sub("_", name)
    return prom if not prom[:1].isdigit() else f"_{prom}"


def prometheus_text(
    metrics: Mapping[str, object], descriptions: Mapping[str, str] | None = None
) -> bytes:
    """Render flat metrics as Prometheus text (HELP, TYPE and value lines; all gauges).

    Impala's dotted names become underscores, and as every series is a gauge a
    ``_total`` suffix (Prometheus keeps it for counters) is dropped:
    ``cluster-membership.backends.total`` is ``cluster_membership_backends``.
    Booleans become 0/1; the HELP text is
    ``descriptions[name]`` or the Impala key itself, so every series says where it
    comes from (``promtool check metrics`` wants a HELP line for each). Values that
    are not numbers are skipped, as Impala skips property metrics."""
    lines = []
    for name in sorted(metrics):
        value = metrics[name]
        if not isinstance(value, int | float):
            continue
        prom = prometheus_name(name)
        if prom.endswith("_total") and prom != "_total":
            prom = prom.removesuffix("_total")  # a gauge, and `_total` is for counters
        number = int(value) if isinstance(value, bool) else value
        text = (descriptions or {}).get(name) or f"Impala metric {name}"
        text = text.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {prom} {text}")
        lines.append(f"# TYPE {prom} gauge")
        lines.append(f"{prom} {number}")
    return ("\n".join(lines) + "\n").encode()
