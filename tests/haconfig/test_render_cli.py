"""`impala-lb render`: description or live Impala in, a checked haproxy.cfg out."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from haconfig import parse_text
from haconfig.discover import DiscoveryError, backends_url, coordinators_from_json
from haconfig.layouts import Coordinator, layout, load_description
from haconfig.render import render
from haconfig.rendercli import haproxy_lint, main

GOLDEN = Path(__file__).parent / "golden"
FIXTURE = GOLDEN / "backends-real-impala.json"

# A tiny twisted.web server answering /backends?json with a file, as an impalad does.
SERVER = textwrap.dedent(
    """
    import sys
    from twisted.internet import reactor
    from twisted.web import resource, server

    body = open(sys.argv[1], "rb").read()

    class Backends(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            path, _, query = request.uri.partition(b"?")
            if path != b"/backends" or query != b"json":
                request.setResponseCode(404)
                return b"not found"
            request.setHeader(b"content-type", b"application/json")
            return body

    port = reactor.listenTCP(0, server.Site(Backends()), interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.callLater(60, reactor.stop)
    reactor.run()
    """
)


@pytest.fixture
def impala_web() -> Iterator[str]:
    """The base URL of a local web server serving real Impala's /backends?json."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(FIXTURE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, stdout=out)
    return code, out.getvalue()


def test_render_writes_the_layout_to_stdout() -> None:
    """`render cluster.toml` prints exactly the layout's rendered text."""
    code, text = _run([str(GOLDEN / "small.toml")])
    assert code == 0
    assert text == (GOLDEN / "small.cfg").read_text()


def test_render_check_output_writes_a_file_that_passes(tmp_path: Path) -> None:
    """`render --check -o FILE` validates with both checkers, then writes the file."""
    out = tmp_path / "haproxy.cfg"
    code, printed = _run(["--check", "-o", str(out), str(GOLDEN / "hue.toml")])
    assert (code, printed) == (0, "")
    assert out.read_text() == (GOLDEN / "hue.cfg").read_text()
    assert haproxy_lint(str(out)) == []


def test_render_check_refuses_a_file_haproxy_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A description whose certificate is missing fails --check (exit 1) and writes nothing."""
    desc = tmp_path / "c.toml"
    desc.write_text(
        '[[coordinator]]\nhost = "127.0.0.1"\n'
        f'[security]\ntls = "offload"\ncrt = "{tmp_path}/missing.pem"\n'
    )
    out = tmp_path / "haproxy.cfg"
    code, _ = _run(["--check", "-o", str(out), str(desc)])
    assert code == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "unable to stat SSL certificate" in err
    assert "nothing written" in err


def test_render_bad_description_exits_2_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt key gives exit status 2 and a message naming file and key."""
    desc = tmp_path / "c.toml"
    desc.write_text('[[coordinator]]\nhots = "127.0.0.1"\n')
    assert _run([str(desc)]) == (2, "")
    assert "c.toml: 'coordinator[0].host' is required" in capsys.readouterr().err


def test_render_without_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """With neither a description nor --from-impala, render explains what it needs."""
    assert _run([]) == (2, "")
    assert "--from-impala" in capsys.readouterr().err


def test_from_impala_lists_usable_coordinators_only(impala_web: str) -> None:
    """Discovery keeps coordinators (with or without the executor role), drops executor-only
    and quiescing daemons, and takes the web port from webserver_url."""
    code, text = _run(["--from-impala", impala_web])
    assert code == 0
    cfg = parse_text(text)
    shell = cfg.backend("impala_shell")
    assert shell is not None
    assert [(s.host, s.port) for s in shell.servers] == [
        ("127.0.0.11", 21050),
        ("127.0.0.12", 21050),
    ]
    assert [shell.server_params(s).port for s in shell.servers] == [25000, 25000]
    http = cfg.backend("impala_hs2_http")
    assert http is not None and [s.port for s in http.servers] == [28000, 28000]


def test_from_impala_with_a_description_keeps_its_frontends(impala_web: str) -> None:
    """--from-impala replaces only the coordinators of a given description."""
    code, text = _run(
        ["--from-impala", impala_web, "--hs2-port", "21051", str(GOLDEN / "small.toml")]
    )
    assert code == 0
    cfg = parse_text(text)
    assert [p.name for p in cfg.frontends] == ["impala_shell"]
    shell = cfg.backend("impala_shell")
    assert shell is not None
    assert [(s.host, s.port) for s in shell.servers] == [
        ("127.0.0.11", 21051),
        ("127.0.0.12", 21051),
    ]


def test_from_impala_unreachable_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """A coordinator that does not answer gives exit status 3 and says where it looked."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _run(["--from-impala", f"http://127.0.0.1:{port}"]) == (3, "")
    assert f"127.0.0.1:{port}/backends?json: cannot fetch" in capsys.readouterr().err


def test_backends_json_parser_follows_real_impala_fields() -> None:
    """The fixture shaped like real Impala yields its two non-quiescing coordinators."""
    coords = coordinators_from_json(FIXTURE.read_bytes())
    assert coords == (
        Coordinator("127.0.0.11", 21050, 28000, 25000),
        Coordinator("127.0.0.12", 21050, 28000, 25000),
    )


def test_minicluster_coordinators_on_one_host_get_offset_ports() -> None:
    """Several coordinators on one host get client ports offset like their web ports."""
    doc = b"""{"backends": [
      {"address": "localhost:27000", "webserver_url": "http://localhost:25000",
       "is_coordinator": true, "is_quiescing": false},
      {"address": "localhost:27001", "webserver_url": "http://localhost:25001",
       "is_coordinator": true, "is_quiescing": false},
      {"address": "localhost:27002", "webserver_url": "http://localhost:25002",
       "is_coordinator": false, "is_quiescing": false}]}"""
    assert [
        (c.host, c.hs2_port, c.hs2_http_port, c.web_port) for c in coordinators_from_json(doc)
    ] == [
        ("localhost", 21050, 28000, 25000),
        ("localhost", 21051, 28001, 25001),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not JSON"),
        (b'{"queries": []}', "no 'backends' list"),
        (b'{"backends": [1]}', "backends\\[0\\] is not an object"),
        (b'{"backends": [{"is_coordinator": true}]}', "neither address nor webserver_url"),
    ],
)
def test_backends_json_errors_are_clear(body: bytes, message: str) -> None:
    """A document that is not Impala's /backends JSON is refused with the reason."""
    with pytest.raises(DiscoveryError, match=message):
        coordinators_from_json(body)


def test_backends_url_accepts_a_bare_host_port() -> None:
    """`host:25000` and `http://host:25000/` both mean that impalad's /backends?json."""
    assert backends_url("127.0.0.1:25000") == "http://127.0.0.1:25000/backends?json"
    assert backends_url("https://h:25000/x") == "https://h:25000/backends?json"
    with pytest.raises(DiscoveryError):
        backends_url("ftp://h/")


def test_render_module_runs_as_a_program(tmp_path: Path) -> None:
    """`python -m haconfig.rendercli` works without the impala-lb dispatcher."""
    out = tmp_path / "x.cfg"
    proc = subprocess.run(
        [sys.executable, "-m", "haconfig.rendercli", "-o", str(out), str(GOLDEN / "small.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == render(layout(load_description(GOLDEN / "small.toml")))
