"""CatalogdManager over a statestore's topics and subscriber table, with a task.Clock."""

from __future__ import annotations

import dataclasses

from twisted.internet import task

from backends.catalog.server import (
    DESIGNATION_KEY,
    DESIGNATION_TOPIC,
    REGISTRATION_TOPIC,
    Designation,
    Registration,
)
from backends.statestore.catalogd_mgr import CatalogdManager
from backends.statestore.topics import Topic


@dataclasses.dataclass
class FakeSub:
    registration_id: str


class FakeStore:
    """The two attributes the manager reads of a Statestore: topics and subscribers."""

    def __init__(self) -> None:
        self.topics: dict[str, Topic] = {DESIGNATION_TOPIC: Topic(DESIGNATION_TOPIC)}
        self.subscribers: dict[str, FakeSub] = {}
        self.is_active = True

    def register(self, sub_id: str, reg_id: str, *, ha: bool = True, force: bool = False) -> None:
        self.subscribers[sub_id] = FakeSub(reg_id)
        reg = Registration(sub_id, f"{sub_id}:26000", ha, force)
        self.topics.setdefault(REGISTRATION_TOPIC, Topic(REGISTRATION_TOPIC)).put(
            sub_id, reg.to_bytes()
        )

    def evict(self, sub_id: str) -> None:
        del self.subscribers[sub_id]
        self.topics[REGISTRATION_TOPIC].put(sub_id, b"", deleted=True)


def designation(store: FakeStore) -> Designation | None:
    entry = store.topics.get(DESIGNATION_TOPIC, Topic("x")).entries.get(DESIGNATION_KEY)
    return None if entry is None else Designation.from_bytes(entry.value)


def make(store: FakeStore, clock: task.Clock, wait: float = 1.0) -> CatalogdManager:
    return CatalogdManager(
        clock, store, enable_ha=True, preemption_wait=wait, priority_by_subscriber_id=True
    )


def test_designation_is_written_after_the_preemption_wait() -> None:
    """A lone HA catalogd is designated in the topic once the wait is over."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock)
    store.register("cat-a", "r1")
    mgr.tick()
    assert designation(store) is None
    clock.advance(1.0)
    mgr.tick()
    d = designation(store)
    assert d is not None and d.address == "cat-a:26000"


def test_eviction_of_the_active_fails_over_to_the_standby() -> None:
    """When the active's subscriber is evicted, the standby is designated."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock)
    store.register("cat-a", "r1")
    store.register("cat-b", "r2")
    mgr.tick()
    first = designation(store)
    assert first is not None and first.subscriber_id == "cat-a"
    store.evict("cat-a")
    mgr.tick()
    second = designation(store)
    assert second is not None and second.subscriber_id == "cat-b"
    assert second.version > first.version
    assert mgr.metrics()["statestore.active-catalogd-address"] == "cat-b:26000"


def test_reregistration_with_a_missing_entry_is_not_a_failure() -> None:
    """A catalogd whose entry was tombstoned but which is still registered keeps its role."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock)
    store.register("cat-a", "r1")
    store.register("cat-b", "r2")
    mgr.tick()
    store.topics[REGISTRATION_TOPIC].put("cat-a", b"", deleted=True)
    store.subscribers["cat-a"] = FakeSub("r3")
    mgr.tick()
    d = designation(store)
    assert d is not None and d.subscriber_id == "cat-a"


def test_cleared_topics_get_the_designation_again() -> None:
    """After a statestore failover empties the topics, the designation is rewritten."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock, wait=0)
    store.register("cat-a", "r1")
    mgr.tick()
    for topic in store.topics.values():
        topic.clear()
    mgr.tick()
    d = designation(store)
    assert d is not None and d.subscriber_id == "cat-a"


def test_ha_flag_mismatch_is_refused() -> None:
    """A catalogd whose enable_catalogd_ha differs from the statestore's is not elected."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock, wait=0)
    store.register("cat-a", "r1", ha=False)
    mgr.tick()
    assert designation(store) is None


def test_bad_registration_value_is_ignored() -> None:
    """A malformed registration entry is logged and skipped, the tick keeps working."""
    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock, wait=0)
    store.subscribers["junk"] = FakeSub("r0")
    store.topics[REGISTRATION_TOPIC] = Topic(REGISTRATION_TOPIC)
    store.topics[REGISTRATION_TOPIC].put("junk", b"{")
    store.register("cat-a", "r1")
    mgr.tick()
    d = designation(store)
    assert d is not None and d.subscriber_id == "cat-a"


def test_ha_info_page_names_the_active() -> None:
    """/catalog_ha_info answers the active address, and 'inactive' on a standby statestore."""
    from backends.common.web import WebRequest

    clock, store = task.Clock(), FakeStore()
    mgr = make(store, clock, wait=0)
    store.register("cat-a", "r1")
    mgr.tick()
    page = mgr.routes()["/catalog_ha_info"]
    request = WebRequest("/catalog_ha_info", {"json": [""]}, "GET", {})
    assert b"cat-a:26000" in page(request).body
    store.is_active = False
    assert b"inactive" in page(request).body


def test_manager_creates_no_topics() -> None:
    """Without catalogd subscribers the statestore's topic list stays untouched."""
    clock, store = task.Clock(), FakeStore()
    store.topics.clear()
    mgr = make(store, clock, wait=0)
    mgr.tick()
    assert store.topics == {}
