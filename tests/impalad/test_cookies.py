"""hs2-http's impala.auth cookie (backends/impalad/cookies.py), as Impala makes and checks it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from backends.impalad import transport
from backends.impalad.cookies import DELETE_COOKIE, CookieSigner
from backends.impalad.gen.TCLIService import ttypes as t
from tests.impalad.test_http_and_main import basic, make_server, post
from tests.impalad.thriftmsg import call, reply


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def _value(set_cookie: str) -> str:
    """The cookie a client returns for a Set-Cookie value."""
    return set_cookie.split(";", 1)[0]


def test_the_cookie_has_impalas_form_and_verifies() -> None:
    """<web-safe base64 HMAC-SHA256>&u=<user>&t=<ms>&r=<random>;HttpOnly;Max-Age=N;Secure."""
    clock = Clock()
    signer = CookieSigner(60, key=b"k" * 32, now_ms=clock)
    made = signer.make("alice@EXAMPLE.TEST")
    name, _, rest = _value(made).partition("=")
    signature, _, value = rest.partition("&")
    assert name == "impala.auth" and len(signature) == 44
    assert len(base64.urlsafe_b64decode(signature)) == 32
    assert value.startswith("u=alice@EXAMPLE.TEST&t=1000000&r=")
    assert made.endswith(";HttpOnly;Max-Age=60;Secure")
    assert not CookieSigner(60, secure=False).make("x").endswith("Secure")
    assert signer.check(f"other=1; {_value(made)}") == ("alice@EXAMPLE.TEST", "")
    assert signer.check(f'impala.auth="{rest}"')[0] == "alice@EXAMPLE.TEST"


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda c: c.replace("u=alice", "u=mallory"), "The signature is incorrect."),
        (lambda c: c.split("&", 1)[0], "The cookie has an invalid format."),
        (lambda c: "impala.auth=!!!&u=a&t=1&r=2", "Unable to decode base64 signature."),
        (lambda c: "impala.auth=YWJj&u=a&t=1&r=2", "Signature is an incorrect length."),
        (lambda c: "session=1", "Did not find expected cookie name: impala.auth"),
    ],
)
def test_a_bad_cookie_is_refused_with_impalas_reason(mutate: Any, why: str) -> None:
    signer = CookieSigner(60, key=b"k" * 32)
    assert signer.check(mutate(_value(signer.make("alice")))) == (None, why)


def test_another_coordinators_cookie_and_an_old_one_are_refused() -> None:
    """Each impalad signs with its own random key; a cookie lives --max_cookie_lifetime_s."""
    clock = Clock()
    a, b = CookieSigner(60, now_ms=clock), CookieSigner(60, now_ms=clock)
    cookie = _value(a.make("alice"))
    assert b.check(cookie) == (None, "The signature is incorrect.")
    clock.ms += 60_000
    assert a.check(cookie)[0] == "alice"
    clock.ms += 1
    assert a.check(cookie) == (None, "Cookie is past its max lifetime.")


def _set_cookies(request: Any) -> list[str]:
    return [v.decode() for v in request.responseHeaders.getRawHeaders(b"set-cookie") or []]


def test_hs2_http_authenticates_once_then_rides_the_cookie() -> None:
    """A checked password earns a cookie; the next call with only the cookie is that user;
    another impalad's cookie is deleted and the call falls back to its credentials, or
    to a 401 the client answers by authenticating again. The counters say which."""
    server = make_server()
    checked: list[str] = []

    def check(user: str, password: str) -> bool:
        checked.append(user)
        return password == "pw"

    signer = CookieSigner(3600)
    resource = transport.ThriftHttpResource(
        server, check, cookies=signer, require_auth=True, basic_allowed=True
    )
    first = post(resource, call("OpenSession", t.TOpenSessionReq(5)), auth=basic("eve", "pw"))
    (made,) = _set_cookies(first)
    assert reply("OpenSession", b"".join(first.written)).status.statusCode == 0
    again = post(resource, call("OpenSession", t.TOpenSessionReq(5)), cookie=_value(made))
    assert again.responseCode in (None, 200) and not _set_cookies(again)
    assert checked == ["eve"]  # the second call was not checked again
    users = sorted(s.engine_session.user for s in server.sessions.values())
    assert users == ["eve", "eve"]
    foreign = _value(CookieSigner(3600).make("eve"))
    bounced = post(resource, call("OpenSession", t.TOpenSessionReq(5)), cookie=foreign)
    assert bounced.responseCode == 401 and _set_cookies(bounced) == [DELETE_COOKIE]
    fallback = post(
        resource,
        call("OpenSession", t.TOpenSessionReq(5)),
        cookie=foreign,
        auth=basic("eve", "pw"),
    )
    cookies = _set_cookies(fallback)
    assert cookies[0] == DELETE_COOKIE and cookies[1].startswith("impala.auth=")
    metrics = server.metrics()
    prefix = "impala.thrift-server.hiveserver2-http-frontend"
    assert metrics[f"{prefix}.total-cookie-auth-success"] == 1
    assert metrics[f"{prefix}.total-cookie-auth-failure"] == 2


def test_no_cookie_without_checked_credentials_or_with_lifetime_0() -> None:
    """Without a password file or Kerberos nothing is checked, so no cookie is issued;
    --max_cookie_lifetime_s=0 turns cookies off (as Impala)."""
    from backends.impalad import main
    from backends.impalad.flags import flag_set

    assert main._cookies(flag_set().parse([]), checked=False) is None
    assert main._cookies(flag_set().parse(["--max_cookie_lifetime_s=0"]), checked=True) is None
    signer = main._cookies(flag_set().parse(["--nocookie_require_secure"]), checked=True)
    assert signer is not None and not signer.secure and signer.lifetime_s == 86400
