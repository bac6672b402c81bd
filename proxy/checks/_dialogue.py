"""What a check says and expects once connected, on bytes alone (no sockets here).

A dialogue is fed the bytes the server sent and answers with the bytes to send
and, once it knows, the :class:`CheckResult`. The I/O side
(:mod:`proxy.checks._probe`) only glues a transport to it, so every rule of
``option tcp-check`` / ``option httpchk`` and every agent word is tested with
bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from haconfig.model import CheckRule, Option
from haconfig.parse import EXPECT_OPTIONS_WITH_VALUE
from proxy.checks._status import CheckResult, CheckStatus


class CheckConfigError(ValueError):
    """A check rule we cannot run; the message says which one and why."""


class Dialogue(Protocol):
    """The application part of a check, after the connection (and TLS) is up."""

    def start(self) -> tuple[bytes, CheckResult | None]:
        """Bytes to send at once and, for connect-only checks, the result."""

    def feed(self, data: bytes) -> tuple[bytes, CheckResult | None]:
        """More bytes from the server: bytes to send next and the result once known."""

    def eof(self) -> CheckResult:
        """The server closed before the dialogue finished."""

    def timeout(self) -> CheckResult:
        """The check's time ran out while waiting for the server."""


class ConnectOnly:
    """A plain ``check``: the connect (or TLS handshake) is the whole test."""

    def __init__(self, ssl: bool = False) -> None:
        self._ok = CheckResult(CheckStatus.L6OK if ssl else CheckStatus.L4OK)

    def start(self) -> tuple[bytes, CheckResult | None]:
        return b"", self._ok

    def feed(self, data: bytes) -> tuple[bytes, CheckResult | None]:
        return b"", self._ok

    def eof(self) -> CheckResult:
        return self._ok

    def timeout(self) -> CheckResult:
        return self._ok


# --- tcp-check ------------------------------------------------------------------------

_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def unescape(text: str) -> bytes:
    """``tcp-check send`` text with HAProxy's backslash escapes (``\\r\\n``, ``\\xHH``)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if (
                nxt == "x"
                and i + 3 < len(text) + 1
                and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4])
            ):
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out).encode("latin-1")


def _hex(text: str, rule: CheckRule) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CheckConfigError(f"{rule.location}: '{text}' is not a hexadecimal string") from None


@dataclass(frozen=True)
class Expect:
    """``expect [!] string|rstring|binary|rbinary <pattern>`` (one step)."""

    kind: str
    pattern: str
    negate: bool
    step: int
    needle: bytes = b""
    regex: re.Pattern[bytes] | None = None

    def matches(self, buf: bytes) -> bool:
        if self.kind in ("string", "binary"):
            return self.needle in buf
        assert self.regex is not None
        target = buf.hex().encode() if self.kind == "rbinary" else buf
        return self.regex.search(target) is not None


_EXPECT_KINDS = ("string", "rstring", "binary", "rbinary")


def parse_expect(rule: CheckRule, step: int, kinds: Sequence[str] = _EXPECT_KINDS) -> Expect:
    """The pattern of one ``expect`` rule; named options (``min-recv`` ...) are skipped."""
    args = list(rule.args)
    negate = False
    while args:
        word = args.pop(0)
        if word == "!":
            negate = True
        elif word in EXPECT_OPTIONS_WITH_VALUE:
            if args:
                args.pop(0)
        elif word in kinds:
            if not args:
                raise CheckConfigError(f"{rule.location}: expect '{word}' needs a pattern")
            pattern = args.pop(0)
            if word == "binary":
                return Expect(word, pattern, negate, step, needle=_hex(pattern, rule))
            if word == "string":
                return Expect(word, pattern, negate, step, needle=unescape(pattern))
            try:
                regex = re.compile(
                    pattern.encode("latin-1"), re.IGNORECASE if word == "rbinary" else 0
                )
            except re.error as exc:
                raise CheckConfigError(f"{rule.location}: bad regex '{pattern}': {exc}") from None
            return Expect(word, pattern, negate, step, regex=regex)
        else:
            raise CheckConfigError(f"{rule.location}: unsupported expect argument '{word}'")
    raise CheckConfigError(f"{rule.location}: expect needs one of {', '.join(kinds)}")


@dataclass(frozen=True)
class TcpCheckPlan:
    """``option tcp-check`` rules compiled once: where to connect and the steps after."""

    port: int | None = None
    ssl: bool = False
    steps: tuple[bytes | Expect, ...] = ()

    @property
    def has_expect(self) -> bool:
        return any(isinstance(s, Expect) for s in self.steps)

    @classmethod
    def compile(cls, rules: Sequence[CheckRule]) -> TcpCheckPlan:
        port: int | None = None
        ssl = False
        steps: list[bytes | Expect] = []
        for index, rule in enumerate(rules, start=1):
            if rule.action in ("comment", "set-var", "unset-var"):
                continue
            if rule.action == "connect":
                if steps:
                    raise CheckConfigError(
                        f"{rule.location}: only a first 'tcp-check connect' is supported"
                    )
                args = list(rule.args)
                while args:
                    word = args.pop(0)
                    if word == "port" and args:
                        try:
                            port = int(args.pop(0))
                        except ValueError:
                            raise CheckConfigError(f"{rule.location}: bad connect port") from None
                    elif word == "ssl":
                        ssl = True
                    elif word in ("comment", "addr", "sni", "alpn", "proto") and args:
                        args.pop(0)
                continue
            if rule.action == "send":
                if not rule.args:
                    raise CheckConfigError(f"{rule.location}: 'tcp-check send' needs a string")
                steps.append(unescape(rule.args[-1]))
            elif rule.action == "send-binary":
                if not rule.args:
                    raise CheckConfigError(f"{rule.location}: 'send-binary' needs a hex string")
                steps.append(_hex(rule.args[-1], rule))
            elif rule.action == "expect":
                steps.append(parse_expect(rule, index))
            else:
                raise CheckConfigError(f"{rule.location}: unsupported tcp-check '{rule.action}'")
        return cls(port, ssl, tuple(steps))


class TcpCheckDialogue:
    """Runs a :class:`TcpCheckPlan`: send, then wait for each expect in turn."""

    def __init__(self, plan: TcpCheckPlan) -> None:
        self._plan = plan
        self._index = 0
        self._buf = b""

    def _advance(self) -> tuple[bytes, CheckResult | None]:
        out = b""
        steps = self._plan.steps
        while self._index < len(steps):
            step = steps[self._index]
            if isinstance(step, bytes):
                out += step
                self._buf = b""
                self._index += 1
                continue
            matched = step.matches(self._buf)
            if matched and step.negate:
                return out, self._mismatch(step)
            if matched:
                self._index += 1
                continue
            return out, None  # wait for more data (negated: wait for EOF)
        if self._plan.has_expect:
            return out, CheckResult(CheckStatus.L7OK, "", 0)
        return out, CheckResult(CheckStatus.L6OK if self._plan.ssl else CheckStatus.L4OK)

    @staticmethod
    def _mismatch(step: Expect) -> CheckResult:
        what = "found unexpected" if step.negate else "did not match"
        info = f"TCPCHK {what} content '{step.pattern}' at step {step.step}"
        return CheckResult(CheckStatus.L7RSP, info, None)

    def start(self) -> tuple[bytes, CheckResult | None]:
        return self._advance()

    def feed(self, data: bytes) -> tuple[bytes, CheckResult | None]:
        self._buf += data
        return self._advance()

    def eof(self) -> CheckResult:
        step = self._plan.steps[self._index] if self._index < len(self._plan.steps) else None
        if isinstance(step, Expect):
            if step.negate:
                self._index += 1
                _, result = self._advance()
                if result is not None:
                    return result
                return self.eof()
            return self._mismatch(step)
        _, result = self._advance()
        return result or CheckResult(CheckStatus.L7RSP, "TCPCHK connection closed", None)

    def timeout(self) -> CheckResult:
        """HAProxy's wording, leading blank included: `` at step 1 of tcp-check (expect
        string '+OK')``."""
        step = self._plan.steps[self._index] if self._index < len(self._plan.steps) else None
        if isinstance(step, Expect):
            neg = "! " if step.negate else ""
            info = f" at step {step.step} of tcp-check (expect {neg}{step.kind} '{step.pattern}')"
        else:
            info = f" at step {self._index + 1} of tcp-check"
        return CheckResult(CheckStatus.L7TOUT, info, None)


# --- option httpchk ---------------------------------------------------------------------

_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")


@dataclass(frozen=True)
class StatusMatch:
    """``http-check expect [!] status <codes>``: a list of codes and ``a-b`` ranges."""

    ranges: tuple[tuple[int, int], ...]
    negate: bool = False

    def __call__(self, status: int) -> bool:
        hit = any(lo <= status <= hi for lo, hi in self.ranges)
        return hit != self.negate


def _status_ranges(text: str, rule: CheckRule | None) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            out.append((int(lo), int(hi or lo)))
        except ValueError:
            where = f"{rule.location}: " if rule else ""
            raise CheckConfigError(f"{where}bad status code or range '{part}'") from None
    return tuple(out)


@dataclass(frozen=True)
class HttpCheckPlan:
    """``option httpchk`` + ``http-check send|expect`` compiled once."""

    request: bytes
    status: StatusMatch | None = None
    body: Expect | None = None

    @classmethod
    def compile(cls, option: Option | None, rules: Sequence[CheckRule]) -> HttpCheckPlan:
        method, uri, version = "OPTIONS", "/", "HTTP/1.0"
        args = option.args if option else ()
        if len(args) == 1:
            uri = args[0]
        elif len(args) >= 2:
            method, uri = args[0], args[1]
            if len(args) >= 3:
                version = args[2]
        headers: list[tuple[str, str]] = []
        body = b""
        status: StatusMatch | None = None
        body_expect: Expect | None = None
        for index, rule in enumerate(rules, start=1):
            if rule.action in ("comment", "connect", "set-var", "unset-var", "disable-on-404"):
                continue
            if rule.action == "send":
                words = list(rule.args)
                while words:
                    key = words.pop(0)
                    if key == "hdr" and len(words) >= 2:
                        headers.append((words.pop(0), words.pop(0)))
                        continue
                    if not words:
                        raise CheckConfigError(f"{rule.location}: '{key}' needs a value")
                    value = words.pop(0)
                    if key == "meth":
                        method = value
                    elif key == "uri":
                        uri = value
                    elif key == "ver":
                        version = value
                    elif key == "body":
                        body = unescape(value)
                    else:
                        raise CheckConfigError(
                            f"{rule.location}: unsupported http-check send '{key}'"
                        )
            elif rule.action == "expect":
                words = list(rule.args)
                negate = "!" in words
                kinds = [w for w in words if w not in ("!",)]
                if kinds and kinds[0] in ("status", "rstatus"):
                    if kinds[0] == "rstatus" or len(kinds) < 2:
                        raise CheckConfigError(
                            f"{rule.location}: only 'http-check expect status <codes>' is supported"
                        )
                    status = StatusMatch(_status_ranges(kinds[1], rule), negate)
                else:
                    body_expect = parse_expect(rule, index, ("string", "rstring"))
            else:
                raise CheckConfigError(f"{rule.location}: unsupported http-check '{rule.action}'")
        lines = [f"{method} {uri} {version}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        return cls(request, status, body_expect)


@dataclass
class HttpCheckDialogue:
    """Sends the request, reads the status line (and the body for a string expect)."""

    plan: HttpCheckPlan
    _buf: bytes = b""
    _status: int | None = None
    _reason: str = ""
    _body_start: int | None = None
    _length: int | None = None
    _done: bool = field(default=False)

    def start(self) -> tuple[bytes, CheckResult | None]:
        return self.plan.request, None

    def feed(self, data: bytes) -> tuple[bytes, CheckResult | None]:
        self._buf += data
        if self._status is None:
            end = self._buf.find(b"\r\n")
            if end < 0:
                if len(self._buf) > 8192 or not b"HTTP/".startswith(self._buf[:5]):
                    return b"", self._invalid()
                return b"", None
            match = _STATUS_LINE.match(self._buf[:end])
            if match is None:
                return b"", self._invalid()
            self._status = int(match.group(3))
            self._reason = (match.group(4) or b"").decode("latin-1").strip()
        if self.plan.body is None:
            return b"", self._judge(None)
        if self._body_start is None:
            head_end = self._buf.find(b"\r\n\r\n")
            if head_end < 0:
                return b"", None
            self._body_start = head_end + 4
            found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", self._buf[:head_end])
            self._length = int(found.group(1)) if found else None
        if self._length is not None and len(self._buf) - self._body_start >= self._length:
            return b"", self._judge(self._buf[self._body_start : self._body_start + self._length])
        return b"", None

    def _invalid(self) -> CheckResult:
        return CheckResult(CheckStatus.L7RSP, "", None)

    def _judge(self, body: bytes | None) -> CheckResult:
        status = self._status
        assert status is not None
        ok_status = self.plan.status(status) if self.plan.status else 200 <= status < 400
        if not ok_status:
            return CheckResult(CheckStatus.L7STS, self._reason, status)
        if self.plan.body is not None and body is not None:
            found = self.plan.body.matches(body)
            if found == self.plan.body.negate:
                return CheckResult(CheckStatus.L7RSP, "HTTP content check did not match", status)
        # HAProxy keeps the reason phrase as last_chk for failures only
        return CheckResult(CheckStatus.L7OK, "", status)

    def eof(self) -> CheckResult:
        if self._status is None:
            return self._invalid()
        start = self._body_start if self._body_start is not None else len(self._buf)
        return self._judge(self._buf[start:])

    def timeout(self) -> CheckResult:
        return CheckResult(CheckStatus.L7TOUT, "", None)


# --- agent-check -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentReply:
    """What one agent line asks for (spec 2.6); ``None`` = not mentioned."""

    weight_pct: int | None = None
    maxconn: int | None = None
    admin: str | None = None  # "ready" | "drain" | "maint"
    health: str | None = None  # "up" | "down" | "fail" | "stopped"
    reason: str = ""
    unknown: tuple[str, ...] = ()


_AGENT_SPLIT = re.compile(r"[ \t,]+")


def parse_agent_line(line: bytes) -> AgentReply:
    """Parse the agent's words: ``75%``, ``maxconn:30``, ``drain``, ``down #db gone``...

    A ``#`` only starts the reason when it begins a word; unknown words are kept
    aside (and ignored), as HAProxy does."""
    text = line.decode("latin-1").split("\n", 1)[0].strip("\r\n\0 ")
    weight: int | None = None
    maxconn: int | None = None
    admin: str | None = None
    health: str | None = None
    reason = ""
    unknown: list[str] = []
    words = [w for w in _AGENT_SPLIT.split(text) if w]
    for pos, word in enumerate(words):
        low = word.lower()
        if word.startswith("#"):
            rest = text[text.find(word) :] if pos else text
            reason = rest[1:].strip()
            break
        if low.endswith("%") and low[:-1].isdigit():
            weight = int(low[:-1])
        elif low.startswith("maxconn:") and low[8:].isdigit():
            maxconn = int(low[8:])
        elif low in ("ready", "drain", "maint"):
            admin = low
        elif low in ("up", "down", "fail", "stopped"):
            health = low
        else:
            unknown.append(word)
    return AgentReply(weight, maxconn, admin, health, reason, tuple(unknown))
