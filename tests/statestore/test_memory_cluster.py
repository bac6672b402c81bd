"""The real statestore and subscriber code over AMP, in memory (task.Clock + iosim)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task

from backends.common.rpc import RpcError, TopicRegistration
from backends.common.subscriber import (
    MEMBERSHIP_TOPIC,
    BackendDescriptor,
    ClusterMembership,
    StatestoreSubscriber,
)
from backends.statestore.ha import HaConfig, Role
from backends.statestore.statestore import Statestore, StatestoreConfig, build_service
from backends.statestore.testing import FAST_CONFIG, MemoryNetwork
from backends.statestore.topics import Topic

SS = [("10.0.0.1", 24000), ("10.0.0.2", 24000)]
HA_PORT = 24020


class Cluster:
    """Statestores and subscribers on one MemoryNetwork."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self.net = MemoryNetwork(self.clock)
        self.stores: dict[int, tuple[Statestore, Any]] = {}
        self.subs: dict[str, tuple[StatestoreSubscriber, ClusterMembership]] = {}
        self.seen: dict[str, list[dict[str, BackendDescriptor]]] = {}

    def start_store(self, index: int, ha: bool = True, force: bool = False) -> Statestore:
        host, port = SS[index]
        peer_host = SS[1 - index][0]
        store = Statestore(
            self.clock,
            FAST_CONFIG,
            self.net.client,
            ha=HaConfig(
                own_address=f"{host}:{HA_PORT}",
                force_active=force,
                priority_by_address=True,
                monitor_interval=0.1,
                max_missed_heartbeats=5,
                preemption_wait=0.5,
                rpc_timeout=0.3,
            )
            if ha
            else None,
            peer_endpoint=self.net.client(peer_host, HA_PORT) if ha else None,
        )
        top = build_service(
            store, self.net.server(host, port), self.net.server(host, HA_PORT) if ha else None
        )
        top.startService()
        self.stores[index] = (store, top)
        return store

    def kill_store(self, index: int) -> None:
        _, top = self.stores.pop(index)
        top.stopService()
        host, port = SS[index]
        self.net.close(host, port)
        self.net.close(host, HA_PORT)

    def start_sub(self, name: str, stores: int = 2) -> StatestoreSubscriber:
        sub = StatestoreSubscriber(
            self.clock,
            self.net.client,
            self.net.server("10.0.1.1", 0),
            "10.0.1.1",
            name,
            "COORDINATOR_EXECUTOR",
            SS[:stores],
            [TopicRegistration(MEMBERSHIP_TOPIC)],
            heartbeat_interval=0.1,
            max_missed_heartbeats=5,
            rpc_timeout=0.5,
        )
        members = ClusterMembership(sub, BackendDescriptor(name, f"{name}:27000"), grace_period=0.3)
        self.seen[name] = []
        members.on_change(self.seen[name].append)
        sub.startService()
        self.subs[name] = (sub, members)
        return sub

    def kill_sub(self, name: str) -> None:
        sub, _ = self.subs.pop(name)
        sub.stopService()
        host, port = sub.location.split(":")
        self.net.close(host, int(port))

    def membership(self, name: str) -> set[str]:
        return set(self.subs[name][1].backends)

    def primary_index(self, name: str) -> int | None:
        primary = self.subs[name][0].current_primary
        return None if primary is None else primary.index


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_membership_reaches_every_subscriber(cluster: Cluster) -> None:
    """Each subscriber publishes its descriptor and every subscriber sees all of them."""
    cluster.start_store(0, ha=False)
    for name in ("a", "b", "c"):
        cluster.start_sub(name, stores=1)
    cluster.net.run(1.0)
    for name in ("a", "b", "c"):
        assert cluster.membership(name) == {"a", "b", "c"}
        assert cluster.seen[name][-1]["b"].address == "b:27000"


def test_failed_subscriber_is_evicted_and_its_entry_deleted(cluster: Cluster) -> None:
    """A subscriber that stops answering is evicted and its transient entry disappears."""
    store = cluster.start_store(0, ha=False)
    for name in ("a", "b"):
        cluster.start_sub(name, stores=1)
    cluster.net.run(1.0)
    cluster.kill_sub("b")
    cluster.net.run(0.3)
    assert "b" in store.subscribers  # fewer than max_missed heartbeats missed so far
    cluster.net.run(1.0)
    assert "b" not in store.subscribers
    assert cluster.membership("a") == {"a"}


def test_subscriber_reregisters_after_statestore_restart(cluster: Cluster) -> None:
    """A subscriber that stops hearing from its statestore registers again when it returns."""
    cluster.start_store(0, ha=False)
    sub = cluster.start_sub("a", stores=1)
    cluster.net.run(0.5)
    first = sub.role_view()[0]["registration_id"]
    cluster.kill_store(0)
    cluster.net.run(1.0)
    store = cluster.start_store(0, ha=False)
    cluster.net.run(1.5)
    assert "a" in store.subscribers
    assert sub.role_view()[0]["registration_id"] not in ("", first)
    assert cluster.membership("a") == {"a"}


def test_bad_registration_is_refused_not_fatal(cluster: Cluster) -> None:
    """Malformed registrations raise a clear RpcError and the statestore keeps serving."""
    store = cluster.start_store(0, ha=False)
    with pytest.raises(RpcError, match="not host:port"):
        store.register_subscriber(2, "x", "nowhere", "EXECUTOR", [])
    with pytest.raises(RpcError, match="subscriber_type"):
        store.register_subscriber(2, "x", "h:1", "WIZARD", [])
    with pytest.raises(RpcError, match="non-empty string 'name'"):
        store.register_subscriber(2, "x", "h:1", "EXECUTOR", [{"name": 3}])
    with pytest.raises(RpcError, match="INCOMPATIBLE_PROTOCOL"):
        store.register_subscriber(1, "x", "h:1", "EXECUTOR", [])
    cluster.start_sub("a", stores=1)
    cluster.net.run(0.5)
    assert cluster.membership("a") == {"a"}


def test_ha_pair_elects_one_and_subscribers_agree(cluster: Cluster) -> None:
    """Two statestores started together end with the lower address active, held by all."""
    s0, s1 = cluster.start_store(0), cluster.start_store(1)
    for name in ("a", "b", "c"):
        cluster.start_sub(name)
    cluster.net.run(1.5)
    assert (s0.ha and s0.ha.role, s1.ha and s1.ha.role) == (Role.ACTIVE, Role.STANDBY)
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {0}
    assert all(cluster.membership(n) == {"a", "b", "c"} for n in ("a", "b", "c"))
    assert s1.topics[MEMBERSHIP_TOPIC].num_live_entries == 0  # a standby's topics stay empty


def test_kill_primary_standby_takes_over_and_membership_rebuilds(cluster: Cluster) -> None:
    """Killing the active makes the standby active; subscribers follow and republish."""
    cluster.start_store(0)
    s1 = cluster.start_store(1)
    for name in ("a", "b", "c"):
        cluster.start_sub(name)
    cluster.net.run(1.5)
    cluster.kill_store(0)
    cluster.net.run(0.4)
    assert s1.ha is not None
    assert s1.ha.role is Role.STANDBY  # not yet: too few misses
    cluster.net.run(1.5)
    assert s1.metrics()["statestore.active-status"] is True
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {1}
    assert s1.topics[MEMBERSHIP_TOPIC].num_live_entries == 3
    assert all(cluster.membership(n) == {"a", "b", "c"} for n in ("a", "b", "c"))
    # The grace period kept listeners from ever seeing a shrunken membership.
    assert all(len(m) == 3 for n in ("a", "b", "c") for m in cluster.seen[n][1:])


def test_cut_link_alone_causes_no_takeover(cluster: Cluster) -> None:
    """With only the HA link cut, subscribers still reach the active, so no takeover."""
    s0, s1 = cluster.start_store(0), cluster.start_store(1)
    for name in ("a", "b", "c"):
        cluster.start_sub(name)
    cluster.net.run(1.5)
    s0.set_debug_action(False, True, [])
    cluster.net.run(3.0)
    assert s0.ha is not None and s1.ha is not None
    assert (s0.ha.role, s1.ha.role) == (Role.ACTIVE, Role.STANDBY)
    assert s1.ha.peer_failed()
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {0}


def test_cut_link_and_majority_takes_over_then_heals_to_one(cluster: Cluster) -> None:
    """Cutting the active from the peer and 2 of 3 subscribers moves the role; healing
    leaves exactly one active, the newer one."""
    s0, s1 = cluster.start_store(0), cluster.start_store(1)
    for name in ("a", "b", "c"):
        cluster.start_sub(name)
    cluster.net.run(1.5)
    s0.set_debug_action(False, True, ["a", "b"])
    cluster.net.run(3.0)
    assert s1.ha is not None and s1.ha.role is Role.ACTIVE
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {1}
    s0.set_debug_action(False, False, [])
    cluster.net.run(2.0)
    assert s0.ha is not None
    assert (s0.ha.role, s1.ha.role) == (Role.STANDBY, Role.ACTIVE)
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {1}


def test_subscriber_skips_updates_from_non_primary(cluster: Cluster) -> None:
    """An UpdateState from the statestore the subscriber holds standby is skipped."""
    cluster.start_store(0)
    s1 = cluster.start_store(1)
    sub = cluster.start_sub("a")
    cluster.net.run(1.5)
    reg = s1.subscribers["a"].registration_id
    answer = sub.update_state(reg, s1.statestore_id, [])
    assert answer == {"skipped": True, "topic_updates": []}


def test_reregistration_removes_old_transient_entries_only(cluster: Cluster) -> None:
    """Registering again tombstones the old registration's transient entries, while a
    non-transient topic's entries survive."""
    store = cluster.start_store(0, ha=False)
    cluster.start_sub("a", stores=1)
    cluster.net.run(0.5)
    sub = store.subscribers["a"]
    store.topics["catalog-update"] = Topic("catalog-update")
    sub.topics["catalog-update"] = TopicRegistration("catalog-update", is_transient=False)
    store.apply_writes(
        sub, [{"topic": "catalog-update", "items": [{"key": "TABLE:t", "value": ""}]}]
    )
    before = store.topics[MEMBERSHIP_TOPIC].version
    store.register_subscriber(2, "a", sub.location, "COORDINATOR", [{"name": MEMBERSHIP_TOPIC}])
    membership = store.topics[MEMBERSHIP_TOPIC]
    assert membership.entries["a"].deleted and membership.version == before + 1
    assert not store.topics["catalog-update"].entries["TABLE:t"].deleted


def test_out_of_order_delta_asks_for_resync(cluster: Cluster) -> None:
    """A delta that does not continue the applied version is not applied; the answer
    asks the statestore to resend from the version the subscriber has."""
    store = cluster.start_store(0, ha=False)
    sub = cluster.start_sub("a", stores=1)
    cluster.net.run(0.5)
    have = sub.role_view()[0]
    delta = {"topic": MEMBERSHIP_TOPIC, "items": [], "is_delta": True}
    answer = sub.update_state(
        have["registration_id"],
        store.statestore_id,
        [{**delta, "from_version": 999, "to_version": 1000}],
    )
    writes = [w for w in answer["topic_updates"] if w["resync_from"] is not None]
    assert writes and writes[0]["resync_from"] == store.topics[MEMBERSHIP_TOPIC].version
    assert cluster.membership("a") == {"a"}


def test_stopping_leaves_no_timers(cluster: Cluster) -> None:
    """Stopping every statestore and subscriber leaves no delayed calls on the clock."""
    cluster.start_store(0)
    cluster.start_store(1)
    cluster.start_sub("a")
    cluster.net.run(1.5)
    cluster.kill_sub("a")
    cluster.kill_store(0)
    cluster.kill_store(1)
    cluster.net.run(5.0)
    assert cluster.clock.getDelayedCalls() == []


def test_debug_actions_need_the_flag() -> None:
    """The fault switch is refused unless --debug_actions enabled it."""
    clock = task.Clock()
    store = Statestore(clock, StatestoreConfig(), MemoryNetwork(clock).client)
    with pytest.raises(RpcError, match="DISABLE_STATESTORE_NETWORK"):
        store.set_debug_action(True, False, [])
    assert store.debug.network_disabled is False


def test_disabled_network_primary_recovers_as_standby(cluster: Cluster) -> None:
    """An active whose network is disabled loses every subscriber and its peer, goes to
    recovery; the standby takes over; re-enabled, the old one comes back as standby."""
    s0, s1 = cluster.start_store(0), cluster.start_store(1)
    for name in ("a", "b", "c"):
        cluster.start_sub(name)
    cluster.net.run(1.5)
    s0.set_debug_action(True, False, [])
    cluster.net.run(3.0)
    assert s0.ha is not None and s1.ha is not None
    assert (s0.ha.role, s1.ha.role) == (Role.RECOVERING, Role.ACTIVE)
    assert s0.metrics()["statestore.in-ha-recovery-mode"] is True
    assert {cluster.primary_index(n) for n in ("a", "b", "c")} == {1}
    s0.set_debug_action(False, False, [])
    cluster.net.run(2.0)
    assert (s0.ha.role, s1.ha.role) == (Role.STANDBY, Role.ACTIVE)
    assert len(s0.subscribers) == 3
    assert all(cluster.membership(n) == {"a", "b", "c"} for n in ("a", "b", "c"))


def test_non_priority_topics_follow_the_slower_schedule(cluster: Cluster) -> None:
    """catalog-update entries reach subscribers on --statestore_update_frequency_ms,
    not on the 100 ms priority schedule."""
    store = cluster.start_store(0, ha=False)
    sub = StatestoreSubscriber(
        cluster.clock,
        cluster.net.client,
        cluster.net.server("10.0.1.2", 0),
        "10.0.1.2",
        "coord",
        "COORDINATOR",
        SS[:1],
        [TopicRegistration("catalog-update", filter_prefix="2:")],
        heartbeat_interval=0.1,
        max_missed_heartbeats=5,
    )
    sub.startService()
    cluster.net.run(0.6)
    store.apply_writes(
        store.subscribers["coord"],
        [{"topic": "catalog-update", "items": [{"key": "2:TABLE:t"}, {"key": "1:TABLE:t"}]}],
    )
    cluster.net.run(0.2)
    assert sub.entries("catalog-update") == {}
    cluster.net.run(0.5)
    assert sub.entries("catalog-update") == {"2:TABLE:t": b""}
    sub.stopService()
