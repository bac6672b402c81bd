"""HAProxy's line lexer (spec 1.1): comments, quotes, escapes, environment variables."""

from __future__ import annotations

import pytest

from haconfig.lexer import LexError, split_line

ENV = {"HOST": "127.0.0.1", "PORT": "21050"}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("    server a 127.0.0.1:1 check", ["server", "a", "127.0.0.1:1", "check"]),
        ("\tbalance\t\troundrobin  ", ["balance", "roundrobin"]),
        ("# only a comment", []),
        ("", []),
        ("   ", []),
        ("maxconn 10 # trailing comment", ["maxconn", "10"]),
        ("maxconn 10#glued comment", ["maxconn", "10"]),
        ("description 'a b  c'", ["description", "a b  c"]),
        ('description "a b"', ["description", "a b"]),
        ("x 'it''s'", ["x", "its"]),
        ('x "#not a comment"', ["x", "#not a comment"]),
        ("x '#not a comment'", ["x", "#not a comment"]),
        (r"x a\ b", ["x", "a b"]),
        (r"x a\#b", ["x", "a#b"]),
        (r"x \\", ["x", "\\"]),
        (r"x \"q\"", ["x", '"q"']),
        (r"x a\r\n", ["x", "a\r\n"]),
        (r"x \x41\x42", ["x", "AB"]),
        (r"x 'a\nb'", ["x", "a\\nb"]),
        ('x ""', ["x", ""]),
        ('bind "${HOST}:${PORT}"', ["bind", "127.0.0.1:21050"]),
        ('bind "$HOST:$PORT"', ["bind", "127.0.0.1:21050"]),
        ('x "${UNSET}"', ["x", ""]),
        ("x '${HOST}'", ["x", "${HOST}"]),
        ("x ${HOST}", ["x", "${HOST}"]),
        ('x pre"${HOST}"post', ["x", "pre127.0.0.1post"]),
        ('x "${UNSET-tcp}"', ["x", "tcp"]),
        ('x "${PORT-1}"', ["x", "21050"]),
        ('x "${UNSET-}"', ["x", ""]),
        ('x t"c"p', ["x", "tcp"]),
        ("x 't'\"c\"p", ["x", "tcp"]),
        (r"x t\cp", ["x", "t\\cp"]),
        ("x tcp\\", ["x", "tcp\\"]),
    ],
)
def test_split_line(line: str, words: list[str]) -> None:
    """A line splits into HAProxy's words: quotes, escapes and "${VAR}" applied, comments cut."""
    assert split_line(line, ENV) == words


@pytest.mark.parametrize(
    ("line", "message", "position"),
    [
        ('  bind "127.0.0.1:1', "unmatched quote", 8),
        ("x 'abc", "unmatched quote", 3),
        ('    mode "tcp\\"', "unmatched quote", 10),
        ('    mode "${M:-tcp}"', "unmatched brace in environment variable name", 12),
        ('\tmode "${M:-tcp}"', "unmatched brace in environment variable name", 9),
        ('x "${M', "unmatched brace in environment variable name", 5),
    ],
)
def test_lexer_errors_give_haproxys_position(line: str, message: str, position: int) -> None:
    """Unterminated quotes and bad ${...} raise HAProxy's message with its 1-based position."""
    with pytest.raises(LexError, match=f"{message} at position {position}") as info:
        split_line(line, ENV)
    assert info.value.position == position
