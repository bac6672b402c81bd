"""Schedules for the byte pump and the oracle they are judged by.

A *schedule* is a list of :class:`Step` that the two ends of a session perform in
order: the client end (``C``) and the server end (``S``) send, read a bounded amount,
half-close (``fin``) or reset (``rst``). :func:`run_in_memory` plays one against a
:class:`proxy.pump.PumpLoop` driven by hand (real loopback TCP with small buffers,
no sleeping, the loop's ``doRead`` called until nothing is ready);
``tests/proxy/test_pump_vs_haproxy.py`` plays the same schedules through real
balancer processes. Both end with a drain in which each end reads everything, and
:func:`judge` compares what arrived with the oracle:

- without a reset, each end received exactly what the other sent, in order, then
  EOF iff the other end half-closed; the session ended ``--`` iff both half-closed,
  and is still open otherwise;
- with a reset, each end received a prefix of what the other sent, and the session
  ended with the first char of a side that reset and ``D``; or ``--`` if it had
  ended cleanly before, or if every end that reset had half-closed first (the proxy
  may have read all it sent, FIN included): then every end still alive got all the
  other sent, and EOF.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field

from hypothesis import strategies as st

#: what each end sends, a pseudo-random stream per direction, so a lost, duplicated or
#: reordered byte shows as a mismatch
STREAM = {
    "C": random.Random(1).randbytes(4 << 20),
    "S": random.Random(2).randbytes(4 << 20),
}
OTHER = {"C": "S", "S": "C"}


@dataclass(frozen=True)
class Step:
    """One action of one end: ``send n`` bytes, ``read`` up to n bytes, ``fin``, ``rst``."""

    op: str
    side: str
    n: int = 0

    def __repr__(self) -> str:
        return f"Step({self.op!r}, {self.side!r}{f', {self.n}' if self.n else ''})"


def steps() -> st.SearchStrategy[Step]:
    side = st.sampled_from(["C", "S"])
    # a few bytes (one RPC), about what the buffers between the ends hold (the sizes at
    # which a FIN arrives while data still waits), and more than they hold
    size = st.one_of(
        st.integers(1, 512), st.integers(512, 32 * 1024), st.integers(32 * 1024, 256 * 1024)
    )
    return st.one_of(
        st.builds(Step, st.just("send"), side, size),
        st.builds(Step, st.just("read"), side, size),
        st.builds(Step, st.just("fin"), side),
        st.builds(Step, st.just("rst"), side),
    )


def schedules(max_steps: int = 14, *, resets: bool = True) -> st.SearchStrategy[list[Step]]:
    s = steps()
    if not resets:
        s = s.filter(lambda step: step.op != "rst")
    return st.lists(s, min_size=1, max_size=max_steps)


@dataclass
class Outcome:
    """What the two ends saw, as the oracle needs it."""

    sent: dict[str, bytearray] = field(default_factory=lambda: {"C": bytearray(), "S": bytearray()})
    got: dict[str, bytearray] = field(default_factory=lambda: {"C": bytearray(), "S": bytearray()})
    eof: dict[str, bool] = field(default_factory=lambda: {"C": False, "S": False})
    fin: set[str] = field(default_factory=set)
    rst: list[str] = field(default_factory=list)
    #: the session's termination flags, once ended
    flags: str | None = None
    #: whether it had ended before the first reset
    ended_before_reset: bool = False
    #: the ends that half-closed before they reset
    fin_then_rst: set[str] = field(default_factory=set)


def judge(out: Outcome) -> None:
    """Assert ``out`` is what the oracle allows (see the module docstring)."""
    for end in ("C", "S"):
        other = OTHER[end]
        got, sent = bytes(out.got[end]), bytes(out.sent[other])
        if not out.rst:
            assert len(got) == len(sent), f"{end} got {len(got)} of {len(sent)} bytes"
            assert got == sent, f"{end}: bytes differ from what {other} sent"
            assert out.eof[end] == (other in out.fin), f"{end}: EOF {out.eof[end]}"
        else:
            assert sent.startswith(got), f"{end}: got bytes {other} never sent"
    if not out.rst:
        want = "--" if out.fin == {"C", "S"} else None
        assert out.flags == want, f"ended {out.flags!r}, expected {want!r}"
    elif out.ended_before_reset:
        assert out.flags == "--"
    elif out.flags == "--":
        assert set(out.rst) <= out.fin_then_rst, f"{out.rst} reset without a FIN, yet --"
        for end in set(OTHER) - set(out.rst):
            other = OTHER[end]
            assert out.got[end] == out.sent[other] and out.eof[end], f"{end} short, yet --"
    else:
        assert out.flags is not None and out.flags[1] == "D", out.flags
        assert out.flags[0] in out.rst, f"ended {out.flags} but only {out.rst} reset"
        if len(set(out.rst)) == 1:
            assert out.flags[0] == out.rst[0]


def tcp_pair(bufsize: int | None = None) -> tuple[socket.socket, socket.socket]:
    """Two connected non-blocking loopback TCP sockets: an *end* and the proxy's *leg*.

    With ``bufsize`` the leg's buffers and the end's receive buffer are that small (so
    that backpressure shows with small transfers) while the end's send buffer is large,
    so one ``send`` of the end can put a whole step's bytes on the way."""
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        if bufsize:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        end = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if bufsize:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        end.connect(lsock.getsockname())
        leg, _ = lsock.accept()
        if bufsize:
            leg.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
    for s in (end, leg):
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return end, leg


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class EndPair:
    """The two ends of a schedule as sockets; ``pump()`` lets the proxy make progress."""

    def __init__(self, ends: dict[str, socket.socket]) -> None:
        self.ends = ends
        self.out = Outcome()
        self.pos = {"C": 0, "S": 0}

    def pump(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def flags(self) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def alive(self, side: str) -> bool:
        return side not in self.out.rst

    def do(self, step: Step) -> None:
        side, out = step.side, self.out
        if not self.alive(side):
            return
        sock = self.ends[side]
        if step.op == "send":
            if side in out.fin:
                return
            start = self.pos[side]
            data = STREAM[side][start : start + step.n]
            try:
                n = sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                n = 0
            out.sent[side] += data[:n]
            self.pos[side] += n
        elif step.op == "read":
            self.read(side, step.n)
        elif step.op == "fin":
            if side not in out.fin:
                out.fin.add(side)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        elif step.op == "rst":
            if not out.rst:
                out.ended_before_reset = self.flags() is not None
            out.rst.append(side)
            if side in out.fin:
                out.fin_then_rst.add(side)
            reset(sock)

    def read(self, side: str, limit: int) -> int:
        """Read up to ``limit`` bytes now; how many (EOF and errors are recorded)."""
        out, sock, total = self.out, self.ends[side], 0
        while total < limit and not out.eof[side]:
            try:
                data = sock.recv(min(65536, limit - total))
            except BlockingIOError:
                break
            except OSError:
                out.eof[side] = True  # reset by the proxy: nothing more will come
                break
            if not data:
                out.eof[side] = True
                break
            out.got[side] += data
            total += len(data)
        return total

    def drain(self, rounds: int) -> None:
        """Each living end reads everything, with the proxy pumping, until both saw EOF
        or nothing moves for a few rounds."""
        idle = 0
        for _ in range(rounds):
            self.pump()
            moved = sum(self.read(s, 1 << 30) for s in ("C", "S") if self.alive(s))
            done = all(self.out.eof[s] or not self.alive(s) for s in ("C", "S"))
            if done:
                break
            idle = idle + 1 if moved == 0 else 0
            if idle >= 3:
                break
        self.pump()

    def play(self, schedule: list[Step], drain_rounds: int = 400) -> Outcome:
        for step in schedule:
            self.do(step)
            self.pump()
        self.drain(drain_rounds)
        self.out.flags = self.flags()
        return self.out

    def close(self) -> None:
        for side, sock in self.ends.items():
            if self.alive(side):
                sock.close()


def sample_schedules(count: int, seed: int, *, max_steps: int = 10) -> list[list[Step]]:
    """``count`` schedules without resets, drawn like :func:`schedules` from a seeded
    generator (so an integration test runs the same ones every time)."""
    rng = random.Random(seed)
    sizes = ((1, 512), (512, 32 * 1024), (32 * 1024, 256 * 1024))
    out = []
    for _ in range(count):
        steps_ = []
        for _ in range(rng.randint(1, max_steps)):
            op = rng.choice(("send", "send", "read", "fin"))
            side = rng.choice(("C", "S"))
            n = rng.randint(*rng.choice(sizes)) if op != "fin" else 0
            steps_.append(Step(op, side, n))
        out.append(steps_)
    return out
