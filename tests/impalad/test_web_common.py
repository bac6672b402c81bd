"""The daemons' shared web helpers: a quiet access log and Prometheus text promtool accepts."""

from __future__ import annotations

import subprocess
from typing import Any

from twisted.logger import LogEvent, globalLogPublisher
from twisted.web.test.requesthelper import DummyRequest

from backends.common import web
from tests.support.impalad import Impalad


def _events_while(fn: Any) -> list[LogEvent]:
    events: list[LogEvent] = []
    observer: Any = events.append
    globalLogPublisher.addObserver(observer)
    try:
        fn()
    finally:
        globalLogPublisher.removeObserver(observer)
    return events


def _log_one(site: Any, code: int) -> None:
    request: Any = DummyRequest([b"healthz"])
    request.uri = b"/healthz"
    request.code = code
    site.log(request)


def test_successful_gets_are_not_logged_but_server_errors_are() -> None:
    """make_site writes no access-log line for a 200 or 404, and one line for a 500."""
    site = web.make_site({"/healthz": web.healthz(lambda: True)})

    def ok_and_missing() -> None:
        _log_one(site, 200)
        _log_one(site, 404)

    assert _events_while(ok_and_missing) == []
    events = _events_while(lambda: _log_one(site, 500))
    assert len(events) == 1 and events[0]["code"] == 500


def test_prometheus_text_has_help_type_and_skips_strings() -> None:
    """Every series gets HELP and TYPE lines; booleans are 0/1; strings are skipped."""
    text = web.prometheus_text(
        {"impala-server.ready": True, "a.b": 2.5, "id": "x"},
        {"a.b": "the b of a"},
    ).decode()
    assert text.splitlines() == [
        "# HELP a_b the b of a",
        "# TYPE a_b gauge",
        "a_b 2.5",
        "# HELP impala_server_ready Impala metric impala-server.ready",
        "# TYPE impala_server_ready gauge",
        "impala_server_ready 1",
    ]


def test_promtool_accepts_impalad_metrics(impalad: Impalad) -> None:
    """promtool check metrics finds no problem in a real impalad's /metrics_prometheus."""
    status, body = impalad.get("/metrics_prometheus")
    assert status == 200 and b"# HELP " in body
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_router_answers_404_for_unknown_paths() -> None:
    """An unregistered path is a 404 naming it, not an exception."""
    router = web.Router({"/": lambda req: web.Response.text("ok")})
    request: Any = DummyRequest([b"nope"])
    request.path = b"/nope"
    body = router.render(request)
    assert request.responseCode == 404 and b"/nope" in body
