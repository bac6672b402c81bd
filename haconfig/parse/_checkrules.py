"""``tcp-check`` and ``http-check`` rule arguments, validated as HAProxy does at parse
time."""

from __future__ import annotations

import re
from collections.abc import Callable

from haconfig.model import (
    Location,
    StatsPage,
)
from haconfig.parse._words import _words

# --- check rule arguments, validated as HAProxy does at parse time ----------------------


def _rule_ok(args: list[str]) -> str | None:
    return None


def _hex_problem(text: str) -> str | None:
    for c in text:
        if c not in "0123456789abcdefABCDEF":
            return f"an hex digit is expected (found '{c}')"
    if len(text) % 2:
        return "an even number of hex digit is expected"
    return None


def _status_problem(pattern: str) -> str | None:
    for part in pattern.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            return f"invalid range of status codes '{pattern}'."
    return None


_TCP_EXPECT_TYPES = _words("binary string rstring rbinary string-lf binary-lf")
_HTTP_EXPECT_TYPES = _words("string rstring string-lf status rstatus hdr fhdr")


#: ``tcp-check``/``http-check expect`` options that take one value and do not change what
#: is matched (the checker skips them the same way).
EXPECT_OPTIONS_WITH_VALUE = frozenset(
    {
        "min-recv",
        "comment",
        "ok-status",
        "error-status",
        "tout-status",
        "on-success",
        "on-error",
        "status-code",
    }
)


def _expect_problem(args: list[str], http: bool) -> str | None:
    i = 0
    while i < len(args) and args[i] in EXPECT_OPTIONS_WITH_VALUE:
        i += 2
    if i < len(args) and args[i] == "!":
        i += 1
    kind = args[i] if i < len(args) else ""
    if kind.startswith("!"):
        kind = kind[1:]
    types = _HTTP_EXPECT_TYPES if http else _TCP_EXPECT_TYPES
    if kind not in types:
        if http:
            supported = (
                "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', "
                "'[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment"
            )
        else:
            supported = (
                "'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', "
                "'[!]string-lf''[!]rbinary', '[!]binary-lf' or comment"
            )
        return f"{supported} but got '{kind}' as argument.."
    if kind in ("hdr", "fhdr"):
        return None
    pattern = args[i + 1] if i + 1 < len(args) else None
    if pattern is None:
        return f"'{kind}' expects a <pattern> as argument."
    if kind == "binary" and _hex_problem(pattern):
        return f"invalid binary string ({_hex_problem(pattern)})."
    if kind == "status":
        return _status_problem(pattern)
    if kind in ("rstring", "rbinary", "rstatus"):
        try:
            re.compile(pattern)
        except re.error as exc:  # Python's wording, not PCRE's
            return f"regex '{pattern}' is invalid (error={exc.msg}, erroffset={exc.pos})."
    return None


def _tcp_send_problem(args: list[str]) -> str | None:
    return None if args else "'string' expects a send as argument."


def _tcp_send_binary_problem(args: list[str]) -> str | None:
    if not args:
        return "'binary' expects a send as argument."
    problem = _hex_problem(args[0])
    return f"'{args[0]}' invalid binary string ({problem}).\n." if problem else None


_CONNECT_FLAGS = _words("send-proxy ssl via-socks4 linger default")
_CONNECT_VALUES = _words("comment port addr sni alpn proto")


def _tcp_connect_problem(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        if args[i] in _CONNECT_FLAGS:
            i += 1
        elif args[i] in _CONNECT_VALUES and i + 1 < len(args):
            value = args[i + 1]
            if args[i] == "port" and not value.isdigit() and value.isidentifier():
                return (
                    "error detected while parsing port expression : unknown fetch method "
                    f"'{value}'."
                )
            i += 2
        else:
            return (
                "expects 'comment', 'port', 'addr', 'send-proxy', 'ssl', 'sni', 'alpn' or "
                f"'via-socks4', 'linger', 'default' but got '{args[i]}' as argument.."
            )
    return None


_HTTP_SEND_VALUES = _words("meth uri uri-lf ver body body-lf comment")


def _http_send_problem(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        kw = args[i]
        if kw == "hdr":
            if i + 2 >= len(args):
                return "'hdr' expects <name> and <value> as arguments."
            i += 3
        elif kw in _HTTP_SEND_VALUES:
            if i + 1 >= len(args):
                return f"'{kw}' expects a string as argument.."
            i += 2
        else:
            return (
                "expects 'comment', 'meth', 'uri', 'uri-lf', 'ver', 'hdr', 'body' or 'body-lf' "
                f"but got '{kw}' as argument.."
            )
    return None


def _comment_problem(args: list[str]) -> str | None:
    return None if args else "expects a string as argument."


_RULE_CHECKS: dict[tuple[str, str], Callable[[list[str]], str | None]] = {
    ("tcp-check", "expect"): lambda a: _expect_problem(a, http=False),
    ("http-check", "expect"): lambda a: _expect_problem(a, http=True),
    ("tcp-check", "send"): _tcp_send_problem,
    ("tcp-check", "send-binary"): _tcp_send_binary_problem,
    ("tcp-check", "connect"): _tcp_connect_problem,
    ("http-check", "connect"): _tcp_connect_problem,
    ("http-check", "send"): _http_send_problem,
    ("tcp-check", "comment"): _comment_problem,
    ("http-check", "comment"): _comment_problem,
}


_StatsSub = Callable[[StatsPage, list[str], Location], StatsPage]
