"""Stage 2: checks over the whole configuration (HAProxy's ``check_config_validity``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from haconfig.model import (
    Bind,
    Config,
    Location,
    Mode,
    Proxy,
    SectionKind,
    Server,
    ServerParams,
)
from haconfig.parse._diagnostics import Level, Message
from haconfig.parse._words import _L7_BALANCE, _section_kind_word, _words

if TYPE_CHECKING:
    from haconfig.parse._parser import _Parser


# --------------------------------------------------------------------------------------
# stage 2: checks over the whole configuration (HAProxy's check_config_validity)


def _resolvable(config: Config) -> Config:
    """``config`` with an empty ``default-server`` in each defaults section that has none.

    Same meaning, but works around :meth:`Config.resolve` failing when a proxy has a
    ``default-server`` line and its defaults section has none (reported to the model's
    owner). Proxy objects are kept, so ``resolve`` still finds their defaults."""
    return replace(
        config,
        sections=tuple(
            replace(p, default_server=ServerParams())
            if p.kind is SectionKind.DEFAULTS and p.default_server is None
            else p
            for p in config.sections
        ),
    )


@dataclass
class _Checking:
    """What every stage-2 check sees: the whole config, one proxy as written and resolved,
    and where to put diagnostics."""

    config: Config
    raw: Proxy
    p: Proxy
    messages: list[Message]

    @property
    def word(self) -> str:
        return _section_kind_word(self.raw.kind)

    @property
    def http(self) -> bool:
        return self.p.effective_mode is Mode.HTTP

    def alert(self, text: str, loc: Location | None = None) -> None:
        self.messages.append(Message(Level.ALERT, text, loc or _cited(text)))

    def warn(self, text: str, loc: Location | None = None) -> None:
        self.messages.append(Message(Level.WARNING, text, loc or _cited(text)))


def _check_l7_hash(c: _Checking) -> None:
    b = c.p.balance
    if not c.http and c.raw.kind.has_backend and b and b.algorithm.split("(")[0] in _L7_BALANCE:
        c.warn(
            f"Layer 7 hash not possible for proxy '{c.p.name}' (needs 'mode http'). "
            "Falling back to round robin."
        )


def _check_httplog(c: _Checking) -> None:
    httplog = c.raw.option("httplog")  # inherited from defaults: HAProxy says nothing
    if not c.http and httplog is not None and httplog.enabled and c.raw.kind.has_frontend:
        c.warn(
            f"parsing [{httplog.location}] : 'option httplog' not usable with proxy "
            f"'{c.p.name}' (needs 'mode http'). Falling back to 'option tcplog'.",
            httplog.location,
        )


_CHECK_TYPE_OPTIONS = _words(
    "tcp-check httpchk ssl-hello-chk smtpchk mysql-check pgsql-check redis-check ldap-check "
    "spop-check external-check"
)


def check_type(proxy: Proxy) -> str | None:
    """The health-check type a (resolved) proxy runs: the last check option set wins, as in
    HAProxy (``option httpchk`` then ``option tcp-check`` runs tcp-check rules)."""
    for opt in reversed(proxy.options):
        if opt.name in _CHECK_TYPE_OPTIONS:
            return opt.name if opt.enabled else None
    return None


def _check_http_check_rules(c: _Checking) -> None:
    if c.raw.kind.has_backend and c.p.http_check_rules and check_type(c.p) != "httpchk":
        c.warn(
            f"proxy '{c.p.name}' uses http-check rules without 'option httpchk', so the rules "
            "are ignored."
        )


def _check_switching_rules(c: _Checking) -> None:
    p, kind = c.p, c.raw.kind
    if kind is SectionKind.BACKEND:
        # HAProxy warns that these are ignored in a backend, yet still follows them.
        for d in sorted(c.raw.other, key=lambda d: d.keyword != "default_backend"):
            if d.keyword in ("default_backend", "use_backend") and d.args[:1] == (p.name,):
                c.alert(f"Proxy '{p.name}': loop detected for {d.keyword}: '{p.name}'.")
        return
    targets = [(u.backend, "use_backend") for u in p.use_backends]
    if p.default_backend:
        targets.insert(0, (p.default_backend, "default_backend"))
    for target, what in targets:
        be = c.config.backend(target)
        if be is None:
            c.alert(f"Proxy '{p.name}': unable to find required {what}: '{target}'.")
        elif target == p.name and kind is SectionKind.LISTEN:
            c.alert(f"Proxy '{p.name}': loop detected for {what}: '{target}'.")
        elif c.http and be.effective_mode is Mode.TCP:
            rule = (
                "as its default backend" if what == "default_backend" else "in a 'use_backend' rule"
            )
            c.alert(
                f"http frontend '{p.name}' ({p.location}) tries to use incompatible tcp backend "
                f"'{be.name}' ({be.location}) {rule} (see 'mode')."
            )


def _check_timeouts(c: _Checking) -> None:
    t, kind = c.p.timeouts, c.raw.kind
    missing = (kind.has_frontend and not t.client) or (
        kind.has_backend
        and bool(c.p.servers)
        and (not t.connect or (not t.server and (c.http or not t.tunnel)))
    )
    if missing:
        c.warn(
            f"missing timeouts for {c.word} '{c.p.name}'.\n"
            "   | While not properly invalid, you will certainly encounter various problems\n"
            "   | with such a configuration. To fix this, please ensure that all following\n"
            "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
        )


def _check_tcp_check_rules(c: _Checking) -> None:
    if c.raw.kind.has_backend and c.p.tcp_check_rules and check_type(c.p) != "tcp-check":
        c.warn(
            f"proxy '{c.p.name}' uses tcp-check rules without 'option tcp-check', so the rules "
            "are ignored."
        )


def _check_server_names(c: _Checking) -> None:
    seen: dict[str, Server] = {}
    for s in c.p.servers:
        if s.name in seen:
            c.alert(
                f"parsing [{s.location}] : proxy '{c.p.name}', another server named '{s.name}' "
                f"was already defined at line {seen[s.name].location.line}, please use "
                "distinct names.",
            )
        seen.setdefault(s.name, s)


def _check_server_tls(c: _Checking) -> None:
    verify_none = any(
        d.keyword == "ssl-server-verify" and d.args[:1] == ("none",) for d in c.config.global_.other
    )
    rules = c.p.tcp_check_rules if check_type(c.p) == "tcp-check" else c.p.http_check_rules
    ssl_rule = any(r.action == "connect" and "ssl" in r.args for r in rules)
    for s in c.p.servers:
        sp = c.p.server_params(s)
        tls = sp.ssl or sp.check_ssl or (ssl_rule and sp.check)
        if tls and not verify_none and sp.verify != "none" and not sp.ca_file:
            c.alert(
                f"[{s.location}] : 'server {c.p.name}/{s.name}' : verify is enabled by default "
                "but no CA file specified. If you're running on a LAN where you're certain to "
                "trust the server's certificate, please set an explicit 'verify none' statement "
                "on the 'server' line, or use 'ssl-server-verify none' in the global section to "
                "disable server-side verifications by default.",
                s.location,
            )


def _check_log_address(c: _Checking) -> None:
    p = c.p
    if c.raw.kind.has_frontend and (p.has_option("tcplog") or p.has_option("httplog")):
        global_has_log = bool(c.config.global_.logs)
        if p.no_log or not any(not t.is_global or global_has_log for t in p.logs):
            c.warn(f"log format ignored for proxy '{p.name}' since it has no log address.")


def _check_http_only(c: _Checking) -> None:
    if c.http:
        return
    p = c.p
    if p.stats.enabled or p.stats.uri or p.stats.auth:
        c.warn(f"'stats' statement ignored for {c.word} '{p.name}' as it requires HTTP mode.")
    if p.http_requests:
        c.warn(f"'http-request' rules ignored for {c.word} '{p.name}' as they require HTTP mode.")
    if p.has_option("forwardfor"):
        c.warn(f"'option forwardfor' ignored for {c.word} '{p.name}' as it requires HTTP mode.")


def _check_bind_tls(c: _Checking) -> None:
    for b in c.p.binds:
        if b.ssl and not b.crt:
            c.alert(
                f"Proxy '{c.p.name}': no SSL certificate specified for bind '{_bind_text(b)}' "
                f"at [{b.location}] (use 'crt')."
            )


def _check_server_ports(c: _Checking) -> None:
    for s in c.p.servers:
        sp = c.p.server_params(s)
        if sp.check and s.port is None and sp.port is None and not s.host.startswith("/"):
            c.alert(
                f"config: proxy '{c.p.name}': server '{s.name}' has neither service port nor "
                "check port."
            )


# HAProxy's check_config_validity, per proxy, in the order it reports things.
_PROXY_CHECKS: tuple[Callable[[_Checking], None], ...] = (
    _check_l7_hash,
    _check_httplog,
    _check_http_check_rules,
    _check_switching_rules,
    _check_timeouts,
    _check_tcp_check_rules,
    _check_server_names,
    _check_server_tls,
    _check_log_address,
    _check_http_only,
    _check_bind_tls,
    _check_server_ports,
)


def _post_checks(ps: _Parser, config: Config) -> None:
    resolvable = _resolvable(config)
    for raw in config.sections:
        if raw.kind is SectionKind.DEFAULTS:
            continue
        checking = _Checking(config, raw, resolvable.resolve(raw), ps.messages)
        for each in _PROXY_CHECKS:
            each(checking)


_CITED = re.compile(r"\[([^\[\]]+):(\d+)\]")


def _cited(text: str) -> Location | None:
    """The ``[file:line]`` a message cites, if any."""
    m = _CITED.search(text)
    return Location(m.group(1), int(m.group(2))) if m else None


def _bind_text(b: Bind) -> str:
    host = f"[{b.host}]" if ":" in b.host else b.host
    port = f"{b.port}-{b.port_end}" if b.port_end else str(b.port)
    return f"{host}:{port}"
