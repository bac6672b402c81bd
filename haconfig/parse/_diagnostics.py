"""What a parse says: messages with HAProxy's wording and ``[file:line]``, their levels
and stages, and the "did you mean" suggestion HAProxy appends to an unknown word."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from haconfig.model import (
    Config,
    Location,
)

# --------------------------------------------------------------------------------------
# messages


class Level(enum.Enum):
    ALERT = "ALERT"
    WARNING = "WARNING"


class Stage(enum.Enum):
    """The ``haproxy -c`` stage a fatal error stopped at."""

    PARSE = "parse"
    CHECK = "check"
    ADDR = "addr"


@dataclass(frozen=True)
class Message:
    """One diagnostic. ``text`` is what HAProxy prints after ``config : ``, including its
    ``parsing [file:line] :`` prefix when it has one; ``location`` is that place."""

    level: Level
    text: str
    location: Location | None = None

    @property
    def fatal(self) -> bool:
        return self.level is Level.ALERT

    def format(self, pid: int) -> str:
        """The line as ``haproxy -c`` prints it: ``[ALERT]    (pid) : config : ...``."""
        tag = f"[{self.level.value}]"
        return f"{tag:<11}({pid}) : config : {self.text}"


class ConfigError(ValueError):
    """A configuration HAProxy would refuse; ``messages`` holds every diagnostic."""

    def __init__(self, messages: tuple[Message, ...]) -> None:
        self.messages = messages
        first = next((m for m in messages if m.fatal), None)
        super().__init__(first.text if first else "invalid configuration")


class Diagnostics:
    """What a result holding ``messages`` offers: its warnings and its alerts, in order."""

    messages: tuple[Message, ...]

    @property
    def warnings(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.level is Level.WARNING)

    @property
    def alerts(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.level is Level.ALERT)


@dataclass(frozen=True)
class ParseResult(Diagnostics):
    """The model (as far as it could be built), every diagnostic, and where it stopped."""

    config: Config
    messages: tuple[Message, ...]
    failed_stage: Stage | None = None
    files_with_errors: tuple[str, ...] = ()
    aborted: bool = False  # HAProxy gave up reading (it then skips its last alert line)

    @property
    def fatal(self) -> bool:
        return self.failed_stage is not None

    def require(self) -> Config:
        """The config, or :class:`ConfigError` when HAProxy would refuse it."""
        if self.fatal:
            raise ConfigError(self.messages)
        return self.config


# --------------------------------------------------------------------------------------
# HAProxy's "did you mean" (word fingerprints, as in its tools.c)


def _fingerprint(word: str) -> dict[int, int]:
    fp: dict[int, int] = {}

    def code(c: str) -> int:
        c = c.lower()
        if "a" <= c <= "z":
            return ord(c) - ord("a") + 1
        if "0" <= c <= "9":
            return 27
        return 28

    prev = 0
    for c in word:
        cur = code(c)
        fp[prev * 32 + cur] = fp.get(prev * 32 + cur, 0) + 1
        prev = cur
    fp[prev * 32 + 29] = fp.get(prev * 32 + 29, 0) + 1
    return fp


def _distance(a: str, b: str) -> int:
    fa, fb = _fingerprint(a), _fingerprint(b)
    return sum(abs(fa.get(k, 0) - fb.get(k, 0)) for k in set(fa) | set(fb))


def best_match(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate HAProxy would suggest for a mistyped ``word``, if any."""
    best: str | None = None
    best_dist = 1 << 30
    for cand in candidates:
        d = _distance(word, cand)
        if d < best_dist:
            best, best_dist = cand, d
    if best is None or best_dist > 2 * len(word) or best_dist > 2 * len(best):
        return None
    return best


def _suggest(word: str, candidates: Iterable[str]) -> str:
    match = best_match(word, candidates)
    return f"; did you mean '{match}' maybe ?" if match else ""
