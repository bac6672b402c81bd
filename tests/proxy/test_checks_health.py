"""The health state machine and scheduling of spec 2.1-2.2, in memory."""

from __future__ import annotations

import pytest

from proxy.checks import CheckStatus, Health, Transition


def test_starts_up_at_rise() -> None:
    """Checks start with the server UP at health == rise, shown as ``UP 1/<fall>``."""
    h = Health.starting(2, 3)
    assert (h.value, h.up, h.progress()) == (2, True, " 1/3")


def test_first_failure_takes_server_down() -> None:
    """The first check decides: one failure from the starting state means DOWN."""
    h = Health.starting(2, 3)
    assert h.record(False) is Transition.WENT_DOWN
    assert (h.value, h.up, h.progress()) == (0, False, "")


def test_first_success_is_fully_up() -> None:
    """The first success jumps straight to rise+fall-1 without a transition."""
    h = Health.starting(2, 3)
    assert h.record(True) is None
    assert (h.value, h.progress()) == (4, "")


def test_exactly_fall_failures_from_full_up() -> None:
    """From fully UP it takes exactly ``fall`` failures to go DOWN, via UP 2/3 and UP 1/3."""
    h = Health(2, 3, 4)
    seen = []
    for _ in range(3):
        seen.append((h.record(False), h.progress()))
    assert seen == [(None, " 2/3"), (None, " 1/3"), (Transition.WENT_DOWN, "")]


def test_exactly_rise_successes_from_down() -> None:
    """From DOWN it takes exactly ``rise`` successes to go UP, via DOWN 1/2."""
    h = Health(2, 3, 0)
    assert (h.record(True), h.progress()) == (None, " 1/2")
    assert h.record(True) is Transition.WENT_UP
    assert h.value == 4


def test_one_success_while_going_down_restores_full_up() -> None:
    """A single success during "going down" restores fully UP."""
    h = Health(2, 3, 3)
    assert h.record(True) is None
    assert h.value == 4


def test_one_failure_while_going_up_resets_to_zero() -> None:
    """A single failure during "going up" resets the counter to 0."""
    h = Health(3, 3, 2)
    assert h.record(False) is None
    assert h.value == 0


def test_failure_at_zero_stays_zero() -> None:
    """Failures while DOWN leave the counter at 0."""
    h = Health(2, 3, 0)
    assert h.record(False) is None
    assert h.value == 0


def test_force_health() -> None:
    """``set server health up|down`` jumps to the maximum or to 0."""
    h = Health(2, 3, 4)
    assert h.force(False) is Transition.WENT_DOWN
    assert h.value == 0
    assert h.force(True) is Transition.WENT_UP
    assert h.value == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4, 2000), (3, 500), (2, 500), (1, 500), (0, 5000)],
)
def test_interval_by_state(value: int, expected: int) -> None:
    """inter when fully UP, downinter at health 0, fastinter in between (spec 2.2)."""
    assert Health(2, 3, value).interval(2000, 500, 5000) == expected


def test_interval_defaults_to_inter() -> None:
    """Without fastinter/downinter every state uses inter."""
    assert {Health(2, 3, v).interval(2000, None, None) for v in range(5)} == {2000}


def test_rise_zero_refused() -> None:
    """rise or fall of 0 is refused, as HAProxy refuses it."""
    with pytest.raises(ValueError):
        Health.starting(0, 3)


def test_status_codes_numbers() -> None:
    """Result codes carry HAProxy's numbers, descriptions and verdicts (spec 2.3)."""
    assert CheckStatus.L4CON.number == 8
    assert CheckStatus.L7STS.number == 17
    assert CheckStatus.L4OK.description == "Layer4 check passed"
    assert CheckStatus.L7OKC.passed and not CheckStatus.L6RSP.passed
    assert CheckStatus.L7OK.layer == 7 and CheckStatus.INI.layer == 0
