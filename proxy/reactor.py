"""The reactor impala-lb runs on: Twisted's epoll reactor with the byte pump on top.

Twisted's reactor stays the control plane (config, checks, the runtime API, timers);
the pump (:class:`proxy.pump.PumpLoop`) moves the bytes of established sessions in an
epoll set of its own. Nested the usual way, every wake-up of a session costs two
``epoll_wait`` calls (the reactor's, then the pump's) and Twisted's per-reader dispatch
(``callWithLogger``) in between. :class:`PumpReactor` turns the nesting round: the
process waits on the pump's epoll, which holds the reactor's epoll as one more fd.
Session bytes are then handled straight from the one wait; the reactor's own fds are
polled (without waiting) only when its epoll says one is ready. Timers are unchanged:
the wait ends when the next one is due, as the reactor computes it.

``bench/profile_proxy.py rt64`` and ``cps`` measure what it saves (bench/README.md).
"""

from __future__ import annotations

import contextlib
import select
from typing import Any

from twisted.internet.epollreactor import EPollReactor


class PumpReactor(EPollReactor):
    """An EPollReactor that waits on the byte pump's epoll once a pump adopts it."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._pump: Any = None

    def adopt_pump(self, pump: Any) -> bool:
        """Make ``pump``'s epoll the one this reactor waits on (the first pump only)."""
        if self._pump is not None:
            return False
        pump.ep.register(self._poller.fileno(), select.EPOLLIN)
        self._pump = pump
        return True

    def release_pump(self, pump: Any) -> None:
        if self._pump is pump:
            self._pump = None
            with contextlib.suppress(OSError, ValueError):
                pump.ep.unregister(self._poller.fileno())

    def doPoll(self, timeout: float | None) -> None:
        pump = self._pump
        if pump is None:
            super().doPoll(timeout)  # type: ignore[no-untyped-call]
            return
        try:
            events = pump.ep.poll(-1 if timeout is None else timeout, 512)
        except InterruptedError:
            return
        if pump.dispatch(events, self._poller.fileno()):
            super().doPoll(0)  # type: ignore[no-untyped-call]

    doIteration = doPoll


def install() -> PumpReactor:
    """Install :class:`PumpReactor` as Twisted's global reactor."""
    from twisted.internet.main import installReactor

    reactor = PumpReactor()
    installReactor(reactor)
    return reactor
