"""``add server`` / ``del server`` / ``set server ... addr``: HAProxy 2.6's runtime API for
a pool that follows a cluster, side by side with real HAProxy, then what it does to the
pool, the checks and a reload."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from haconfig import parse_text
from proxy.checks.testing import new_reactor, pump
from proxy.pool import BackendPool, NoServerAvailable
from proxy.runtime import Runtime
from proxy.server import AdminState, OpState, Server
from proxy.stats import ObservabilityService
from proxy.stats._cli import Cli, Level
from tests.support.balancer import HAPROXY, ask, spawn
from tests.support.procs import free_port, kill_pid, wait_for

CONFIG = """
global
    stats socket {admin} mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
backend be
    balance leastconn
    server a 127.0.0.1:{port} weight 5
    server b 127.0.0.1:{port} check inter 60s
backend st
    balance static-rr
    server s 127.0.0.1:{port}
backend hashed
    balance source
    server h 127.0.0.1:{port}
backend ring
    balance source
    hash-type consistent
    server r 127.0.0.1:{port}
"""

SCRIPT = [
    "add server be/n1 127.0.0.1:{port}",
    "add server be/n1 127.0.0.1:{port}",
    "add server st/n1 127.0.0.1:{port}",
    "add server hashed/n1 127.0.0.1:{port}",
    "add server ring/n1 127.0.0.1:{port}",
    "add server nope/n1 127.0.0.1:{port}",
    "add server be/n2 127.0.0.1:{port} bogus",
    "add server be/n2 127.0.0.1:{port} weight 300",
    "add server be/n2 127.0.0.1:{port} agent-check",
    "add server be/n2 127.0.0.1:x",
    "add server be/n2",
    "add server be",
    "add server",
    "add server be/n3 127.0.0.1:{port} check inter 60s weight 20 agent-check "
    "agent-port {port} agent-inter 60s agent-send n3",
    "add server be/n4 127.0.0.1:{port} id 2",
    "del server be/a",
    "del server be/zz",
    "del server nope/a",
    "del server be",
    "disable server be/a",
    "del server be/a",
    "add server be/a2 127.0.0.1:{port}",
    "enable server be/n1",
    "set server be/n1 addr 127.0.0.2 port {port2}",
    "set server be/n1 addr 127.0.0.2",
    "set server be/n1 addr 127.0.0.3",
    "set server be/n1 addr bad",
    "set server be/n1 addr",
    "del server be/n1",
    "disable server be/n1",
    "del server be/n1",
    "enable health be/n3",
    "enable agent be/n3",
    "enable server be/n3",  # DOWN until a check passes (nothing listens on its port)
]

#: show servers state columns compared: srv_id srv_name srv_addr srv_op_state
#: srv_admin_state srv_uweight srv_iweight ... srv_port
COLUMNS = (2, 3, 4, 5, 6, 7, 8, 18)


@pytest.fixture
def sockets(tmp_path: Path) -> Any:
    port, port2 = free_port(), free_port()
    procs = []
    reactor = new_reactor()
    obs: Any = None
    try:
        ha = str(tmp_path / "ha.sock")
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(CONFIG.format(port=port, admin=ha))
        procs.append(spawn([*HAPROXY, str(cfg)]))
        ours = str(tmp_path / "ours.sock")
        obs = ObservabilityService.from_runtime(
            Runtime(parse_text(CONFIG.format(port=port, admin=ours), str(cfg)), reactor), reactor
        )
        obs.startService()
        wait_for("HAProxy's stats socket", lambda: Path(ha).exists())
        yield reactor, ha, ours, {"port": port, "port2": port2}
    finally:
        if obs is not None:
            obs.stopService()
        for p in procs:
            kill_pid(p)


def ask_unix(path: str, line: bytes) -> bytes:
    return ask(path, line).encode()


def _state_rows(text: bytes) -> list[list[str]]:
    rows = []
    for line in text.decode().splitlines()[2:]:
        if line:
            fields = line.split(" ")
            rows.append([fields[i] for i in COLUMNS])
    return rows


def test_add_del_set_addr_match_haproxy(sockets: Any) -> None:
    """Every reply of the script is byte-identical to HAProxy 2.6's, and afterwards both
    hold the same servers, in the same order, with the same ids, addresses and states."""
    reactor, ha, ours, ports = sockets
    mismatches = []
    with ThreadPoolExecutor(1) as pool:

        def both(command: str) -> tuple[bytes, bytes]:
            line = (command.format(**ports) + "\n").encode()
            theirs = ask_unix(ha, line)
            future = pool.submit(ask_unix, ours, line)
            pump(reactor, future.done, timeout=10)
            return theirs, future.result()

        for command in SCRIPT:
            theirs, mine = both(command)
            if theirs != mine:
                mismatches.append((command, theirs, mine))
        theirs, mine = both("show servers state be")
    assert mismatches == []
    assert _state_rows(mine) == _state_rows(theirs)
    names = [row[1] for row in _state_rows(mine)]
    assert names == ["b", "n3", "a2"]


# -- in memory: the pool, the checks, a reload ------------------------------------------------

SMALL = """
global
    stats socket /nonexistent/unused.sock level admin
defaults
    mode tcp
    timeout connect 1s
backend be
    balance leastconn
    server a 127.0.0.1:1 check inter 60s
"""


def _running(config: str = SMALL) -> tuple[Any, Runtime, Cli, ObservabilityService]:
    reactor = new_reactor()
    runtime = Runtime(parse_text(config), reactor)
    obs = ObservabilityService.from_runtime(runtime, reactor)
    return reactor, runtime, Cli(obs.state, Level.ADMIN), obs


def _pool(runtime: Runtime) -> BackendPool:
    return runtime.backends["be"].pool


def _take(runtime: Runtime) -> Server:
    """A connection's server from the pool, given at once."""
    got: list[Server] = []
    _pool(runtime).acquire("10.0.0.1").addCallback(got.append)
    assert got, "the pool queued the connection"
    return got[0]


def test_added_server_takes_clients_only_once_enabled() -> None:
    """A new server starts in forced maintenance and DOWN (HAProxy 2.6), so it gets no
    client until ``enable server``; then the pool hands it connections."""
    _, runtime, cli, _ = _running()
    a = _pool(runtime).server("a")
    assert a is not None
    a.set_admin("maint")
    assert cli.execute(["add", "server", "be/n", "127.0.0.2:21050"]) == "New server registered.\n"
    n = _pool(runtime).server("n")
    assert n is not None and n.admin is AdminState.FMAINT and n.op is OpState.DOWN
    refusals: list[Any] = []
    _pool(runtime).acquire("10.0.0.1").addErrback(refusals.append)  # no server usable
    assert [type(f.value) for f in refusals] == [NoServerAvailable]
    assert cli.execute(["enable", "server", "be/n"]) == ""
    assert n.usable
    assert _take(runtime) is n


def test_checks_of_an_added_server_start_disabled_then_enable() -> None:
    """Its health check and agent are configured but off until ``enable health`` /
    ``enable agent``, as in HAProxy."""
    _, _, cli, obs = _running()
    line = "add server be/n 127.0.0.2:21050 check inter 1s agent-check agent-port 25999"
    reply = cli.execute(line.split(" "))
    assert reply == "New server registered.\n"
    checker = obs.checks["be"].checker("n")
    assert checker is not None and checker.settings is not None and checker.agent is not None
    assert (checker.enabled, checker.agent_enabled) == (False, False)
    cli.execute(["enable", "health", "be/n"])
    cli.execute(["enable", "agent", "be/n"])
    assert (checker.enabled, checker.agent_enabled) == (True, True)
    assert checker.settings.host == "127.0.0.2" and checker.settings.port == 21050


def test_del_server_never_cuts_a_session() -> None:
    """``del server`` is refused while the server holds a connection; once it is gone
    the server is removed with its checker."""
    _, runtime, cli, obs = _running()
    cli.execute(["add", "server", "be/n", "127.0.0.2:21050"])
    cli.execute(["enable", "server", "be/n"])
    a = _pool(runtime).server("a")
    assert a is not None
    a.set_admin("maint")
    n = _take(runtime)
    assert n.name == "n"
    cli.execute(["disable", "server", "be/n"])
    assert cli.execute(["del", "server", "be/n"]) == (
        "Server still has connections attached to it, cannot remove it.\n"
    )
    _pool(runtime).release(n)
    assert cli.execute(["del", "server", "be/n"]) == "Server deleted.\n"
    assert _pool(runtime).server("n") is None and obs.checks["be"].checker("n") is None
    assert ("be", "n") not in runtime.servers


def test_unchanged_servers_keep_state_and_counters() -> None:
    """Adding and deleting servers leaves the others' state and counters alone."""
    _, runtime, cli, _ = _running()
    a = _pool(runtime).server("a")
    assert a is not None
    _pool(runtime).release(_take(runtime))
    a.set_admin("drain")
    before = (a.admin, a.op, a.counters.cum_sessions, a.weight)
    cli.execute(["add", "server", "be/n", "127.0.0.2:21050"])
    cli.execute(["enable", "server", "be/n"])
    cli.execute(["disable", "server", "be/n"])
    cli.execute(["del", "server", "be/n"])
    assert _pool(runtime).server("a") is a
    assert (a.admin, a.op, a.counters.cum_sessions, a.weight) == before


def test_reload_drops_added_servers_unless_the_file_has_them() -> None:
    """As in HAProxy a reload forgets servers that only the runtime API added; one that
    the new file names too stays the same object, with its state."""
    _, runtime, cli, _ = _running()
    cli.execute(["add", "server", "be/gone", "127.0.0.2:21050"])
    cli.execute(["add", "server", "be/kept", "127.0.0.3:21050"])
    cli.execute(["enable", "server", "be/kept"])
    kept = _pool(runtime).server("kept")
    new = SMALL + "    server kept 127.0.0.3:21050\n"
    report = runtime.apply(parse_text(new))
    assert report.servers_removed == ["be/gone"]
    assert _pool(runtime).server("kept") is kept and kept is not None and kept.usable
    assert runtime.dynamic == {}


def test_a_checked_added_server_waits_for_its_checks() -> None:
    """With a health check, an added server leaves maintenance DOWN and needs ``rise``
    passing checks to come UP (HAProxy 2.6 starts its health at 0), so it gets no client
    before it is known good; without any check it is UP at once."""
    from proxy.checks._status import CheckResult, CheckStatus

    _, runtime, cli, obs = _running()
    cli.execute(["add", "server", "be/n", "127.0.0.2:21050", "check", "rise", "2"])
    cli.execute(["enable", "health", "be/n"])
    cli.execute(["enable", "server", "be/n"])
    n = _pool(runtime).server("n")
    checker = obs.checks["be"].checker("n")
    assert n is not None and checker is not None
    assert n.op is OpState.DOWN
    checker.apply(CheckResult(CheckStatus.L4OK))
    assert n.op is OpState.DOWN
    checker.apply(CheckResult(CheckStatus.L4OK))
    assert n.usable
    cli.execute(["add", "server", "be/plain", "127.0.0.3:21050"])
    cli.execute(["enable", "server", "be/plain"])
    plain = _pool(runtime).server("plain")
    assert plain is not None and plain.usable
