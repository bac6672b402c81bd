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
from collections.abc import Callable, Mapping
from typing import Any

from twisted.web import resource, server


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
        args = {
            k.decode("latin-1"): [v.decode("latin-1") for v in vs]
            for k, vs in (request.args or {}).items()
        }
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


def make_site(routes: Mapping[str, Handler]) -> server.Site:
    """A quiet twisted.web Site serving ``routes``."""
    site = server.Site(Router(routes))
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


def prometheus_text(metrics: Mapping[str, float | int | bool]) -> bytes:
    """Render flat metrics as Prometheus text; Impala's dotted names become underscores."""
    lines = []
    for name in sorted(metrics):
        value = metrics[name]
        prom = name.replace(".", "_").replace("-", "_")
        number = int(value) if isinstance(value, bool) else value
        lines.append(f"# TYPE {prom} gauge")
        lines.append(f"{prom} {number}")
    return ("\n".join(lines) + "\n").encode()
