"""HAProxy configuration text -> :class:`haconfig.model.Config`, checked as HAProxy 2.6 does.

The work happens in the three stages of ``haproxy -c`` (spec 1.3):

1. *parsing*: every line is split by :mod:`haconfig.lexer`, section headers open a
   section and each keyword goes through a keyword table (one per section kind,
   plus tables for ``option``, ``timeout`` and ``server`` parameters). HAProxy keeps
   parsing after an error so that every problem of the file is reported; so do we.
2. *checking* (only when parsing found no error): cross-references and per-proxy
   sanity (``use_backend`` targets, ports, TLS verification, missing timeouts...).
3. *address resolution* (only when checking found no error): server hostnames are
   resolved with the system resolver; an unresolvable one is fatal unless
   ``init-addr ... none``.

Diagnostics carry HAProxy's exact wording and ``[file:line]`` (see the spec for each).
Keywords HAProxy knows but the balancer does not implement are accepted, kept as
:class:`~haconfig.model.Directive` and reported with a warning that names them: a
deliberate difference (HAProxy says nothing, because it implements them).

The package, by stage and section (as HAProxy's ``cfgparse-*.c``):

- :mod:`._diagnostics`: messages, levels, stages, "did you mean";
- :mod:`._words`: lexical helpers and the keyword tables;
- :mod:`._parser`: lines into sections, keywords through their section's table;
- :mod:`._global` and :mod:`._proxy`: the handlers of each section's keywords;
- :mod:`._checkrules`: ``tcp-check``/``http-check`` rule arguments;
- :mod:`._checks`: stage 2; :mod:`._resolve`: stage 3;
- :mod:`._files`: the entry points (files, text, one runtime-API ``server`` line).
"""

from __future__ import annotations

from haconfig.parse._checkrules import EXPECT_OPTIONS_WITH_VALUE
from haconfig.parse._checks import check_type
from haconfig.parse._diagnostics import (
    ConfigError,
    Diagnostics,
    Level,
    Message,
    ParseResult,
    Stage,
    best_match,
)
from haconfig.parse._files import (
    DYNAMIC_SERVER_KEYWORDS,
    ServerLineError,
    load_files,
    parse_file,
    parse_server_words,
    parse_text,
    read_file,
    read_texts,
)

__all__ = [
    "DYNAMIC_SERVER_KEYWORDS",
    "EXPECT_OPTIONS_WITH_VALUE",
    "ConfigError",
    "Diagnostics",
    "Level",
    "Message",
    "ParseResult",
    "ServerLineError",
    "Stage",
    "best_match",
    "check_type",
    "load_files",
    "parse_file",
    "parse_server_words",
    "parse_text",
    "read_file",
    "read_texts",
]
