"""Model -> haproxy.cfg text, through ``templates/haproxy.cfg.j2``.

:func:`render` writes ANY :class:`~haconfig.model.Config`, every field the model
has, so that a parsed file comes back equal when parsed again (one model, two
directions). The template lays out sections and the order of directives; this
module only spells single values (times, addresses, quoted words, server and
bind parameters, conditions) the way HAProxy 2.6 reads them.

Order inside a proxy follows what HAProxy needs: ``acl`` lines come before the
rules that name them, ``default-server`` before ``server`` lines, and each
repeated directive keeps the order of the model (``option``, ``log``, check
rules and request rules are order-sensitive).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

import jinja2

from haconfig.model import (
    Acl,
    AclTerm,
    Bind,
    Condition,
    Config,
    Directive,
    LogTarget,
    Notes,
    Proxy,
    Server,
    ServerParams,
    StatsSocket,
    Timeouts,
)
from haconfig.units import format_time

__all__ = ["TEMPLATE_NAME", "quote", "render"]

TEMPLATE_NAME = "haproxy.cfg.j2"

# Sections HAProxy has and the model keeps only verbatim (``Config.ignored_sections``
# holds their header lines and, after each, the lines of their body).
SECTION_KEYWORDS = frozenset(
    {"peers", "resolvers", "userlist", "program", "ring", "mailers", "http-errors", "cache"}
)

# Characters that end or change a bare word in HAProxy's tokenizer (spec 1.1).
_SPECIAL = frozenset(" \t#'\"\\")


def quote(word: str) -> str:
    """One word spelled so that HAProxy's tokenizer reads back exactly ``word``.

    Bare when it holds nothing special; strongly quoted (``'...'``, nothing
    interpreted inside, which keeps regexes readable) when that can hold it;
    otherwise escaped with backslashes outside quotes (``\\ ``, ``\\#``, ``\\r``,
    ``\\xNN``), the only form that can carry a quote and a control byte together.
    A ``$`` stays bare: variables are expanded only inside double quotes."""
    if word == "":
        return "''"
    controls = any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in word)
    if not controls and not (_SPECIAL & set(word)):
        return word
    if not controls and "'" not in word:
        return f"'{word}'"
    out = []
    for c in word:
        if c in _SPECIAL and c != "\t":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def words(items: Iterable[str]) -> str:
    """Words joined by one space, each quoted as needed."""
    return " ".join(quote(w) for w in items)


def _host(host: str) -> str:
    """An address for ``host:port``: IPv6 literals go in brackets."""
    return f"[{host}]" if ":" in host else host


def bind_address(bind: Bind) -> str:
    """``*:5000``, ``:5000``, ``127.0.0.1:21050-21052``, ``[::]:5000``."""
    end = f"-{bind.port_end}" if bind.port_end is not None else ""
    return f"{_host(bind.host)}:{bind.port}{end}"


def bind_params(bind: Bind) -> str:
    """Everything a ``bind`` line holds after its address."""
    out: list[str] = []
    if bind.name is not None:
        out += ["name", quote(bind.name)]
    if bind.maxconn is not None:
        out += ["maxconn", str(bind.maxconn)]
    if bind.backlog is not None:
        out += ["backlog", str(bind.backlog)]
    if bind.v4v6:
        out.append("v4v6")
    if bind.v6only:
        out.append("v6only")
    if bind.accept_proxy:
        out.append("accept-proxy")
    if bind.ssl:
        out.append("ssl")
    for crt in bind.crt:
        out += ["crt", quote(crt)]
    if bind.ca_file is not None:
        out += ["ca-file", quote(bind.ca_file)]
    if bind.verify is not None:
        out += ["verify", quote(bind.verify)]
    if bind.alpn is not None:
        out += ["alpn", quote(bind.alpn)]
    if bind.ssl_min_ver is not None:
        out += ["ssl-min-ver", quote(bind.ssl_min_ver)]
    out += [_directive(d) for d in bind.other]
    return " ".join(out)


def server_address(server: Server) -> str:
    """``host:port``, ``:port`` (the client's destination address), ``host`` alone
    (the client's destination port) or ``host:+N`` (an offset from it)."""
    if server.port is None:
        return _host(server.host) if server.host else ":"
    if server.port_offset:
        return f"{_host(server.host)}:{server.port:+d}"
    return f"{_host(server.host)}:{server.port}"


# ServerParams fields whose value is a time (spelled with units) and whose
# boolean ``False`` has a spelling of its own (``no-check``; ``enabled`` undoes
# ``disabled``).
_TIME_PARAMS = frozenset({"inter", "fastinter", "downinter", "slowstart", "agent_inter"})
_NEGATIVE = {"disabled": "enabled"}


def server_params(params: ServerParams) -> str:
    """Every parameter set in ``params``, in the model's field order."""
    out: list[str] = []
    for f in fields(params):
        value = getattr(params, f.name)
        keyword = f.name.replace("_", "-")
        if f.name == "other":
            out += [_directive(d) for d in value]
        elif value is None:
            continue
        elif isinstance(value, bool):
            out.append(keyword if value else _NEGATIVE.get(f.name, f"no-{keyword}"))
        elif f.name in _TIME_PARAMS:
            out += [keyword, format_time(value)]
        else:
            out += [keyword, quote(str(value))]
    return " ".join(out)


def timeout_lines(timeouts: Timeouts) -> list[tuple[str, str]]:
    """``(keyword, value)`` for every timeout set, in spec 1.10 order."""
    return [
        (Timeouts.keyword(f.name), format_time(getattr(timeouts, f.name)))
        for f in fields(timeouts)
        if getattr(timeouts, f.name) is not None
    ]


def log_line(target: LogTarget) -> str:
    """What follows ``log``: address, optional length and format, facility, levels."""
    if target.is_global:
        return "global"
    out = [quote(target.address)]
    if target.length is not None:
        out += ["len", str(target.length)]
    if target.format is not None:
        out += ["format", quote(target.format)]
    if target.facility is not None:
        out.append(quote(target.facility))
        if target.level is not None:
            out.append(quote(target.level))
            if target.min_level is not None:
                out.append(quote(target.min_level))
    return " ".join(out)


def stats_socket(sock: StatsSocket) -> str:
    """What follows ``stats socket``."""
    out = [quote(sock.path)]
    if sock.mode is not None:
        out += ["mode", f"{sock.mode:03o}"]
    if sock.level is not None:
        out += ["level", sock.level.value]
    if sock.expose_fd_listeners:
        out += ["expose-fd", "listeners"]
    if sock.user is not None:
        out += ["user", quote(sock.user)]
    if sock.group is not None:
        out += ["group", quote(sock.group)]
    return " ".join(out)


def acl_body(acl: Acl) -> str:
    """``<criterion> [flags] <patterns...>`` of an acl (named or anonymous)."""
    # ``--`` ends the flags when a pattern itself starts with a dash.
    dashes = ("--",) if acl.patterns and acl.patterns[0].startswith("-") else ()
    return words((acl.criterion, *acl.flags, *dashes, *acl.patterns))


def _term(term: AclTerm) -> str:
    bang = "!" if term.negated else ""
    if term.anonymous is not None:
        return f"{bang}{{ {acl_body(term.anonymous)} }}"
    return f"{bang}{quote(term.name or '')}"


def condition(cond: Condition | None) -> str:
    """`` if a b || !c`` (with its leading space), or ``""`` without a condition."""
    if cond is None:
        return ""
    alternatives = " || ".join(" ".join(_term(t) for t in alt) for alt in cond.alternatives)
    return f" {'unless' if cond.unless else 'if'} {alternatives}"


def _directive(d: Directive) -> str:
    return " ".join([d.keyword, *(quote(a) for a in d.args)])


def description(text: str) -> str:
    """HAProxy joins the words of ``description`` with single spaces."""
    return words(text.split())


def note(notes: Notes, key: str) -> str | None:
    """The comment for ``key``, flattened to one line."""
    text = notes.get(key)
    return " ".join(text.split()) if text else None


def section_header(proxy: Proxy) -> str:
    """``defaults``, ``frontend name``, ``listen name from base``."""
    head = proxy.kind.value
    if proxy.name:
        head += f" {proxy.name}"
    if proxy.from_defaults:
        head += f" from {proxy.from_defaults}"
    return head


def _environment() -> jinja2.Environment:
    folder = Path(str(importlib.resources.files("templates")))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        q=quote,
        words=words,
        time=format_time,
        bind_address=bind_address,
        bind_params=bind_params,
        server_address=server_address,
        server_params=server_params,
        timeout_lines=timeout_lines,
        log_line=log_line,
        stats_socket=stats_socket,
        acl_body=acl_body,
        condition=condition,
        directive=_directive,
        description=description,
        section_header=section_header,
    )
    env.globals["note"] = note
    env.globals["section_keywords"] = SECTION_KEYWORDS
    return env


_ENV: jinja2.Environment | None = None


def render_template(name: str, **context: object) -> str:
    """Another template of ``templates/`` (keepalived.conf.j2) with ``context``."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    text = _ENV.get_template(name).render(**context)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def render(config: Config) -> str:
    """The text of ``config`` as an haproxy.cfg that HAProxy 2.6 and impala-lb both read."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    text = _ENV.get_template(TEMPLATE_NAME).render(config=config)
    # One blank line between sections, none at the end: stable text for golden files.
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"
