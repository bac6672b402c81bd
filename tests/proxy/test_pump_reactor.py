"""proxy.reactor.PumpReactor: the process waits on the pump's epoll, the reactor's inside.

Driven by hand (doIteration), on a reactor of its own: the pump's fds are served from
the one wait, the reactor's readers and timers still run, and a released pump leaves
an ordinary epoll reactor."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from typing import Any

import pytest

from proxy.pump import PumpLoop
from proxy.reactor import PumpReactor


class _Reader:
    """A Twisted reader on a pipe: records each read."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen: list[bytes] = []

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.seen.append(os.read(self.fd, 100))

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "reader"


@pytest.fixture
def reactor() -> Iterator[Any]:
    r = PumpReactor()
    try:
        yield r
    finally:
        r._poller.close()


def _pipe() -> tuple[int, int]:
    rd, wr = os.pipe()
    os.set_blocking(rd, False)
    return rd, wr


def test_the_pump_serves_its_fds_from_the_one_wait(reactor: Any) -> None:
    """With the pump adopted, the reactor's wait is the pump's epoll: a watched fd is
    served by doIteration alone, and the reactor's own epoll sits inside the pump's."""
    loop = PumpLoop(reactor, reactor)
    assert reactor._pump is loop and loop._adopted
    assert loop not in reactor.getReaders()
    rd, wr = _pipe()
    got: list[int] = []
    loop.watch(rd, select.EPOLLIN, lambda ev: got.append(len(os.read(rd, 100))))
    os.write(wr, b"hello")
    reactor.doIteration(1.0)
    assert got == [5]
    # a second pump is an ordinary reader of the reactor
    other = PumpLoop(reactor, reactor)
    assert not other._adopted and other in reactor.getReaders()
    other.close()
    loop.close()
    assert reactor._pump is None
    for fd in (rd, wr):
        os.close(fd)


def test_reactor_readers_and_timers_still_run(reactor: Any) -> None:
    """A reader of the reactor's (checks, the stats socket) fires through the nested
    epoll, and a timer ends the wait when it is due."""
    loop = PumpLoop(reactor, reactor)
    rd, wr = _pipe()
    reader = _Reader(rd)
    reactor.addReader(reader)
    os.write(wr, b"x")
    reactor.doIteration(1.0)
    assert reader.seen == [b"x"]
    fired: list[bool] = []
    reactor.callLater(0.05, fired.append, True)
    reactor.runUntilCurrent()
    reactor.doIteration(reactor.timeout())
    reactor.runUntilCurrent()
    assert fired == [True]
    reactor.removeReader(reader)
    loop.close()
    for fd in (rd, wr):
        os.close(fd)


def test_a_released_pump_leaves_an_ordinary_epoll_reactor(reactor: Any) -> None:
    """After the pump closes, doIteration is Twisted's own again."""
    PumpLoop(reactor, reactor).close()
    rd, wr = _pipe()
    reader = _Reader(rd)
    reactor.addReader(reader)
    os.write(wr, b"y")
    reactor.doIteration(1.0)
    assert reader.seen == [b"y"]
    reactor.removeReader(reader)
    for fd in (rd, wr):
        os.close(fd)
