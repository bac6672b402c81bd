"""The HAProxy configuration language as a library: model, parser, checker.

``parse_file``/``parse_text`` give the frozen :class:`~haconfig.model.Config` (or raise
:class:`ConfigError`); ``read_file``/``read_texts`` keep every diagnostic; ``check`` is
``haproxy -c`` in Python and ``haproxy_check`` runs the real one.
"""

from __future__ import annotations

from haconfig.parse import (
    ConfigError,
    Level,
    Message,
    ParseResult,
    Stage,
    parse_file,
    parse_text,
    read_file,
    read_texts,
)
from haconfig.validate import CheckResult, check, check_texts, haproxy_check

__all__ = [
    "CheckResult",
    "ConfigError",
    "Level",
    "Message",
    "ParseResult",
    "Stage",
    "check",
    "check_texts",
    "haproxy_check",
    "parse_file",
    "parse_text",
    "read_file",
    "read_texts",
]
