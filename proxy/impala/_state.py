"""A coordinator's own pages, read into the one thing a balancer needs to know."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class State(enum.Enum):
    READY = "ready"  # takes new clients
    QUIESCING = "quiescing"  # :shutdown() or SIGRTMIN: no new client, keep the sessions
    NOT_READY = "not ready"  # starting (impala-server.ready false), or not a coordinator


@dataclass(frozen=True)
class CoordinatorState:
    state: State
    #: why, in Impala's words where it gives some (the shutdown status)
    detail: str = ""
    #: ``process_start_time`` of ``/?json``: tells a restarted daemon from the old one
    started: str = ""
    #: ``impala-server.num-queries-registered``: queries the coordinator runs or holds
    #: open (idle pooled connections register none, unlike TCP connection counts)
    load: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.state.value} ({self.detail})" if self.detail else self.state.value

    @property
    def reply(self) -> bytes:
        """The agent-check answer for this state, with why after ``#`` (HAProxy shows it
        as the agent's description: "quiescing: shutdown grace period left: ...")."""
        words = REPLIES[self.state].rstrip(b"\n")
        if self.state is State.READY:
            return words + b"\n"
        why = f"{self.state.value}: {self.detail}" if self.detail else self.state.value
        return words + b" #" + why.replace("\n", " ").encode("utf-8", "replace")[:200] + b"\n"


class UnreadableState(ValueError):
    """A page was not the JSON document Impala serves (garbage, HTML, a field missing)."""


def read_document(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise UnreadableState(f"{what} is not JSON") from e
    if not isinstance(doc, dict):
        raise UnreadableState(f"{what} is not a JSON object")
    return doc


def _flag(doc: dict[str, Any], key: str, what: str) -> bool:
    value = doc.get(key)
    if not isinstance(value, bool):
        raise UnreadableState(f"{what} has no boolean {key!r}")
    return value


def read_state(root: bytes, metrics: bytes) -> CoordinatorState:
    """The state from the bodies of ``/?json`` and ``/jsonmetrics``; raises
    :class:`UnreadableState` for anything Impala would not have served."""
    page = read_document(root, "/?json")
    flat = read_document(metrics, "/jsonmetrics")
    started = page.get("process_start_time")
    started = started if isinstance(started, str) else ""
    if not _flag(page, "is_coordinator", "/?json"):
        return CoordinatorState(State.NOT_READY, "not a coordinator", started)
    if _flag(page, "is_quiescing", "/?json"):
        status = page.get("shutdown_status")
        detail = status if isinstance(status, str) else ""
        return CoordinatorState(State.QUIESCING, detail, started)
    if not _flag(flat, "impala-server.ready", "/jsonmetrics"):
        return CoordinatorState(State.NOT_READY, "impala-server.ready is false", started)
    load = flat.get("impala-server.num-queries-registered", 0)
    return CoordinatorState(State.READY, "", started, load if isinstance(load, int) else 0)


def load_weight(state: CoordinatorState) -> int:
    """The agent weight (percent of the configured weight) for a ready coordinator that
    holds ``load`` registered queries: 100 idle, then 100 / (1 + load), at least 1, so
    new clients go to coordinators in inverse proportion to the queries they hold."""
    return max(1, round(100 / (1 + max(0, state.load))))


#: agent-check answers (HAProxy 2.6 agent protocol: an admin word, an operational word)
REPLIES = {
    State.READY: b"ready up\n",
    # "up" with "drain": HAProxy keeps the text after '#' only with a health word, so the
    # reason shows in show stat (last_agt); the coordinator is alive, DRAIN sends it no
    # new client
    State.QUIESCING: b"drain up\n",
    State.NOT_READY: b"ready down\n",
}
