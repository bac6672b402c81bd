"""impalad's membership (descriptor, view, health latch) over the real statestore, in memory."""

from __future__ import annotations

import dataclasses

from twisted.internet import task
from twisted.internet.testing import MemoryReactorClock

from backends.common.subscriber import MEMBERSHIP_TOPIC, BackendDescriptor, StatestoreSubscriber
from backends.common.web import WebRequest
from backends.impalad import main, webui
from backends.impalad.flags import flag_set
from backends.impalad.membership import (
    MEMBERSHIP_TOPICS,
    ImpaladDescriptor,
    Membership,
    backend_json,
    new_backend_id,
)
from backends.impalad.testing import FakeEngine, fake_session
from backends.statestore.statestore import Statestore, build_service
from backends.statestore.testing import FAST_CONFIG, MemoryNetwork
from tests.impalad.test_http_and_main import make_server

STORE = ("10.0.0.1", 24000)


def descriptor(name: str, **changes: object) -> ImpaladDescriptor:
    d = ImpaladDescriptor(
        backend_id=f"id-{name}",
        address=f"{name}:27000",
        hs2_port=21050,
        webserver_port=25000,
        hs2_http_port=28000,
        version="v",
        start_time=1.0,
    )
    return dataclasses.replace(d, **changes)  # type: ignore[arg-type]


class Net:
    def __init__(self) -> None:
        self.clock = task.Clock()
        self.net = MemoryNetwork(self.clock)
        self.store = Statestore(self.clock, FAST_CONFIG, self.net.client)
        build_service(self.store, self.net.server(*STORE), None).startService()

    def member(self, name: str) -> Membership:
        sub = StatestoreSubscriber(
            self.clock,
            self.net.client,
            self.net.server(name, 0),
            name,
            f"impalad@{name}",
            "COORDINATOR_EXECUTOR",
            [STORE],
            MEMBERSHIP_TOPICS,
            heartbeat_interval=0.1,
            max_missed_heartbeats=5,
        )
        sub.startService()
        return Membership(sub, grace_period=0.3)


def test_descriptor_round_trips_with_its_extra_fields() -> None:
    """The extra fields travel in the topic entry, and equality is on the library's fields."""
    d = descriptor("a", hs2_http_port=28123, webserver_https=True)
    back = ImpaladDescriptor.parse(d.to_bytes())
    assert back.hs2_http_port == 28123 and back.webserver_https and back.version == "v"
    base = BackendDescriptor.from_bytes(d.to_bytes())
    unchanged = base != d  # what ClusterMembership compares before republishing
    assert base == d and unchanged is False
    assert base != dataclasses.replace(d, is_quiescing=True)


def test_a_plain_backend_descriptor_parses_with_defaults() -> None:
    """An entry from a daemon that publishes only Impala's fields still parses."""
    plain = BackendDescriptor("x", "h:27000", 21050, 25000).to_bytes()
    d = ImpaladDescriptor.parse(plain)
    assert (d.address, d.hs2_http_port, d.webserver_https) == ("h:27000", 0, False)
    assert backend_json(d, is_self=False)["hs2_http_address"] == ""


def test_backend_json_uses_impala_field_names() -> None:
    """An entry carries Impala's names plus hs2_address/hs2_http_address."""
    entry = backend_json(descriptor("h", webserver_https=True), is_self=True)
    assert entry["address"] == entry["krpc_address"] == "h:27000"
    assert entry["hs2_address"] == "h:21050" and entry["hs2_http_address"] == "h:28000"
    assert entry["webserver_url"] == "https://h:25000"
    assert entry["is_active"] and not entry["is_quiescing"] and not entry["is_blacklisted"]
    assert len(new_backend_id().split(":")[0]) == 16


def test_members_see_each_other_and_settle_without_republishing() -> None:
    """Two members each list both, with the other's hs2-http port, and stop writing once seen."""
    n = Net()
    a, b = n.member("a"), n.member("b")
    assert not a.registered
    n.net.run(0.5)
    assert a.registered and b.registered
    a.publish(descriptor("a", hs2_http_port=1))
    b.publish(descriptor("b", hs2_http_port=2))
    n.net.run(1.5)
    assert [d.address for d in a.backends()] == ["a:27000", "b:27000"]
    assert [d.hs2_http_port for d in b.backends()] == [2, 1]
    version = n.store.topics[MEMBERSHIP_TOPIC].version
    n.net.run(2.0)
    assert n.store.topics[MEMBERSHIP_TOPIC].version == version  # no write loop


def test_quiescing_is_republished_to_the_others() -> None:
    """set_quiescing republishes the descriptor; the other member sees is_quiescing."""
    n = Net()
    a, b = n.member("a"), n.member("b")
    n.net.run(0.5)
    a.publish(descriptor("a"))
    b.publish(descriptor("b"))
    n.net.run(1.5)
    a.set_quiescing()
    n.net.run(1.0)
    seen = {d.address: d for d in b.backends()}
    assert seen["a:27000"].is_quiescing
    assert a.metrics()["cluster-membership.backends.total"] == 2


def test_standalone_is_registered_and_lists_itself() -> None:
    """Without a statestore the membership is this daemon alone and counts as registered."""
    m = Membership(None, 30.0)
    assert m.standalone and m.registered and m.backends() == []
    m.publish(descriptor("solo"))
    assert [d.address for d in m.backends()] == ["solo:27000"]


def test_healthz_waits_for_registration_but_standalone_does_not() -> None:
    """/healthz is 503 until the first registration for a member, 200 at once standalone."""
    server = make_server()
    n = Net()
    member = n.member("a")
    healthz = webui.routes(server, member)["/healthz"]
    request = WebRequest("/healthz", {}, "GET", {})
    assert healthz(request).status == 503
    n.net.run(0.5)
    assert healthz(request).status == 200
    standalone = webui.routes(server, Membership(None, 30.0))["/healthz"]
    assert standalone(request).status == 200


def test_make_service_with_a_statestore_adds_the_subscriber_port() -> None:
    """With --state_store_host the service tree also listens on the subscriber port."""
    flags = flag_set().parse(
        [
            "--listen_host=127.0.0.7",
            "--hs2_port=1",
            "--beeswax_port=0",
            "--hs2_http_port=0",
            "--webserver_port=0",
            "--state_store_host=127.0.0.8",
            "--state_store_subscriber_port=5",
        ]
    )
    reactor = MemoryReactorClock()
    top = main.makeService(
        flags,
        reactor=reactor,
        engine=FakeEngine(),
        session_factory=fake_session,
        exit=lambda code: None,
        on_ready=lambda line: None,
    )
    top.startService()
    try:
        assert [(p[0], p[3]) for p in reactor.tcpServers] == [(1, "127.0.0.7"), (5, "127.0.0.7")]
        membership = top.membership  # type: ignore[attr-defined]
        assert not membership.standalone and membership.descriptor is not None
        assert membership.descriptor.hs2_port == 1
    finally:
        top.stopService()


def test_shutdown_start_hooks_run_once() -> None:
    """A shutdown start hook (publishing is_quiescing) runs when shutdown starts, not again."""
    from backends.impalad.shutdown import ShutdownController

    calls: list[str] = []
    clock = task.Clock()
    controller = ShutdownController(clock, 5, 60, lambda: 0, lambda: None, lambda code: None)
    controller.on_start(lambda: calls.append("quiescing"))
    controller.start()
    controller.start(deadline_s=10)
    assert calls == ["quiescing"]
    clock.advance(6)
