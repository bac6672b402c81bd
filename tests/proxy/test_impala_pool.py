"""The controller's pool follows Impala's membership through the runtime API, in memory:
real Impala's ``/backends?json`` shape, an impala-lb runtime behind the API, a clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from haconfig import parse_text
from proxy.checks._dialogue import parse_agent_line
from proxy.checks.testing import new_reactor
from proxy.impala._members import Member, read_members
from proxy.impala._pool import (
    PoolSync,
    coordinators_from_config,
    specs_from_config,
    template_words,
)
from proxy.impala._state import State, UnreadableState
from proxy.impala._watch import Watch
from proxy.runtime import Runtime
from proxy.server import Server
from proxy.stats import ObservabilityService
from proxy.stats._cli import Cli, Level, split_commands
from tests.proxy.test_impala_agent import IMPALA_METRICS, IMPALA_ROOT, Pages, _b

AGENT = "agent-check agent-port 25999 agent-addr 127.0.0.1"
CONFIG = f"""
global
    stats socket /nonexistent/unused.sock level admin
defaults
    mode tcp
    timeout connect 1s
    default-server inter 5s rise 2 fall 3 agent-inter 1s
backend shell
    balance leastconn
    option httpchk GET /healthz
    server impalad-1 127.0.0.11:21050 check port 25000 weight 100 maxconn 64 {AGENT} \
agent-send "impalad-1 weight\\n"
backend hue
    balance source
    hash-type consistent
    server impalad-1 127.0.0.11:21050 check port 25000 {AGENT} agent-send "impalad-1\\n"
backend old
    balance static-rr
    server impalad-1 127.0.0.11:21000 check port 25000 {AGENT} agent-send "impalad-1\\n"
backend ui
    server ss1 127.0.0.21:25010 check
"""


def _entry(ip: str, **fields: Any) -> dict[str, Any]:
    """One ``/backends?json`` entry with real Impala's fields (impala-http-handler.cc)."""
    entry = {
        "address": f"{ip}:27000",
        "krpc_address": f"{ip}:27000",
        "backend_id": "a1b2:c3d4",
        "webserver_url": f"http://{ip}:25000",
        "is_coordinator": True,
        "is_executor": True,
        "is_quiescing": False,
        "is_blacklisted": False,
        "is_active": True,
        "admit_mem_limit": "8.00 GB",
        "mem_reserved": "0",
        "mem_admitted": "0",
        "admission_slots": 8,
        "num_admitted": 0,
        "admission_slots_in_use": 0,
        "executor_groups": "default",
    }
    entry.update(fields)
    return entry


def _backends(*entries: dict[str, Any]) -> bytes:
    return _b({"backends": list(entries), "num_active_backends": len(entries)})


class Cluster:
    """Pages of coordinators 127.0.0.11... and an impala-lb runtime behind the API."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.pages = Pages()
        reactor = new_reactor()  # the runtime's pump needs a real one; nothing runs it
        self.runtime = Runtime(parse_text(CONFIG), reactor)
        self.obs = ObservabilityService.from_runtime(self.runtime, reactor)
        self.cli = Cli(self.obs.state, Level.ADMIN)
        self.commands: list[str] = []
        config = self.runtime.config
        self.watch = Watch(
            self.clock,
            coordinators_from_config(config, 25999),
            interval=1.0,
            fetch=self.pages.fetch,
        )
        self.sync = PoolSync(self.watch, self.api, specs_from_config(config, 25999))
        self.watch._fetch = self.fetch
        self.members: list[dict[str, Any]] = [_entry("127.0.0.11")]
        #: what every coordinator answers on /backends?json instead of the members
        self.membership_answer: Any = None
        #: a coordinator's own view of the membership, by its /backends?json URL
        self.views: dict[str, list[dict[str, Any]]] = {}
        self.serve("127.0.0.11")

    def fetch(self, url: str) -> defer.Deferred[bytes]:
        if url.endswith("/backends?json") and url.replace("/backends?json", "/?json") in (
            self.pages.answers
        ):
            if url in self.views:
                return defer.succeed(_backends(*self.views[url]))
            if self.membership_answer is not None:
                return defer.succeed(self.membership_answer)
            return defer.succeed(_backends(*self.members))
        return self.pages.fetch(url)

    def api(self, command: str) -> defer.Deferred[str]:
        self.commands.append(command)
        return defer.succeed(self.cli.execute(split_commands(command)[0]))

    def serve(self, ip: str, ready: bool = True, **root: Any) -> None:
        url = f"http://{ip}:25000"
        self.pages.answers[url + "/?json"] = _b({**IMPALA_ROOT, **root})
        metrics = {**IMPALA_METRICS, "impala-server.ready": ready}
        self.pages.answers[url + "/jsonmetrics?json"] = _b(metrics)

    def poll(self) -> None:
        if not self.watch._loop.running:
            self.watch.start()
        else:
            self.clock.advance(1.0)
        self.clock.advance(0)  # a second round sees the coordinators the first found
        self.watch.poll_all()

    def poll_past_grace(self) -> None:
        """Polls until a member no view lists any more has left (Watch.grace)."""
        for _ in range(int(self.watch.grace) + 1):
            self.poll()

    def names(self, backend: str) -> list[str]:
        return [s.name for s in self.runtime.backends[backend].pool.servers]

    def server(self, backend: str, name: str) -> Server:
        found = self.runtime.backends[backend].pool.server(name)
        assert found is not None
        return found


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_real_impala_membership_shape_reads() -> None:
    """address / krpc_address / webserver_url and the flags, from Impala's shape; an
    executor-only or blacklisted member does not take clients."""
    body = _backends(
        _entry("10.0.0.1", address="node1.example.com:27000"),
        _entry("10.0.0.2", is_coordinator=False),
        _entry("10.0.0.3", is_blacklisted=True, blacklist_cause="query failed on it"),
    )
    members = read_members(body)
    assert members[0] == Member(
        "node1.example.com", "10.0.0.1", "http://10.0.0.1:25000", True, True, False, False
    )
    assert [m.takes_clients for m in members] == [True, False, False]
    assert members[2].cause == "query failed on it"


@pytest.mark.parametrize(
    "body",
    [b"<html/>", _b({"backends": "x"}), _b({"backends": [{"is_coordinator": True}]}), b"\xff"],
)
def test_membership_impala_would_not_serve_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableState):
        read_members(body)


def test_template_repeats_the_line_without_default_server() -> None:
    """The added server gets the first server's resolved words (default-server included,
    since ``add server`` applies none), agent-send naming itself."""
    config = parse_text(CONFIG)
    shell = config.backend("shell")
    assert shell is not None
    words = template_words(shell.server_params(shell.servers[0]))
    line = " ".join(words)
    assert "check inter 5s rise 2 fall 3 port 25000 weight 100 maxconn 64" in line
    assert words[-2:] == ("agent-send", "{name}\\ weight")
    specs = {s.backend: s for s in specs_from_config(config, 25999)}
    assert sorted(specs) == ["hue", "shell"]  # static-rr cannot take servers; ui has no agent
    assert specs["hue"].template[-2:] == ("agent-send", "{name}")


def test_a_joining_coordinator_gets_servers_and_the_others_keep_theirs(cluster: Cluster) -> None:
    """A coordinator that joins is added to every agent backend, enabled, with checks and
    agent on; executor-only and blacklisted members are not; impalad-1 is untouched."""
    cluster.poll()
    one = cluster.server("shell", "impalad-1")
    one.take_slot()
    counters = (one.counters.cum_sessions, one.admin, one.op)
    cluster.members += [
        _entry("127.0.0.14"),
        _entry("127.0.0.15", is_coordinator=False),
        _entry("127.0.0.16", is_blacklisted=True, blacklist_cause="x"),
    ]
    for ip in ("127.0.0.14", "127.0.0.15", "127.0.0.16"):
        cluster.serve(ip)
    cluster.poll()
    assert cluster.names("shell") == ["impalad-1", "127.0.0.14"]
    assert cluster.names("hue") == ["impalad-1", "127.0.0.14"]
    assert cluster.names("old") == ["impalad-1"]
    new = cluster.server("shell", "127.0.0.14")
    assert (new.host, new.port) == ("127.0.0.14", 21050)
    checker = cluster.obs.checks["shell"].checker("127.0.0.14")
    assert checker is not None and checker.enabled and checker.agent_enabled
    assert checker.agent is not None and checker.agent.send == b"127.0.0.14 weight"
    assert not new.usable  # enabled, but DOWN until a check or the agent says up
    checker.apply_agent(parse_agent_line(b"ready up 50%"))
    assert new.usable and new.weight == 50
    assert cluster.server("shell", "impalad-1") is one
    assert (one.counters.cum_sessions, one.admin, one.op) == counters


def test_no_client_before_ready_and_in_membership(cluster: Cluster) -> None:
    """A coordinator that is in the membership but not ready gets no server; once ready it
    does. A ready coordinator the membership does not list is answered not ready."""
    cluster.poll()
    cluster.members.append(_entry("127.0.0.14"))
    cluster.serve("127.0.0.14", ready=False)
    cluster.poll()
    assert cluster.names("shell") == ["impalad-1"]
    cluster.serve("127.0.0.14", ready=True)
    cluster.poll()
    assert cluster.names("shell") == ["impalad-1", "127.0.0.14"]
    cluster.members = [m for m in cluster.members if m["address"].startswith("127.0.0.14")]
    cluster.poll_past_grace()
    state = cluster.watch.state("impalad-1")
    assert state is not None and state.state is State.NOT_READY
    assert state.detail == "not in the cluster membership"


def test_a_leaving_coordinator_is_drained_then_deleted_never_cut(cluster: Cluster) -> None:
    """A discovered coordinator that leaves goes to maintenance (no new client), stays
    while a session is on it, and is deleted once it has none; a file server stays."""
    cluster.members.append(_entry("127.0.0.14"))
    cluster.serve("127.0.0.14")
    cluster.poll()
    cluster.poll()
    new = cluster.server("shell", "127.0.0.14")
    new.take_slot()  # a session on it
    cluster.members = [_entry("127.0.0.11")]
    cluster.poll_past_grace()
    assert new.admin.maint and "127.0.0.14" in cluster.names("shell")
    assert "127.0.0.14" not in cluster.names("hue")  # nothing on it there
    new.release_slot()
    cluster.poll()
    assert cluster.names("shell") == ["impalad-1"]
    assert not any("shutdown sessions" in c for c in cluster.commands)
    cluster.members = []
    cluster.poll_past_grace()
    assert cluster.names("shell") == ["impalad-1"]  # a line of the file is never deleted
    state = cluster.watch.state("impalad-1")
    assert state is not None and state.state is State.NOT_READY


def test_a_blacklisted_coordinator_leaves_and_comes_back(cluster: Cluster) -> None:
    """Blacklisted: the discovered server is parked (maintenance); the file's server is
    answered 'ready down #blacklisted'; both come back when Impala lifts it."""
    cluster.members.append(_entry("127.0.0.14"))
    cluster.serve("127.0.0.14")
    cluster.poll()
    cluster.poll()
    new = cluster.server("shell", "127.0.0.14")
    new.take_slot()
    cluster.members = [
        _entry("127.0.0.11", is_blacklisted=True, blacklist_cause="failed RPC"),
        _entry("127.0.0.14", is_blacklisted=True),
    ]
    cluster.poll()
    assert new.admin.maint
    state = cluster.watch.state("impalad-1")
    assert state is not None and state.detail == "blacklisted: failed RPC"
    assert state.reply == b"ready down #not ready: blacklisted: failed RPC\n"
    cluster.members = [_entry("127.0.0.11"), _entry("127.0.0.14")]
    cluster.poll()
    assert not new.admin.maint and cluster.server("shell", "127.0.0.14") is new


def test_unreadable_membership_changes_nothing_and_says_so_once(
    cluster: Cluster, events: list[Any]
) -> None:
    """No coordinator answers /backends?json (garbage, refused): the pool stays as it is,
    one warning, one line when it reads again."""
    cluster.members.append(_entry("127.0.0.14"))
    cluster.serve("127.0.0.14")
    cluster.poll()
    cluster.poll()
    before = cluster.names("shell")
    cluster.membership_answer = b"<html>oops</html>"
    cluster.members = []
    sent = len(cluster.commands)
    for _ in range(3):
        cluster.poll()
    assert cluster.names("shell") == before
    assert cluster.commands[sent:] == []
    warnings = [e for e in events if "cannot read the cluster membership" in e["log_format"]]
    assert len(warnings) == 1


def test_the_agent_answers_a_name_sent_without_newline() -> None:
    """``add server ... agent-send NAME`` cannot carry a newline (the runtime API drops
    it): the agent answers a complete bare name at once, and waits for the rest of a
    name that another extends."""
    from proxy.impala import AgentFactory, CoordinatorState
    from tests.proxy.test_impala_agent import _ask

    states = {"c1": CoordinatorState(State.READY), "c10": CoordinatorState(State.QUIESCING)}
    clock = Clock()
    factory = AgentFactory(states.get, clock, lambda: states)
    assert _ask(factory, b"c10") == b"drain up #quiescing\n"
    assert _ask(factory, b"c1 weight") == b"ready up 100%\n"
    from twisted.internet.testing import StringTransport

    proto: Any = factory.buildProtocol(None)
    tx = StringTransport()
    proto.makeConnection(tx)
    proto.dataReceived(b"c1")  # could be the start of c10
    assert not tx.disconnecting
    clock.advance(0.2)
    assert tx.value() == b"ready up\n" and tx.disconnecting


def test_coordinators_come_from_the_config() -> None:
    """Each agent-checked server names a coordinator: its agent-send name and its check
    port as the web port; the UI backend (no agent) names none."""
    config = parse_text(CONFIG)
    found = coordinators_from_config(config, 25999)
    assert [(c.name, c.url) for c in found] == [("impalad-1", "http://127.0.0.11:25000")]
    assert coordinators_from_config(config, 1234) == []


def test_agent_command_line_refuses_what_cannot_work(capsys: pytest.CaptureFixture[str]) -> None:
    """``impala-lb agent`` with nothing to watch, or a stats socket without the config
    that says which backends follow, exits with a message naming what is missing."""
    from proxy.impala.cli import main

    socket_only = ["--coordinator=a=http://a:25000", "--stats-socket=/run/haproxy/admin.sock"]
    for argv in ([], socket_only):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--config FILE" in err and "--stats-socket needs --config" in err


def test_show_stat_and_the_stats_page_say_why(cluster: Cluster) -> None:
    """The agent's reason (after '#') reaches show stat's last_agt and the stats page,
    for a drain (sent with 'up' so HAProxy keeps the text too) and a not-ready server."""
    from proxy.stats import render_page, show_stat
    from tests.support.balancer import stat_rows

    cluster.poll()
    checker = cluster.obs.checks["shell"].checker("impalad-1")
    assert checker is not None
    checker.apply_agent(parse_agent_line(b"drain up #quiescing: grace period left: 1m"))
    row = stat_rows(show_stat(cluster.obs.state, None, -1, -1), "shell")["impalad-1"]
    assert row["status"] == "DRAIN (agent)"
    assert "quiescing: grace period left: 1m" in row["last_agt"]
    assert "quiescing: grace period left: 1m" in render_page(cluster.obs.state)
    checker.apply_agent(parse_agent_line(b"ready down #not ready: not in the cluster membership"))
    row = stat_rows(show_stat(cluster.obs.state, None, -1, -1), "shell")["impalad-1"]
    assert row["status"] == "DOWN (agent)" and "not in the cluster membership" in row["last_agt"]


def test_one_lagging_view_or_a_blip_takes_nobody_out(cluster: Cluster) -> None:
    """The membership is the union of every coordinator's view: a coordinator that lists
    only itself (just restarted) does not make the others absent; a member missing from
    every view for less than the grace stays in the pool."""
    cluster.members.append(_entry("127.0.0.14"))
    cluster.serve("127.0.0.14")
    cluster.poll()
    cluster.poll()
    assert cluster.names("shell") == ["impalad-1", "127.0.0.14"]
    cluster.views["http://127.0.0.14:25000/backends?json"] = [_entry("127.0.0.14")]
    cluster.poll_past_grace()
    state = cluster.watch.state("impalad-1")
    assert state is not None and state.state is State.READY
    cluster.views.clear()
    cluster.members = [_entry("127.0.0.11")]  # a blip: 127.0.0.14 missing for one poll
    cluster.poll()
    cluster.members.append(_entry("127.0.0.14"))
    cluster.poll()
    new = cluster.server("shell", "127.0.0.14")
    assert not new.admin.maint and not any("del server" in c for c in cluster.commands)


def test_a_reload_gives_the_controller_the_new_coordinators_and_pools() -> None:
    """In-process, a reload hands the controller the new file: coordinators it names are
    watched (a kept one keeps its state), the ones it dropped are not, and the pools
    follow the new backends; discovered coordinators stay."""
    from proxy.impala import Controller
    from proxy.impala._watch import Coordinator as Watched

    reactor = new_reactor()
    controller = Controller(
        reactor, ("127.0.0.1", 25999), config=parse_text(CONFIG), api=defer.succeed
    )
    watch = controller.watch
    watch.coordinators["127.0.0.14"] = Watched(
        "127.0.0.14", "http://127.0.0.14:25000", None, "", True
    )
    kept = watch.coordinators["impalad-1"]
    new = CONFIG.replace("backend old\n", "backend old2\n").replace(
        "backend hue\n",
        "backend hue\n    server impalad-2 127.0.0.12:21050 check port 25000 "
        f'{AGENT} agent-send "impalad-2\\n"\n',
    )
    controller.reconfigure(parse_text(new))
    assert sorted(watch.coordinators) == ["127.0.0.14", "impalad-1", "impalad-2"]
    assert watch.coordinators["impalad-1"] is kept
    assert sorted(s.backend for s in controller.specs) == ["hue", "shell"]
    hue = next(s for s in controller.specs if s.backend == "hue")
    assert hue.static == {"impalad-1", "impalad-2"}
    controller.reconfigure(parse_text(CONFIG.replace("impalad-1", "impalad-9")))
    assert sorted(watch.coordinators) == ["127.0.0.14", "impalad-9"]
