"""Connecting to a server: retries, turn-around, redispatch, and how failures end (spec 1.9)."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from proxy.connect import BackendRuntime, ClientSession, ConnectError
from proxy.pool import BackendPool
from proxy.pump import PumpLoop, PumpTimeouts
from proxy.routing import ConnInfo
from proxy.server import Server


class FakeDialer:
    """Records every attempt; the test decides how each ends."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int, float | None, Deferred[socket.socket]]] = []

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        d: Deferred[socket.socket] = Deferred()
        self.attempts.append((host, port, timeout, d))
        return d

    def refuse_last(self) -> None:
        self.attempts[-1][3].errback(Failure(ConnectError("ECONNREFUSED")))

    def timeout_last(self) -> None:
        self.attempts[-1][3].errback(Failure(ConnectError("timeout", timeout=True)))


class Case:
    """One backend of named servers and one client session against it."""

    def __init__(
        self,
        names: tuple[str, ...] = ("a", "b"),
        *,
        algorithm: str = "roundrobin",
        retries: int = 3,
        redispatch: bool = False,
        timeout_connect: float = 5.0,
        ports: dict[str, int] | None = None,
        dontlognull: bool = False,
        loop: PumpLoop | None = None,
    ) -> None:
        self.clock = MemoryReactorClock()
        clock: Any = self.clock
        self.servers = [
            Server(n, clock=clock, backend="be", host="127.0.0.2", port=(ports or {}).get(n, 9000))
            for n in names
        ]
        pool = BackendPool(
            "be",
            self.servers,
            algorithm,
            redispatch=redispatch,
            timeout_queue=None,
            clock=clock,
        )
        self.dialer = FakeDialer()
        self.be = BackendRuntime(
            name="be",
            pool=pool,
            algorithm=algorithm,
            retries=retries,
            redispatch=redispatch,
            timeout_connect=timeout_connect,
            dialer=self.dialer,
        )
        self.lines: list[str] = []
        self.pumped: list[Any] = []
        self.done: list[ClientSession] = []
        self.client, self.leg = socket.socketpair()
        self.session = ClientSession(
            clock=self.clock,
            sock=self.leg,
            conn=ConnInfo("127.0.0.1", 40000, "127.0.0.1", 5000),
            frontend_name="fe",
            backend=self.be,
            client_timeouts=(None, None),
            start_pump=self._pump,
            log=self.lines.append,
            dontlognull=dontlognull,
            counters=lambda: (1, 1),
            done=self.done.append,
            loop=loop,
        )

    def _pump(self, c: socket.socket, s: socket.socket, t: PumpTimeouts, end: Any) -> Any:
        self.pumped.append((c, s, t, end))
        return None


def _line_fields(line: str) -> list[str]:
    return line.split()


def test_retries_on_same_server_with_one_second_turnaround_then_SC() -> None:
    """retries 2 without redispatch: 3 attempts 1 s apart on one server, then closed ``SC``."""
    c = Case(("bad",), retries=2)
    c.session.start()
    assert len(c.dialer.attempts) == 1
    c.dialer.refuse_last()
    c.clock.advance(0.99)
    assert len(c.dialer.attempts) == 1
    c.clock.advance(0.01)
    assert len(c.dialer.attempts) == 2
    c.dialer.refuse_last()
    c.clock.advance(1.0)
    c.dialer.refuse_last()
    assert len(c.dialer.attempts) == 3
    f = _line_fields(c.lines[0])
    assert f[3:8] == ["be/bad", "0/-1/2000", "0", "SC", "1/1/0/0/2"]
    assert c.servers[0].served == 0 and c.servers[0].counters.econ == 1
    assert c.servers[0].counters.wretr == 2
    assert c.client.recv(10) == b""  # the client was closed
    assert c.done == [c.session]


def test_turnaround_is_min_of_timeout_connect_and_one_second() -> None:
    """With timeout connect 300 ms the retry comes 300 ms after a failure."""
    c = Case(("bad",), retries=1, timeout_connect=0.3)
    c.session.start()
    c.dialer.refuse_last()
    c.clock.advance(0.3)
    assert len(c.dialer.attempts) == 2
    assert c.dialer.attempts[0][2] == 0.3


def test_redispatch_roundrobin_goes_to_other_server_at_once() -> None:
    """roundrobin with redispatch: a refused server is left at once for another, logged ``+1``."""
    c = Case(("bad", "good"), redispatch=True, ports={"bad": 9001, "good": 9002})
    c.session.start()
    assert c.dialer.attempts[0][1] == 9001
    c.dialer.refuse_last()
    assert len(c.dialer.attempts) == 2 and c.dialer.attempts[1][1] == 9002
    a, b = socket.socketpair()
    c.dialer.attempts[1][3].callback(a)
    assert len(c.pumped) == 1
    assert c.servers[0].served == 0 and c.servers[1].served == 1
    assert c.servers[0].counters.wredis == 1
    c.pumped[0][3](_FakePumpSession(0, 13), "--")
    f = _line_fields(c.lines[0])
    assert f[3] == "be/good" and f[5:8] == ["13", "--", "1/1/0/0/+1"]
    b.close()


class _FakePumpSession:
    def __init__(self, bytes_in: int, bytes_out: int) -> None:
        self.bytes_in, self.bytes_out = bytes_in, bytes_out
        self.failure = None


def test_source_hash_redispatches_only_on_last_retry() -> None:
    """balance source + redispatch: same-server retries first, the re-pick only on the last one."""
    c = Case(("a", "b"), algorithm="source", retries=3, redispatch=True)
    c.session.start()
    first = c.session.server
    c.dialer.refuse_last()
    c.clock.advance(1.0)
    c.dialer.refuse_last()
    c.clock.advance(1.0)
    assert len(c.dialer.attempts) == 3
    c.dialer.refuse_last()  # the 3rd retry is the last one: redispatch, no turn-around
    assert len(c.dialer.attempts) == 4
    assert first is not None and first.counters.wretr == 2
    c.dialer.refuse_last()
    assert c.lines and " SC " in c.lines[0]


def test_connect_timeout_ends_sC() -> None:
    """When the last attempt times out the client is closed and logged ``sC``."""
    c = Case(("slow",), retries=0)
    c.session.start()
    c.dialer.timeout_last()
    assert " sC " in c.lines[0] and "be/slow" in c.lines[0]


def test_no_usable_server_is_NOSRV_SC() -> None:
    """A backend with no usable server closes at once with ``<NOSRV>`` and ``SC``."""
    c = Case(())
    c.session.start()
    assert " be/<NOSRV> " in c.lines[0] and " SC " in c.lines[0]
    assert c.dialer.attempts == []


def test_server_without_address_uses_client_destination() -> None:
    """``server x :21051`` connects to the client's destination IP; no port means its port."""
    c = Case(("x",))
    c.servers[0].set_address("", None)
    c.session.start()
    host, port, _, _ = c.dialer.attempts[0]
    assert (host, port) == ("127.0.0.1", 5000)


def test_client_left_while_connecting_releases_slot() -> None:
    """Aborting a session mid-connect cancels the attempt and frees the server slot."""
    c = Case(("a",))
    c.session.start()
    assert c.servers[0].served == 1
    c.session.abort("CC")
    assert c.servers[0].served == 0 and " CC " in c.lines[0]
    assert c.clock.getDelayedCalls() == []


def test_client_closing_while_connecting_is_CC() -> None:
    """A client that hangs up during the connect is noticed at once, logged ``CC``, slot freed."""
    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    c = Case(("a",), loop=loop)
    c.session.start()
    assert c.servers[0].served == 1
    c.client.close()
    loop.doRead()
    assert c.lines and " CC " in c.lines[0]
    assert c.servers[0].served == 0 and c.done == [c.session]
    loop.close()


def test_a_request_then_a_half_close_while_connecting_is_not_an_abort() -> None:
    """A client that sends its request and shuts its side before the server answered the
    connect wakes the watch (RDHUP), but it sent bytes: they go to the server."""
    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    c = Case(("a",), loop=loop)
    c.session.start()
    c.client.sendall(b"select 1")
    c.client.shutdown(socket.SHUT_WR)
    loop.doRead()
    assert c.lines == [] and c.session.watching is False and not c.session.finished
    a, b = socket.socketpair()
    c.dialer.attempts[0][3].callback(a)
    assert len(c.pumped) == 1
    b.close()
    loop.close()


def test_client_speaking_first_is_not_an_abort() -> None:
    """Early client bytes (SASL, TLS hello) stay queued for the pump and do not end the
    session, nor even wake it: only a hang-up is watched for while it connects."""
    reactor = MemoryReactorClock()
    loop = PumpLoop(reactor, reactor)
    c = Case(("a",), loop=loop)
    c.session.start()
    c.client.sendall(b"\x16\x03\x01")
    loop.doRead()
    assert c.lines == [] and c.session.watching is True
    a, b = socket.socketpair()
    c.dialer.attempts[0][3].callback(a)
    assert len(c.pumped) == 1
    b.close()
    loop.close()


def test_dontlognull_skips_empty_normal_sessions() -> None:
    """With dontlognull a session that carried no client bytes and ended normally is not logged."""
    c = Case(("a",), dontlognull=True)
    c.session.start()
    a, b = socket.socketpair()
    c.dialer.attempts[0][3].callback(a)
    c.pumped[0][3](_FakePumpSession(0, 0), "--")
    assert c.lines == [] and c.done == [c.session]
    d = Case(("a",), dontlognull=True)
    d.session.start()
    a2, b2 = socket.socketpair()
    d.dialer.attempts[0][3].callback(a2)
    d.pumped[0][3](_FakePumpSession(5, 7), "--")
    assert len(d.lines) == 1
    b.close()
    b2.close()


def test_internal_error_ends_session_without_leaking_slot() -> None:
    """A failure inside our own code after connecting ends the session ``I*`` and frees the slot."""
    c = Case(("a",))

    def broken_pump(*_: Any) -> Any:
        raise RuntimeError("bug")

    c.session.start_pump = broken_pump
    c.session.start()
    a, b = socket.socketpair()
    c.dialer.attempts[0][3].callback(a)
    assert c.servers[0].served == 0 and c.done == [c.session]
    assert " IC " in c.lines[0]
    b.close()


def test_session_times_are_one_sample_for_server_and_backend_at_its_end() -> None:
    """A connected session adds exactly one qtime/ctime/ttime sample (its queue, connect
    and total time) to its server and to the backend, when it ends (HAProxy's
    stream_update_time_stats); one that never connected adds none."""
    c = Case(("a",))
    server = c.servers[0]
    pc = c.be.pool.counters
    c.session.start()
    c.clock.advance(0.25)
    a, b = socket.socketpair()
    c.dialer.attempts[0][3].callback(a)
    c.clock.advance(2.0)
    c.pumped[0][3](_FakePumpSession(10, 20), "--")
    for times in (server.counters, pc):
        assert (times.qtime.count, times.ctime.count, times.ttime.count) == (1, 1, 1)
        assert (times.qtime.average, times.ctime.average, times.ttime.average) == (0, 250, 2250)
        assert (times.qtime_max, times.ctime_max, times.ttime_max) == (0, 250, 2250)
    refused = Case(("a",), retries=0)
    refused.session.start()
    refused.dialer.refuse_last()
    assert refused.servers[0].counters.ttime.count == 0
    assert refused.be.pool.counters.ttime.count == 0
    b.close()
