"""HAProxy's configuration lexer (spec 1.1): one line in, a list of words out.

- ``#`` outside quotes starts a comment, whole-line or trailing;
- words are split on blanks (spaces and tabs);
- ``"..."`` and ``'...'`` quote; inside single quotes nothing is special;
- a backslash escapes the next character outside single quotes (``\\ ``, ``\\#``,
  ``\\\\``, ``\\'``, ``\\"``), and ``\\r``, ``\\n``, ``\\t``, ``\\xHH`` give control bytes;
- ``"${VAR}"``, ``"$VAR"`` and ``"${VAR-default}"`` are expanded inside double quotes;
  an unset variable expands to the empty string (or its default) without error, as
  HAProxy 2.6 does.

An unterminated quote or a malformed ``${...}`` is an error with HAProxy's wording
(``unmatched quote at position N``, ``unmatched brace in environment variable name at
position N``), reported by the caller with the line.
"""

from __future__ import annotations

from collections.abc import Mapping

_ESCAPES = {"r": "\r", "n": "\n", "t": "\t"}
_LITERAL_ESCAPES = frozenset(" \t\\#'\"")


class LexError(ValueError):
    """A line HAProxy cannot split; ``position`` is 1-based as HAProxy prints it."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def split_line(line: str, env: Mapping[str, str]) -> list[str]:
    """The words of one configuration line, comments removed, quotes and escapes applied.

    An empty list means the line is blank or only a comment. ``""`` yields an empty
    word, as in HAProxy."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    quote_start = 0
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
            i += 1
            continue
        if quote == '"':
            if c == '"':
                quote = ""
                i += 1
                continue
            if c == "$":
                value, i = _expand(line, i, env)
                cur.append(value)
                continue
        if c == "\\" and i + 1 < n:
            nxt = line[i + 1]
            if nxt in _LITERAL_ESCAPES:
                cur.append(nxt)
                in_word = True
                i += 2
                continue
            if nxt in _ESCAPES:
                cur.append(_ESCAPES[nxt])
                in_word = True
                i += 2
                continue
            if nxt == "x" and i + 3 < n + 1:
                hexa = line[i + 2 : i + 4]
                if len(hexa) == 2 and all(h in "0123456789abcdefABCDEF" for h in hexa):
                    cur.append(chr(int(hexa, 16)))
                    in_word = True
                    i += 4
                    continue
            cur.append(c)
            in_word = True
            i += 1
            continue
        if quote == '"':
            cur.append(c)
            i += 1
            continue
        if c in " \t\r\n":
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
            i += 1
            continue
        if c == "#":
            break
        if c in "\"'":
            quote = c
            quote_start = i
            in_word = True
            i += 1
            continue
        cur.append(c)
        in_word = True
        i += 1
    if quote:
        raise LexError(f"unmatched quote at position {quote_start + 1}", quote_start + 1)
    if in_word:
        words.append("".join(cur))
    return words


def _expand(line: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    """Expand ``$VAR``, ``${VAR}`` or ``${VAR-default}`` at ``line[i] == '$'``.

    Returns (value, index after it). A brace that does not close right after the name
    (or its default) raises HAProxy's ``unmatched brace`` error."""
    n = len(line)
    if i + 1 < n and line[i + 1] == "{":
        j = i + 2
        while j < n and (line[j].isalnum() or line[j] == "_"):
            j += 1
        name = line[i + 2 : j]
        default: str | None = None
        if j < n and line[j] == "-":
            end = line.find("}", j + 1)
            if end >= 0:
                default = line[j + 1 : end]
                j = end
        if j >= n or line[j] != "}":
            raise LexError(
                f"unmatched brace in environment variable name at position {i + 2}", i + 2
            )
        value = env.get(name)
        if value is None:
            value = default or ""
        return value, j + 1
    j = i + 1
    while j < n and (line[j].isalnum() or line[j] == "_"):
        j += 1
    if j == i + 1:
        return "$", i + 1
    return env.get(line[i + 1 : j], ""), j
