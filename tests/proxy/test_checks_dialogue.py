"""tcp-check, httpchk and agent dialogues on bytes alone."""

from __future__ import annotations

import pytest

from haconfig.model import CheckRule, Option
from proxy.checks import (
    CheckConfigError,
    CheckStatus,
    HttpCheckDialogue,
    HttpCheckPlan,
    TcpCheckDialogue,
    TcpCheckPlan,
    parse_agent_line,
)


def tcp(*rules: tuple[str, ...]) -> TcpCheckDialogue:
    return TcpCheckDialogue(TcpCheckPlan.compile([CheckRule(r[0], r[1:]) for r in rules]))


def test_send_then_expect_string_ok() -> None:
    """send + expect string: the request goes out and a matching reply gives L7OK code 0."""
    d = tcp(("send", "PING\\r\\n"), ("expect", "string", "+PONG"))
    out, result = d.start()
    assert (out, result) == (b"PING\r\n", None)
    assert d.feed(b"+PO") == (b"", None)
    _, result = d.feed(b"NG\r\n")
    assert result is not None
    assert (result.status, result.code) == (CheckStatus.L7OK, 0)


def test_expect_not_matched_before_close_is_l7rsp() -> None:
    """A reply that never matches, then EOF, is L7RSP naming the step."""
    d = tcp(("send", "x"), ("expect", "string", "OK"))
    d.start()
    d.feed(b"ERR")
    result = d.eof()
    assert (result.status, result.code) == (CheckStatus.L7RSP, None)
    assert result.info == "TCPCHK did not match content 'OK' at step 2"


def test_expect_timeout_is_l7tout() -> None:
    """No reply in time is L7TOUT."""
    d = tcp(("expect", "string", "OK"))
    d.start()
    result = d.timeout()
    assert result.status is CheckStatus.L7TOUT
    assert result.info == " at step 1 of tcp-check (expect string 'OK')"


def test_negated_expect_fails_on_match() -> None:
    """``expect ! string`` fails with L7RSP as soon as the pattern appears."""
    d = tcp(("expect", "!", "string", "ERR"))
    d.start()
    _, result = d.feed(b"-ERR down")
    assert result is not None and result.status is CheckStatus.L7RSP


def test_binary_send_and_expect() -> None:
    """send-binary and expect binary work on hex strings."""
    d = tcp(("send-binary", "0a0b"), ("expect", "binary", "ff00"))
    assert d.start() == (b"\n\x0b", None)
    _, result = d.feed(b"\x01\xff\x00")
    assert result is not None and result.status is CheckStatus.L7OK


def test_rstring_expect() -> None:
    """expect rstring matches a regex."""
    d = tcp(("expect", "rstring", "^role:master"))
    d.start()
    _, result = d.feed(b"role:master\r\n")
    assert result is not None and result.status is CheckStatus.L7OK


def test_two_round_trips() -> None:
    """Two send/expect pairs run in order, the second send after the first match."""
    d = tcp(("send", "A"), ("expect", "string", "1"), ("send", "B"), ("expect", "string", "2"))
    assert d.start() == (b"A", None)
    assert d.feed(b"1") == (b"B", None)
    _, result = d.feed(b"2")
    assert result is not None and result.status is CheckStatus.L7OK


def test_connect_rule_sets_port() -> None:
    """A first ``tcp-check connect port N ssl`` sets the check port and TLS."""
    plan = TcpCheckPlan.compile([CheckRule("connect", ("port", "6379", "ssl"))])
    assert (plan.port, plan.ssl, plan.steps) == (6379, True, ())


def test_rules_without_expect_are_l4ok() -> None:
    """A connect-only rule set passes as L4OK once connected."""
    d = tcp(("connect",))
    _, result = d.start()
    assert result is not None and result.status is CheckStatus.L4OK


def test_bad_hex_refused() -> None:
    """A send-binary that is not hex is a clear config error."""
    with pytest.raises(CheckConfigError, match="hexadecimal"):
        TcpCheckPlan.compile([CheckRule("send-binary", ("zz",))])


def http(option: tuple[str, ...] = (), *rules: tuple[str, ...]) -> HttpCheckDialogue:
    plan = HttpCheckPlan.compile(
        Option("httpchk", True, option), [CheckRule(r[0], r[1:]) for r in rules]
    )
    return HttpCheckDialogue(plan)


def test_httpchk_default_request() -> None:
    """Bare ``option httpchk`` sends ``OPTIONS / HTTP/1.0``."""
    out, _ = http().start()
    assert out.startswith(b"OPTIONS / HTTP/1.0\r\n")
    assert out.endswith(b"\r\n\r\n")


def test_http_check_send_request() -> None:
    """http-check send meth/uri/ver/hdr builds the request line and headers."""
    out, _ = http(
        (), ("send", "meth", "GET", "uri", "/healthz", "ver", "HTTP/1.1", "hdr", "Host", "lb")
    ).start()
    assert out.startswith(b"GET /healthz HTTP/1.1\r\nHost: lb\r\n")


def test_http_200_is_l7ok_with_code() -> None:
    """A 200 reply is L7OK with check_code 200 and an empty last_chk, as HAProxy shows."""
    d = http(("GET", "/healthz"))
    d.start()
    _, result = d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert result is not None
    assert (result.status, result.code, result.info) == (CheckStatus.L7OK, 200, "")


def test_http_404_is_l7sts() -> None:
    """A 404 is L7STS code 404 with the reason phrase as info."""
    d = http(("GET", "/nope"))
    d.start()
    _, result = d.feed(b"HTTP/1.0 404 File not found\r\n\r\n")
    assert result is not None
    assert (result.status, result.code, result.info) == (
        CheckStatus.L7STS,
        404,
        "File not found",
    )


def test_expect_status_range_accepts_404() -> None:
    """``http-check expect status 200-499`` turns a 404 into L7OK."""
    d = http(("GET", "/nope"), ("expect", "status", "200-499"))
    d.start()
    _, result = d.feed(b"HTTP/1.0 404 File not found\r\n\r\n")
    assert result is not None and result.status is CheckStatus.L7OK


def test_non_http_reply_is_l7rsp() -> None:
    """A reply that is not HTTP is L7RSP."""
    d = http()
    d.start()
    _, result = d.feed(b"SSH-2.0-OpenSSH\r\n")
    assert result is not None and result.status is CheckStatus.L7RSP


def test_http_timeout_is_l7tout() -> None:
    """No status line in time is L7TOUT."""
    d = http()
    d.start()
    d.feed(b"HTTP/1.1 2")
    assert d.timeout().status is CheckStatus.L7TOUT


def test_http_body_string_expect() -> None:
    """``http-check expect string`` waits for the body and matches it."""
    d = http(("GET", "/"), ("expect", "string", "ready"))
    d.start()
    assert d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nrea")[1] is None
    _, result = d.feed(b"dy")
    assert result is not None and result.status is CheckStatus.L7OK


def test_agent_words() -> None:
    """Agent words: weight %, maxconn, admin state and health with a #reason."""
    reply = parse_agent_line(b"75%, maxconn:30 drain down #db gone\n")
    assert reply.weight_pct == 75
    assert reply.maxconn == 30
    assert reply.admin == "drain"
    assert reply.health == "down"
    assert reply.reason == "db gone"


def test_agent_hash_inside_word_is_unknown() -> None:
    """``fail#db`` is an unknown word and ignored, as in HAProxy."""
    reply = parse_agent_line(b"fail#db unreachable\n")
    assert reply.health is None
    assert reply.unknown == ("fail#db", "unreachable")


@pytest.mark.parametrize("word", ["up", "down", "fail", "stopped"])
def test_agent_health_words(word: str) -> None:
    """Each health word of the agent is recognised."""
    assert parse_agent_line(word.encode() + b"\r\n").health == word


@pytest.mark.parametrize("word", ["ready", "drain", "maint"])
def test_agent_admin_words(word: str) -> None:
    """Each admin word of the agent is recognised, case-insensitively."""
    assert parse_agent_line(word.upper().encode()).admin == word
