"""hs2-http's resource and impalad's service tree, in memory."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from backends.common.flags import FlagError
from backends.impalad import main, transport
from backends.impalad.flags import flag_set
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.gssapi_auth import expand_host, short_name
from backends.impalad.sasl import AuthenticationError
from backends.impalad.server import ImpalaServer
from backends.impalad.state import ServerIdentity
from backends.impalad.testing import FakeEngine, fake_session
from tests.impalad.thriftmsg import call, reply


def make_server() -> ImpalaServer:
    server = ImpalaServer(
        FakeEngine(),
        fake_session,
        lambda fn, *a: defer.maybeDeferred(fn, *a),
        task.Clock(),
        ServerIdentity("h", 1, 2, ""),
    )
    server.ready = True
    return server


def post(resource: Any, body: bytes, auth: str | None = None, cookie: str = "") -> Any:
    request: Any = DummyRequest([b"cliservice"])
    request.method = b"POST"
    request.content = io.BytesIO(body)
    if auth is not None:
        request.requestHeaders.setRawHeaders(b"authorization", [auth.encode()])
    if cookie:
        request.requestHeaders.setRawHeaders(b"cookie", [cookie.encode()])
    result = resource.render(request)
    if isinstance(result, bytes):
        request.write(result)
        request.finish()
    return request


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_http_post_runs_one_rpc_and_basic_user_is_session_user() -> None:
    """A POSTed OpenSession is answered as application/x-thrift; Basic's user owns the session."""
    server = make_server()
    resource = transport.ThriftHttpResource(server, lambda u, p: True)
    request = post(resource, call("OpenSession", t.TOpenSessionReq(5, "x")), basic("eve", "pw"))
    assert request.finished
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/x-thrift"]
    resp = reply("OpenSession", b"".join(request.written))
    assert resp.status.statusCode == t.TStatusCode.SUCCESS_STATUS
    session = next(iter(server.sessions.values()))
    assert session.engine_session.user == "eve" and session.session_type == "HIVESERVER2_HTTP"


def test_http_refused_password_is_401() -> None:
    """Basic credentials the checker refuses get 401 with WWW-Authenticate."""
    resource = transport.ThriftHttpResource(make_server(), lambda u, p: p == "right")
    request = post(resource, call("OpenSession", t.TOpenSessionReq(5)), basic("eve", "wrong"))
    assert request.responseCode == 401
    assert request.responseHeaders.getRawHeaders(b"www-authenticate")


def test_http_garbage_body_is_400() -> None:
    """A POST body that is not a Thrift message gets 400, not a crash."""
    request = post(transport.ThriftHttpResource(make_server(), lambda u, p: True), b"hello")
    assert request.responseCode == 400


def test_basic_header_parsing() -> None:
    """Only well-formed Basic headers yield credentials."""
    assert transport.basic_user(basic("a", "b:c")) == ("a", "b:c")
    assert transport.basic_user("Bearer xyz") is None
    assert transport.basic_user("Basic !!!") is None
    assert transport.basic_user(None) is None


def test_make_service_listens_on_the_four_ports() -> None:
    """makeService binds hs2, Beeswax, hs2-http and the web server on --listen_host and
    gets ready."""
    flags = flag_set().parse(
        [
            "--listen_host=127.0.0.7",
            "--hs2_port=1",
            "--beeswax_port=4",
            "--hs2_http_port=2",
            "--webserver_port=3",
            "--state_store_host=",
        ]
    )
    reactor = MemoryReactorClock()
    ready: list[str] = []
    top = main.makeService(
        flags,
        reactor=reactor,
        engine=FakeEngine(),
        session_factory=fake_session,
        exit=lambda code: None,
        on_ready=ready.append,
    )
    top.startService()
    try:
        assert [(p[0], p[3]) for p in reactor.tcpServers] == [
            (1, "127.0.0.7"),
            (4, "127.0.0.7"),
            (2, "127.0.0.7"),
            (3, "127.0.0.7"),
        ]
        assert ready and ready[0].startswith("impalad ready: hs2=")
        assert top.impala_server.ready  # type: ignore[attr-defined]
    finally:
        top.stopService()


def test_flags_follow_impala_names() -> None:
    """Impala's defaults (21050/28000/25000, Beeswax 21000) apply."""
    flags = flag_set().parse([])
    assert (
        flags["hs2_port"],
        flags["hs2_http_port"],
        flags["webserver_port"],
        flags["beeswax_port"],
    ) == (21050, 28000, 25000, 21000)


def negotiate(auth: str) -> str:
    return "Negotiate " + base64.b64encode(auth.encode()).decode()


def fake_acceptor(token: bytes) -> tuple[str, bytes]:
    """Stands in for the GSSAPI acceptor (the real one is tested against a KDC)."""
    if token == b"good":
        return "alice@EXAMPLE.TEST", b"mutual"
    raise AuthenticationError("GSSAPI: no key for impala/x", tell_client=True)


def test_http_negotiate_user_is_the_principal_and_mutual_token_is_sent() -> None:
    """A Negotiate token the acceptor takes opens the session as the principal, and the
    acceptor's token comes back in WWW-Authenticate."""
    server = make_server()
    resource = transport.ThriftHttpResource(
        server, lambda u, p: True, negotiate=fake_acceptor, require_auth=True
    )
    request = post(resource, call("OpenSession", t.TOpenSessionReq(5)), negotiate("good"))
    assert reply("OpenSession", b"".join(request.written)).status.statusCode == 0
    assert request.responseHeaders.getRawHeaders(b"www-authenticate") == [
        b"Negotiate " + base64.b64encode(b"mutual")
    ]
    session = next(iter(server.sessions.values()))
    assert session.connected_user == "alice@EXAMPLE.TEST"


def test_http_refused_negotiate_is_401_with_the_reason() -> None:
    """A token the acceptor refuses gets 401, a Negotiate challenge and the reason."""
    resource = transport.ThriftHttpResource(
        make_server(), lambda u, p: True, negotiate=fake_acceptor, require_auth=True
    )
    request = post(resource, call("OpenSession", t.TOpenSessionReq(5)), negotiate("bad"))
    assert request.responseCode == 401
    assert b"no key for impala/x" in b"".join(request.written)
    assert b"Negotiate" in request.responseHeaders.getRawHeaders(b"www-authenticate")


def test_http_without_credentials_when_required_is_401() -> None:
    """With authentication required, a POST without Authorization is 401 naming the schemes."""
    resource = transport.ThriftHttpResource(
        make_server(),
        lambda u, p: True,
        negotiate=fake_acceptor,
        basic_allowed=False,
        require_auth=True,
    )
    request = post(resource, call("OpenSession", t.TOpenSessionReq(5)))
    assert request.responseCode == 401
    assert request.responseHeaders.getRawHeaders(b"www-authenticate") == [b"Negotiate"]


def test_be_principal_alone_is_refused() -> None:
    """--be_principal without --principal is a flag error, as in Impala."""
    with pytest.raises(FlagError, match="--be_principal needs --principal"):
        main.makeService(
            flag_set().parse(["--be_principal=impala/_HOST@R", "--state_store_host="]),
            reactor=MemoryReactorClock(),
            engine=FakeEngine(),
            session_factory=fake_session,
        )


def test_principal_without_keytab_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """--principal with neither --keytab_file nor KRB5_KTNAME is a flag error."""
    monkeypatch.delenv("KRB5_KTNAME", raising=False)
    with pytest.raises(FlagError, match="needs --keytab_file"):
        main.makeService(
            flag_set().parse(["--principal=impala/_HOST@R", "--state_store_host="]),
            reactor=MemoryReactorClock(),
            engine=FakeEngine(),
            session_factory=fake_session,
        )


def test_tls_flags_with_a_missing_file_are_refused(tmp_path: Any) -> None:
    """An unreadable --ssl_server_certificate is a clear flag error at start-up."""
    with pytest.raises(FlagError, match="cannot read certificate"):
        main.makeService(
            flag_set().parse(
                [
                    f"--ssl_server_certificate={tmp_path / 'none.crt'}",
                    f"--ssl_private_key={tmp_path / 'none.key'}",
                    "--state_store_host=",
                ]
            ),
            reactor=MemoryReactorClock(),
            engine=FakeEngine(),
            session_factory=fake_session,
        )


def test_host_expansion_follows_impala() -> None:
    """_HOST in a principal becomes the (lower-cased) host name; short names drop realm/host."""
    assert expand_host("impala/_HOST@R", "Node1.Example.Test") == "impala/node1.example.test@R"
    assert expand_host("impala/lb@R", "x") == "impala/lb@R"
    assert short_name("alice@EXAMPLE.TEST") == "alice"
    assert short_name("impala/h@R") == "impala"
