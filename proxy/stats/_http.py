"""HTTP statistics for a ``listen stats`` section: the HTML page, CSV and /metrics.

``stats enable`` / ``stats uri`` (default ``/haproxy?stats``) / ``stats refresh``
/ ``stats auth user:password`` / ``stats realm``: the page is rendered from
``templates/stats.html.j2``; ``<uri>;csv`` returns the ``show stat`` CSV, as
tools like the Prometheus haproxy_exporter expect. ``http-request use-service
prometheus-exporter if { path /metrics }`` serves Prometheus metrics (without
the stats auth, as HAProxy's http-request rules run before the stats page).

Wiring (the runtime, for a ``mode http`` proxy with ``stats enable``)::

    StatsHttpService(resolved_proxy, state, reactor).setServiceParent(app)
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import jinja2
from twisted.application.service import Service
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

import templates
from haconfig import model
from proxy.stats._cli import info_fields
from proxy.stats._csv import FIELDS, rows, show_stat
from proxy.stats._prometheus import CONTENT_TYPE, render_metrics
from proxy.stats._state import VERSION, StatsState

DEFAULT_URI = "/haproxy?stats"
DEFAULT_REALM = "HAProxy Statistics"
_PAGE_503 = (
    b"<html><body><h1>503 Service Unavailable</h1>\n"
    b"No server is available to handle this request.\n</body></html>\n"
)
_PAGE_401 = (
    b"<html><body><h1>401 Unauthorized</h1>\n"
    b"You need a valid user and password to access this content.\n</body></html>\n"
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.dirname(templates.__file__)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def metrics_path(proxy: model.Proxy) -> str | None:
    """The path of ``http-request use-service prometheus-exporter [if { path <p> }]``.

    ``"*"`` when the rule has no condition (every request goes to the exporter)."""
    for rule in proxy.http_requests:
        args = list(rule.args)
        if "use-service" not in args or "prometheus-exporter" not in args:
            continue
        if "path" in args and args.index("path") + 1 < len(args):
            return args[args.index("path") + 1]
        if "if" not in args and "unless" not in args:
            return "*"
    return None


def render_page(state: StatsState, *, uri: str = DEFAULT_URI, refresh: int | None = None) -> str:
    """The HTML stats page."""
    info = dict(info_fields(state))
    by_proxy: dict[str, list[dict[str, object]]] = {}
    for row in rows(state):
        full = {name: row.get(name, "") for name in FIELDS}
        by_proxy.setdefault(str(row["pxname"]), []).append(full)
    template = _env.get_template("stats.html.j2")
    return template.render(
        title="Statistics Report for impala-lb",
        node=info["node"],
        pid=info["Pid"],
        version=VERSION,
        uptime=info["Uptime"],
        refresh=refresh,
        csv_uri=uri + ";csv",
        proxies=[{"name": name, "rows": r} for name, r in by_proxy.items()],
    )


class StatsResource(Resource):
    """Answers every request of a stats section."""

    isLeaf = True

    def __init__(
        self,
        state: StatsState,
        *,
        uri: str = DEFAULT_URI,
        refresh_ms: int | None = None,
        auth: tuple[str, ...] = (),
        realm: str | None = None,
        metrics: str | None = None,
        enabled: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.state = state
        self.uri = uri
        self.refresh = (refresh_ms + 999) // 1000 if refresh_ms else None
        self.auth = {a.encode() for a in auth}
        self.realm = realm or DEFAULT_REALM
        self.metrics = metrics
        self.enabled = enabled

    @classmethod
    def from_proxy(cls, proxy: model.Proxy, state: StatsState) -> StatsResource:
        page = proxy.stats
        return cls(
            state,
            uri=page.uri or DEFAULT_URI,
            refresh_ms=page.refresh,
            auth=page.auth,
            realm=page.realm,
            metrics=metrics_path(proxy),
            enabled=bool(page.enabled or page.uri or page.auth),
        )

    def _authorized(self, request: Any) -> bool:
        if not self.auth:
            return True
        header = request.getHeader(b"authorization") or b""
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            return base64.b64decode(encoded.strip(), validate=True) in self.auth
        except (binascii.Error, ValueError):
            return False

    def render_GET(self, request: Any) -> bytes:
        target = request.uri.decode("latin-1")
        path = request.path.decode("latin-1")
        if self.metrics is not None and (self.metrics == "*" or path == self.metrics):
            request.setHeader(b"content-type", CONTENT_TYPE.encode())
            return render_metrics(self.state).encode()
        if not self.enabled or not target.startswith(self.uri):
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/html")
            return _PAGE_503
        if not self._authorized(request):
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", f'Basic realm="{self.realm}"'.encode())
            request.setHeader(b"content-type", b"text/html")
            return _PAGE_401
        request.setHeader(b"cache-control", b"no-cache")
        if ";csv" in target[len(self.uri) :]:
            request.setHeader(b"content-type", b"text/plain")
            return show_stat(self.state).encode()
        if self.refresh and ";norefresh" not in target:
            request.setHeader(b"refresh", str(self.refresh).encode())
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return render_page(self.state, uri=self.uri, refresh=self.refresh).encode()

    render_HEAD = render_GET


#: the stats page takes no request body; one announced larger than this is refused (413)
MAX_BODY = 64 * 1024


class _Discard:
    """Where a refused request's body goes."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _StatsRequest(Request):
    """A request that refuses a body over :data:`MAX_BODY` at once instead of waiting
    for bytes it would throw away: 413, then the connection closes."""

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self.content = _Discard()
            tx: Any = self.channel.transport if self.channel is not None else None
            if tx is not None:
                tx.write(
                    b"HTTP/1.1 413 Request Entity Too Large\r\n"
                    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
                )
                tx.loseConnection()
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]


class StatsHttpService(Service):
    """Listens on a stats section's ``bind`` lines and serves :class:`StatsResource`."""

    def __init__(self, proxy: model.Proxy, state: StatsState, reactor: Any) -> None:
        self.proxy = proxy
        self.reactor = reactor
        self.site = Site(StatsResource.from_proxy(proxy, state))
        self.site.requestFactory = _StatsRequest
        self.ports: list[Any] = []

    def startService(self) -> None:
        for bind in self.proxy.binds:
            host = bind.listen_host
            for port in bind.ports:
                self.ports.append(self.reactor.listenTCP(port, self.site, interface=host))
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        from twisted.internet.defer import gatherResults

        ports, self.ports = self.ports, []
        return gatherResults([p.stopListening() for p in ports])
