"""The HTTP stats resource in memory: routing, auth, CSV, metrics path and escaping."""

from __future__ import annotations

import base64
from typing import Any

from twisted.web.test.requesthelper import DummyRequest

from haconfig import model
from proxy.server import Server
from proxy.stats import HEADER, StatsResource, metrics_path
from proxy.stats.testing import make_world


def get(resource: StatsResource, uri: bytes, auth: str | None = None) -> tuple[int, Any, bytes]:
    request: Any = DummyRequest([])
    request.uri = uri
    request.path = uri.split(b"?")[0]
    if auth is not None:
        request.requestHeaders.addRawHeader(
            b"authorization", b"Basic " + base64.b64encode(auth.encode())
        )
    res: Any = resource
    body: bytes = res.render(request)
    return request.responseCode or 200, request.responseHeaders, body


def test_default_uri_and_csv() -> None:
    """Without ``stats uri`` the page is at ``/haproxy?stats`` and the CSV at ``;csv``."""
    resource = StatsResource(make_world().state)
    status, _, body = get(resource, b"/haproxy?stats")
    assert status == 200 and b"<table" in body
    status, headers, body = get(resource, b"/haproxy?stats;csv")
    assert body.decode().startswith(HEADER)
    assert headers.getRawHeaders(b"content-type") == [b"text/plain"]


def test_other_paths_get_503() -> None:
    """Anything outside the stats uri gets 503, as a stats section without servers does."""
    status, _, _ = get(StatsResource(make_world().state, uri="/stats"), b"/favicon.ico")
    assert status == 503


def test_auth_checked_before_page() -> None:
    """``stats auth`` users get in; others get 401 with the realm."""
    resource = StatsResource(make_world().state, auth=("ops:pw",), realm="Impala LB")
    status, headers, _ = get(resource, b"/haproxy?stats")
    assert status == 401
    assert headers.getRawHeaders(b"www-authenticate") == [b'Basic realm="Impala LB"']
    assert get(resource, b"/haproxy?stats", auth="ops:pw")[0] == 200


def test_metrics_not_behind_stats_auth() -> None:
    """The exporter path answers without the stats credentials (http-request runs first)."""
    resource = StatsResource(make_world().state, auth=("ops:pw",), metrics="/metrics")
    status, _, body = get(resource, b"/metrics")
    assert status == 200 and b"haproxy_server_status" in body


def test_metrics_path_from_http_request_rule() -> None:
    """The exporter path is read from ``http-request use-service ... if { path /x }``."""
    rule = ("use-service", "prometheus-exporter", "if", "{", "path", "/prom", "}")
    proxy = model.Proxy(
        kind=model.SectionKind.LISTEN,
        name="stats",
        http_requests=(model.Directive("http-request", rule),),
    )
    assert metrics_path(proxy) == "/prom"
    bare = model.Proxy(
        kind=model.SectionKind.LISTEN,
        name="m",
        http_requests=(model.Directive("http-request", rule[:2]),),
    )
    assert metrics_path(bare) == "*"


def test_html_escapes_names() -> None:
    """Server names are HTML-escaped in the page."""
    world = make_world()
    clock: Any = world.reactor
    evil = Server("<b>x</b>", clock=clock, backend="be", puid=9, host="127.0.0.9", port=1)
    world.state.proxies[1].backend.servers = lambda: [evil]  # type: ignore[union-attr]
    _, _, body = get(StatsResource(world.state), b"/haproxy?stats")
    assert b"<b>x</b>" not in body and b"&lt;b&gt;x&lt;/b&gt;" in body
