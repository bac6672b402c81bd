"""The byte pump over generated schedules, against the oracle of :mod:`tests.proxy.pumpmodel`.

Every order of client FIN, server FIN, RST, data pending in either direction and a
slow reader on either side, played in memory: real loopback TCP with small kernel
buffers, the pump's ``doRead`` called by hand until nothing is ready, no sleeping.
Besides the bytes and the flags, each run asserts that the pump comes to rest (no
descriptor left ready that it would spin on) and leaks nothing. The shrunk failing
cases found on the way are kept below as named regression tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from proxy.pump import PumpLoop, PumpTimeouts, Session
from tests.proxy.pumpmodel import OTHER, EndPair, Outcome, Step, judge, schedules, tcp_pair

#: kernel buffers of every socket in these runs: small, so a few KiB make backpressure
SOCKBUF = 4096


class InMemory(EndPair):
    """A schedule's two ends around one pump session driven by hand."""

    def __init__(self, bufsize: int = 16384) -> None:
        self.reactor = MemoryReactorClock()
        self.loop = PumpLoop(self.reactor, self.reactor, bufsize=bufsize)
        cli, cleg = tcp_pair(SOCKBUF)
        srv, sleg = tcp_pair(SOCKBUF)
        super().__init__({"C": cli, "S": srv})
        self.ended: list[str] = []
        self.session = Session(
            self.loop, cleg, sleg, PumpTimeouts(), lambda _s, f: self.ended.append(f)
        )
        self.session.start()

    def pump(self) -> None:
        for _ in range(10_000):
            if not self.loop.ep.poll(0):
                return
            self.loop.doRead()
        raise AssertionError("the pump never came to rest: a ready descriptor it ignores")

    def flags(self) -> str | None:
        assert len(self.ended) <= 1, f"ended more than once: {self.ended}"
        return self.ended[0] if self.ended else None

    def finish(self) -> Outcome:
        """Check for leaks, then close."""
        if self.ended:
            assert self.loop.sides == {} and self.loop.sessions == 0
            assert self.reactor.getDelayedCalls() == []
        self.close()
        self.loop.close()
        return self.out


def play(schedule: list[Step], bufsize: int = 16384) -> Outcome:
    ends = InMemory(bufsize)
    try:
        ends.play(schedule)
    finally:
        out = ends.finish()
    return out


@settings(
    max_examples=int(os.environ.get("PUMP_EXAMPLES", 300)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize="PUMP_EXAMPLES" not in os.environ,
)
@given(schedule=schedules())
def test_generated_schedules_match_the_oracle(schedule: list[Step]) -> None:
    """Any schedule of sends, bounded reads, FINs and RSTs on both ends delivers exactly
    what the oracle says, ends with the flags it says, and leaves the pump at rest."""
    judge(play(schedule))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(schedule=schedules(resets=False))
def test_generated_schedules_with_a_tiny_bufsize(schedule: list[Step]) -> None:
    """The same oracle holds when a session may hold only 1 KiB per direction."""
    judge(play(schedule, bufsize=1024))


# --- shrunk cases, kept as regressions ---------------------------------------------------


def test_server_answers_and_closes_to_a_half_closed_slow_client() -> None:
    """The defect of issue 12: the client half-closes, the server answers more than the
    buffers hold and closes at once; the HUP on the server leg must not end the session
    while the answer is still pending for the client."""
    judge(play([Step("fin", "C"), Step("send", "S", 65536), Step("fin", "S")]))


def test_both_fin_with_data_pending_to_the_client() -> None:
    """Found by hypothesis: data pending towards a client that has not read yet, then
    both ends half-close; every byte still arrives before the FIN."""
    judge(
        play(
            [
                Step("send", "S", 30000),
                Step("fin", "C"),
                Step("fin", "S"),
            ]
        )
    )


def test_reset_by_client_while_server_data_is_pending() -> None:
    """A client that resets while the server's answer waits for it ends ``CD``."""
    out = play([Step("send", "S", 50000), Step("rst", "C")])
    judge(out)
    assert out.flags == "CD"


@pytest.mark.parametrize("bufsize", [512, 16384])
def test_session_holds_at_most_bufsize_per_direction(bufsize: int) -> None:
    """A slow reader on either side: what the pump holds in user space for a direction
    never exceeds ``bufsize`` (tune.bufsize), however much the other side sends."""
    ends = InMemory(bufsize)
    try:
        for side in ("C", "S"):
            for _ in range(20):
                ends.do(Step("send", side, 65536))
                ends.pump()
                for leg in (ends.session.client, ends.session.server):
                    assert leg.pending is None or len(leg.pending) <= bufsize
        ends.drain(400)
        ends.out.flags = ends.flags()
        judge(ends.out)
    finally:
        ends.finish()


def test_hup_with_unread_data_is_drained_before_the_session_ends() -> None:
    """The server leg reports HUP (both directions shut) while its data is still in the
    kernel and the client is not reading: the data is read once the client drains."""
    ends = InMemory()
    try:
        ends.do(Step("fin", "C"))
        ends.pump()
        ends.do(Step("send", "S", 200_000))
        ends.do(Step("send", "S", 200_000))
        ends.do(Step("fin", "S"))
        ends.pump()
        assert ends.flags() is None
        ends.drain(2000)
        ends.out.flags = ends.flags()
        judge(ends.out)
        assert ends.out.flags == "--"
    finally:
        ends.finish()


# --- timeouts ------------------------------------------------------------------------------

_timeout = st.one_of(st.none(), st.integers(1, 6))


@dataclass(frozen=True)
class Tick:
    """Advance the clock ``gap`` whole seconds, then one end acts: ``msg`` (a small
    message the other end reads at once) or ``fin``."""

    gap: int
    op: str
    side: str


def _timeout_oracle(t: PumpTimeouts, ticks: list[Tick]) -> tuple[str | None, int]:
    """The flags the session ends with and how many ticks act before that, from the
    rules in proxy.pump's docstring: a message refreshes both sides, an EOF the side
    that sent it; once either side sent EOF the ``-fin`` timeouts replace the others."""
    now, last, eof = 0, {"C": 0, "S": 0}, {"C": False, "S": False}
    for i, tick in enumerate(ticks):
        half = eof["C"] or eof["S"]
        tc, ts = t.client_side(half), t.server_side(half)
        dc = last["C"] + tc if tc is not None else None
        ds = last["S"] + ts if ts is not None else None
        due = [d for d in (dc, ds) if d is not None]
        if due and min(due) <= now + tick.gap:
            return ("cD" if dc is not None and dc == min(due) else "sD"), i
        now += tick.gap
        if eof[tick.side]:
            continue
        if tick.op == "msg":
            last["C"] = last["S"] = now
        else:
            eof[tick.side] = True
            last[tick.side] = now
            if eof["C"] and eof["S"]:
                return "--", i + 1
    return None, len(ticks)


@settings(
    max_examples=int(os.environ.get("PUMP_EXAMPLES", 200)),
    deadline=None,
    derandomize="PUMP_EXAMPLES" not in os.environ,
)
@given(
    timeouts=st.builds(PumpTimeouts, _timeout, _timeout, _timeout, _timeout, _timeout),
    ticks=st.lists(
        st.builds(
            Tick, st.integers(0, 7), st.sampled_from(["msg", "fin"]), st.sampled_from(["C", "S"])
        ),
        max_size=10,
    ),
)
def test_timeouts_over_generated_schedules(timeouts: PumpTimeouts, ticks: list[Tick]) -> None:
    """Each of timeout client/server/tunnel/client-fin/server-fin ends an idle session at
    the second and with the flag (``cD``/``sD``) the rules say, never earlier, and every
    message before that arrives."""
    want, acted = _timeout_oracle(timeouts, ticks)
    ends = InMemory()
    ends.session.timeouts = timeouts
    ends.session._half_closed()  # re-arm with the drawn timeouts
    try:
        for i, tick in enumerate(ticks):
            ends.reactor.advance(tick.gap)
            if ends.ended:
                break
            assert i < acted, f"still open at tick {i}, expected to end {want}"
            if tick.op == "msg":
                ends.do(Step("send", tick.side, 100))
            else:
                ends.do(Step("fin", tick.side))
            ends.pump()
            for side in ("C", "S"):
                ends.read(side, 1 << 20)
        if want in ("cD", "sD") and not ends.ended:
            ends.reactor.advance(0)
        assert ends.flags() == want
        for end in ("C", "S"):
            assert ends.out.got[end] == ends.out.sent[OTHER[end]]
    finally:
        ends.finish()
