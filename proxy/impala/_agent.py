"""HAProxy's agent-check protocol, answered from the coordinators' states.

HAProxy (and impala-lb) connects to ``agent-addr:agent-port``, sends ``agent-send``
(here: the server's name, with a newline from a config file, without one from the
runtime API's ``add server``), and reads one line. The agent answers
:data:`proxy.impala._state.REPLIES` for that coordinator, or closes without a word
when it has no state for it (an unknown name, or nothing read yet): HAProxy then
changes nothing, the regular health check still decides whether it is up.

Impala refuses new sessions from the moment it quiesces, so a drain noticed by a
poll comes up to one interval late for a client that lands in between. A planned
restart drains first: the line ``drain NAME`` (from a loopback address) makes the
agent answer ``drain`` for NAME until that coordinator is seen READY as a new
process (another ``process_start_time``), or until ``ready NAME``. The agent
answers such a line with ``ok`` or ``unknown``.

A balancer that sends ``NAME weight`` asks for a weight too: ``ready up N%`` with N
from the coordinator's registered queries (100 idle, 100/(1+queries) loaded), so a
``leastconn`` backend weighs TCP connections by what Impala really runs. Only for a
backend whose server weights may move: a consistent-hash backend (Hue's source
affinity) would remap its clients on every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import protocol
from twisted.logger import Logger

from proxy.impala._state import REPLIES, CoordinatorState, State, load_weight

log = Logger()

#: how long a balancer may take to send the server's name
NAME_TIMEOUT = 2.0
#: how long to wait for the rest of a request sent without a newline
QUIET = 0.2


class AgentProtocol(protocol.Protocol):
    """One check: a request line in, one answer out, then close.

    The request ends at a newline, or as soon as it is complete without one: a known
    name that no other known name extends, or ``NAME weight``. HAProxy's runtime API
    cannot put a newline in ``agent-send`` (``add server ... agent-send impalad-4``),
    so a server added there sends its bare name; anything else waits up to
    :data:`QUIET` for more bytes."""

    MAX_LENGTH = 256

    def __init__(self, factory: AgentFactory) -> None:
        self.factory = factory
        self.clock = factory.clock
        self._timer: Any = None
        self._quiet: Any = None
        self._buf = b""
        self._done = False

    @property
    def _tx(self) -> Any:
        return self.transport

    def connectionMade(self) -> None:
        self._timer = self.clock.callLater(NAME_TIMEOUT, self._give_up)

    def _give_up(self) -> None:
        self._timer = None
        self._finish()

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._buf += data
        line, newline, _ = self._buf.partition(b"\n")
        if newline:
            self.lineReceived(line.rstrip(b"\r"))
        elif len(self._buf) > self.MAX_LENGTH:
            self._finish()
        elif self.factory.complete(self._buf.decode("utf-8", "replace")):
            self.lineReceived(self._buf)
        else:
            self._cancel("_quiet")
            self._quiet = self.clock.callLater(QUIET, self._unfinished)

    def _unfinished(self) -> None:
        self._quiet = None
        self.lineReceived(self._buf)

    def lineReceived(self, line: bytes) -> None:
        if self._done:
            return
        words = line.decode("utf-8", "replace").split()
        if len(words) == 2 and words[0] in ("drain", "ready"):
            peer = getattr(self._tx.getPeer(), "host", "")
            if peer.startswith("127."):
                known = self.factory.command(words[0], words[1])
                self._tx.write(b"ok\n" if known else b"unknown\n")
        elif len(words) == 1 or (len(words) == 2 and words[1] == "weight"):
            reply = self.factory.reply(words[0], weighted=len(words) == 2)
            if reply:
                self._tx.write(reply)
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._cancel("_timer")
        self._cancel("_quiet")
        self._tx.loseConnection()

    def _cancel(self, attr: str) -> None:
        call = getattr(self, attr)
        if call is not None and call.active():
            call.cancel()
        setattr(self, attr, None)

    def connectionLost(self, reason: Any = None) -> None:
        self._cancel("_timer")
        self._cancel("_quiet")


class AgentFactory(protocol.Factory):
    """Answers from ``lookup(name)`` (the watch's last state), with operator drains."""

    noisy = False

    def __init__(
        self,
        lookup: Callable[[str], CoordinatorState | None],
        clock: Any,
        names: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.lookup = lookup
        self.clock = clock
        self.names = names
        #: name -> process_start_time of the daemon that was drained by hand
        self.drained: dict[str, str] = {}

    def complete(self, text: str) -> bool:
        """Whether ``text`` (no newline yet) is a whole request: ``NAME weight``, or a
        known name that is not the start of another known one."""
        words = text.split()
        if text != text.rstrip() or not words:
            return False
        if len(words) == 2:
            return words[1] == "weight"
        name = words[0]
        names = set(self.names())
        return name in names and not any(n != name and n.startswith(name) for n in names)

    def command(self, verb: str, name: str) -> bool:
        if name not in set(self.names()):
            return False
        state = self.lookup(name)
        if verb == "drain":
            self.drained[name] = state.started if state is not None else ""
            log.info("coordinator {name}: drained by the operator", name=name)
        elif self.drained.pop(name, None) is not None:
            log.info("coordinator {name}: drain lifted by the operator", name=name)
        return True

    def reply(self, name: str, *, weighted: bool = False) -> bytes:
        """The answer for ``name``; ``weighted`` (the balancer sent ``NAME weight``) adds
        a weight from Impala's own load to ``ready up`` (see ``load_weight``)."""
        state = self.lookup(name)
        if name in self.drained:
            if (
                state is not None
                and state.state is State.READY
                and (state.started != self.drained[name])
            ):
                del self.drained[name]  # a new process came up ready: the drain is over
                log.info("coordinator {name}: restarted and ready; drain over", name=name)
            else:
                return REPLIES[State.QUIESCING].rstrip(b"\n") + b" #drained by the operator\n"
        if state is None:
            return b""
        if weighted and state.state is State.READY:
            return b"ready up %d%%\n" % load_weight(state)
        return state.reply

    def buildProtocol(self, addr: Any) -> AgentProtocol:
        return AgentProtocol(self)
