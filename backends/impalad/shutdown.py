"""Graceful shutdown (``:shutdown()`` and SIGRTMIN), after Impala's ShutdownThread.

Once started, new sessions and queries are refused with Impala's "Server is
being shut down" error, running work goes on, and every second the
controller checks: the grace period has passed and no query is registered,
or the deadline has passed (queries are then cancelled). Either way it calls
``exit(0)``. Re-issuing a shutdown can only shorten the deadline. Hooks given
to :meth:`ShutdownController.on_start` run once, when shutdown starts: impalad
republishes its descriptor with ``is_quiescing=true`` there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet import task
from twisted.logger import Logger

log = Logger()


def pretty_seconds(seconds: float) -> str:
    """Impala's PrettyPrint of a duration in whole seconds: ``1h2m3s``, ``2m``, ``0``."""
    total = max(0, math.ceil(seconds))
    if total == 0:
        return "0"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs:
        out += f"{secs}s"
    return out


class ShutdownController:
    """The shutdown state machine of one impalad: RUNNING -> SHUTTING_DOWN -> exit."""

    def __init__(
        self,
        clock: Any,  # IReactorTime
        grace_period_s: float,
        deadline_s: float,
        registered: Callable[[], int],
        cancel_all: Callable[[], None],
        exit: Callable[[int], None],
    ) -> None:
        self._clock = clock
        self._grace = grace_period_s
        self._default_deadline = deadline_s
        self._registered = registered
        self._cancel_all = cancel_all
        self._exit = exit
        self._start_hooks: list[Callable[[], None]] = []
        self.started = False
        self._start_time = 0.0
        self._deadline_at = 0.0
        self._loop: task.LoopingCall | None = None
        self._exited = False

    def on_start(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once when shutdown starts."""
        self._start_hooks.append(hook)

    def grace_left(self) -> float:
        now: float = self._clock.seconds()
        return max(0.0, self._start_time + self._grace - now)

    def deadline_left(self) -> float:
        now: float = self._clock.seconds()
        return max(0.0, self._deadline_at - now)

    def error_message(self) -> str:
        return (
            "Server is being shut down: shutdown grace period left: "
            f"{pretty_seconds(self.grace_left())}, deadline left: "
            f"{pretty_seconds(self.deadline_left())}"
        )

    def status_text(self) -> str:
        """The one-row answer of ``:shutdown()``."""
        return (
            f"shutdown grace period left: {pretty_seconds(self.grace_left())}, "
            f"deadline left: {pretty_seconds(self.deadline_left())}, "
            f"queries registered on coordinator: {self._registered()}, "
            "queries executing: 0, fragment instances: 0"
        )

    def start(self, deadline_s: float | None = None) -> str:
        """Begin (or re-issue) shutdown; returns the status line. Idempotent."""
        now = self._clock.seconds()
        deadline_at = now + (self._default_deadline if deadline_s is None else deadline_s)
        if not self.started:
            self.started = True
            self._start_time = now
            self._deadline_at = deadline_at
            log.info(
                "shutdown started: grace {grace}s, deadline {deadline}s",
                grace=self._grace,
                deadline=deadline_at - now,
            )
            for hook in self._start_hooks:
                # Tell the cluster first (is_quiescing on the membership topic).
                try:
                    hook()
                except Exception:
                    log.failure("announcing the shutdown failed")
            self._loop = task.LoopingCall(self.poke)
            self._loop.clock = self._clock
            self._loop.start(1.0, now=False)
        elif deadline_at < self._deadline_at:
            self._deadline_at = deadline_at
            log.info("shutdown deadline shortened to {left}s", left=deadline_at - now)
        return self.status_text()

    def poke(self) -> None:
        """Exit now if the rules allow it (called every second)."""
        if not self.started or self._exited:
            return
        now = self._clock.seconds()
        if now >= self._deadline_at:
            log.info("shutdown deadline reached: cancelling queries and exiting")
            self._cancel_all()
            self._finish()
        elif now - self._start_time >= self._grace and self._registered() == 0:
            log.info("shutdown: grace period over and no queries registered; exiting")
            self._finish()

    def _finish(self) -> None:
        self._exited = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._exit(0)
