"""The entry points: reading files (``-f`` paths, directories), parsing text, and one
``server`` line of the runtime API (``add server``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from haconfig.model import (
    Config,
    Location,
    Proxy,
    SectionKind,
    Server,
)
from haconfig.parse._checks import _post_checks
from haconfig.parse._diagnostics import ConfigError, Level, Message, ParseResult, Stage
from haconfig.parse._parser import _Parser, _Section
from haconfig.parse._proxy import _p_server
from haconfig.parse._resolve import _resolve_addresses
from haconfig.parse._words import _SRV_KW

# --------------------------------------------------------------------------------------
# entry points


def read_texts(
    files: Sequence[tuple[str, str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
) -> ParseResult:
    """Read several files in order, as ``haproxy -f a -f b`` does (each file starts out
    of any section; later files may use sections of earlier ones), through all three
    stages, keeping every diagnostic."""
    ps = _Parser(env=os.environ if env is None else env)
    for filename, text in files:
        ps.feed_file(text, filename)
        if ps.aborted:
            break
    source = files[0][0] if files else "<none>"
    config = Config(ps.global_, tuple(ps.sections), tuple(ps.ignored), source)
    if any(m.fatal for m in ps.messages):
        return ParseResult(
            config, tuple(ps.messages), Stage.PARSE, tuple(ps.files_with_errors), ps.aborted
        )
    _post_checks(ps, config)
    if any(m.fatal for m in ps.messages):
        return ParseResult(config, tuple(ps.messages), Stage.CHECK)
    if resolve_hosts:
        found: dict[str, str] = {}
        if not _resolve_addresses(ps, config, found):
            return ParseResult(config, tuple(ps.messages), Stage.ADDR)
        config = replace(config, addresses=MappingProxyType(found))
    return ParseResult(config, tuple(ps.messages))


def load_files(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """``(name, text)`` for each path, in order; a directory stands for its ``*.cfg`` files
    in lexical order, named ``dir/file`` as HAProxy names them. An unreadable path raises
    :class:`ConfigError` with HAProxy's wording."""
    files: list[tuple[str, str]] = []
    for p in paths:
        name = os.fspath(p)
        try:
            if os.path.isdir(name):
                entries = sorted(e for e in os.listdir(name) if e.endswith(".cfg"))
                names = [f"{name}/{e}" for e in entries]
            else:
                names = [name]
            for each in names:
                with open(each, encoding="utf-8", errors="surrogateescape") as fh:
                    files.append((each, fh.read()))
        except OSError as exc:
            text = f"Cannot open configuration file/directory {name} : {exc.strerror}"
            raise ConfigError((Message(Level.ALERT, text),)) from None
    return files


def read_file(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
) -> ParseResult:
    """:func:`read_texts` on a file, a directory of ``*.cfg`` files, or several of them in
    order; messages cite paths as given. An unreadable path raises :class:`ConfigError`."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    return read_texts(load_files(paths), env=env, resolve_hosts=resolve_hosts)


def parse_text(
    text: str,
    filename: str = "<string>",
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
) -> Config:
    """The model of one configuration text, or :class:`ConfigError` (whose message is the
    first alert, ``parsing [file:line] : ...``) when HAProxy would refuse it."""
    return read_texts([(filename, text)], env=env, resolve_hosts=resolve_hosts).require()


def parse_file(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
) -> Config:
    """The model of a file (or several, concatenated in order), or :class:`ConfigError`."""
    return read_file(path, env=env, resolve_hosts=resolve_hosts).require()


#: ``server`` keywords HAProxy 2.6 accepts on the runtime API's ``add server`` (its
#: management guide lists them); the others are refused there.
DYNAMIC_SERVER_KEYWORDS = frozenset(
    (
        "agent-addr",
        "agent-check",
        "agent-inter",
        "agent-port",
        "agent-send",
        "allow-0rtt",
        "alpn",
        "addr",
        "backup",
        "ca-file",
        "check",
        "check-alpn",
        "check-proto",
        "check-send-proxy",
        "check-sni",
        "check-ssl",
        "check-via-socks4",
        "ciphers",
        "ciphersuites",
        "crl-file",
        "crt",
        "disabled",
        "downinter",
        "enabled",
        "error-limit",
        "fall",
        "fastinter",
        "force-sslv3",
        "force-tlsv10",
        "force-tlsv11",
        "force-tlsv12",
        "force-tlsv13",
        "id",
        "inter",
        "maxconn",
        "maxqueue",
        "minconn",
        "no-ssl-reuse",
        "no-sslv3",
        "no-tlsv10",
        "no-tlsv11",
        "no-tlsv12",
        "no-tlsv13",
        "no-tls-tickets",
        "npn",
        "observe",
        "on-error",
        "on-marked-down",
        "on-marked-up",
        "pool-low-conn",
        "pool-max-conn",
        "pool-purge-delay",
        "port",
        "proto",
        "proxy-v2-options",
        "rise",
        "send-proxy",
        "send-proxy-v2",
        "send-proxy-v2-ssl",
        "send-proxy-v2-ssl-cn",
        "slowstart",
        "sni",
        "source",
        "ssl",
        "ssl-max-ver",
        "ssl-min-ver",
        "tfo",
        "tls-tickets",
        "track",
        "usesrc",
        "verify",
        "verifyhost",
        "weight",
        "ws",
    )
)


class ServerLineError(ValueError):
    """A ``server`` line given at run time (``add server``) that HAProxy would refuse; the
    message is HAProxy's, without a file location."""


def parse_server_words(backend: str, words: Sequence[str]) -> Server:
    """The model of ``<name> <addr>[:<port>] [keywords...]`` for backend ``backend``, as
    the runtime API's ``add server`` reads it: no ``default-server`` applies (HAProxy
    2.6), only :data:`DYNAMIC_SERVER_KEYWORDS` are allowed, and names are not resolved."""
    args = list(words)
    i = 2
    while i < len(args):
        entry = _SRV_KW.get(args[i])
        if entry is None:
            break  # the parser names the unknown keyword
        if args[i] not in DYNAMIC_SERVER_KEYWORDS:
            raise ServerLineError(f"'{args[i]}' option is not accepted for dynamic server")
        i += 1 + entry.nargs
    ps = _Parser(env={})
    ps.cur = _Section("proxy", Proxy(SectionKind.BACKEND, backend))
    where = Location("<cli>", 1)
    _p_server(ps, ["server", *args], where)
    alerts = [m for m in ps.messages if m.fatal]
    if alerts:
        text = alerts[0].text
        for prefix in (f"[{where}] : ", f"'server {backend}/{args[0] if args else ''}' : "):
            text = text.removeprefix(prefix)
        raise ServerLineError(text)
    return ps.proxy.servers[-1]
