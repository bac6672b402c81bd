"""Topic versions, deltas, deletions and transient-entry guards (pure data)."""

from __future__ import annotations

from backends.common.rpc import TopicItem
from backends.statestore.topics import Topic, is_prioritized


def test_every_write_gets_the_next_version() -> None:
    """Puts get strictly increasing versions and the topic version is the newest."""
    t = Topic("impala-membership")
    assert t.version == 0
    assert [t.put("a", b"1"), t.put("b", b"2"), t.put("a", b"3")] == [1, 2, 3]
    assert t.version == 3
    assert t.oldest_version == 2  # the log keeps one version per key


def test_full_update_has_live_entries_only() -> None:
    """A subscriber with no version gets every live entry and no tombstones."""
    t = Topic("x")
    t.put("a", b"1")
    t.put("b", b"2")
    t.put("b", b"", deleted=True)
    delta = t.build_delta(0)
    assert (delta.is_delta, delta.from_version, delta.to_version) == (False, 0, 3)
    assert delta.items == (TopicItem("a", b"1"),)


def test_delta_carries_newer_entries_and_deletion_markers() -> None:
    """A delta after version V holds exactly the keys changed after V, deletions marked."""
    t = Topic("x")
    t.put("a", b"1")
    t.put("b", b"2")
    seen = t.version
    t.put("c", b"3")
    t.put("a", b"", deleted=True)
    delta = t.build_delta(seen)
    assert (delta.is_delta, delta.from_version, delta.to_version) == (True, 2, 4)
    assert delta.items == (TopicItem("c", b"3"), TopicItem("a", b"", deleted=True))
    assert t.build_delta(t.version).items == ()


def test_filter_prefix_still_advances_the_version() -> None:
    """Filtered-out entries are not sent, but to_version still moves (empty updates)."""
    t = Topic("catalog-update")
    t.put("1:TABLE:a", b"x")
    t.put("2:TABLE:a", b"y")
    delta = t.build_delta(0, "2:")
    assert [i.key for i in delta.items] == ["2:TABLE:a"]
    assert delta.to_version == 2


def test_delete_if_version_matches_spares_overwritten_entries() -> None:
    """A failed writer's entry is removed only if nobody overwrote it since."""
    t = Topic("x")
    mine = t.put("k", b"mine")
    other = t.put("j", b"j")
    t.put("j", b"overwritten")
    assert t.delete_if_version_matches("k", mine) is True
    assert t.entries["k"].deleted
    assert t.delete_if_version_matches("j", other) is False
    assert t.entries["j"].value == b"overwritten"


def test_clear_keeps_counting_versions() -> None:
    """Clearing empties entries and log; the next write still gets a fresh version."""
    t = Topic("x")
    t.put("a", b"1")
    t.clear()
    assert (t.version, t.num_live_entries) == (0, 0)
    assert t.put("b", b"2") == 2


def test_prioritized_topics() -> None:
    """Membership and request-queue topics (also with a cluster prefix) are prioritized."""
    assert is_prioritized("impala-membership")
    assert is_prioritized("c1-impala-request-queue")
    assert not is_prioritized("catalog-update")
