"""The tcplog line, the Connect-from line and their syslog / stdout framing (spec 3.5)."""

from __future__ import annotations

import io
import socket
import time

from haconfig.model import LogTarget
from proxy.tcplog import (
    Logger,
    SessionRecord,
    effective_targets,
    format_connect,
    format_tcplog,
    parse_udp_address,
    rfc3164,
)

SAMPLE = "127.0.0.1:49000 [22/Nov/2026:00:00:10.870] rr_w31 rr_w31/a 1/0/0 9 -- 1/1/0/0/0 0/0"


def _epoch(hour: int, minute: int, second: int, ms: int) -> float:
    return time.mktime((2026, 11, 22, hour, minute, second, 0, 0, -1)) + ms / 1000


def _sample() -> SessionRecord:
    return SessionRecord(
        client_ip="127.0.0.1",
        client_port=49000,
        accept_time=_epoch(0, 0, 10, 870),
        frontend="rr_w31",
        backend="rr_w31",
        server="a",
        tw=1,
        tc=0,
        tt=0,
        bytes_out=9,
        termination="--",
        actconn=1,
        feconn=1,
    )


def test_tcplog_line_matches_haproxy_sample() -> None:
    """A record of the spec's sample session formats to exactly HAProxy's line."""
    assert format_tcplog(_sample()) == SAMPLE


def test_syslog_framing_matches_haproxy_sample() -> None:
    """RFC3164 framing is <PRI>Mmm dd HH:MM:SS tag[pid]: with local2.info = <150>."""
    line = rfc3164(SAMPLE, 18, 6, "haproxy", 18603, _epoch(0, 0, 10, 870))
    assert line == "<150>Nov 22 00:00:10 haproxy[18603]: " + SAMPLE


def test_redispatch_and_queue_timeout_lines() -> None:
    """A redispatched retry shows +N and a queue timeout shows <NOSRV> with sQ."""
    rec = _sample()
    rec.frontend = rec.backend = "rd"
    rec.server, rec.tw, rec.tc, rec.tt, rec.bytes_out = "good", 1, 0, 0, 13
    rec.retries, rec.redispatched = 1, True
    assert " rd rd/good 1/0/0 13 -- 1/1/0/0/+1 0/0" in format_tcplog(rec)
    q = _sample()
    q.frontend = q.backend = "first"
    q.server, q.tw, q.tc, q.tt, q.bytes_out, q.termination = "<NOSRV>", 5002, -1, 5001, 0, "sQ"
    q.actconn, q.feconn, q.beconn, q.backend_queue = 7, 7, 6, 1
    assert format_tcplog(q).endswith("first first/<NOSRV> 5002/-1/5001 0 sQ 7/7/6/0/0 0/1")


def test_connect_from_line() -> None:
    """Without tcplog a frontend logs HAProxy's Connect-from line at accept."""
    line = format_connect(("127.0.0.1", 4000), ("127.0.0.1", 5000), "main")
    assert line == "Connect from 127.0.0.1:4000 to 127.0.0.1:5000 (main/TCP)"


def test_udp_syslog_target_receives_framed_line() -> None:
    """A UDP log target gets one datagram per line with the facility's priority."""
    catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    catcher.bind(("127.0.0.1", 0))
    catcher.settimeout(2)
    port = catcher.getsockname()[1]
    logger = Logger([LogTarget(f"127.0.0.1:{port}", facility="local0")], pid=42, tag="lb")
    try:
        logger.info("hello")
        data = catcher.recv(2048).decode()
    finally:
        logger.close()
        catcher.close()
    assert data.startswith("<134>") and data.endswith(" lb[42]: hello")


def test_stdout_raw_and_level_filter() -> None:
    """``format raw`` writes the bare message; a max level below info drops it."""
    out = io.StringIO()
    raw = Logger([LogTarget("stdout", facility="local0", format="raw")], stream_for=lambda _: out)
    raw.info("bare")
    quiet = Logger(
        [LogTarget("stdout", facility="local0", level="notice")], stream_for=lambda _: out
    )
    quiet.info("dropped")
    assert out.getvalue() == "bare\n"


def test_log_global_expands_and_udp_address_parses() -> None:
    """``log global`` means the global targets; ip without port means port 514."""
    g = LogTarget("127.0.0.1:5514", facility="local2")
    assert effective_targets([LogTarget("global")], [g]) == [g]
    assert parse_udp_address("10.0.0.1") == ("10.0.0.1", 514)
    assert parse_udp_address("udp@127.0.0.1:1234") == ("127.0.0.1", 1234)
