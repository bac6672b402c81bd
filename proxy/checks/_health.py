"""The health state machine of spec 2.1-2.2: one counter, one place that flips UP/DOWN.

``value`` runs from 0 to ``rise + fall - 1``; the server is UP while ``value >= rise``.
A server whose checks start (process start, or leaving maintenance) is UP at
``value == rise``, so its first check decides: a success jumps to fully UP, a
failure drops to 0 (DOWN after one failure). From then on exactly ``rise``
successes bring a DOWN server up and exactly ``fall`` failures take a fully UP
server down; a single success during "going down" restores fully UP and a single
failure during "going up" resets to 0 (HAProxy's ``check_notify_success`` /
``check_notify_failure``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Transition(enum.Enum):
    """What a check result did to the server's operational state."""

    WENT_UP = "up"
    WENT_DOWN = "down"


@dataclass
class Health:
    """One server's check counter (mutable; owned by its checker)."""

    rise: int
    fall: int
    value: int

    @classmethod
    def starting(cls, rise: int, fall: int) -> Health:
        """The state when checks start: UP, ``value == rise`` (``UP 1/<fall>``)."""
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be > 0")
        return cls(rise, fall, rise)

    @property
    def full(self) -> int:
        return self.rise + self.fall - 1

    @property
    def up(self) -> bool:
        return self.value >= self.rise

    def restart(self) -> None:
        """Back to the starting state (leaving maintenance, re-enabling checks)."""
        self.value = self.rise

    def force(self, up: bool) -> Transition | None:
        """``set server b/s health up|down``: jump to the maximum or to 0."""
        was = self.up
        self.value = self.full if up else 0
        return self._transition(was)

    def record(self, passed: bool) -> Transition | None:
        """Apply one check result; return the transition it caused, if any."""
        was = self.up
        if passed:
            if self.value < self.full:
                self.value += 1
                if self.value >= self.rise:
                    self.value = self.full
        elif self.value > 0:
            self.value -= 1
            if self.value < self.rise:
                self.value = 0
        return self._transition(was)

    def _transition(self, was_up: bool) -> Transition | None:
        if was_up and not self.up:
            return Transition.WENT_DOWN
        if not was_up and self.up:
            return Transition.WENT_UP
        return None

    def progress(self) -> str:
        """The ``a/b`` suffix of the stats status: empty when fully UP or fully DOWN.

        Going down: ``a = value - rise + 1`` of ``fall``; going up: ``value`` of ``rise``."""
        if self.value == self.full or self.value == 0:
            return ""
        if self.up:
            return f" {self.value - self.rise + 1}/{self.fall}"
        return f" {self.value}/{self.rise}"

    def interval(self, inter: int, fastinter: int | None, downinter: int | None) -> int:
        """Milliseconds until the next check (spec 2.2)."""
        if self.value == self.full:
            return inter
        if self.value == 0:
            return downinter or inter
        return fastinter or inter
