"""The statestore's catalogd election state machine (spec 4.2), in memory."""

from __future__ import annotations

from backends.statestore.catalogd_mgr import Candidate, CatalogdElection


def cand(name: str, *, force: bool = False, priority: str = "") -> Candidate:
    return Candidate(name, f"{name}:26000", force, priority or name)


def test_ha_off_every_registration_becomes_active() -> None:
    """Without HA each (re)registration is designated active and bumps the version."""
    e = CatalogdElection(enable_ha=False, preemption_wait=10)
    e.register(cand("a"), 0)
    e.register(cand("b"), 1)
    assert e.active == "b" and e.version == 2


def test_lone_catalogd_waits_for_the_preemption_period() -> None:
    """With HA a first catalogd is designated only once the wait has expired."""
    e = CatalogdElection(enable_ha=True, preemption_wait=10)
    e.register(cand("a"), 0)
    e.check(9.9)
    assert e.active is None
    e.check(10)
    assert e.active == "a" and e.version == 1


def test_second_registration_in_time_elects_the_lower_priority() -> None:
    """Two catalogds registered within the wait: the lower priority value wins."""
    e = CatalogdElection(enable_ha=True, preemption_wait=10)
    e.register(cand("b", priority="2"), 0)
    e.register(cand("a", priority="1"), 1)
    assert e.active == "a" and e.standby == "b"


def test_force_active_preempts_an_active() -> None:
    """A catalogd registering with force_catalogd_active takes over from the active."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a"), 0)
    e.register(cand("b", force=True), 1)
    assert e.active == "b" and e.standby == "a" and e.version == 2


def test_both_forced_the_later_registration_wins() -> None:
    """Both with force_catalogd_active: exactly one active, the later one."""
    e = CatalogdElection(enable_ha=True, preemption_wait=10)
    e.register(cand("a", force=True), 0)
    e.register(cand("b", force=True), 1)
    assert e.active == "b" and e.standby == "a"


def test_failover_designates_the_standby_and_bumps_the_version() -> None:
    """Unregistering the failed active makes the standby active with a newer version."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a", priority="1"), 0)
    e.register(cand("b", priority="2"), 0)
    before = e.version
    e.unregister("a")
    assert e.active == "b" and e.version == before + 1


def test_restarted_old_active_stays_standby() -> None:
    """No automatic fail-back: the recovered higher-priority catalogd is standby."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a", priority="1"), 0)
    e.register(cand("b", priority="2"), 0)
    e.unregister("a")
    e.register(cand("a", priority="1"), 5)
    assert e.active == "b" and e.standby == "a"


def test_reregistering_active_keeps_its_role() -> None:
    """An active that re-registers before it is detected failed stays active."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a", priority="1"), 0)
    e.register(cand("b", priority="2"), 0)
    version = e.version
    e.register(cand("a", priority="9"), 3, reregistering=True)
    assert e.active == "a" and e.version == version


def test_forced_standby_reregistering_takes_over() -> None:
    """A standby re-registering with force_catalogd_active becomes active."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a", priority="1"), 0)
    e.register(cand("b", priority="2"), 0)
    e.register(cand("b", force=True), 3, reregistering=True)
    assert e.active == "b"


def test_after_losing_the_only_catalogd_the_next_one_is_active_at_once() -> None:
    """With none left, the next registration is designated without waiting."""
    e = CatalogdElection(enable_ha=True, preemption_wait=100)
    e.register(cand("a"), 0)
    e.check(100)
    e.unregister("a")
    assert e.active is None
    e.register(cand("b"), 101)
    assert e.active == "b"


def test_losing_the_standby_clears_it() -> None:
    """The standby's failure leaves the active and the version alone."""
    e = CatalogdElection(enable_ha=True, preemption_wait=0)
    e.register(cand("a", priority="1"), 0)
    e.register(cand("b", priority="2"), 0)
    version = e.version
    e.unregister("b")
    assert e.active == "a" and e.standby is None and e.version == version
