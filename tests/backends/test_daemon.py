"""The daemons' shared main() parts: flag checks, parsing with --help, web metric pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.common import daemon, web
from backends.common.flags import FlagError, Flags, FlagSet


def make() -> FlagSet:
    fs = FlagSet("testd")
    fs.define("port", 24000, "a port")
    fs.define("period_ms", 100, "a period")
    fs.define("ssl_server_certificate", "", "cert")
    fs.define("ssl_private_key", "", "key")
    fs.define("ssl_client_ca_certificate", "", "ca")
    return fs


def parse(*args: str) -> Flags:
    return make().parse(list(args))


def test_port_accepts_1_to_65535_and_zero_only_when_allowed() -> None:
    """A port flag is 1..65535; 0 passes only with allow_zero; errors name the flag."""
    assert daemon.port(parse("--port=65535"), "port") == 65535
    assert daemon.port(parse("--port=0"), "port", allow_zero=True) == 0
    for bad in ("0", "65536", "-1"):
        with pytest.raises(FlagError, match=f"--port is not a port: {bad}"):
            daemon.port(parse(f"--port={bad}"), "port")


def test_positive_and_positive_ms() -> None:
    """Positive flags refuse 0 and below, naming flag and value; _ms ones come in seconds."""
    assert daemon.positive(parse("--period_ms=7"), "period_ms") == 7
    assert daemon.positive_ms(parse("--period_ms=250"), "period_ms") == 0.25
    with pytest.raises(FlagError, match="--period_ms must be positive, got 0"):
        daemon.positive_ms(parse("--period_ms=0"), "period_ms")


def test_tls_config_turns_bad_tls_flags_into_flag_errors(tmp_path: Path) -> None:
    """A certificate without its key, or an unreadable file, is a FlagError."""
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert not daemon.tls_config(parse()).serves_tls
    with pytest.raises(FlagError, match="go together"):
        daemon.tls_config(parse(f"--ssl_server_certificate={cert}"))
    with pytest.raises(FlagError, match="cannot read TLS file"):
        daemon.tls_config(parse(f"--ssl_client_ca_certificate={tmp_path / 'missing'}"))


def test_build_prints_usage_for_help_words_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """A help word prints the usage and returns 0 without making anything."""
    made: list[Flags] = []
    assert daemon.build(make(), ["--help"], made.append) == 0
    assert daemon.build(make(), ["-h"], made.append, help_words=("-h",)) == 0
    assert made == []
    assert capsys.readouterr().out.count("usage: testd") == 2


def test_build_reports_flag_errors_as_program_colon_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad flag, or a FlagError raised by make, prints '<program>: <error>' and returns 2."""
    assert daemon.build(make(), ["--nope=1"], lambda flags: flags) == 2
    assert capsys.readouterr().err.startswith("testd: ")

    def refuse(flags: Flags) -> object:
        raise FlagError("--port is not a port: 0")

    assert daemon.build(make(), ["--port=0"], refuse) == 2
    assert capsys.readouterr().err == "testd: --port is not a port: 0\n"


def test_build_returns_what_make_made() -> None:
    """With good flags, build hands back make's result."""
    top = daemon.build(make(), ["--port=1"], lambda flags: ("made", flags.get_int("port")))
    assert top == ("made", 1)


def test_metric_group_is_impalas_json_shape() -> None:
    """Response.metric_group lists metrics sorted by key in one named group; gauges add kind."""
    plain = web.Response.metric_group("statestore", {"b": 2, "a": "x"})
    assert plain.content_type == "application/json"
    assert json.loads(plain.body) == {
        "metric_group": {
            "name": "statestore",
            "metrics": [{"name": "a", "value": "x"}, {"name": "b", "value": 2}],
            "child_groups": [],
        }
    }
    gauges = json.loads(web.Response.metric_group("impala-server", {"n": 1}, gauges=True).body)
    assert gauges["metric_group"]["metrics"] == [
        {"name": "n", "value": 1, "kind": "GAUGE", "description": "n"}
    ]


def test_prometheus_response_is_text_0_0_4_of_numbers_only() -> None:
    """Response.prometheus renders numeric metrics as Prometheus text 0.0.4, skipping strings."""
    answer = web.Response.prometheus({"a.count": 3, "name": "x"})
    assert answer.status == 200
    assert answer.content_type == "text/plain; version=0.0.4"
    assert b"a_count 3" in answer.body and b"name" not in answer.body


def test_guarded_amp_closes_garbage_with_one_line() -> None:
    """Bytes that are not AMP end that connection (aborted) with one info line naming
    the peer, instead of an unhandled-error traceback; later bytes are ignored."""
    from typing import Any

    from twisted.internet.testing import StringTransport
    from twisted.logger import LogEvent, globalLogPublisher

    from backends.common.rpc import GuardedAMP

    events: list[LogEvent] = []
    observer: Any = events.append
    globalLogPublisher.addObserver(observer)
    try:
        proto: Any = GuardedAMP()  # type: ignore[no-untyped-call]
        tx = StringTransport()
        proto.makeConnection(tx)
        proto.dataReceived(b"\x00\x00")  # an empty box: AMP raises NoEmptyBoxes
        proto.dataReceived(b"more garbage")
    finally:
        globalLogPublisher.removeObserver(observer)
    assert tx.disconnecting
    mine = [e for e in events if "not AMP" in e.get("log_format", "")]
    assert len(mine) == 1 and "NoEmptyBoxes" in mine[0]["error"]
    assert not [e for e in events if "log_failure" in e]


def test_web_port_refuses_a_huge_body_at_once() -> None:
    """A request announcing a body over MAX_BODY gets 413 and the connection closes,
    without the daemon waiting for the body."""
    from twisted.internet.testing import StringTransport

    from backends.common import web

    site = web.make_site({"/healthz": web.healthz(lambda: True)})
    proto = site.buildProtocol(None)
    tx = StringTransport()
    proto.makeConnection(tx)
    proto.dataReceived(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\nabc")
    assert tx.value().startswith(b"HTTP/1.1 413 ")
    assert tx.disconnecting
