"""A small recognizer for the statements only Impala has (SHOW, DESCRIBE, SET, USE...).

Everything it does not recognize goes to sqlglot. Each pattern matches a whole
statement (comments and a trailing ``;`` already stripped) and yields a
:class:`Recognized` with the statement kind and its named parts.
"""

from __future__ import annotations

import dataclasses
import re

_NAME = r"(?:`[^`]+`|[A-Za-z_][\w$]*)"
_QNAME = rf"(?P<name>{_NAME}(?:\s*\.\s*{_NAME})?)"
_STR = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx, re.IGNORECASE | re.DOTALL))
    for kind, rx in (
        ("set_all", r"^set\s+all$"),
        ("set_list", r"^set$"),
        ("set", rf"^set\s+(?P<key>[\w.]+)\s*=\s*(?P<value>{_STR}|.*?)$"),
        ("unset", r"^unset\s+(?:all\s+)?(?P<key>[\w.]+)$"),
        ("use", rf"^use\s+(?P<name>{_NAME})$"),
        ("show_databases", rf"^show\s+(?:databases|schemas)(?:\s+(?:like\s+)?(?P<like>{_STR}))?$"),
        (
            "show_tables",
            rf"^show\s+tables(?:\s+in\s+(?P<db>{_NAME}))?(?:\s+(?:like\s+)?(?P<like>{_STR}))?$",
        ),
        (
            "show_functions",
            rf"^show\s+(?:(?:aggregate|analytic)\s+)?functions(?:\s+in\s+(?P<db>{_NAME}))?"
            rf"(?:\s+(?:like\s+)?(?P<like>{_STR}))?$",
        ),
        ("show_create_table", rf"^show\s+create\s+(?:table|view)\s+{_QNAME}$"),
        ("show_table_stats", rf"^show\s+table\s+stats\s+{_QNAME}$"),
        ("show_column_stats", rf"^show\s+column\s+stats\s+{_QNAME}$"),
        ("show_partitions", rf"^show\s+partitions\s+{_QNAME}$"),
        ("show_files", rf"^show\s+files\s+in\s+{_QNAME}(?:\s+partition\s*\(.*\))?$"),
        (
            "describe_database",
            rf"^(?:describe|desc)\s+(?:database|schema)\s+(?:formatted\s+|extended\s+)?(?P<name>{_NAME})$",
        ),
        ("describe", rf"^(?:describe|desc)\s+(?P<formatted>formatted\s+|extended\s+)?{_QNAME}$"),
        ("refresh", rf"^refresh\s+{_QNAME}(?:\s+partition\s*\(.*\))?$"),
        ("invalidate", rf"^invalidate\s+metadata(?:\s+{_QNAME})?$"),
        ("compute_stats", rf"^compute\s+(?:incremental\s+)?stats\s+{_QNAME}(?:\s+.*)?$"),
        ("explain", r"^explain\s+(?P<body>.+)$"),
        (
            "load_data",
            rf"^load\s+data\s+inpath\s+(?P<path>{_STR})\s+(?P<overwrite>overwrite\s+)?"
            rf"into\s+table\s+{_QNAME}(?:\s+partition\s*\((?P<partition>.*)\))?$",
        ),
        ("shutdown", r"^:shutdown\s*\(.*\)$"),
    )
)

_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)+", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Recognized:
    """An Impala-only statement: its kind and the parts its pattern named."""

    kind: str
    parts: dict[str, str]


def strip_statement(sql: str) -> str:
    """The statement without leading comments, surrounding blanks and trailing ``;``."""
    text = _COMMENTS.sub("", sql).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


#: what hints never reach into: string literals, quoted names and comments
_QUOTED = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*|/\*.*?\*/", re.DOTALL
)
#: Impala's bracketed plan hints: ``JOIN [SHUFFLE]``, ``INSERT ... [NOSHUFFLE]``,
#: ``FROM t [SCHEDULE_REMOTE]``
_BRACKET_HINT = re.compile(r"\[\s*[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*\]")
_STRAIGHT_JOIN = re.compile(r"\b(select\s+(?:(?:all|distinct)\s+)?)straight_join\b", re.IGNORECASE)


def strip_hints(text: str) -> str:
    """``text`` without Impala's plan hints, which DuckDB plans without: the bracketed
    forms and ``SELECT STRAIGHT_JOIN``. The comment forms (``/* +SHUFFLE */``,
    ``-- +BROADCAST``) are comments to the parser already. Hints change how Impala
    plans a query, never its result, so dropping them keeps every answer."""
    out: list[str] = []
    pos = 0
    for m in _QUOTED.finditer(text):
        out += [_unhint(text[pos : m.start()]), m.group()]
        pos = m.end()
    out.append(_unhint(text[pos:]))
    return "".join(out)


def _unhint(segment: str) -> str:
    return _STRAIGHT_JOIN.sub(r"\1", _BRACKET_HINT.sub(" ", segment))


def recognize(text: str) -> Recognized | None:
    """The Impala-only statement ``text`` is, or None for sqlglot to parse."""
    for kind, rx in _PATTERNS:
        m = rx.match(text)
        if m:
            return Recognized(kind, {k: v for k, v in m.groupdict().items() if v is not None})
    return None


def unquote_name(name: str) -> str:
    """An identifier without backquotes, lower-cased as Impala's catalog keeps names."""
    return name.strip().strip("`").lower()


def split_name(qualified: str, default_db: str) -> tuple[str, str]:
    """``db.table`` (or ``table`` in the current database) as ``(db, table)``."""
    parts = [unquote_name(p) for p in re.split(r"\s*\.\s*(?=(?:[^`]*`[^`]*`)*[^`]*$)", qualified)]
    if len(parts) == 1:
        return default_db, parts[0]
    return parts[0], parts[1]


def unquote_string(text: str) -> str:
    """A SQL string literal's value."""
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    return text


def partition_values(text: str) -> dict[str, str]:
    """``k=v, k2='v2'`` (the inside of a PARTITION clause) as ``{k: v}``."""
    values: dict[str, str] = {}
    for m in re.finditer(rf"\s*(\w+)\s*=\s*({_STR}|[^,]+?)\s*(?:,|$)", text):
        value = m.group(2).strip()
        values[m.group(1).lower()] = (
            "__HIVE_DEFAULT_PARTITION__" if value.lower() == "null" else unquote_string(value)
        )
    return values


def like_matcher(pattern: str) -> re.Pattern[str]:
    """Impala's SHOW ... LIKE pattern: ``*`` is any text, ``|`` separates alternatives."""
    alternatives = [
        ".*".join(re.escape(piece) for piece in alt.strip().split("*"))
        for alt in pattern.split("|")
    ]
    return re.compile("^(?:" + "|".join(alternatives) + ")$", re.IGNORECASE)
