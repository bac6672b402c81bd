"""Health checks against real backends on loopback, driven by a private reactor."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haconfig import model
from proxy.checks import CheckService, CheckStatus, ServerChecker, start_checks
from proxy.checks.testing import (
    Events,
    Healthz,
    echo_factory,
    healthz_site,
    new_reactor,
    pump,
    reply_factory,
)
from proxy.pool import BackendPool
from proxy.server import AdminState, OpState, Server
from tests.support.balancer import check_backend
from tests.support.certs import make_ca
from tests.support.procs import free_port, kill_pid

LOOP = "127.0.0.1"


@pytest.fixture
def reactor() -> Iterator[Any]:
    r = new_reactor()
    yield r
    for call in r.getDelayedCalls():
        if call.active():
            call.cancel()
    r.disconnectAll()
    r.iterate(0)


def backend(
    reactor: Any,
    params: model.ServerParams,
    *,
    port: int,
    options: tuple[model.Option, ...] = (),
    http_rules: tuple[model.CheckRule, ...] = (),
    tcp_rules: tuple[model.CheckRule, ...] = (),
    timeouts: model.Timeouts | None = None,
) -> tuple[Server, CheckService, Events]:
    """One backend with one server ``s`` on ``port``, checks started at once."""
    proxy = model.Proxy(
        kind=model.SectionKind.BACKEND,
        name="be",
        servers=(model.Server("s", LOOP, port, params=params),),
        options=options,
        http_check_rules=http_rules,
        tcp_check_rules=tcp_rules,
        timeouts=timeouts or model.Timeouts(),
    )
    server = Server("s", clock=reactor, backend="be", puid=1, host=LOOP, port=port)
    pool = BackendPool("be", [server], "roundrobin", timeout_queue=None, clock=reactor)
    events = Events()
    service = start_checks(pool, proxy, reactor, events, start=True)
    return server, service, events


def test_killed_backend_down_within_fall_inter_and_back_after_rise(reactor: Any) -> None:
    """A killed backend is DOWN after fall failed checks, UP again after rise good ones (the
    intervals themselves are proven on a clock in test_checks_checker.py)."""
    port = free_port()
    proc = check_backend(port)
    try:
        params = model.ServerParams(check=True, inter=200, rise=2, fall=3)
        server, service, events = backend(reactor, params, port=port)
        checker = service.checkers[0]
        pump(reactor, lambda: checker.status == "UP", timeout=5)
        assert checker.last.status is CheckStatus.L4OK
        kill_pid(proc)
        pump(reactor, lambda: server.op is OpState.DOWN, timeout=10)
        last = service.checkers[0].last
        assert (last.status, last.info) == (CheckStatus.L4CON, "Connection refused")
        assert server.counters.chkfail == 3 and server.counters.chkdown == 1
        assert any("is DOWN, reason: Layer4 connection problem" in m for _, m in events.lines)
        proc = check_backend(port)
        pump(reactor, lambda: server.op is OpState.UP, timeout=10)
        assert checker.status == "UP"
        service.stopService()
    finally:
        kill_pid(proc)


def test_httpchk_on_check_port_other_than_traffic_port(reactor: Any) -> None:
    """``option httpchk GET /healthz`` with ``port`` checks the web port, not the traffic port."""
    health = Healthz(200)
    web = reactor.listenTCP(0, healthz_site(health), interface=LOOP)
    traffic_port = free_port()  # nothing listens there: only the check port matters
    params = model.ServerParams(check=True, inter=100, port=web.getHost().port)
    options = (model.Option("httpchk", True),)
    rules = (
        model.CheckRule("send", ("meth", "GET", "uri", "/healthz", "ver", "HTTP/1.1")),
        model.CheckRule("expect", ("status", "200")),
    )
    server, service, _ = backend(
        reactor, params, port=traffic_port, options=options, http_rules=rules
    )
    checker = service.checkers[0]
    pump(reactor, lambda: checker.last.status is not CheckStatus.INI, timeout=5)
    assert (checker.last.status, checker.last.code) == (CheckStatus.L7OK, 200)
    assert health.hits >= 1
    health.code = 503
    pump(reactor, lambda: server.op is OpState.DOWN, timeout=5)
    assert (checker.last.status, checker.last.code) == (CheckStatus.L7STS, 503)
    service.stopService()
    web.stopListening()


def test_httpchk_404_is_l7sts_file_not_found(reactor: Any) -> None:
    """A wrong URI gives L7STS 404 with the server's reason phrase as last_chk."""
    web = reactor.listenTCP(0, healthz_site(Healthz()), interface=LOOP)
    params = model.ServerParams(check=True, inter=100)
    options = (model.Option("httpchk", True, ("GET", "/does-not-exist")),)
    server, service, _ = backend(reactor, params, port=web.getHost().port, options=options)
    checker = service.checkers[0]
    pump(reactor, lambda: server.op is OpState.DOWN, timeout=5)
    assert (checker.last.status, checker.last.code, checker.last.info) == (
        CheckStatus.L7STS,
        404,
        "File not found",
    )
    service.stopService()
    web.stopListening()


def test_tcp_check_send_expect(reactor: Any) -> None:
    """``tcp-check send`` + ``expect string`` against an echo server passes as L7OK."""
    port = reactor.listenTCP(0, echo_factory(), interface=LOOP)
    rules = (
        model.CheckRule("send", ("PING\\r\\n",)),
        model.CheckRule("expect", ("string", "PING")),
    )
    params = model.ServerParams(check=True, inter=100)
    _, service, _ = backend(
        reactor,
        params,
        port=port.getHost().port,
        options=(model.Option("tcp-check", True),),
        tcp_rules=rules,
    )
    checker = service.checkers[0]
    pump(reactor, lambda: checker.last.status is not CheckStatus.INI, timeout=5)
    assert (checker.last.status, checker.last.code) == (CheckStatus.L7OK, 0)
    service.stopService()
    port.stopListening()


def test_tcp_check_timeout(reactor: Any) -> None:
    """A server that never answers the expect gives L7TOUT after ``timeout check``."""
    silent = reactor.listenTCP(0, reply_factory(b"", close=False), interface=LOOP)
    rules = (model.CheckRule("expect", ("string", "+OK")),)
    params = model.ServerParams(check=True, inter=1000)
    _, service, _ = backend(
        reactor,
        params,
        port=silent.getHost().port,
        options=(model.Option("tcp-check", True),),
        tcp_rules=rules,
        timeouts=model.Timeouts(check=150, connect=500),
    )
    checker = service.checkers[0]
    pump(reactor, lambda: checker.last.status is not CheckStatus.INI, timeout=5)
    assert checker.last.status is CheckStatus.L7TOUT
    assert checker.last.duration_ms >= 140  # not before timeout check (no upper bound: load)
    service.stopService()
    silent.stopListening()


def test_check_ssl_verify_none_and_ca_file(reactor: Any, tmp_path: Path) -> None:
    """check-ssl passes as L6OK with ``verify none`` and with the right ``ca-file``."""
    from twisted.internet import ssl

    ca = make_ca(tmp_path)
    leaf = ca.issue(tmp_path, "backend", ["127.0.0.1"])
    ctx = ssl.DefaultOpenSSLContextFactory(str(leaf.key), str(leaf.cert))
    tls = reactor.listenSSL(0, echo_factory(), ctx, interface=LOOP)
    port = tls.getHost().port
    for extra in (
        model.ServerParams(verify="none"),
        model.ServerParams(verify="required", ca_file=str(ca.cert)),
    ):
        params = model.ServerParams(check=True, check_ssl=True, inter=100).over(extra)
        _, service, _ = backend(reactor, params, port=port)
        checker = service.checkers[0]

        def checked(c: ServerChecker = checker) -> bool:
            return c.last.status is not CheckStatus.INI

        pump(reactor, checked, timeout=5)
        assert checker.last.status is CheckStatus.L6OK, checker.last
        service.stopService()
    tls.stopListening()


def test_check_ssl_against_plain_server_is_l6rsp(reactor: Any) -> None:
    """check-ssl against a plain echo server fails as L6RSP ``SSL handshake failure``."""
    plain = reactor.listenTCP(0, echo_factory(), interface=LOOP)
    params = model.ServerParams(check=True, check_ssl=True, verify="none", inter=100)
    server, service, _ = backend(reactor, params, port=plain.getHost().port)
    checker = service.checkers[0]
    pump(reactor, lambda: server.op is OpState.DOWN, timeout=5)
    assert (checker.last.status, checker.last.info) == (
        CheckStatus.L6RSP,
        "SSL handshake failure",
    )
    service.stopService()
    plain.stopListening()


def test_agent_check_drain_over_tcp(reactor: Any) -> None:
    """A real agent answering ``drain 50%`` drains the server and halves its weight."""
    agent = reactor.listenTCP(0, reply_factory(b"drain 50%\n"), interface=LOOP)
    traffic = reactor.listenTCP(0, echo_factory(), interface=LOOP)
    params = model.ServerParams(
        check=True, inter=100, agent_check=True, agent_port=agent.getHost().port, agent_inter=100
    )
    server, service, _ = backend(reactor, params, port=traffic.getHost().port)
    server.set_configured_weight(10)
    checker = service.checkers[0]
    pump(reactor, lambda: bool(server.admin & AdminState.FDRAIN), timeout=5)
    assert server.weight == 5
    assert checker.last_agent.status is CheckStatus.CHECKED  # no health word in the reply
    service.stopService()
    agent.stopListening()
    traffic.stopListening()


def test_full_backlog_gives_l4tout(reactor: Any) -> None:
    """A listener whose backlog is full drops the SYN: L4TOUT after inter (no timeout check)."""
    full = socket.socket()
    full.bind((LOOP, 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):  # backlog 0 still queues one or two: fill it
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((LOOP, port))
        fillers.append(filler)
    try:
        params = model.ServerParams(check=True, inter=300)
        server, service, _ = backend(reactor, params, port=port)
        checker = service.checkers[0]
        pump(reactor, lambda: checker.last.status is not CheckStatus.INI, timeout=5)
        assert checker.last.status is CheckStatus.L4TOUT
        assert checker.last.duration_ms >= 290  # not before inter/timeout (no upper bound: load)
        assert server.op is OpState.DOWN
        service.stopService()
    finally:
        for s in fillers:
            s.close()
        full.close()
