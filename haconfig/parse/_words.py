"""The words of the config language: lexical helpers (numbers, names, addresses) and the
keyword tables (what exists in which section, what the balancer implements)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from haconfig.model import (
    Location,
    SectionKind,
)

if TYPE_CHECKING:
    from haconfig.parse._parser import _Parser


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
