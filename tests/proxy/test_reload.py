"""Reload in one process: diff the running config against a new one and apply it in place."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from haconfig import parse_text
from haconfig.model import Config
from proxy.checks import start_checks
from proxy.connect import BackendRuntime
from proxy.reload import Reloader, ReloadError, ServerEdit, carry_check_state, plan_reload
from proxy.runtime import Runtime
from proxy.sdnotify import Notifier
from proxy.server import AdminState
from tests.support.procs import free_port


class HoldingDialer:
    """Never connects: sessions stay in the connect phase until aborted."""

    def dial(self, host: str, port: int, timeout: float | None) -> Deferred[socket.socket]:
        return Deferred()


def cfg(body: str, global_: str = "") -> Config:
    text = (
        f"global\n{global_}"
        "defaults\n    mode tcp\n    timeout connect 1s\n"
        "    timeout client 5s\n    timeout server 5s\n" + body
    )
    config: Config = parse_text(text, "test.cfg")
    return config


def runtime(config: Config) -> tuple[Runtime, MemoryReactorClock]:
    reactor = MemoryReactorClock()

    def dialer(_: BackendRuntime) -> HoldingDialer:
        return HoldingDialer()

    rt = Runtime(config, reactor, dialer=dialer)
    rt.start()
    return rt, reactor


def accept(rt: Runtime, frontend: str) -> socket.socket:
    """A client session on ``frontend`` (socketpair), waiting for its server to answer."""
    a, b = socket.socketpair()
    fe = rt.frontends[frontend]
    rt.on_accept(fe, b, ("127.0.0.1", 40000), ("127.0.0.1", 5000))
    return a


def connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("fe", "fe2", "fe3")}


def two_servers(port: int, weights: tuple[int, int] = (1, 1), extra: str = "") -> str:
    return (
        f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n"
        f"backend be\n{extra}"
        f"    server a 127.0.0.1:9001 weight {weights[0]}\n"
        f"    server b 127.0.0.1:9002 weight {weights[1]}\n"
    )


def test_kept_server_is_the_same_object_with_its_state(ports: dict[str, int]) -> None:
    """A server still in the file keeps its object, runtime weight, admin state and counters."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    a = rt.servers[("be", "a")]
    a.set_weight(7)
    rt.servers[("be", "b")].set_admin("drain")
    a.take_slot()
    a.release_slot()
    rt.apply(cfg(two_servers(ports["fe"]) + "    server c 127.0.0.1:9003\n"))
    assert rt.servers[("be", "a")] is a
    assert a.weight == 7 and a.counters.cum_sessions == 1
    assert rt.servers[("be", "b")].admin & AdminState.FDRAIN
    rt.stop()


def test_weight_changed_in_file_applies_to_same_server(ports: dict[str, int]) -> None:
    """A weight changed in the file replaces the runtime weight of the same Server object."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    a = rt.servers[("be", "a")]
    a.set_weight(7)
    report = rt.apply(cfg(two_servers(ports["fe"], weights=(3, 1))))
    assert rt.servers[("be", "a")] is a and a.weight == 3 and a.initial_weight == 3
    assert report.servers_changed == ["be/a"]
    rt.stop()


def test_address_maxconn_backup_disabled_changes_apply_in_place(ports: dict[str, int]) -> None:
    """Address, maxconn, maxqueue, backup and disabled from the file change the same object."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    b = rt.servers[("be", "b")]
    new = (
        f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
        "backend be\n    server a 127.0.0.2:9101 maxconn 5 maxqueue 2 disabled\n"
        "    server b 127.0.0.1:9002 backup\n"
    )
    report = rt.apply(cfg(new))
    a = rt.servers[("be", "a")]
    assert (a.host, a.port, a.maxconn, a.maxqueue) == ("127.0.0.2", 9101, 5, 2)
    assert a.admin.maint and a.status == "MAINT"
    assert rt.servers[("be", "b")] is b and b.backup
    pool = rt.backends["be"].pool
    assert pool.backup_usable == 1 and pool.active_usable == 0
    assert report.backends_rebalanced == ["be"]
    rt.stop()


def test_changed_balance_rebuilds_algorithm_keeping_servers(ports: dict[str, int]) -> None:
    """``balance leastconn`` replacing roundrobin swaps the algorithm over the same servers."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    pool = rt.backends["be"].pool
    before = pool.servers
    old_algo = pool.balancer
    rt.apply(cfg(two_servers(ports["fe"], extra="    balance leastconn\n")))
    assert pool.servers == before
    assert pool.algorithm == "leastconn" and pool.balancer is not old_algo
    assert rt.backends["be"].pool is pool and rt.backends["be"].algorithm == "leastconn"
    rt.stop()


def test_removed_server_drains_its_session_and_gets_no_new_one(ports: dict[str, int]) -> None:
    """A removed server leaves the pool; its held slot is released cleanly, picks skip it."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    pool = rt.backends["be"].pool
    got: list[Any] = []
    pool.acquire("10.0.0.1").addCallback(got.append)
    held = got[0]
    new_body = (
        f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
        "backend be\n"
        + "".join(
            f"    server {n} 127.0.0.1:900{i}\n"
            for i, n in enumerate(("a", "b"), 1)
            if n != held.name
        )
    )
    report = rt.apply(cfg(new_body))
    assert report.servers_removed == [f"be/{held.name}"]
    assert pool.server(held.name) is None and ("be", held.name) not in rt.servers
    assert held.served == 1
    pool.release(held)
    assert held.served == 0 and pool.served == 0
    for _ in range(4):
        pool.acquire("10.0.0.2").addCallback(got.append)
    assert all(s is not held for s in got[1:])
    rt.stop()


def test_added_server_takes_connections(ports: dict[str, int]) -> None:
    """A server added by a reload joins the pool and the rotation."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    rt.apply(cfg(two_servers(ports["fe"]) + "    server c 127.0.0.1:9003\n"))
    pool = rt.backends["be"].pool
    picked: list[Any] = []
    for _ in range(3):
        pool.acquire("10.0.0.1").addCallback(picked.append)
    assert sorted(s.name for s in picked) == ["a", "b", "c"]
    rt.stop()


def test_removed_backend_sessions_finish_until_hard_stop_after(ports: dict[str, int]) -> None:
    """Sessions of a removed backend live on; ``hard-stop-after`` closes them at its limit."""
    fe = f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n"
    old = cfg(fe + "    default_backend old\nbackend old\n    server a 127.0.0.1:9001\n")
    rt, clock = runtime(old)
    client = accept(rt, "fe")
    (session,) = rt.sessions
    old_be = session.backend
    new = cfg(
        fe + "    default_backend new\nbackend new\n    server z 127.0.0.1:9009\n",
        global_="    hard-stop-after 30s\n",
    )
    report = rt.apply(new)
    assert report.backends_removed == ["old"] and report.backends_added == ["new"]
    assert "old" not in rt.backends and ("old", "a") not in rt.servers
    assert session in rt.sessions and session.backend is old_be
    clock.advance(29)
    assert session in rt.sessions
    clock.advance(2)
    assert session not in rt.sessions and rt.actconn == 0
    client.close()
    rt.stop()


def test_new_sessions_use_the_new_backend(ports: dict[str, int]) -> None:
    """After a reload that changes default_backend, a new client is routed to the new one."""
    fe = f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n"
    rt, _ = runtime(cfg(fe + "    default_backend x\nbackend x\n    server a 127.0.0.1:9001\n"))
    rt.apply(cfg(fe + "    default_backend y\nbackend y\n    server b 127.0.0.1:9002\n"))
    client = accept(rt, "fe")
    (session,) = rt.sessions
    assert session.backend is rt.backends["y"]
    client.close()
    rt.stop()


def test_listeners_kept_opened_and_closed(ports: dict[str, int]) -> None:
    """A kept address keeps its very socket; a new frontend opens; a removed one closes."""
    one = f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
    two = f"frontend fe2\n    bind 127.0.0.1:{ports['fe2']}\n    default_backend be\n"
    be = "backend be\n    server a 127.0.0.1:9001\n"
    rt, _ = runtime(cfg(one + two + be))
    kept = rt.frontends["fe"].listeners[0]
    fileno = kept.fileno()
    rt.frontends["fe"].cum_conn = 41
    three = f"frontend fe3\n    bind 127.0.0.1:{ports['fe3']}\n    default_backend be\n"
    report = rt.apply(cfg(one + three + be))
    assert rt.frontends["fe"].listeners == [kept] and kept.fileno() == fileno
    assert rt.frontends["fe"].cum_conn == 41
    assert report.frontends_added == ["fe3"] and report.frontends_removed == ["fe2"]
    assert report.listeners_closed == [f"127.0.0.1:{ports['fe2']}"]
    assert connectable(ports["fe"]) and connectable(ports["fe3"])
    assert not connectable(ports["fe2"])
    rt.stop()


def test_address_moving_to_another_frontend_keeps_its_socket(ports: dict[str, int]) -> None:
    """A bind moved from a removed frontend to a new one hands over the same socket."""
    be = "backend be\n    server a 127.0.0.1:9001\n"
    rt, _ = runtime(
        cfg(f"frontend old\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n" + be)
    )
    listener = rt.frontends["old"].listeners[0]
    rt.apply(cfg(f"frontend new\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n" + be))
    assert rt.frontends["new"].listeners == [listener]
    client = accept(rt, "new")
    assert rt.frontends["new"].feconn == 1
    client.close()
    rt.stop()


def test_a_plan_changes_nothing_until_applied(ports: dict[str, int]) -> None:
    """plan_reload only computes (and binds): the running objects stay as they were,
    discard() closes what it opened, and the same plan applied does what it says."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    before = rt.config
    a = rt.servers[("be", "a")]
    extra = f"frontend fe2\n    bind 127.0.0.1:{ports['fe2']}\n    default_backend be\n"
    new = cfg(
        two_servers(ports["fe"], weights=(5, 1)) + "    server c 127.0.0.1:9003 backup\n" + extra
    )
    plan = plan_reload(rt, new)
    change = plan.backends_changed[0]
    assert change.servers_edited[0] == ServerEdit("a", 1, weight=5)
    assert [s.name for s in change.servers_added] == ["c"]
    assert [p.settings.name for p in plan.frontends if p.new] == ["fe2"]
    assert plan.report.listeners_opened == [f"127.0.0.1:{ports['fe2']}"]
    # nothing ran yet
    assert rt.config is before and set(rt.frontends) == {"fe"}
    assert a.weight == 1 and ("be", "c") not in rt.servers
    plan.discard()
    assert not connectable(ports["fe2"])
    report = rt.apply(new)
    assert report.servers_changed == ["be/a"] and report.servers_added == ["be/c"]
    assert a.weight == 5 and rt.servers[("be", "c")].backup
    assert connectable(ports["fe2"])
    rt.stop()


def test_unbindable_address_refuses_whole_reload(ports: dict[str, int]) -> None:
    """A new bind that cannot be opened raises ReloadError and changes nothing."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    before = rt.config
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        extra = f"frontend fe2\n    bind 127.0.0.1:{taken}\n    default_backend be\n"
        new = cfg(two_servers(ports["fe"]) + "    server c 127.0.0.1:9003\n" + extra)
        with pytest.raises(ReloadError, match="cannot bind socket"):
            rt.apply(new)
    assert rt.config is before and set(rt.frontends) == {"fe"}
    assert [s.name for s in rt.backends["be"].pool.servers] == ["a", "b"]
    assert ("be", "c") not in rt.servers
    rt.stop()


def test_global_maxconn_change_applies(ports: dict[str, int]) -> None:
    """A new global maxconn replaces the running one and drives the frontend default."""
    rt, _ = runtime(cfg(two_servers(ports["fe"]), global_="    maxconn 100\n"))
    rt.apply(cfg(two_servers(ports["fe"]), global_="    maxconn 7\n"))
    assert rt.maxconn == 7 and rt.frontends["fe"].maxconn == 7
    rt.stop()


def test_check_state_carries_over_for_kept_servers(ports: dict[str, int]) -> None:
    """A kept server's checker state moves to the new checker; a changed check starts afresh."""
    text = (
        f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
        "backend be\n    server a 127.0.0.1:9001 check inter 1s\n"
        "    server b 127.0.0.1:9002 check inter 1s\n"
    )
    rt, clock = runtime(cfg(text))
    proxy = rt.config.backends[0]
    old = {"be": start_checks(rt.backends["be"].pool, proxy, clock)}
    old_a = old["be"].checker("a")
    old_b = old["be"].checker("b")
    assert old_a is not None and old_b is not None
    old_a.server.set_agent_flags(down=True, drain=True)
    old_b.server.set_agent_flags(down=True, drain=True)
    rt.apply(cfg(text.replace("9002 check inter 1s", "9002 check inter 2s")))
    new = {"be": start_checks(rt.backends["be"].pool, rt.config.backends[0], clock)}
    carried = carry_check_state(old, new)
    assert carried == ["be/a"]
    new_a, new_b = new["be"].checker("a"), new["be"].checker("b")
    assert new_a is not None and new_b is not None
    assert new_a.health is old_a.health
    assert new_a.server.agent_drain and new_a.server.agent_down
    assert not new_b.server.agent_drain and not new_b.server.agent_down
    rt.stop()


class Datagrams:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.path = path

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


def test_reloader_refuses_invalid_file_and_keeps_config(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    """A broken file is refused: same config, RELOADING=1 then READY=1, refused counted."""
    path = tmp_path / "lb.cfg"
    good = two_servers(ports["fe"])
    config = cfg(good)
    rt, _ = runtime(config)
    notify = Datagrams(tmp_path / "notify")
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path)})
    reloader = Reloader([str(path)], rt, notifier, lambda: None, blocking=now)
    path.write_text("defaults\n    mode tcp\nbackend be\n    server a 127.0.0.1:notaport\n")
    reloader.request()
    assert rt.config is config and reloader.refused == 1 and reloader.applied == 0
    sent = notify.drain()
    assert sent[0].startswith("RELOADING=1\nMONOTONIC_USEC=") and sent[1] == "READY=1"
    rt.stop()
    notify.sock.close()


def test_reloader_applies_valid_file(tmp_path: Path, ports: dict[str, int]) -> None:
    """A valid file is applied: the new server is in the runtime and READY=1 is sent."""
    path = tmp_path / "lb.cfg"
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    notify = Datagrams(tmp_path / "notify")
    reloader = Reloader(
        [str(path)], rt, Notifier({"NOTIFY_SOCKET": str(notify.path)}), lambda: None, blocking=now
    )
    path.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n" + two_servers(ports["fe"]) + "    server c 127.0.0.1:9003\n"
    )
    reloader.request()
    assert reloader.applied == 1 and ("be", "c") in rt.servers
    assert notify.drain()[-1] == "READY=1"
    rt.stop()
    notify.sock.close()


def test_unresolvable_server_refuses_whole_reload(ports: dict[str, int]) -> None:
    """A server name that does not resolve raises ReloadError and changes nothing."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    before = rt.config
    a = rt.servers[("be", "a")]
    new = (
        f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
        "backend be\n    server a 127.0.0.5:9001 weight 9\n"
        "    server b no-such-host.invalid:9002 init-addr none\n"
    )
    with pytest.raises(ReloadError, match="could not resolve"):
        rt.apply(cfg(new))
    assert rt.config is before and rt.servers[("be", "a")] is a
    assert (a.host, a.weight) == ("127.0.0.1", 1)
    rt.stop()


def test_server_order_follows_the_file(ports: dict[str, int]) -> None:
    """Servers swapped in the file are swapped in the pool (``first`` depends on it)."""
    rt, _ = runtime(cfg(two_servers(ports["fe"], extra="    balance first\n")))
    swapped = (
        f"frontend fe\n    bind 127.0.0.1:{ports['fe']}\n    default_backend be\n"
        "backend be\n    balance first\n    server b 127.0.0.1:9002\n"
        "    server a 127.0.0.1:9001\n"
    )
    rt.apply(cfg(swapped))
    pool = rt.backends["be"].pool
    assert [s.name for s in pool.servers] == ["b", "a"]
    got: list[Any] = []
    pool.acquire("10.0.0.1").addCallback(got.append)
    assert got[0].name == "b"
    rt.stop()


def test_new_backend_failing_halfway_leaves_no_server_behind(ports: dict[str, int]) -> None:
    """A new backend whose second server does not resolve leaves no trace in the runtime."""
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    new = two_servers(ports["fe"]) + (
        "backend other\n    server x 127.0.0.1:9005\n"
        "    server y no-such-host.invalid:9006 init-addr none\n"
    )
    with pytest.raises(ReloadError):
        rt.apply(cfg(new))
    assert set(rt.servers) == {("be", "a"), ("be", "b")} and set(rt.backends) == {"be"}
    rt.stop()


def test_leastconn_counts_survive_reload(ports: dict[str, int]) -> None:
    """Connections held before a reload still count for leastconn after it."""
    lc = "    balance leastconn\n"
    rt, _ = runtime(cfg(two_servers(ports["fe"], extra=lc)))
    pool = rt.backends["be"].pool
    got: list[Any] = []
    for _ in range(3):
        pool.acquire("10.0.0.1").addCallback(got.append)
    busy = max(("a", "b"), key=lambda n: sum(s.name == n for s in got))
    rt.apply(cfg(two_servers(ports["fe"], weights=(2, 2), extra=lc)))
    assert pool.server(busy) is not None and pool.server(busy).served == 2  # type: ignore[union-attr]
    pool.acquire("10.0.0.1").addCallback(got.append)
    assert got[-1].name != busy
    rt.stop()


def test_reloader_ignores_requests_once_stopping(tmp_path: Path, ports: dict[str, int]) -> None:
    """After a soft stop began, a SIGHUP neither reloads nor reopens listeners."""
    path = tmp_path / "lb.cfg"
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    reloader = Reloader([str(path)], rt, Notifier({}), lambda: None, blocking=now)
    path.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n" + two_servers(ports["fe"])
    )
    for listener in rt.frontends["fe"].listeners:
        listener.close()
    rt.frontends["fe"].listeners.clear()
    reloader.stopping = True
    reloader.request()
    assert reloader.applied == 0 and rt.frontends["fe"].listeners == []
    assert not connectable(ports["fe"])
    rt.stop()


def now(work: Any) -> Deferred[Any]:
    """Run the reloader's blocking work at once (the unit tests have no thread pool)."""
    from twisted.internet.defer import maybeDeferred

    return maybeDeferred(work)


def test_reload_reads_and_resolves_off_the_reactor_thread(
    tmp_path: Path, ports: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """request() hands the file reading and name resolution to ``blocking`` and returns:
    no name is looked up on the calling (reactor) thread, the new config is applied
    only once that work has finished, and the runtime then resolves nothing again."""
    import socket as socket_module

    path = tmp_path / "lb.cfg"
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    path.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n" + two_servers(ports["fe"]) + "    server c localhost:9003\n"
    )
    lookups: list[str] = []
    real = socket_module.getaddrinfo

    def counting(host: Any, *args: Any, **kw: Any) -> Any:
        lookups.append(str(host))
        return real(host, *args, **kw)

    monkeypatch.setattr(socket_module, "getaddrinfo", counting)
    handed: list[Any] = []
    pending: Deferred[Any] = Deferred()

    def later(work: Any) -> Deferred[Any]:
        handed.append(work)
        return pending

    reloader = Reloader([str(path)], rt, Notifier({}), lambda: None, blocking=later)
    reloader.request()
    assert lookups == [] and reloader.applied == 0 and ("be", "c") not in rt.servers
    result = handed[0]()  # what the pool thread would run
    assert lookups == ["localhost"]
    pending.callback(result)
    assert reloader.applied == 1 and rt.servers[("be", "c")].host == "127.0.0.1"
    assert lookups == ["localhost"], "the runtime looked the name up a second time"
    rt.stop()


def test_reload_with_unresolvable_name_is_refused_with_file_and_line(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    """A reloaded file whose server name does not resolve is refused whole, logged with
    the parser's ``[file:line]`` message as at start; the running config stays."""
    from twisted.logger import LogEvent, formatEvent, globalLogPublisher

    path = tmp_path / "lb.cfg"
    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    before = rt.config
    path.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n" + two_servers(ports["fe"]) + "    server c nowhere.invalid:1\n"
    )
    events: list[LogEvent] = []
    observer: Any = events.append
    globalLogPublisher.addObserver(observer)
    try:
        reloader = Reloader([str(path)], rt, Notifier({}), lambda: None, blocking=now)
        reloader.request()
    finally:
        globalLogPublisher.removeObserver(observer)
    assert rt.config is before and reloader.refused == 1
    text = "\n".join(formatEvent(e) for e in events)
    assert f"[{path}:12] : 'server be/c' : could not resolve address 'nowhere.invalid'" in text
    rt.stop()


def test_reload_of_a_missing_file_is_refused_with_haproxys_words(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    """A reload whose file has gone is refused (HAProxy's 'Cannot open configuration
    file' message), counted, and the running config keeps serving."""
    from twisted.logger import LogEvent, formatEvent, globalLogPublisher

    rt, _ = runtime(cfg(two_servers(ports["fe"])))
    before = rt.config
    events: list[LogEvent] = []
    observer: Any = events.append
    globalLogPublisher.addObserver(observer)
    try:
        reloader = Reloader(
            [str(tmp_path / "gone.cfg")], rt, Notifier({}), lambda: None, blocking=now
        )
        reloader.request()
    finally:
        globalLogPublisher.removeObserver(observer)
    assert rt.config is before and reloader.refused == 1 and not reloader.busy
    text = "\n".join(formatEvent(e) for e in events)
    assert "Cannot open configuration file" in text and "Traceback" not in text
    rt.stop()
