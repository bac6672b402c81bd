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
"""

from __future__ import annotations

import enum
import grp
import ipaddress
import os
import pwd
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from haconfig.lexer import LexError, split_line
from haconfig.model import (
    Acl,
    AclTerm,
    Balance,
    Bind,
    CheckRule,
    Condition,
    Config,
    Directive,
    Global,
    Location,
    LogTarget,
    Mode,
    Option,
    Proxy,
    SectionKind,
    Server,
    ServerParams,
    StatsLevel,
    StatsPage,
    StatsSocket,
    UseBackend,
)
from haconfig.units import UnitError, parse_time

# --------------------------------------------------------------------------------------
# messages


class Level(enum.Enum):
    ALERT = "ALERT"
    WARNING = "WARNING"


class Stage(enum.Enum):
    """The ``haproxy -c`` stage a fatal error stopped at."""

    PARSE = "parse"
    CHECK = "check"
    ADDR = "addr"


@dataclass(frozen=True)
class Message:
    """One diagnostic. ``text`` is what HAProxy prints after ``config : ``, including its
    ``parsing [file:line] :`` prefix when it has one; ``location`` is that place."""

    level: Level
    text: str
    location: Location | None = None

    @property
    def fatal(self) -> bool:
        return self.level is Level.ALERT

    def format(self, pid: int) -> str:
        """The line as ``haproxy -c`` prints it: ``[ALERT]    (pid) : config : ...``."""
        tag = f"[{self.level.value}]"
        return f"{tag:<11}({pid}) : config : {self.text}"


class ConfigError(ValueError):
    """A configuration HAProxy would refuse; ``messages`` holds every diagnostic."""

    def __init__(self, messages: tuple[Message, ...]) -> None:
        self.messages = messages
        first = next((m for m in messages if m.fatal), None)
        super().__init__(first.text if first else "invalid configuration")


class Diagnostics:
    """What a result holding ``messages`` offers: its warnings and its alerts, in order."""

    messages: tuple[Message, ...]

    @property
    def warnings(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.level is Level.WARNING)

    @property
    def alerts(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.level is Level.ALERT)


@dataclass(frozen=True)
class ParseResult(Diagnostics):
    """The model (as far as it could be built), every diagnostic, and where it stopped."""

    config: Config
    messages: tuple[Message, ...]
    failed_stage: Stage | None = None
    files_with_errors: tuple[str, ...] = ()
    aborted: bool = False  # HAProxy gave up reading (it then skips its last alert line)

    @property
    def fatal(self) -> bool:
        return self.failed_stage is not None

    def require(self) -> Config:
        """The config, or :class:`ConfigError` when HAProxy would refuse it."""
        if self.fatal:
            raise ConfigError(self.messages)
        return self.config


# --------------------------------------------------------------------------------------
# HAProxy's "did you mean" (word fingerprints, as in its tools.c)


def _fingerprint(word: str) -> dict[int, int]:
    fp: dict[int, int] = {}

    def code(c: str) -> int:
        c = c.lower()
        if "a" <= c <= "z":
            return ord(c) - ord("a") + 1
        if "0" <= c <= "9":
            return 27
        return 28

    prev = 0
    for c in word:
        cur = code(c)
        fp[prev * 32 + cur] = fp.get(prev * 32 + cur, 0) + 1
        prev = cur
    fp[prev * 32 + 29] = fp.get(prev * 32 + 29, 0) + 1
    return fp


def _distance(a: str, b: str) -> int:
    fa, fb = _fingerprint(a), _fingerprint(b)
    return sum(abs(fa.get(k, 0) - fb.get(k, 0)) for k in set(fa) | set(fb))


def best_match(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate HAProxy would suggest for a mistyped ``word``, if any."""
    best: str | None = None
    best_dist = 1 << 30
    for cand in candidates:
        d = _distance(word, cand)
        if d < best_dist:
            best, best_dist = cand, d
    if best is None or best_dist > 2 * len(word) or best_dist > 2 * len(best):
        return None
    return best


def _suggest(word: str, candidates: Iterable[str]) -> str:
    match = best_match(word, candidates)
    return f"; did you mean '{match}' maybe ?" if match else ""


# --------------------------------------------------------------------------------------
# small value parsers


def _words(text: str) -> frozenset[str]:
    """A keyword set written as one blank-separated string."""
    return frozenset(text.split())


def _atoi(text: str) -> int:
    """C ``atoi``: leading sign and digits, anything else ignored, 0 when none."""
    s = text.strip()
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for c in s:
        if not c.isdigit():
            break
        digits += c
    return sign * int(digits) if digits else 0


_FACILITIES = _words(
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 local0 "
    "local1 local2 local3 local4 local5 local6 local7"
)
_LEVELS = _words("emerg alert crit err warning notice info debug")

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")


def _invalid_char(name: str) -> str | None:
    for c in name:
        if c not in _NAME_OK:
            return c
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _AddrError(ValueError):
    pass


def _split_host_port(text: str) -> tuple[str, str | None]:
    """``ip:port`` -> (ip, "port"); ``[v6]:port``; ``ipv4@``/``ipv6@`` prefixes dropped;
    no colon -> (host, None). For bare IPv6 (``:::5000``) the last colon splits."""
    for prefix in ("ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _AddrError(text)
        host = text[1:end]
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise _AddrError(text)
        return host, rest[1:]
    if ":" not in text:
        return text, None
    host, _, port = text.rpartition(":")
    return host, port


# --------------------------------------------------------------------------------------
# keyword tables: what exists, and where


@dataclass(frozen=True)
class _Kw:
    """A proxy keyword: its handler and the capabilities it needs (``F``/``B``)."""

    handler: Callable[[_Parser, list[str], Location], None]
    needs: str = ""  # "" any, "F" frontend, "B" backend
    hint: str = ""  # appended to the "ignored because" warning
    # Refused in defaults: "" no; "anonymous" only in unnamed ones; otherwise the message
    # style of the refusal ("parsing", "bare", "tight", as HAProxy varies it).
    not_in_defaults: str = ""


# Options: name -> (capability, implemented by the balancer).
_OPTIONS: dict[str, tuple[str, bool]] = {
    "tcplog": ("F", True),
    "dontlognull": ("F", True),
    "clitcpka": ("F", True),
    "redispatch": ("B", True),
    "allbackups": ("B", True),
    "srvtcpka": ("B", True),
    "tcpka": ("", True),
    "log-health-checks": ("B", True),
    "tcp-check": ("B", True),
    "httpchk": ("B", True),
    "httplog": ("F", False),
    "forwardfor": ("", False),
    "http-server-close": ("", False),
    "httpclose": ("", False),
    "http-keep-alive": ("", False),
    "abortonclose": ("B", False),
    "persist": ("B", False),
    "logasap": ("F", False),
    "splice-auto": ("", False),
    "splice-request": ("", False),
    "splice-response": ("", False),
    "socket-stats": ("F", False),
    "checkcache": ("B", False),
    "log-separate-errors": ("F", False),
    "independent-streams": ("", False),
    "nolinger": ("", False),
    "prefer-last-server": ("B", False),
    "http-buffer-request": ("", False),
    "tcp-smart-accept": ("F", False),
    "tcp-smart-connect": ("B", False),
    "contstats": ("F", False),
    "transparent": ("B", False),
    "http-no-delay": ("", False),
    "http-pretend-keepalive": ("", False),
    "http-use-proxy-header": ("F", False),
    "accept-invalid-http-request": ("F", False),
    "accept-invalid-http-response": ("B", False),
    "dontlog-normal": ("F", False),
    "ldap-check": ("B", False),
    "mysql-check": ("B", False),
    "pgsql-check": ("B", False),
    "redis-check": ("B", False),
    "smtpchk": ("B", False),
    "ssl-hello-chk": ("B", False),
    "spop-check": ("B", False),
    "external-check": ("B", False),
    "originalto": ("", False),
    "h1-case-adjust-bogus-client": ("F", False),
    "h1-case-adjust-bogus-server": ("B", False),
    "disable-h2-upgrade": ("F", False),
    "http-ignore-probes": ("F", False),
    "idle-close-on-response": ("F", False),
}
# Options whose arguments are kept (everything after the name).
# Options HAProxy 2.6 parses on their own and refuses as `no option ...` (measured).
_NOT_NEGATABLE = frozenset(
    {
        "external-check",
        "forwardfor",
        "httpchk",
        "httplog",
        "ldap-check",
        "mysql-check",
        "originalto",
        "pgsql-check",
        "redis-check",
        "smtpchk",
        "spop-check",
        "ssl-hello-chk",
        "tcp-check",
        "tcpka",
        "tcplog",
    }
)

_OPTIONS_WITH_ARGS = _words(
    "redispatch httpchk forwardfor originalto smtpchk mysql-check pgsql-check tcplog httplog"
)

# Timeouts: name -> capability.
_TIMEOUTS: dict[str, str] = {
    "client": "F",
    "server": "B",
    "connect": "B",
    "check": "B",
    "queue": "B",
    "http-keep-alive": "",
    "http-request": "",
    "tunnel": "B",
    "tarpit": "",
    "client-fin": "F",
    "server-fin": "B",
}
_TIMEOUT_ORDER = (
    "'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', "
    "'tunnel', 'tarpit', 'client-fin' and 'server-fin'"
)

_LEGACY_TIMEOUTS = {"contimeout": "connect", "clitimeout": "client", "srvtimeout": "server"}

_BALANCE_OK = _words(
    "roundrobin static-rr leastconn source first random uri url_param hash rdp-cookie"
)
_L7_BALANCE = _words("uri url_param hdr")
_IMPLEMENTED_BALANCE = _words("roundrobin static-rr leastconn source first")

# Keywords HAProxy 2.6 accepts in proxies that the balancer does not implement.
_PROXY_UNIMPLEMENTED: dict[str, str] = {
    "id": "",
    "cookie": "B",
    "dynamic-cookie-key": "B",
    "stick-table": "",
    "stick": "B",
    "capture": "F",
    "errorfile": "",
    "errorfiles": "",
    "errorloc": "",
    "errorloc302": "",
    "errorloc303": "",
    "http-error": "",
    "http-response": "",
    "http-after-response": "",
    "tcp-response": "B",
    "unique-id-format": "",
    "unique-id-header": "",
    "log-format": "",
    "log-format-sd": "",
    "log-tag": "",
    "error-log-format": "",
    "monitor-uri": "F",
    "monitor": "F",
    "monitor-net": "F",
    "source": "B",
    "load-server-state-from-file": "B",
    "server-state-file-name": "B",
    "http-reuse": "B",
    "compression": "",
    "redirect": "",
    "email-alert": "",
    "force-persist": "",
    "ignore-persist": "",
    "persist": "B",
    "filter": "",
    "declare": "",
    "server-template": "B",
    "rate-limit": "F",
    "max-keep-alive-queue": "B",
    "max-session-srv-conns": "B",
    "external-check": "B",
    "http-send-name-header": "B",
    "use-server": "B",
    "grace": "",
    "bind-process": "",
    "retry-on": "B",
    "unique-id": "",
}

_GLOBAL_UNIMPLEMENTED = _words(
    "ca-base crt-base ssl-server-verify ssl-default-bind-ciphers ssl-default-bind-ciphersuites "
    "ssl-default-bind-options ssl-default-server-ciphers ssl-default-server-ciphersuites ssl- "
    "default-server-options ssl-dh-param-file ssl-engine ssl-mode-async spread-checks log-send- "
    "hostname log-tag node description server-state-file server-state-base setenv presetenv "
    "resetenv unsetenv localpeer maxsslconn maxconnrate maxsessrate maxsslrate maxpipes "
    "maxzlibmem ulimit-n lua-load lua-prepend-path expose-experimental-directives insecure-fork- "
    "wanted insecure-setuid-wanted h1-case-adjust h1-case-adjust-file quiet noepoll nopoll "
    "nosplice nogetaddrinfo noreuseport busy-polling set-dumpable strict-limits cpu-map unix-bind "
    "external-check deviceatlas-json-file 51degrees-data-file wurfl-data-file close-spread-time "
    "numa-cpu-mapping no-memory-trimming profiling.tasks zero-warning stress-level anonkey "
    "pp2-never-send-local issuers-chain-path ssl-load-extra-files ssl-skip-self-issued-ca thread- "
    "groups thread-group grace description default-path mworker-max-reloads"
)

_SECTIONS = ("global", "defaults", "frontend", "backend", "listen")
_OTHER_SECTIONS = _words(
    "peers resolvers userlist program ring mailers http-errors cache dynamic-update crt-store "
    "log-forward fcgi-app"
)

# Sample fetches: those the balancer evaluates, and other real ones HAProxy accepts.
_FETCHES_IMPLEMENTED = frozenset(
    {"src", "dst", "dst_port", "src_port", "always_true", "always_false"}
)
_FETCHES_BOOLEAN = _words("always_true always_false ssl_fc ssl_c_used ssl_fc_has_crt wait_end")
_FETCHES_KNOWN = _words(
    "path path_beg path_end path_reg path_sub path_dir path_dom path_len path_str url url_beg "
    "url_end url_reg url_sub url_param urlp hdr hdr_beg hdr_end hdr_reg hdr_sub hdr_cnt hdr_val "
    "hdr_ip hdr_len hdr_dom hdr_str method req.hdr req.payload req.payload_lv req.len req_len "
    "req.ssl_sni req_ssl_sni req.ssl_hello_type req_ssl_hello_type req.ssl_ver req_ssl_ver "
    "req.rdp_cookie req_rdp_cookie req.proto_http req_proto_http ssl_fc ssl_fc_sni ssl_c_used "
    "ssl_fc_has_crt ssl_fc_alpn fe_id be_id fe_name be_name fe_conn be_conn nbsrv connslots "
    "srv_conn srv_is_up queue avg_queue so_id so_name dst_conn src_is_local dst_is_local "
    "sc_conn_cur sc0_conn_cur sc1_conn_cur sc2_conn_cur src_conn_cur src_conn_rate "
    "src_http_req_rate var base base_beg base_end base_sub base_reg cook req.cook query status "
    "res.hdr capture.req.hdr http_auth http_auth_group int str bool env date rand nbproc thread "
    "wait_end ipv4 ipv6 meth req.body req.body_len fc_rtt bc_rtt http_first_req req.ver req_ver"
)
_PREDEFINED_ACLS = _words(
    "TRUE FALSE LOCALHOST HTTP HTTP_1.0 HTTP_1.1 HTTP_2.0 HTTP_CONTENT HTTP_URL_ABS "
    "HTTP_URL_SLASH HTTP_URL_STAR METH_CONNECT METH_DELETE METH_GET METH_HEAD METH_OPTIONS "
    "METH_POST METH_PUT METH_TRACE RDP_COOKIE REQ_CONTENT WAIT_END"
)

_TCP_CHECK_ACTIONS = _words(
    "comment connect send send-binary send-lf send-binary-lf expect set-var set-var- fmt unset-var"
)
_HTTP_CHECK_ACTIONS = _words(
    "comment connect send send-state expect disable-on-404 set-var set-var-fmt unset- var"
)


# Server parameters: keyword -> (number of values, converter name, field or None).
# Converter names: "flag" (True), "noflag" (False), "time", "int", "port", "str".
@dataclass(frozen=True)
class _SrvKw:
    nargs: int
    kind: str
    field_name: str | None
    implemented: bool = True


def _srv_table() -> dict[str, _SrvKw]:
    t: dict[str, _SrvKw] = {}
    for kw, fname in (
        ("check", "check"),
        ("backup", "backup"),
        ("check-ssl", "check_ssl"),
        ("ssl", "ssl"),
        ("agent-check", "agent_check"),
        ("send-proxy", "send_proxy"),
        ("send-proxy-v2", "send_proxy_v2"),
    ):
        t[kw] = _SrvKw(0, "flag", fname)
        t["no-" + kw] = _SrvKw(0, "noflag", fname)
    t["disabled"] = _SrvKw(0, "flag", "disabled")
    t["enabled"] = _SrvKw(0, "noflag", "disabled")
    for kw in ("inter", "fastinter", "downinter", "slowstart", "agent-inter"):
        t[kw] = _SrvKw(1, "time", kw.replace("-", "_"))
    for kw in ("rise", "fall", "weight", "maxconn", "maxqueue", "minconn", "id", "error-limit"):
        t[kw] = _SrvKw(1, "int", kw.replace("-", "_"))
    for kw in ("port", "agent-port"):
        t[kw] = _SrvKw(1, "port", kw.replace("-", "_"))
    for kw in (
        "addr",
        "verify",
        "ca-file",
        "crt",
        "sni",
        "verifyhost",
        "agent-addr",
        "agent-send",
        "init-addr",
        "track",
        "observe",
        "on-error",
        "on-marked-down",
        "on-marked-up",
    ):
        t[kw] = _SrvKw(1, "str", kw.replace("-", "_"))
    for kw in (
        "alpn",
        "check-alpn",
        "check-proto",
        "check-sni",
        "ciphers",
        "ciphersuites",
        "cookie",
        "crl-file",
        "max-reuse",
        "namespace",
        "npn",
        "pool-conn-name",
        "pool-low-conn",
        "pool-max-conn",
        "pool-purge-delay",
        "proto",
        "redir",
        "resolve-net",
        "resolve-opts",
        "resolve-prefer",
        "resolvers",
        "source",
        "ssl-max-ver",
        "ssl-min-ver",
        "tcp-ut",
        "ws",
        "log-proto",
        "agent-agent",
        "usesrc",
        "proxy-v2-options",
        "set-proxy-v2-tlv-fmt",
        "curves",
        "sigalgs",
        "client-sigalgs",
        "shard",
        "hash-key",
    ):
        t[kw] = _SrvKw(1, "str", None, implemented=False)
    for kw in (
        "check-send-proxy",
        "check-via-socks4",
        "no-sslv3",
        "no-tlsv10",
        "no-tlsv11",
        "no-tlsv12",
        "no-tlsv13",
        "force-sslv3",
        "force-tlsv10",
        "force-tlsv11",
        "force-tlsv12",
        "force-tlsv13",
        "no-ssl-reuse",
        "tfo",
        "non-stick",
        "stick",
        "allow-0rtt",
        "no-tls-tickets",
        "tls-tickets",
        "send-proxy-v2-ssl",
        "send-proxy-v2-ssl-cn",
        "no-send-proxy-v2",
        "no-verifyhost",
        "no-agent-check",
    ):
        if kw not in t:
            t[kw] = _SrvKw(0, "str", None, implemented=False)
    return t


_SRV_KW = _srv_table()

_BIND_FLAGS = {"v4v6": "v4v6", "v6only": "v6only", "accept-proxy": "accept_proxy", "ssl": "ssl"}
_BIND_VALUES = {
    "name": "name",
    "maxconn": "maxconn",
    "backlog": "backlog",
    "ca-file": "ca_file",
    "verify": "verify",
    "alpn": "alpn",
    "ssl-min-ver": "ssl_min_ver",
}
_BIND_OTHER_1 = _words(
    "id process interface mss namespace nice tcp-ut user group uid gid mode level severity-output "
    "ciphers ciphersuites curves ecdhe crl-file crt-list npn ssl-max-ver tls-ticket-keys thread "
    "proto sigalgs client-sigalgs ca-sign-file ca-sign-pass ca-verify-file crt-ignore-err ca- "
    "ignore-err label"
)
_BIND_OTHER_0 = _words(
    "transparent defer-accept tfo prefer-client-ciphers strict-sni generate-certificates "
    "allow-0rtt no-ca-names no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 force-sslv3 force- "
    "tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 no-tls-tickets quic-force-retry expose-fd"
)


def _section_kind_word(kind: SectionKind) -> str:
    """HAProxy's proxy_type_str: ``listen`` proxies are called ``proxy``."""
    return {
        SectionKind.FRONTEND: "frontend",
        SectionKind.BACKEND: "backend",
        SectionKind.LISTEN: "proxy",
        SectionKind.DEFAULTS: "defaults",
    }[kind]


# --------------------------------------------------------------------------------------
# the parser


@dataclass
class _Section:
    """The section being read: a proxy being built, ``global``, an ignored section, or a
    proxy whose header failed (every keyword then gets HAProxy's cascade error)."""

    kind: str  # "global", "proxy", "ignored", "failed"
    proxy: Proxy | None = None
    ignored_name: str = ""


@dataclass
class _Parser:
    env: Mapping[str, str]
    messages: list[Message] = field(default_factory=list)
    global_: Global = field(default_factory=Global)
    sections: list[Proxy] = field(default_factory=list)
    ignored: list[Directive] = field(default_factory=list)
    files_with_errors: list[str] = field(default_factory=list)
    cur: _Section | None = None
    aborted: bool = False
    file_errors: bool = False

    # --- diagnostics ----------------------------------------------------------------

    def alert(self, loc: Location, text: str, *, style: str = "parsing") -> None:
        self.messages.append(Message(Level.ALERT, self._prefix(loc, style) + text, loc))
        self.file_errors = True

    def warn(self, loc: Location, text: str, *, style: str = "parsing") -> None:
        self.messages.append(Message(Level.WARNING, self._prefix(loc, style) + text, loc))

    @staticmethod
    def _prefix(loc: Location, style: str) -> str:
        if style == "parsing":
            return f"parsing [{loc}] : "
        if style == "tight":
            return f"parsing [{loc}]: "
        if style == "bare":
            return f"[{loc}] : "
        if style == "none":
            return ""
        raise AssertionError(style)

    def unimplemented(self, loc: Location, what: str) -> None:
        self.warn(
            loc,
            f"{what} is accepted but not implemented by impala-lb; it is kept and ignored.",
        )

    # --- lines and sections ---------------------------------------------------------

    def feed_file(self, text: str, filename: str) -> None:
        self.file_errors = False
        self.cur = None  # HAProxy starts every file out of any section
        for lineno, raw in enumerate(text.splitlines(), start=1):
            loc = Location(filename, lineno)
            try:
                words = split_line(raw, self.env)
            except LexError as exc:
                pointer = " " * (exc.position - 1 - (len(raw) - len(raw.lstrip())))
                self.alert(
                    loc,
                    f"{exc}:\n  {raw.strip()}\n  {pointer}^",
                    style="tight",
                )
                continue
            if not words:
                continue
            self.line(words, loc)
            if self.aborted:
                break
        self.close_section()
        if self.file_errors:
            self.files_with_errors.append(filename)

    def close_section(self) -> None:
        if self.cur is not None and self.cur.kind == "proxy" and self.cur.proxy is not None:
            self.sections.append(self.cur.proxy)
        self.cur = None

    def line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        if kw in _SECTIONS:
            self.close_section()
            if kw == "global":
                self.cur = _Section("global")
            else:
                self.open_proxy(SectionKind(kw), words, loc)
            return
        if kw in _OTHER_SECTIONS:
            self.close_section()
            self.cur = _Section("ignored", ignored_name=kw)
            self.ignored.append(Directive(kw, tuple(words[1:]), loc))
            self.unimplemented(loc, f"section '{kw}'")
            return
        if self.cur is None:
            self.alert(loc, f"unknown keyword '{kw}' out of section.", style="tight")
            return
        if self.cur.kind == "failed":
            self.alert(loc, "'listen' or 'defaults' expected.")
            return
        if self.cur.kind == "ignored":
            self.ignored.append(Directive(kw, tuple(words[1:]), loc))
            return
        if self.cur.kind == "global":
            self.global_line(words, loc)
            return
        self.proxy_line(words, loc)

    def open_proxy(self, kind: SectionKind, words: list[str], loc: Location) -> None:
        kw = kind.value
        args = words[1:]
        name = args[0] if args else ""
        if kind is not SectionKind.DEFAULTS and not name:
            self.alert(loc, f"'{kw}' expects an <id> argument")
            self.aborted = True  # HAProxy stops reading here (ERR_ABORT)
            return
        bad = _invalid_char(name) if name else None
        if bad is not None:  # fatal, but HAProxy still opens the section
            self.alert(loc, f"character '{bad}' is not permitted in '{kw}' name '{name}'.")
        from_defaults = None
        rest = args[1:]
        if rest and rest[0] == "from":
            if len(rest) < 2:
                self.alert(loc, f"'{kw}' '{name}' : missing name for defaults after 'from'.")
                self.aborted = True
                return
            from_defaults = rest[1]
            if not any(
                p.kind is SectionKind.DEFAULTS and p.name == from_defaults for p in self.sections
            ):
                self.alert(loc, f"defaults section '{from_defaults}' not found for proxy '{name}'.")
                self.aborted = True
                return
            rest = rest[2:]
        if rest:
            if kind in (SectionKind.FRONTEND, SectionKind.LISTEN):
                self.alert(loc, "please use the 'bind' keyword for listening addresses.")
            else:
                self.alert(loc, f"'{kw}' takes no address argument ('{rest[0]}').")
            self.cur = _Section("failed")
            return
        if kind is not SectionKind.DEFAULTS:
            self.check_duplicate_proxy(kind, name, loc)
        self.cur = _Section("proxy", Proxy(kind, name, from_defaults=from_defaults, location=loc))

    def check_duplicate_proxy(self, kind: SectionKind, name: str, loc: Location) -> None:
        for other in self.sections:
            if other.name != name or other.kind is SectionKind.DEFAULTS:
                continue
            clash = (kind.has_frontend and other.kind.has_frontend) or (
                kind.has_backend and other.kind.has_backend
            )
            if clash:
                self.messages.append(
                    Message(
                        Level.ALERT,
                        f"Parsing [{loc}]: {kind.value} '{name}' has the same name as "
                        f"{other.kind.value} '{name}' declared at {other.location}.",
                        loc,
                    )
                )
                self.file_errors = True
                return

    # --- proxy keywords -------------------------------------------------------------

    @property
    def proxy(self) -> Proxy:
        assert self.cur is not None and self.cur.proxy is not None
        return self.cur.proxy

    def set(self, **changes: Any) -> None:
        assert self.cur is not None and self.cur.proxy is not None
        self.cur.proxy = replace(self.cur.proxy, **changes)

    def add(self, field_name: str, item: object) -> None:
        self.set(**{field_name: (*getattr(self.proxy, field_name), item)})

    def keep_other(self, words: list[str], loc: Location) -> None:
        self.add("other", Directive(words[0], tuple(words[1:]), loc))

    def lacks(self, needs: str) -> bool:
        """Whether the current proxy lacks capability ``needs`` (``F`` or ``B``, spec 1.3)."""
        p = self.proxy
        has = p.kind.has_frontend if needs == "F" else p.kind.has_backend
        return not has

    def capability_text(self, needs: str) -> str:
        p = self.proxy
        what = "frontend" if needs == "F" else "backend"
        return f"{_section_kind_word(p.kind)} '{p.name}' has no {what} capability"

    def proxy_line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        p = self.proxy
        if kw == "no" and len(words) > 1 and words[1] in ("option", "log"):
            entry = _PROXY_KW[words[1]]
            entry.handler(self, words, loc)
            return
        if kw in _LEGACY_TIMEOUTS:
            self.alert(
                loc,
                f"the '{kw}' directive is not supported anymore since HAProxy 2.1. "
                f"Use 'timeout {_LEGACY_TIMEOUTS[kw]}'.",
            )
            return
        found = _PROXY_KW.get(kw)
        if found is None:
            if kw in _PROXY_UNIMPLEMENTED:
                needs = _PROXY_UNIMPLEMENTED[kw]
                if needs and self.lacks(needs):
                    self.warn(loc, f"'{kw}' ignored because {self.capability_text(needs)}.")
                else:
                    self.unimplemented(loc, f"'{kw}'")
                self.keep_other(words, loc)
                return
            where = p.kind.value
            cands = list(_PROXY_KW) + list(_PROXY_UNIMPLEMENTED) + list(_LEGACY_TIMEOUTS)
            self.alert(loc, f"unknown keyword '{kw}' in '{where}' section" + _suggest(kw, cands))
            return
        entry = found
        if p.kind is SectionKind.DEFAULTS and entry.not_in_defaults:
            if entry.not_in_defaults == "anonymous" and p.name:
                pass
            elif kw == "tcp-request":
                what = f"tcp-request {words[1]}" if len(words) > 1 else "tcp-request"
                self.alert(loc, f"{what} is not allowed in anonymous 'defaults' sections")
                return
            elif entry.not_in_defaults == "anonymous":
                self.alert(loc, f"'{kw}' not allowed in anonymous 'defaults' section.")
                return
            else:
                style = entry.not_in_defaults
                self.alert(loc, f"'{kw}' not allowed in 'defaults' section.", style=style)
                return
        if entry.needs and self.lacks(entry.needs):
            if kw in ("server", "default-server"):
                self.alert(
                    loc,
                    f"parsing [{loc}] : '{kw}' not allowed because "
                    f"{self.capability_text(entry.needs)}.",
                    style="bare",
                )
                return
            self.warn(
                loc, f"'{kw}' ignored because {self.capability_text(entry.needs)}.{entry.hint}"
            )
            self.keep_other(words, loc)
            return
        entry.handler(self, words, loc)

    # --- global keywords ------------------------------------------------------------

    def global_line(self, words: list[str], loc: Location) -> None:
        kw = words[0]
        handler = _GLOBAL_KW.get(kw)
        if handler is not None:
            handler(self, words, loc)
            return
        if kw in _GLOBAL_UNIMPLEMENTED or kw.startswith("tune.") or kw.startswith("ssl-"):
            if kw != "ssl-server-verify":
                self.unimplemented(loc, f"'{kw}'")
            self.global_ = replace(
                self.global_, other=(*self.global_.other, Directive(kw, tuple(words[1:]), loc))
            )
            return
        cands = list(_GLOBAL_KW) + sorted(_GLOBAL_UNIMPLEMENTED)
        self.alert(loc, f"unknown keyword '{kw}' in 'global' section" + _suggest(kw, cands))

    def gset(self, **changes: Any) -> None:
        self.global_ = replace(self.global_, **changes)


# --- global handlers ----------------------------------------------------------------------


def _g_int(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects an integer argument.")
            return
        ps.gset(**{field_name: _atoi(words[1])})

    return handler


def _g_str(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects an argument.")
            return
        ps.gset(**{field_name: words[1]})

    return handler


def _g_flag(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        ps.gset(**{field_name: True})

    return handler


def _g_nbthread(ps: _Parser, words: list[str], loc: Location) -> None:
    n = _atoi(words[1]) if len(words) > 1 else 0
    if not 1 <= n <= 64:
        ps.alert(loc, f"'nbthread' value must be between 1 and 64 (was {n})")
        return
    ps.gset(nbthread=n)


def _g_bufsize(ps: _Parser, words: list[str], loc: Location) -> None:
    n = _atoi(words[1]) if len(words) > 1 else 0
    if n <= 0:
        ps.alert(loc, f"'{words[0]}' expects a positive integer argument.")
        return
    ps.gset(tune_bufsize=n)


def _g_nbproc(ps: _Parser, words: list[str], loc: Location) -> None:
    ps.alert(
        loc,
        "nbproc is not supported any more since HAProxy 2.5. Threads will automatically "
        "be used on multi-processor machines if available.",
    )


def _g_user(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'user' expects an argument.")
        return
    try:
        pwd.getpwnam(words[1])
    except KeyError:
        ps.alert(loc, f"cannot find user id for '{words[1]}' (0:Success)")
        return
    ps.gset(user=words[1])


def _g_group(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'group' expects an argument.")
        return
    try:
        grp.getgrnam(words[1])
    except KeyError:
        ps.alert(loc, f"cannot find group id for '{words[1]}' (0:Success)")
        return
    ps.gset(group=words[1])


def _g_time(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects <time> as argument.")
            return
        try:
            ps.gset(**{field_name: parse_time(words[1], words[0])})
        except UnitError as exc:
            ps.alert(loc, str(exc))

    return handler


def _g_log(ps: _Parser, words: list[str], loc: Location) -> None:
    target = _parse_log(ps, words, loc, in_global=True)
    if target is not None:
        ps.gset(logs=(*ps.global_.logs, target))


def _g_stats(ps: _Parser, words: list[str], loc: Location) -> None:
    sub = words[1] if len(words) > 1 else ""
    if sub == "socket":
        if len(words) < 3:
            ps.alert(loc, "'stats socket' requires an address.")
            return
        sock = StatsSocket(words[2], location=loc)
        i = 3
        other: list[str] = []
        while i < len(words):
            w = words[i]
            val = words[i + 1] if i + 1 < len(words) else None
            if w == "mode" and val is not None:
                sock = replace(sock, mode=int(val, 8) if val.isdigit() else 0)
                i += 2
            elif w == "level" and val is not None:
                try:
                    sock = replace(sock, level=StatsLevel(val))
                except ValueError:
                    ps.alert(
                        loc,
                        f"'stats socket' 'level' only supports 'user', 'operator', and "
                        f"'admin' (got '{val}').",
                    )
                    return
                i += 2
            elif w == "expose-fd" and val == "listeners":
                sock = replace(sock, expose_fd_listeners=True)
                i += 2
            elif w in ("user", "group", "uid", "gid") and val is not None:
                if w == "user":
                    sock = replace(sock, user=val)
                elif w == "group":
                    sock = replace(sock, group=val)
                else:
                    other += [w, val]
                i += 2
            else:
                other.append(w)
                i += 1
        if other:
            ps.unimplemented(loc, f"'stats socket' parameter(s) {' '.join(other)}")
        ps.gset(stats_sockets=(*ps.global_.stats_sockets, sock))
    elif sub == "timeout":
        if len(words) < 3:
            ps.alert(loc, "'stats timeout' expects a timeout.")
            return
        try:
            ps.gset(stats_timeout=parse_time(words[2], "stats timeout"))
        except UnitError as exc:
            ps.alert(loc, str(exc))
    elif sub in ("maxconn", "bind-process"):
        ps.unimplemented(loc, f"'stats {sub}'")
        ps.gset(other=(*ps.global_.other, Directive("stats", tuple(words[1:]), loc)))
    else:
        ps.alert(
            loc,
            "'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' "
            f"(got '{sub}').",
        )


_GLOBAL_KW: dict[str, Callable[[_Parser, list[str], Location], None]] = {
    "maxconn": _g_int("maxconn"),
    "log": _g_log,
    "stats": _g_stats,
    "pidfile": _g_str("pidfile"),
    "user": _g_user,
    "group": _g_group,
    "uid": _g_int("uid"),
    "gid": _g_int("gid"),
    "chroot": _g_str("chroot"),
    "daemon": _g_flag("daemon"),
    "master-worker": _g_flag("master_worker"),
    "nbthread": _g_nbthread,
    "nbproc": _g_nbproc,
    "hard-stop-after": _g_time("hard_stop_after"),
    "tune.bufsize": _g_bufsize,
}


def _parse_log(
    ps: _Parser, words: list[str], loc: Location, *, in_global: bool
) -> LogTarget | None:
    args = words[1:]
    if args == ["global"] and not in_global:
        return LogTarget("global", location=loc)
    if len(args) < 2:
        ps.alert(loc, "log : expects <address> and <facility>  as arguments")
        return None
    target = LogTarget(args[0], location=loc)
    i = 1
    while i < len(args) and args[i] in ("len", "format", "sample"):
        if i + 1 >= len(args):
            ps.alert(loc, f"log : '{args[i]}' expects a value")
            return None
        if args[i] == "len":
            target = replace(target, length=_atoi(args[i + 1]))
        elif args[i] == "format":
            target = replace(target, format=args[i + 1])
        i += 2
    if i >= len(args):
        ps.alert(loc, "log : expects <address> and <facility>  as arguments")
        return None
    facility = args[i]
    if facility not in _FACILITIES:
        ps.alert(loc, f"log : unknown log facility '{facility}'")
        return None
    target = replace(target, facility=facility)
    levels = args[i + 1 : i + 3]
    for j, lvl in enumerate(levels):
        if lvl not in _LEVELS:
            ps.alert(loc, f"log : unknown optional log level '{lvl}'")
            return None
        target = replace(target, level=lvl) if j == 0 else replace(target, min_level=lvl)
    return target


# --- proxy handlers -----------------------------------------------------------------------


def _p_mode(ps: _Parser, words: list[str], loc: Location) -> None:
    value = words[1] if len(words) > 1 else ""
    if value not in ("tcp", "http"):
        ps.alert(loc, f"unknown proxy mode '{value}'.")
        return
    ps.set(mode=Mode(value))


def _p_bind(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'bind' expects {<path>|[addr1]:port1[-end1]}{,...} [ param* ] as arguments.")
        return
    spec = words[1]
    p = ps.proxy
    where = f"'bind {spec}' in section '{p.kind.value}'"
    binds: list[Bind] = []
    for part in spec.split(","):
        try:
            host, port_text = _split_host_port(part)
        except _AddrError:
            ps.alert(loc, f"'bind' : invalid address: '{part}' in '{spec}'")
            return
        if port_text is None and (host.startswith("/") or "@" in host):
            ps.alert(
                loc, f"'bind' : unix socket listeners ('{part}') are not supported by impala-lb."
            )
            return
        if port_text is None or port_text == "":
            ps.alert(loc, f"'bind' : missing port specification in '{part}'")
            return
        # HAProxy reads ports like atoi: '5x' is port 5.
        lo, dash, hi = port_text.partition("-")
        for number in (lo, hi) if dash else (lo,):
            if not number[:1].isdigit():
                ps.alert(loc, f"'bind' : {_bad_port_char(number, part)}")
                return
        start, end = _atoi(lo), _atoi(hi) if dash else None
        for number, value in ((lo, start), (hi, end)):
            if value is not None and not 1 <= value <= 65535:
                ps.alert(loc, f"'bind' : invalid port '{number}'")
                return
        if end is not None and end < start:
            ps.alert(loc, f"'bind' : invalid port range '{port_text}'")
            return
        binds.append(Bind(host, start, end, location=loc))
    params: dict[str, Any] = {}
    crt: list[str] = []
    other: list[Directive] = []
    i = 2
    while i < len(words):
        w = words[i]
        if w in _BIND_FLAGS:
            params[_BIND_FLAGS[w]] = True
            i += 1
        elif w in _BIND_VALUES or w == "crt" or w in _BIND_OTHER_1:
            if i + 1 >= len(words):
                ps.alert(loc, f"{where} : '{w}' : missing value.")
                return
            val = words[i + 1]
            if w == "crt":
                if not _crt_ok(ps, loc, where, val):
                    return
                crt.append(val)
            elif w in _BIND_VALUES:
                fname = _BIND_VALUES[w]
                params[fname] = _atoi(val) if fname in ("maxconn", "backlog") else val
            else:
                other.append(Directive(w, (val,), loc))
            i += 2
        elif w in _BIND_OTHER_0:
            other.append(Directive(w, (), loc))
            i += 1
        else:
            ps.alert(loc, f"{where}: unknown keyword '{w}'.")
            return
    if other:
        ps.unimplemented(loc, "bind parameter(s) " + ", ".join(f"'{d.keyword}'" for d in other))
    for b in binds:
        ps.add("binds", replace(b, crt=tuple(crt), other=tuple(other), **params))


def _bad_port_char(number: str, addr: str) -> str:
    bad = number[:1]
    return f"invalid character '{bad}' in port number '{number}' in '{addr}'"


def _crt_ok(ps: _Parser, loc: Location, where: str, path: str) -> bool:
    try:
        with open(path, encoding="latin-1") as fh:
            pem = fh.read()
    except OSError as exc:
        ps.alert(
            loc,
            f"{where} : unable to stat SSL certificate from file '{path}' : "
            f"{exc.strerror or 'No such file or directory'}.",
        )
        return False
    if "PRIVATE KEY-----" not in pem:
        ps.alert(loc, f"{where} : No Private Key found in '{path}.key'.")
        return False
    return True


def _p_balance(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.set(balance=Balance("roundrobin"))
        return
    algo = words[1]
    base = algo.split("(", 1)[0]
    if base not in _BALANCE_OK and base not in ("hdr",):
        ps.alert(
            loc,
            "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', "
            "'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.",
        )
        return
    if base not in _IMPLEMENTED_BALANCE:
        ps.unimplemented(loc, f"'balance {algo}'")
    ps.set(balance=Balance(algo, tuple(words[2:])))


def _p_hash_type(ps: _Parser, words: list[str], loc: Location) -> None:
    args = words[1:]
    if not args or args[0] not in ("map-based", "consistent"):
        ps.alert(
            loc,
            "'hash-type' expects 'map-based' or 'consistent' but got '%s'."
            % (args[0] if args else ""),
        )
        return
    if len(args) > 1 and args[1] not in ("sdbm", "djb2", "crc32", "wt6"):
        ps.alert(loc, "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.")
        return
    if len(args) > 2 and args[2] != "avalanche":
        ps.alert(loc, f"'hash-type' : unknown modifier '{args[2]}'.")
        return
    ps.set(hash_type=tuple(args))


def _p_server(ps: _Parser, words: list[str], loc: Location) -> None:
    p = ps.proxy
    if len(words) < 3:
        ps.alert(loc, "'server' expects <name> and <addr>[:<port>] as arguments.", style="bare")
        return
    name, addr = words[1], words[2]
    if not addr:
        ps.alert(loc, "'server' expects <name> and <addr>[:<port>] as arguments.", style="bare")
        return
    tag = f"'server {p.name}/{name}' : "
    try:
        host, port_text = _split_host_port(addr)
    except _AddrError:
        ps.alert(loc, tag + f"invalid address: '{addr}'", style="bare")
        return
    port: int | None = None
    offset = False
    if port_text:
        if port_text[0] in "+-":
            offset = True
        unsigned = port_text.lstrip("+-")
        if not unsigned[:1].isdigit():
            ps.alert(loc, tag + _bad_port_char(unsigned, addr), style="bare")
            return
        port = _atoi(port_text)  # like HAProxy: '5x' is 5
        if not offset and port > 65535:
            ps.alert(loc, tag + f"invalid port '{port_text}'", style="bare")
            return
    params = _server_params(ps, words[3:], loc, tag, name)
    if params is None:
        return
    ps.add("servers", Server(name, host, port, offset, params, loc))


def _p_default_server(ps: _Parser, words: list[str], loc: Location) -> None:
    p = ps.proxy
    tag = f"'default-server {p.name}' : "
    params = _server_params(ps, words[1:], loc, tag, "")
    if params is None:
        return
    ps.set(default_server=params.over(p.default_server or ServerParams()))


def _server_params(
    ps: _Parser, args: Sequence[str], loc: Location, tag: str, name: str
) -> ServerParams | None:
    values: dict[str, Any] = {}
    other: list[Directive] = []
    i = 0
    while i < len(args):
        kw = args[i]
        entry = _SRV_KW.get(kw)
        if entry is None:
            ps.alert(
                loc, tag + f"unknown keyword '{kw}'" + (_suggest(kw, _SRV_KW) or "."), style="bare"
            )
            return None
        if i + entry.nargs >= len(args) + (1 if entry.nargs == 0 else 0) and entry.nargs:
            ps.alert(loc, tag + f"'{kw}' expects an argument.", style="bare")
            return None
        val = args[i + 1] if entry.nargs else ""
        i += 1 + entry.nargs
        if not entry.implemented or entry.field_name is None:
            other.append(Directive(kw, (val,) if entry.nargs else (), loc))
            continue
        fname = entry.field_name
        if entry.kind == "flag":
            values[fname] = True
        elif entry.kind == "noflag":
            values[fname] = False
        elif entry.kind == "time":
            try:
                ms = parse_time(val, kw)
            except UnitError as exc:
                ps.alert(loc, tag + str(exc), style="bare")
                return None
            if ms == 0 and kw in ("inter", "fastinter", "downinter", "agent-inter"):
                ps.alert(
                    loc,
                    tag + f"invalid value 0 for argument '{kw}' of server {name}..",
                    style="bare",
                )
                return None
            values[fname] = ms
        elif entry.kind == "int":
            n = _atoi(val)
            if kw in ("rise", "fall") and n <= 0:
                ps.alert(loc, tag + f"'{kw}' has to be > 0..", style="bare")
                return None
            if kw == "weight" and not 0 <= n <= 256:
                ps.alert(
                    loc,
                    tag + f"weight of server {name} is not within 0 and 256 ({n})..",
                    style="bare",
                )
                return None
            values[fname] = n
        elif entry.kind == "port":
            n = _atoi(val)
            if not 0 <= n <= 65535:
                ps.alert(loc, tag + f"invalid port '{val}'", style="bare")
                return None
            values[fname] = n
        else:
            if kw == "verify" and val not in ("none", "required"):
                ps.alert(
                    loc,
                    tag + f"'verify' : unknown verify method '{val}', only 'none' and "
                    "'required' are supported.",
                    style="bare",
                )
                return None
            values[fname] = val
    if values.get("agent_check") and "agent_port" not in values and name:
        ps.alert(
            loc,
            tag + f"server {name} does not have agent port. Agent check has been disabled.",
            style="bare",
        )
        return None
    if other:
        ps.unimplemented(loc, "server parameter(s) " + ", ".join(f"'{d.keyword}'" for d in other))
    return ServerParams(other=tuple(other), **values)


def _p_option(ps: _Parser, words: list[str], loc: Location) -> None:
    negated = words[0] == "no"
    rest = words[2:] if negated else words[1:]
    if not rest:
        ps.alert(loc, "'option' expects an option name.")
        return
    name, args = rest[0], tuple(rest[1:])
    entry = _OPTIONS.get(name)
    if entry is None:
        ps.alert(loc, f"unknown option '{name}'" + (_suggest(name, _OPTIONS) or "."))
        return
    if negated and name in _NOT_NEGATABLE:
        ps.alert(loc, f"negation/default is not supported for option '{name}'.", style="tight")
        return
    needs, implemented = entry
    p = ps.proxy
    if name == "tcplog" and p.kind is SectionKind.BACKEND:
        ps.warn(loc, f"backend '{p.name}' : 'option tcplog' directive is ignored in backends.")
        ps.keep_other(words, loc)
        return
    if needs and ps.lacks(needs):
        ps.warn(loc, f"'{name}' ignored because {ps.capability_text(needs)}.")
        ps.keep_other(words, loc)
        return
    if name == "redispatch" and args:
        args = (str(_atoi(args[0])),)
    if not implemented and name != "httplog":
        ps.unimplemented(loc, f"'option {name}'")
    if name not in _OPTIONS_WITH_ARGS:
        args = ()
    ps.add("options", Option(name, not negated, args, loc))


def _p_timeout(ps: _Parser, words: list[str], loc: Location) -> None:
    name = words[1] if len(words) > 1 else ""
    if name not in _TIMEOUTS:
        ps.alert(loc, f"'timeout' supports {_TIMEOUT_ORDER} (got '{name}')")
        return
    kw = f"timeout {name}"
    if len(words) < 3:
        ps.alert(loc, f"'{kw}' expects an integer value (in milliseconds)")
        return
    try:
        ms = parse_time(words[2], kw)
    except UnitError as exc:
        ps.alert(loc, str(exc))
        return
    needs = _TIMEOUTS[name]
    if needs and ps.lacks(needs):
        ps.warn(loc, f"'{kw}' will be ignored because {ps.capability_text(needs)}")
        ps.keep_other(words, loc)
        return
    ps.set(timeouts=replace(ps.proxy.timeouts, **{name.replace("-", "_"): ms}))


def _p_int(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects an integer argument.")
            return
        ps.set(**{field_name: _atoi(words[1])})

    return handler


def _p_default_backend(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) != 2:
        ps.alert(loc, f"'{words[0]}' expects a backend name.")
        return
    ps.set(default_backend=words[1])


def _p_acl(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'acl' expects an ACL name and a fetch method.")
        return
    name = words[1]
    bad = _invalid_char(name)
    if bad is not None:
        ps.alert(loc, f"character '{bad}' is not permitted in acl name '{name}'.")
        return
    acl = _parse_acl_expr(ps, name, words[2:], loc, f"error detected while parsing ACL '{name}'")
    if acl is not None:
        ps.add("acls", acl)


def _parse_acl_expr(
    ps: _Parser, name: str, expr: Sequence[str], loc: Location, context: str
) -> Acl | None:
    if not expr:
        ps.alert(loc, f"{context} : missing fetch method in ACL expression ''.")
        return None
    criterion = expr[0]
    base = criterion.split("(", 1)[0].split(",", 1)[0]
    if base not in _FETCHES_IMPLEMENTED and base not in _FETCHES_KNOWN:
        ps.alert(
            loc,
            f"{context} : unknown fetch method '{base}' in ACL expression '{criterion}'.",
        )
        return None
    flags: list[str] = []
    i = 1
    while i < len(expr) and expr[i].startswith("-"):
        flag = expr[i]
        if flag == "--":
            i += 1
            break
        flags.append(flag)
        if flag in ("-m", "-f", "-M") and i + 1 < len(expr):
            flags.append(expr[i + 1])
            i += 1
        i += 1
    patterns = tuple(expr[i:])
    explicit_end = "--" in expr[1:]
    matcher = flags[flags.index("-m") + 1] if "-m" in flags[:-1] else ""
    if (
        not patterns
        and not explicit_end
        and base not in _FETCHES_BOOLEAN
        and matcher not in ("found", "bool")
    ):
        ps.messages.append(
            Message(
                Level.WARNING,
                f"parsing acl keyword '{base}' :\n"
                "  no pattern to match against were provided, so this ACL will never match.\n"
                "  If this is what you intended, please add '--' to get rid of this warning.\n"
                "  If you intended to match only for existence, please use '-m found'.\n"
                "  If you wanted to force an int to match as a bool, please use '-m bool'.",
                loc,
            )
        )
    if base not in _FETCHES_IMPLEMENTED:
        ps.unimplemented(loc, f"acl fetch '{base}' (it never matches in impala-lb)")
    return Acl(name, criterion, tuple(flags), patterns, loc)


def _parse_condition(
    ps: _Parser, words: Sequence[str], loc: Location, context: str
) -> Condition | None:
    """``if|unless`` terms: acl names, ``!``, ``||``/``or``, anonymous ``{ ... }``."""
    unless = words[0] == "unless"
    p = ps.proxy
    known = {a.name for a in p.acls} | _PREDEFINED_ACLS
    alternatives: list[tuple[AclTerm, ...]] = []
    current: list[AclTerm] = []
    i = 1
    negate = False
    while i < len(words):
        w = words[i]
        if w in ("||", "or"):
            alternatives.append(tuple(current))
            current = []
            i += 1
            continue
        if w == "!":
            negate = not negate
            i += 1
            continue
        if w.startswith("!") and len(w) > 1:
            negate = not negate
            w = w[1:]
        if w == "{":
            try:
                end = list(words).index("}", i)
            except ValueError:
                ps.alert(loc, f"{context} : missing closing '}}' in condition.")
                return None
            anon = _parse_acl_expr(ps, "", words[i + 1 : end], loc, context)
            if anon is None:
                return None
            current.append(AclTerm(negate, anonymous=anon))
            i = end + 1
        else:
            if w not in known:
                ps.alert(loc, f"{context} : no such ACL : '{w}'.")
                return None
            current.append(AclTerm(negate, name=w))
            i += 1
        negate = False
    alternatives.append(tuple(current))
    return Condition(unless, tuple(alternatives))


def _p_use_backend(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'use_backend' expects a backend name.")
        return
    cond = None
    if len(words) > 2:
        if words[2] not in ("if", "unless"):
            ps.alert(loc, "'use_backend' requires either 'if' or 'unless' followed by a condition.")
            return
        cond = _parse_condition(ps, words[2:], loc, "error detected while parsing switching rule")
        if cond is None:
            return
    ps.add("use_backends", UseBackend(words[1], cond, loc))


def _p_log(ps: _Parser, words: list[str], loc: Location) -> None:
    if words[0] == "no":
        ps.set(no_log=True, logs=())
        return
    target = _parse_log(ps, words, loc, in_global=False)
    if target is not None:
        ps.add("logs", target)


def _p_description(ps: _Parser, words: list[str], loc: Location) -> None:
    ps.set(description=" ".join(words[1:]))


def _p_disabled(ps: _Parser, words: list[str], loc: Location) -> None:
    ps.set(disabled=words[0] == "disabled")


def _p_check_rule(
    field_name: str, actions: frozenset[str], kw: str
) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        action = words[1] if len(words) > 1 else ""
        if action not in actions:
            if kw == "tcp-check":
                ps.alert(
                    loc,
                    "'tcp-check' only supports 'comment', 'connect', 'send', 'send-binary', "
                    "'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. "
                    f"but got '{action}'",
                )
            else:
                ps.alert(
                    loc,
                    "'http-check' only supports 'disable-on-404', 'send-state', 'comment', "
                    "'connect', 'send', 'expect', 'set-var-fmt(*)', 'set-var(*)', "
                    f"'unset-var(*)'. but got '{action}'",
                )
            return
        problem = _RULE_CHECKS.get((kw, action), _rule_ok)(list(words[2:]))
        if problem is not None:
            ps.alert(loc, f"'{kw} {action}' : {problem}")
            return
        ps.add(field_name, CheckRule(action, tuple(words[2:]), loc))

    return handler


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


def _stats_refresh(st: StatsPage, words: list[str], loc: Location) -> StatsPage:
    return replace(st, refresh=parse_time(words[2], "stats refresh"))


def _stats_auth(st: StatsPage, words: list[str], loc: Location) -> StatsPage:
    return replace(st, auth=(*st.auth, words[2]))  # HAProxy accepts a missing ':password'


# ``stats <sub>`` in a proxy: sub-keyword -> (needs a value, how it changes the page).
_STATS_SUB: dict[str, tuple[bool, _StatsSub]] = {
    "enable": (False, lambda st, w, loc: replace(st, enabled=True)),
    "uri": (True, lambda st, w, loc: replace(st, uri=w[2])),
    "realm": (True, lambda st, w, loc: replace(st, realm=" ".join(w[2:]))),
    "auth": (True, _stats_auth),
    "refresh": (True, _stats_refresh),
    "admin": (
        False,
        lambda st, w, loc: replace(st, admin=(*st.admin, Directive("stats", tuple(w[1:]), loc))),
    ),
    "show-legends": (False, lambda st, w, loc: replace(st, show_legends=True)),
}
_STATS_UNIMPLEMENTED = _words(
    "hide-version show-node show-desc scope http-request show-modules bind-process"
)


def _p_stats(ps: _Parser, words: list[str], loc: Location) -> None:
    sub = words[1] if len(words) > 1 else ""
    entry = _STATS_SUB.get(sub)
    if entry is None:
        if sub in _STATS_UNIMPLEMENTED:
            ps.unimplemented(loc, f"'stats {sub}'")
            ps.keep_other(words, loc)
            return
        ps.alert(
            loc,
            f"unknown stats parameter '{sub}', expects 'admin', 'uri', 'realm', 'auth', 'scope', "
            "'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'.",
            style="tight",
        )
        return
    if entry[0] and len(words) < 3:
        what = "an URI prefix" if sub == "uri" else "a value"
        ps.alert(loc, f"'{sub}' needs {what}.")
        return
    try:
        ps.set(stats=entry[1](ps.proxy.stats, words, loc))
    except UnitError as exc:
        ps.alert(loc, str(exc))


def _p_http_request(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'http-request' expects an action.")
        return
    if len(words) > 2 and words[1] == "use-service" and words[2] != "prometheus-exporter":
        ps.unimplemented(loc, f"'http-request use-service {words[2]}'")
    elif words[1] != "use-service":
        ps.unimplemented(loc, f"'http-request {words[1]}'")
    ps.add("http_requests", Directive(words[0], tuple(words[1:]), loc))


def _p_tcp_request(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(
            loc, "'tcp-request' expects 'connection', 'session', 'content' or 'inspect-delay'."
        )
        return
    ps.unimplemented(loc, f"'tcp-request {words[1]}'")
    ps.add("tcp_requests", Directive(words[0], tuple(words[1:]), loc))


_PROXY_KW: dict[str, _Kw] = {
    "mode": _Kw(_p_mode),
    "bind": _Kw(_p_bind, "F", not_in_defaults="parsing"),
    "balance": _Kw(_p_balance, "B"),
    "hash-type": _Kw(_p_hash_type, "B"),
    "server": _Kw(_p_server, "B", not_in_defaults="bare"),
    "default-server": _Kw(_p_default_server, "B"),
    "option": _Kw(_p_option),
    "retries": _Kw(_p_int("retries"), "B"),
    "timeout": _Kw(_p_timeout),
    "maxconn": _Kw(_p_int("maxconn"), "F", " Maybe you want 'fullconn' instead ?"),
    "fullconn": _Kw(_p_int("fullconn"), "B", " Maybe you want 'maxconn' instead ?"),
    "backlog": _Kw(_p_int("backlog"), "F"),
    "default_backend": _Kw(_p_default_backend, "F"),
    "use_backend": _Kw(_p_use_backend, "F", not_in_defaults="parsing"),
    "acl": _Kw(_p_acl, not_in_defaults="anonymous"),
    "log": _Kw(_p_log),
    "description": _Kw(_p_description, not_in_defaults="tight"),
    "disabled": _Kw(_p_disabled),
    "enabled": _Kw(_p_disabled),
    "tcp-check": _Kw(_p_check_rule("tcp_check_rules", _TCP_CHECK_ACTIONS, "tcp-check"), "B"),
    "http-check": _Kw(_p_check_rule("http_check_rules", _HTTP_CHECK_ACTIONS, "http-check"), "B"),
    "stats": _Kw(_p_stats),
    "http-request": _Kw(_p_http_request, not_in_defaults="anonymous"),
    "tcp-request": _Kw(_p_tcp_request, not_in_defaults="anonymous"),
}


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


# --------------------------------------------------------------------------------------
# stage 3: server addresses


def _first_address(host: str) -> str:
    """The address the runtime connects to for ``host``: its first IPv4 address, else
    its first one; raises ``OSError`` when it does not resolve."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    for family, _, _, _, sockaddr in infos:
        if family == socket.AF_INET:
            return str(sockaddr[0])
    return str(infos[0][4][0])


def _resolve_addresses(ps: _Parser, config: Config, found: dict[str, str]) -> bool:
    """Stage 3: resolve every server host name once (into ``found``; ``""`` for a name
    that did not resolve, so that nobody tries again)."""
    ok = True
    resolvable = _resolvable(config)
    for raw in config.sections:
        if not raw.kind.has_backend or raw.kind is SectionKind.DEFAULTS:
            continue
        p = resolvable.resolve(raw)
        for s in p.servers:
            host = s.host
            if not host or host == "*" or host.startswith("/") or "@" in host or _is_ip(host):
                continue
            if host in found:
                continue
            try:
                found[host] = _first_address(host)
            except (OSError, UnicodeError, IndexError):
                found[host] = ""  # tried: the runtime must not look it up again
                tag = f"[{s.location}] : 'server {p.name}/{s.name}' : "
                init_addr = p.server_params(s).init_addr or ""
                if "none" in init_addr.split(","):
                    ps.messages.append(
                        Message(
                            Level.WARNING,
                            tag + f"could not resolve address '{host}', disabling server.",
                            s.location,
                        )
                    )
                else:
                    ps.messages.append(
                        Message(
                            Level.ALERT, tag + f"could not resolve address '{host}'.", s.location
                        )
                    )
                    ok = False
    return ok


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
