"""The stats socket with the real socat, and the HTTP stats page, CSV and /metrics."""

from __future__ import annotations

import base64
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from haconfig import model
from proxy.checks.testing import new_reactor, pump
from proxy.stats import HEADER, Level, StatsHttpService, StatsSocketService
from proxy.stats.testing import World, make_world

LOOP = "127.0.0.1"


@pytest.fixture
def world() -> Iterator[World]:
    w = make_world()
    w.state.clock = new_reactor()
    yield w
    reactor: Any = w.state.clock
    reactor.disconnectAll()
    reactor.iterate(0)


def run(reactor: Any, argv: list[str], stdin: bytes) -> bytes:
    """Run a client process to completion while the reactor serves it (bounded: 10 s)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    pump(reactor, lambda: proc.poll() is not None, timeout=10)
    out = proc.stdout.read()
    proc.stdout.close()
    assert proc.returncode == 0
    return out


def socket_service(world: World, tmp_path: Path, level: Level) -> StatsSocketService:
    service = StatsSocketService(
        str(tmp_path / "admin.sock"), level, 0o600, world.state, world.state.clock
    )
    service.startService()
    return service


def stop(world: World, service: Any) -> None:
    """Stop a service and let the reactor finish closing its ports."""
    d = service.stopService()
    done: list[object] = []
    d.addBoth(done.append)
    pump(world.state.clock, lambda: bool(done), timeout=5)


def socat(world: World, service: StatsSocketService, stdin: bytes) -> bytes:
    return run(world.state.clock, ["socat", "stdio", f"unix-connect:{service.path}"], stdin)


def test_socat_one_shot_show_stat(world: World, tmp_path: Path) -> None:
    """``echo "show stat" | socat stdio unix:...`` gets the CSV ending with an empty line."""
    service = socket_service(world, tmp_path, Level.OPERATOR)
    out = socat(world, service, b"show stat\n").decode()
    assert out.startswith(HEADER)
    assert out.endswith(",\n\n")
    assert [line.split(",")[1] for line in out.splitlines()[1:-1]] == [
        "FRONTEND",
        "a",
        "b",
        "c",
        "BACKEND",
    ]
    assert Path(service.path).stat().st_mode & 0o777 == 0o600
    stop(world, service)
    assert not Path(service.path).exists()


def test_socat_operator_denied_admin_allowed(world: World, tmp_path: Path) -> None:
    """Through socat an operator socket says ``Permission denied``; an admin one obeys."""
    operator = socket_service(world, tmp_path, Level.OPERATOR)
    assert socat(world, operator, b"disable server be/a\n") == b"Permission denied\n\n"
    stop(world, operator)
    admin = socket_service(world, tmp_path, Level.ADMIN)
    assert socat(world, admin, b"disable server be/a\n") == b"\n"
    assert b" 1 5 5 " in socat(world, admin, b"show servers state be\n")
    stop(world, admin)


def test_socat_prompt_mode(world: World, tmp_path: Path) -> None:
    """In prompt mode several commands share one connection until ``quit``."""
    service = socket_service(world, tmp_path, Level.ADMIN)
    out = socat(world, service, b"prompt\nset weight be/a 3\nget weight be/a\nquit\n")
    assert out == b"\n> \n> 3 (initial 5)\n\n> "
    stop(world, service)


def test_socat_without_newline(world: World, tmp_path: Path) -> None:
    """A command sent without newline (``echo -n``) is answered when socat half-closes."""
    service = socket_service(world, tmp_path, Level.USER)
    assert socat(world, service, b"get weight be/b") == b"1 (initial 1)\n\n"
    stop(world, service)


def http_service(world: World, **stats: Any) -> tuple[StatsHttpService, str]:
    proxy = model.Proxy(
        kind=model.SectionKind.LISTEN,
        name="stats",
        mode=model.Mode.HTTP,
        binds=(model.Bind(LOOP, 0),),
        stats=model.StatsPage(enabled=True, **stats),
        http_requests=(
            model.Directive(
                "http-request",
                ("use-service", "prometheus-exporter", "if", "{", "path", "/metrics", "}"),
            ),
        ),
    )
    service = StatsHttpService(proxy, world.state, world.state.clock)
    service.startService()
    port = service.ports[0].getHost().port
    return service, f"http://{LOOP}:{port}"


def fetch(world: World, url: str, auth: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` from a thread while the reactor serves it."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())

    def get() -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    with ThreadPoolExecutor(1) as pool:
        future: Future[tuple[int, dict[str, str], bytes]] = pool.submit(get)
        pump(world.state.clock, future.done, timeout=10)
        return future.result()


def test_http_stats_page_and_csv(world: World) -> None:
    """``stats uri`` serves the HTML page with each server, ``;csv`` the CSV, with refresh."""
    service, base = http_service(world, uri="/stats", refresh=5000)
    status, headers, body = fetch(world, base + "/stats")
    assert status == 200
    assert headers["Refresh"] == "5"
    page = body.decode()
    assert "<table" in page and ">a</td>" in page and "UP 1/3" in page and "no check" in page
    status, _, body = fetch(world, base + "/stats;csv")
    assert status == 200 and body.decode().startswith(HEADER)
    assert fetch(world, base + "/elsewhere")[0] == 503
    stop(world, service)


def test_http_stats_auth(world: World) -> None:
    """With ``stats auth`` the page needs Basic credentials (401 and a realm otherwise)."""
    service, base = http_service(world, uri="/stats", auth=("admin:s3cret",))
    status, headers, _ = fetch(world, base + "/stats")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="HAProxy Statistics"'
    assert fetch(world, base + "/stats", auth="admin:wrong")[0] == 401
    assert fetch(world, base + "/stats", auth="admin:s3cret")[0] == 200
    stop(world, service)


def test_metrics_pass_promtool(world: World, tmp_path: Path) -> None:
    """``/metrics`` uses HAProxy's exporter names and passes ``promtool check metrics``."""
    service, base = http_service(world, uri="/stats")
    status, headers, body = fetch(world, base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'haproxy_server_status{proxy="be",server="a",state="UP"} 1' in text
    assert 'haproxy_backend_current_sessions{proxy="be"} 0' in text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    stop(world, service)
