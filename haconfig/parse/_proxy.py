"""The proxy sections' keywords (``defaults``, ``frontend``, ``backend``, ``listen``): one
handler each, and their table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from haconfig.model import (
    Acl,
    AclTerm,
    Balance,
    Bind,
    CheckRule,
    Condition,
    Directive,
    Location,
    Mode,
    Option,
    SectionKind,
    Server,
    ServerParams,
    StatsPage,
    UseBackend,
)
from haconfig.parse._checkrules import _RULE_CHECKS, _rule_ok
from haconfig.parse._diagnostics import Level, Message, _suggest
from haconfig.parse._global import _parse_log
from haconfig.parse._words import (
    _BALANCE_OK,
    _BIND_FLAGS,
    _BIND_OTHER_0,
    _BIND_OTHER_1,
    _BIND_VALUES,
    _FETCHES_BOOLEAN,
    _FETCHES_IMPLEMENTED,
    _FETCHES_KNOWN,
    _HTTP_CHECK_ACTIONS,
    _IMPLEMENTED_BALANCE,
    _NOT_NEGATABLE,
    _OPTIONS,
    _OPTIONS_WITH_ARGS,
    _PREDEFINED_ACLS,
    _SRV_KW,
    _TCP_CHECK_ACTIONS,
    _TIMEOUT_ORDER,
    _TIMEOUTS,
    _AddrError,
    _atoi,
    _invalid_char,
    _Kw,
    _split_host_port,
    _words,
)
from haconfig.units import UnitError, parse_time

if TYPE_CHECKING:
    from haconfig.parse._checkrules import _StatsSub
    from haconfig.parse._parser import _Parser


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
