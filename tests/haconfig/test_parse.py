"""The parser: text to model, and HAProxy 2.6's exact diagnostics with file:line."""

from __future__ import annotations

import pytest

from haconfig.model import (
    AclTerm,
    Bind,
    Directive,
    Mode,
    Option,
    SectionKind,
    Server,
    ServerParams,
    StatsLevel,
    Timeouts,
)
from haconfig.parse import (
    ConfigError,
    Level,
    ParseResult,
    Stage,
    best_match,
    check_type,
    parse_text,
    read_texts,
)

TIMEOUTS = """defaults
    timeout connect 5s
    timeout client 1m
    timeout server 1m
"""


def read(text: str, **kw: bool) -> ParseResult:
    return read_texts([("t.cfg", text)], env={"PORT": "21050"}, **kw)


def first_alert(text: str) -> str:
    result = read(text)
    assert result.alerts, [m.text for m in result.messages]
    return result.alerts[0].text


def warnings(text: str) -> list[str]:
    result = read(text)
    assert not result.fatal, [m.text for m in result.alerts]
    return [m.text for m in result.warnings]


# --- the model -------------------------------------------------------------------------


def test_seed_sample_with_bind_builds_the_expected_model() -> None:
    """The fixed seed sample parses into frontend/backends with acls, rules and servers."""
    cfg = parse_text(
        TIMEOUTS
        + """frontend main
    bind *:5000
    acl url_static path_beg -i /static /images
    acl url_static path_end -i .jpg
    use_backend static if url_static
    default_backend impala
backend static
    server static 127.0.0.1:8080 check
backend impala
    mode tcp
    balance roundrobin
    server client1 127.0.0.1
""",
        "seed.cfg",
    )
    main = cfg.sections[1]
    assert (main.kind, main.name) == (SectionKind.FRONTEND, "main")
    assert main.binds == (Bind("*", 5000),)
    assert main.binds[0].listen_host == "0.0.0.0"
    assert [a.patterns for a in main.acls] == [("/static", "/images"), (".jpg",)]
    assert main.acls[0].flags == ("-i",)
    assert main.use_backends[0].backend == "static"
    assert main.use_backends[0].condition is not None
    assert main.use_backends[0].condition.alternatives == ((AclTerm(False, "url_static"),),)
    assert main.default_backend == "impala"
    impala = cfg.backend("impala")
    assert impala is not None
    assert impala.servers == (Server("client1", "127.0.0.1", None),)
    assert impala.algorithm == "roundrobin"
    assert impala.timeouts.connect == 5000
    assert impala.servers[0].location.line == 16


def test_server_address_forms() -> None:
    """':port', port-less, '+N' offsets, [IPv6] and ipv4@ follow spec 1.7."""
    cfg = parse_text(
        TIMEOUTS
        + """listen l
    bind 127.0.0.1:1
    server a :21051
    server b 127.0.0.1
    server c 127.0.0.1:+1
    server d [::1]:21050
    server e ipv4@127.0.0.2:21050
    server f 127.0.0.3:-2
""",
        resolve_hosts=False,
    )
    got = [(s.host, s.port, s.port_offset) for s in cfg.sections[1].servers]
    assert got == [
        ("", 21051, False),
        ("127.0.0.1", None, False),
        ("127.0.0.1", 1, True),
        ("::1", 21050, False),
        ("127.0.0.2", 21050, False),
        ("127.0.0.3", -2, True),
    ]


def test_bind_forms_and_parameters() -> None:
    """Several binds, '*', ':::port', ranges, comma lists and bind parameters are modelled."""
    cfg = parse_text(
        TIMEOUTS
        + """frontend f
    bind *:5000
    bind :::5001 v6only
    bind 127.0.0.1:6000-6002,127.0.0.2:7000 name x maxconn 7 accept-proxy
""",
    )
    binds = cfg.sections[1].binds
    assert [(b.host, b.port, b.port_end) for b in binds] == [
        ("*", 5000, None),
        ("::", 5001, None),
        ("127.0.0.1", 6000, 6002),
        ("127.0.0.2", 7000, None),
    ]
    assert binds[1].v6only and binds[2].accept_proxy and binds[3].maxconn == 7
    assert list(binds[2].ports) == [6000, 6001, 6002]


def test_server_parameters_default_server_and_no_forms() -> None:
    """Server parameters are typed; default-server fills gaps and 'no-check' undoes it."""
    cfg = parse_text(
        TIMEOUTS
        + """backend b
    default-server check inter 3s rise 1 fall 5 weight 20
    server a 127.0.0.1:1 no-check weight 0 maxconn 10 maxqueue 4 backup slowstart 1m
    server b 127.0.0.1:2 port 25000 addr 127.0.0.9 on-marked-down shutdown-sessions
    server c 127.0.0.1:3 agent-check agent-port 9 agent-inter 10s agent-send "x\\n"
    server d 127.0.0.1:4 check-ssl verify none sni str(x) init-addr last,libc,none
""",
    )
    b = cfg.sections[1]
    a_params = b.server_params(b.servers[0])
    assert (a_params.check, a_params.weight, a_params.maxconn, a_params.maxqueue) == (
        False,
        0,
        10,
        4,
    )
    assert (a_params.backup, a_params.slowstart, a_params.inter) == (True, 60000, 3000)
    bp = b.server_params(b.servers[1])
    assert (bp.check, bp.port, bp.addr, bp.on_marked_down) == (
        True,
        25000,
        "127.0.0.9",
        "shutdown-sessions",
    )
    cp = b.servers[2].params
    assert (cp.agent_check, cp.agent_port, cp.agent_inter, cp.agent_send) == (
        True,
        9,
        10000,
        "x\n",
    )
    dp = b.servers[3].params
    assert (dp.check_ssl, dp.verify, dp.sni, dp.init_addr) == (
        True,
        "none",
        "str(x)",
        "last,libc,none",
    )
    assert b.default_server == ServerParams(check=True, inter=3000, rise=1, fall=5, weight=20)


def test_every_timeout_with_units() -> None:
    """Every timeout of spec 1.10 is read in milliseconds with its unit."""
    cfg = parse_text(
        """defaults
    timeout connect 5000
    timeout client 1h
    timeout server 2m
    timeout tunnel 1d
    timeout client-fin 30s
    timeout server-fin 100ms
    timeout queue 10s
    timeout check 1500us
    timeout http-request 5s
    timeout http-keep-alive 1s
    timeout tarpit 2s
"""
    )
    assert cfg.sections[0].timeouts == Timeouts(
        connect=5000,
        client=3600000,
        server=120000,
        tunnel=86400000,
        client_fin=30000,
        server_fin=100,
        queue=10000,
        check=2,
        http_request=5000,
        http_keep_alive=1000,
        tarpit=2000,
    )


@pytest.mark.parametrize("name", ["tcplog", "tcpka", "httpchk", "tcp-check", "forwardfor"])
def test_no_option_is_refused_where_haproxy_refuses_it(name: str) -> None:
    """'no option X' for options HAProxy parses on their own is fatal with its wording."""
    with pytest.raises(ConfigError) as info:
        parse_text(TIMEOUTS + f"listen l\n    bind 127.0.0.1:1\n    no option {name}\n")
    assert f"negation/default is not supported for option '{name}'." in str(info.value)


def test_options_retries_maxconn_and_no_option() -> None:
    """Options keep order and arguments; 'no option' disables; maxconn/retries are read."""
    cfg = parse_text(
        TIMEOUTS
        + """listen l
    bind 127.0.0.1:1
    log 127.0.0.1:514 local0
    option tcplog
    option dontlognull
    option redispatch 2
    option tcpka
    option allbackups
    no option allbackups
    option httpchk GET /healthz
    option tcp-check
    option log-health-checks
    retries 5
    maxconn 100
""",
    )
    p = cfg.sections[1]
    assert p.option("redispatch") == Option("redispatch", True, ("2",))
    assert p.has_option("tcpka") and not p.has_option("allbackups")
    assert p.option("httpchk") == Option("httpchk", True, ("GET", "/healthz"))
    assert p.has_option("tcp-check") and p.has_option("log-health-checks")
    assert (p.retries, p.maxconn) == (5, 100)
    assert p.logs[0].address == "127.0.0.1:514" and p.logs[0].facility == "local0"


def test_conditions_with_anonymous_acls_negation_and_or() -> None:
    """Conditions are ORs of ANDs of (possibly negated) named or anonymous acls."""
    cfg = parse_text(
        TIMEOUTS
        + """frontend f
    bind 127.0.0.1:1
    acl local src 127.0.0.0/8
    acl jdbc dst_port 21050
    use_backend b if local !jdbc || { dst 127.0.0.2 } or { always_true }
    use_backend b unless { always_false }
    default_backend b
backend b
""",
    )
    rules = cfg.sections[1].use_backends
    cond = rules[0].condition
    assert cond is not None and not cond.unless
    assert [len(alt) for alt in cond.alternatives] == [2, 1, 1]
    assert cond.alternatives[0][1] == AclTerm(True, "jdbc")
    anon = cond.alternatives[1][0].anonymous
    assert anon is not None and (anon.criterion, anon.patterns) == ("dst", ("127.0.0.2",))
    assert rules[1].condition is not None and rules[1].condition.unless


def test_global_section() -> None:
    """global: maxconn, logs, stats socket level, pidfile, nbthread, hard-stop-after..."""
    cfg = parse_text(
        """global
    maxconn 4000
    log 127.0.0.1 local2
    log /dev/log len 2048 format rfc5424 daemon info notice
    stats socket /run/lb.sock mode 660 level admin expose-fd listeners
    stats socket /run/op.sock
    stats timeout 30s
    pidfile /run/lb.pid
    chroot /var/empty
    daemon
    master-worker
    nbthread 4
    hard-stop-after 30m
"""
    )
    g = cfg.global_
    assert (g.maxconn, g.pidfile, g.chroot, g.daemon, g.master_worker) == (
        4000,
        "/run/lb.pid",
        "/var/empty",
        True,
        True,
    )
    assert (g.nbthread, g.hard_stop_after, g.stats_timeout) == (4, 1800000, 30000)
    assert g.logs[1].length == 2048 and g.logs[1].format == "rfc5424"
    assert (g.logs[1].level, g.logs[1].min_level) == ("info", "notice")
    admin, op = g.stats_sockets
    assert admin.level is StatsLevel.ADMIN and admin.mode == 0o660 and admin.expose_fd_listeners
    assert op.effective_level is StatsLevel.OPERATOR


def test_http_listen_with_stats_and_prometheus() -> None:
    """A 'mode http' listen keeps stats settings and the prometheus-exporter rule, silently."""
    result = read(
        TIMEOUTS
        + """listen stats
    mode http
    bind 127.0.0.1:8404
    stats enable
    stats uri /stats
    stats refresh 5s
    stats auth a:b
    stats realm lb
    http-request use-service prometheus-exporter if { path /metrics }
"""
    )
    assert not result.messages
    p = result.config.sections[1]
    assert p.mode is Mode.HTTP
    assert (p.stats.enabled, p.stats.uri, p.stats.refresh) == (True, "/stats", 5000)
    assert (p.stats.auth, p.stats.realm) == (("a:b",), "lb")
    assert p.http_requests[0].args[:2] == ("use-service", "prometheus-exporter")


def test_check_rules_are_kept_in_order() -> None:
    """tcp-check and http-check rules are kept verbatim, in order, with locations."""
    cfg = parse_text(
        TIMEOUTS
        + """backend b
    option tcp-check
    tcp-check connect port 1
    tcp-check send PING\\r\\n
    tcp-check expect string PONG
    http-check send meth GET uri /
"""
    )
    b = cfg.sections[1]
    assert [(r.action, r.args) for r in b.tcp_check_rules] == [
        ("connect", ("port", "1")),
        ("send", ("PING\r\n",)),
        ("expect", ("string", "PONG")),
    ]
    assert b.http_check_rules[0].args == ("meth", "GET", "uri", "/")
    assert b.tcp_check_rules[1].location.line == 8


def test_unimplemented_keywords_are_kept_and_named_in_a_warning() -> None:
    """A real HAProxy keyword we do not run is kept as a Directive with a warning naming it."""
    result = read(
        TIMEOUTS
        + """listen l
    bind 127.0.0.1:1
    stick-table type ip size 1m
    server a 127.0.0.1:2 check resolvers dns
"""
    )
    assert not result.fatal
    texts = [m.text for m in result.warnings]
    assert "parsing [t.cfg:7] : 'stick-table' is accepted but not implemented" in texts[0]
    assert "'resolvers'" in texts[1]
    p = result.config.sections[1]
    assert p.other == (Directive("stick-table", ("type", "ip", "size", "1m")),)
    assert p.servers[0].params.other == (Directive("resolvers", ("dns",)),)


def test_keyword_ignored_for_capability_stays_out_of_typed_fields() -> None:
    """'maxconn' in a backend warns and is kept aside, so the runtime never applies it."""
    result = read(TIMEOUTS + "backend b\n    maxconn 10\n")
    b = result.config.sections[1]
    assert b.maxconn is None
    assert b.other == (Directive("maxconn", ("10",)),)


def test_several_files_each_start_out_of_section() -> None:
    """Like 'haproxy -f a -f b', a second file starts out of any section."""
    result = read_texts([("a.cfg", "global\n    maxconn 5\n"), ("b.cfg", "    nbthread 2\n")])
    assert result.alerts[0].text == "parsing [b.cfg:1]: unknown keyword 'nbthread' out of section."
    assert result.files_with_errors == ("b.cfg",)


def test_later_files_see_earlier_sections() -> None:
    """A backend from the first file serves a frontend of the second."""
    result = read_texts(
        [
            ("a.cfg", TIMEOUTS + "backend b\n    server s 127.0.0.1:1\n"),
            ("b.cfg", "frontend f\n    bind 127.0.0.1:2\n    default_backend b\n"),
        ]
    )
    assert not result.fatal and not result.messages
    assert [p.location.file for p in result.config.sections] == ["a.cfg", "a.cfg", "b.cfg"]


def test_parse_text_raises_config_error_with_the_first_alert() -> None:
    """parse_text refuses a fatal config with ConfigError citing file:line."""
    with pytest.raises(ConfigError, match=r"parsing \[x.cfg:2\] : unknown proxy mode 'udp'"):
        parse_text("listen l\n    mode udp\n", "x.cfg")


def test_hostnames_resolve_only_when_asked() -> None:
    """Unresolvable hostnames are fatal at the address stage, skipped with resolve_hosts=False."""
    text = TIMEOUTS + "listen l\n    bind 127.0.0.1:1\n    server a no-such-host.invalid:1\n"
    assert read(text).failed_stage is Stage.ADDR
    assert not read(text, resolve_hosts=False).fatal
    assert not read(text.replace("invalid:1\n", "invalid:1 init-addr none\n")).fatal
    assert not read(TIMEOUTS + "listen l\n    bind 127.0.0.1:1\n    server a localhost:1\n").fatal


def test_did_you_mean() -> None:
    """HAProxy-style suggestions find near keywords and stay quiet for far ones."""
    assert best_match("chekc", ["check", "backup", "weight"]) == "check"
    assert best_match("balanc", ["balance", "bind", "server"]) == "balance"
    assert best_match("zzzqqq", ["check", "backup", "weight"]) is None


# --- HAProxy's exact alerts ------------------------------------------------------------

L = "listen l\n    bind 127.0.0.1:1\n"

ALERTS = [
    ("maxconn 1\n", "parsing [t.cfg:1]: unknown keyword 'maxconn' out of section."),
    (
        L + "    foobar 1\n",
        "parsing [t.cfg:7] : unknown keyword 'foobar' in 'listen' section",
    ),
    (
        L + "    balanc roundrobin\n",
        "parsing [t.cfg:7] : unknown keyword 'balanc' in 'listen' section; "
        "did you mean 'balance' maybe ?",
    ),
    (
        "global\n    maxconnn 1\n",
        "parsing [t.cfg:2] : unknown keyword 'maxconnn' in 'global' section; "
        "did you mean 'maxconn' maybe ?",
    ),
    (
        L + "    server a 127.0.0.1:2 chekc\n",
        "[t.cfg:7] : 'server l/a' : unknown keyword 'chekc'; did you mean 'check' maybe ?",
    ),
    (
        L + "    server a 127.0.0.1:2 zzzqqq\n",
        "[t.cfg:7] : 'server l/a' : unknown keyword 'zzzqqq'.",
    ),
    (L + "    option zzzqqq\n", "parsing [t.cfg:7] : unknown option 'zzzqqq'."),
    (
        L + "    option tcplogg\n",
        "parsing [t.cfg:7] : unknown option 'tcplogg'; did you mean 'tcplog' maybe ?",
    ),
    (
        L + "    contimeout 5000\n",
        "parsing [t.cfg:7] : the 'contimeout' directive is not supported anymore since "
        "HAProxy 2.1. Use 'timeout connect'.",
    ),
    (
        "defaults\n    srvtimeout 5000\n",
        "parsing [t.cfg:2] : the 'srvtimeout' directive is not supported anymore since "
        "HAProxy 2.1. Use 'timeout server'.",
    ),
    (
        "global\n    nbproc 2\n",
        "parsing [t.cfg:2] : nbproc is not supported any more since HAProxy 2.5. Threads will "
        "automatically be used on multi-processor machines if available.",
    ),
    (
        "global\n    nbthread 0\n",
        "parsing [t.cfg:2] : 'nbthread' value must be between 1 and 64 (was 0)",
    ),
    (
        "global\n    nbthread 65\n",
        "parsing [t.cfg:2] : 'nbthread' value must be between 1 and 64 (was 65)",
    ),
    (
        L + "    server c 127.0.0.1:2 weight 257\n",
        "[t.cfg:7] : 'server l/c' : weight of server c is not within 0 and 256 (257)..",
    ),
    (L + "    server c 127.0.0.1:2 rise 0\n", "[t.cfg:7] : 'server l/c' : 'rise' has to be > 0.."),
    (L + "    server c 127.0.0.1:2 fall 0\n", "[t.cfg:7] : 'server l/c' : 'fall' has to be > 0.."),
    (
        L + "    server c 127.0.0.1:2 inter 0\n",
        "[t.cfg:7] : 'server l/c' : invalid value 0 for argument 'inter' of server c..",
    ),
    (
        L + "    server a 127.0.0.1:2 agent-check\n",
        "[t.cfg:7] : 'server l/a' : server a does not have agent port. "
        "Agent check has been disabled.",
    ),
    (L + "    server a\n", "[t.cfg:7] : 'server' expects <name> and <addr>[:<port>] as arguments."),
    (L + "    server a 127.0.0.1:99999\n", "[t.cfg:7] : 'server l/a' : invalid port '99999'"),
    (
        "listen impala/x\n",
        "parsing [t.cfg:5] : character '/' is not permitted in 'listen' name 'impala/x'.",
    ),
    ("listen\n", "parsing [t.cfg:5] : 'listen' expects an <id> argument"),
    (
        "frontend main *:5000\n",
        "parsing [t.cfg:5] : please use the 'bind' keyword for listening addresses.",
    ),
    (
        "backend b\nbackend b\n",
        "Parsing [t.cfg:6]: backend 'b' has the same name as backend 'b' declared at t.cfg:5.",
    ),
    (
        "frontend f\n    bind 127.0.0.1:1\n    use_backend b if foo\nbackend b\n",
        "parsing [t.cfg:7] : error detected while parsing switching rule : no such ACL : 'foo'.",
    ),
    (
        "frontend f\n    bind 127.0.0.1:1\n    acl a foo 1\n",
        "parsing [t.cfg:7] : error detected while parsing ACL 'a' : unknown fetch method 'foo' "
        "in ACL expression 'foo'.",
    ),
    (
        L + "    balance bogus\n",
        "parsing [t.cfg:7] : balance only supports 'roundrobin', 'static-rr', 'leastconn', "
        "'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.",
    ),
    (
        L + "    hash-type consistent avalanche\n",
        "parsing [t.cfg:7] : 'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash "
        "functions.",
    ),
    (L + "    mode udp\n", "parsing [t.cfg:7] : unknown proxy mode 'udp'."),
    (
        "listen l\n    bind 127.0.0.1\n",
        "parsing [t.cfg:6] : 'bind' : missing port specification in '127.0.0.1'",
    ),
    (
        L + "    timeout client 25d\n",
        "parsing [t.cfg:7] : timer overflow in argument '25d' to 'timeout client' "
        "(maximum value is 2147483647 ms or ~24.8 days)",
    ),
    (
        L + "    timeout connect 5x\n",
        "parsing [t.cfg:7] : unexpected character 'x' in 'timeout connect'",
    ),
    (
        L + "    timeout connect 30S\n",
        "parsing [t.cfg:7] : unexpected character 'S' in 'timeout connect'",
    ),
    (
        L + "    timeout server 1.5s\n",
        "parsing [t.cfg:7] : unexpected character '.' in 'timeout server'",
    ),
    (
        L + "    timeout client\n",
        "parsing [t.cfg:7] : 'timeout client' expects an integer value (in milliseconds)",
    ),
    (
        L + "    timeout foo 1s\n",
        "parsing [t.cfg:7] : 'timeout' supports 'client', 'server', 'connect', 'check', 'queue', "
        "'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' "
        "(got 'foo')",
    ),
    (
        "global\n    log local2\n",
        "parsing [t.cfg:2] : log : expects <address> and <facility>  as arguments",
    ),
    (
        "global\n    log 127.0.0.1 local9\n",
        "parsing [t.cfg:2] : log : unknown log facility 'local9'",
    ),
    (
        "global\n    user no-such-user-x\n",
        "parsing [t.cfg:2] : cannot find user id for 'no-such-user-x' (0:Success)",
    ),
    (
        "global\n    group no-such-group-x\n",
        "parsing [t.cfg:2] : cannot find group id for 'no-such-group-x' (0:Success)",
    ),
    (
        "defaults\n    bind 127.0.0.1:1\n",
        "parsing [t.cfg:2] : 'bind' not allowed in 'defaults' section.",
    ),
    (
        "defaults\n    acl a src 127.0.0.1\n",
        "parsing [t.cfg:2] : 'acl' not allowed in anonymous 'defaults' section.",
    ),
    (
        "frontend f\n    bind 127.0.0.1:1\n    server a 127.0.0.1:2\n",
        "[t.cfg:7] : parsing [t.cfg:7] : 'server' not allowed because frontend 'f' has no "
        "backend capability.",
    ),
    (
        L + "    bind 127.0.0.1:2 bogus\n",
        "parsing [t.cfg:7] : 'bind 127.0.0.1:2' in section 'listen': unknown keyword 'bogus'.",
    ),
    (
        L + "    bind 127.0.0.1:2 ssl crt /nonexistent.pem\n",
        "parsing [t.cfg:7] : 'bind 127.0.0.1:2' in section 'listen' : unable to stat SSL "
        "certificate from file '/nonexistent.pem' : No such file or directory.",
    ),
    (
        L + "    option tcp-check\n    tcp-check bogus\n",
        "parsing [t.cfg:8] : 'tcp-check' only supports 'comment', 'connect', 'send', "
        "'send-binary', 'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. but got 'bogus'",
    ),
    (
        'listen l\n    bind "127.0.0.1:1\n',
        'parsing [t.cfg:6]: unmatched quote at position 10:\n  bind "127.0.0.1:1\n       ^',
    ),
    (
        L + "    server a 127.0.0.1:2 verify maybe\n",
        "[t.cfg:7] : 'server l/a' : 'verify' : unknown verify method 'maybe', only 'none' and "
        "'required' are supported.",
    ),
    ("listen l\n    bind 127.0.0.1:0\n", "parsing [t.cfg:6] : 'bind' : invalid port '0'"),
    (
        L + '    server a ""\n',
        "[t.cfg:7] : 'server' expects <name> and <addr>[:<port>] as arguments.",
    ),
    (
        "listen x from nope\n",
        "parsing [t.cfg:5] : defaults section 'nope' not found for proxy 'x'.",
    ),
    (
        "defaults\n    server a 127.0.0.1:1\n",
        "[t.cfg:2] : 'server' not allowed in 'defaults' section.",
    ),
    (
        "defaults\n    description x\n",
        "parsing [t.cfg:2]: 'description' not allowed in 'defaults' section.",
    ),
    (
        "defaults\n    tcp-request content accept\n",
        "parsing [t.cfg:2] : tcp-request content is not allowed in anonymous 'defaults' sections",
    ),
    (
        L + "    stats bogus\n",
        "parsing [t.cfg:7]: unknown stats parameter 'bogus', expects 'admin', 'uri', 'realm', "
        "'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'.",
    ),
    (L + "    stats uri\n", "parsing [t.cfg:7] : 'uri' needs an URI prefix."),
    (
        L + "    tcp-check expect foo bar\n",
        "parsing [t.cfg:7] : 'tcp-check expect' : 'only supports min-recv, '[!]binary', "
        "'[!]string', '[!]rstring', '[!]string-lf''[!]rbinary', '[!]binary-lf' or comment but "
        "got 'foo' as argument..",
    ),
    (
        L + "    tcp-check expect string\n",
        "parsing [t.cfg:7] : 'tcp-check expect' : 'string' expects a <pattern> as argument.",
    ),
    (
        L + "    tcp-check expect binary 4F4\n",
        "parsing [t.cfg:7] : 'tcp-check expect' : invalid binary string (an even number of hex "
        "digit is expected).",
    ),
    (
        L + "    tcp-check send\n",
        "parsing [t.cfg:7] : 'tcp-check send' : 'string' expects a send as argument.",
    ),
    (
        L + "    tcp-check send-binary zz\n",
        "parsing [t.cfg:7] : 'tcp-check send-binary' : 'zz' invalid binary string (an hex digit "
        "is expected (found 'z')).\n.",
    ),
    (
        L + "    tcp-check connect bogus\n",
        "parsing [t.cfg:7] : 'tcp-check connect' : expects 'comment', 'port', 'addr', "
        "'send-proxy', 'ssl', 'sni', 'alpn' or 'via-socks4', 'linger', 'default' but got 'bogus' "
        "as argument..",
    ),
    (
        L + "    tcp-check connect port x\n",
        "parsing [t.cfg:7] : 'tcp-check connect' : error detected while parsing port expression "
        ": unknown fetch method 'x'.",
    ),
    (
        L + "    tcp-check comment\n",
        "parsing [t.cfg:7] : 'tcp-check comment' : expects a string as argument.",
    ),
    (
        L + "    http-check expect status\n",
        "parsing [t.cfg:7] : 'http-check expect' : 'status' expects a <pattern> as argument.",
    ),
    (
        L + "    http-check expect status 200-\n",
        "parsing [t.cfg:7] : 'http-check expect' : invalid range of status codes '200-'.",
    ),
    (
        L + "    http-check expect bogus 1\n",
        "parsing [t.cfg:7] : 'http-check expect' : 'only supports min-recv, [!]string', "
        "'[!]rstring', '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but "
        "got 'bogus' as argument..",
    ),
    (
        L + "    http-check send meth\n",
        "parsing [t.cfg:7] : 'http-check send' : 'meth' expects a string as argument..",
    ),
    (
        L + "    http-check send hdr Host\n",
        "parsing [t.cfg:7] : 'http-check send' : 'hdr' expects <name> and <value> as arguments.",
    ),
    (
        L + "    http-check send bogus x\n",
        "parsing [t.cfg:7] : 'http-check send' : expects 'comment', 'meth', 'uri', 'uri-lf', "
        "'ver', 'hdr', 'body' or 'body-lf' but got 'bogus' as argument..",
    ),
    (
        "listen l\n    bind 127.0.0.1:x\n",
        "parsing [t.cfg:6] : 'bind' : invalid character 'x' in port number 'x' in '127.0.0.1:x'",
    ),
    (
        "listen l\n    bind 127.0.0.1:50-5\n",
        "parsing [t.cfg:6] : 'bind' : invalid port range '50-5'",
    ),
    ("listen l\n    bind 127.0.0.1:5-70000\n", "parsing [t.cfg:6] : 'bind' : invalid port '70000'"),
    (
        L + "    server a 127.0.0.1:x\n",
        "[t.cfg:7] : 'server l/a' : invalid character 'x' in port number 'x' in '127.0.0.1:x'",
    ),
    # stage 2 (checks)
    (
        "frontend f\n    bind 127.0.0.1:1\n    use_backend nope\n",
        "Proxy 'f': unable to find required use_backend: 'nope'.",
    ),
    (
        "frontend f\n    bind 127.0.0.1:1\n    default_backend nope\n",
        "Proxy 'f': unable to find required default_backend: 'nope'.",
    ),
    (
        L + "    server a 127.0.0.1:2\n    server a 127.0.0.1:3\n",
        "parsing [t.cfg:8] : proxy 'l', another server named 'a' was already defined at line 7, "
        "please use distinct names.",
    ),
    (
        L + "    server a 127.0.0.1 check\n",
        "config: proxy 'l': server 'a' has neither service port nor check port.",
    ),
    (
        L + "    server c 127.0.0.1:2 check check-ssl\n",
        "[t.cfg:7] : 'server l/c' : verify is enabled by default but no CA file specified. If "
        "you're running on a LAN where you're certain to trust the server's certificate, please "
        "set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify "
        "none' in the global section to disable server-side verifications by default.",
    ),
    (
        "listen l\n    bind 127.0.0.1:1 ssl\n",
        "Proxy 'l': no SSL certificate specified for bind '127.0.0.1:1' at [t.cfg:6] (use 'crt').",
    ),
    (
        "frontend f\n    mode http\n    bind 127.0.0.1:1\n    default_backend b\nbackend b\n",
        "http frontend 'f' (t.cfg:5) tries to use incompatible tcp backend 'b' (t.cfg:9) as its "
        "default backend (see 'mode').",
    ),
    (
        "listen l\n    bind 127.0.0.1:1\n    default_backend l\n",
        "Proxy 'l': loop detected for default_backend: 'l'.",
    ),
    # stage 3 (addresses)
    (
        L + "    server a no-such-host.invalid:1\n",
        "[t.cfg:7] : 'server l/a' : could not resolve address 'no-such-host.invalid'.",
    ),
]


@pytest.mark.parametrize(("text", "alert"), ALERTS)
def test_alert_wording(text: str, alert: str) -> None:
    """Each fatal error reads exactly as HAProxy 2.6 prints it, with its file:line."""
    proxy_first = text.startswith(("listen", "frontend", "backend"))
    assert first_alert(TIMEOUTS + text if proxy_first else text) == alert


def test_address_on_frontend_line_cascades() -> None:
    """After 'frontend x *:5000' every line of that section says 'listen' or 'defaults' expected."""
    result = read("frontend main *:5000\n    maxconn 1\n\n    # c\n    mode tcp\nbackend b\n")
    texts = [m.text for m in result.alerts]
    assert texts == [
        "parsing [t.cfg:1] : please use the 'bind' keyword for listening addresses.",
        "parsing [t.cfg:2] : 'listen' or 'defaults' expected.",
        "parsing [t.cfg:5] : 'listen' or 'defaults' expected.",
    ]
    assert result.failed_stage is Stage.PARSE


def test_parsing_continues_after_an_error() -> None:
    """Like HAProxy, every parse error of a file is reported, not just the first."""
    result = read(TIMEOUTS + L + "    mode udp\n    balance bogus\n    option zzz\n")
    assert [m.location.line for m in result.alerts if m.location] == [7, 8, 9]


def test_checks_run_only_after_a_clean_parse() -> None:
    """Stage-2 checks (missing backends) are skipped when parsing already failed."""
    result = read("frontend f\n    bind 127.0.0.1:1\n    default_backend nope\n    mode udp\n")
    assert [m.text for m in result.alerts] == ["parsing [t.cfg:4] : unknown proxy mode 'udp'."]


# --- HAProxy's warnings ----------------------------------------------------------------

MISSING = (
    "missing timeouts for {kind} '{name}'.\n"
    "   | While not properly invalid, you will certainly encounter various problems\n"
    "   | with such a configuration. To fix this, please ensure that all following\n"
    "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
)

WARNINGS = [
    (
        TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n    acl a src\n",
        "parsing acl keyword 'src' :\n"
        "  no pattern to match against were provided, so this ACL will never match.\n"
        "  If this is what you intended, please add '--' to get rid of this warning.\n"
        "  If you intended to match only for existence, please use '-m found'.\n"
        "  If you wanted to force an int to match as a bool, please use '-m bool'.",
    ),
    (
        TIMEOUTS + "backend impala\n    option tcplog\n",
        "parsing [t.cfg:6] : backend 'impala' : 'option tcplog' directive is ignored in backends.",
    ),
    (
        TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n    balance roundrobin\n",
        "parsing [t.cfg:7] : 'balance' ignored because frontend 'f' has no backend capability.",
    ),
    (
        TIMEOUTS + "backend b\n    maxconn 5\n",
        "parsing [t.cfg:6] : 'maxconn' ignored because backend 'b' has no frontend capability. "
        "Maybe you want 'fullconn' instead ?",
    ),
    (
        TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n    timeout server 1s\n",
        "parsing [t.cfg:7] : 'timeout server' will be ignored because frontend 'f' has no "
        "backend capability",
    ),
    (
        TIMEOUTS + "backend b\n    timeout client 1s\n",
        "parsing [t.cfg:6] : 'timeout client' will be ignored because backend 'b' has no "
        "frontend capability",
    ),
    (
        TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n    option redispatch\n",
        "parsing [t.cfg:7] : 'redispatch' ignored because frontend 'f' has no backend capability.",
    ),
    (
        TIMEOUTS + L + "    option httplog\n",
        "parsing [t.cfg:7] : 'option httplog' not usable with proxy 'l' (needs 'mode http'). "
        "Falling back to 'option tcplog'.",
    ),
    (
        TIMEOUTS + L + "    option forwardfor\n",
        "'option forwardfor' ignored for proxy 'l' as it requires HTTP mode.",
    ),
    (
        TIMEOUTS + L + "    balance uri\n",
        "Layer 7 hash not possible for proxy 'l' (needs 'mode http'). Falling back to round robin.",
    ),
    (
        TIMEOUTS + L + "    tcp-check connect\n",
        "proxy 'l' uses tcp-check rules without 'option tcp-check', so the rules are ignored.",
    ),
    (
        TIMEOUTS + L + "    http-check expect status 200\n",
        "proxy 'l' uses http-check rules without 'option httpchk', so the rules are ignored.",
    ),
    (
        TIMEOUTS + L + "    option tcplog\n",
        "log format ignored for proxy 'l' since it has no log address.",
    ),
    (
        TIMEOUTS + L + "    stats enable\n",
        "'stats' statement ignored for proxy 'l' as it requires HTTP mode.",
    ),
    (
        TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n    http-request deny\n",
        "'http-request' rules ignored for frontend 'f' as they require HTTP mode.",
    ),
    (L, MISSING.format(kind="proxy", name="l")),
    ("backend b\n    server a 127.0.0.1:1\n", MISSING.format(kind="backend", name="b")),
    (
        TIMEOUTS + L + "    server a no-such-host.invalid:1 init-addr last,libc,none\n",
        "[t.cfg:7] : 'server l/a' : could not resolve address 'no-such-host.invalid', "
        "disabling server.",
    ),
]


@pytest.mark.parametrize(("text", "warning"), WARNINGS)
def test_warning_wording(text: str, warning: str) -> None:
    """Each non-fatal problem warns with HAProxy 2.6's exact wording."""
    assert warning in warnings(text)


def test_missing_timeouts_rules() -> None:
    """A tcp backend may replace 'timeout server' by 'timeout tunnel'; empty backends need none."""
    assert warnings("defaults\n    timeout connect 1s\n    timeout tunnel 1h\nbackend b\n"
                    "    server a 127.0.0.1:1\n") == []  # fmt: skip
    assert warnings("backend b\n") == []
    assert warnings("frontend f\n    bind 127.0.0.1:1\n") == [
        MISSING.format(kind="frontend", name="f")
    ]


def test_messages_format_like_haproxy() -> None:
    """Messages print as '[ALERT]    (pid) : config : ...' and '[WARNING]  (pid) : config : ...'."""
    result = read("listen l\n    mode udp\n")
    assert result.alerts[0].format(42) == (
        "[ALERT]    (42) : config : parsing [t.cfg:2] : unknown proxy mode 'udp'."
    )
    w = read(TIMEOUTS + "backend b\n    maxconn 5\n").warnings[0]
    assert w.level is Level.WARNING
    assert w.format(7).startswith("[WARNING]  (7) : config : parsing [t.cfg:6] : 'maxconn'")


def test_some_errors_stop_the_parse() -> None:
    """Like HAProxy's ERR_ABORT, an unknown 'from' defaults stops reading the file at once."""
    result = read("listen x from nope\n    mode udp\nlisten\n")
    assert [m.text for m in result.alerts] == [
        "parsing [t.cfg:1] : defaults section 'nope' not found for proxy 'x'."
    ]
    assert result.aborted


def test_unix_socket_bind_is_refused_clearly() -> None:
    """A unix-socket bind (valid in HAProxy) is refused with a message naming impala-lb."""
    assert first_alert("listen l\n    bind /run/x.sock\n") == (
        "parsing [t.cfg:2] : 'bind' : unix socket listeners ('/run/x.sock') are not supported "
        "by impala-lb."
    )


def test_named_defaults_are_inherited_through_from() -> None:
    """'listen x from name' resolves through that defaults section, not the last one."""
    cfg = parse_text(
        "defaults a\n    balance source\ndefaults b\n    balance first\n"
        "backend x from a\nbackend y\n"
    )
    x, y = cfg.backends
    assert (x.algorithm, y.algorithm) == ("source", "first")


def test_acl_without_pattern_is_quiet_when_meant() -> None:
    """'--', '-m found' and boolean fetches need no pattern, so they do not warn."""
    text = TIMEOUTS + "frontend f\n    bind 127.0.0.1:1\n"
    for acl in ("acl a src --", "acl a dst_port -m found", "acl a always_true"):
        assert warnings(text + f"    {acl}\n") == []


# Suggestions HAProxy 2.6.12 printed for these typos (recorded from `haproxy -c`).
SUGGESTIONS = (
    [
        ("    {} x\n", w, s)
        for w, s in [
            ("aclx", "acl"),
            ("bakend_default", "default_backend"),
            ("default_server", "default-server"),
            ("hash_type", "hash-type"),
            ("httpcheck", "http-check"),
            ("logg", "log"),
            ("maxcon", "maxconn"),
            ("optoin", "option"),
            ("retrie", "retries"),
            ("servr", "server"),
            ("stat", "stats"),
            ("timout", "timeout"),
            ("use-backend", "use_backend"),
        ]
    ]
    + [
        ("    server a 127.0.0.1:1 {} 1\n", w, s)
        for w, s in [
            ("agent_check", "agent-check"),
            ("backupp", "backup"),
            ("check_ssl", "check-ssl"),
            ("inetr", "inter"),
            ("maxconns", "maxconn"),
            ("rize", "rise"),
            ("verfy", "verify"),
            ("weigth", "weight"),
        ]
    ]
    + [
        ("    option {}\n", w, s)
        for w, s in [
            ("dontlognul", "dontlognull"),
            ("httpchek", "httpchk"),
            ("logs-health-checks", "log-health-checks"),
            ("redispach", "redispatch"),
            ("tcpka_", "tcpka"),
        ]
    ]
)


@pytest.mark.parametrize(("line", "typo", "suggestion"), SUGGESTIONS)
def test_did_you_mean_matches_haproxy(line: str, typo: str, suggestion: str) -> None:
    """A typo gets the same 'did you mean' HAProxy 2.6 gives for it."""
    alert = first_alert("listen l\n    bind 127.0.0.1:1\n" + line.format(typo))
    assert f"'{typo}'" in alert
    assert alert.endswith(f"; did you mean '{suggestion}' maybe ?")


def test_ports_are_read_like_atoi() -> None:
    """As in HAProxy, '5x' is port 5 for binds and servers, and offsets may be large."""
    cfg = parse_text(
        TIMEOUTS + "listen l\n    bind 127.0.0.1:5x\n    server a 127.0.0.1:7y\n"
        "    server b 127.0.0.1:-70000\n"
    )
    lst = cfg.sections[1]
    assert lst.binds[0].port == 5
    assert [(s.port, s.port_offset) for s in lst.servers] == [(7, False), (-70000, True)]


def test_last_check_option_wins() -> None:
    """'option httpchk' then 'option tcp-check' runs tcp-check: http-check rules are ignored."""
    text = TIMEOUTS + L + "    option {}\n    option {}\n    tcp-check connect\n"
    text += "    http-check expect status 200\n    server a 127.0.0.1:2 check\n"
    assert warnings(text.format("httpchk", "tcp-check")) == [
        "proxy 'l' uses http-check rules without 'option httpchk', so the rules are ignored."
    ]
    assert warnings(text.format("tcp-check", "httpchk")) == [
        "proxy 'l' uses tcp-check rules without 'option tcp-check', so the rules are ignored."
    ]
    assert check_type(parse_text(text.format("tcp-check", "httpchk")).backends[0]) == "httpchk"


def test_tcp_check_connect_ssl_needs_server_verification() -> None:
    """A 'tcp-check connect ssl' check is TLS, so 'check' servers need verify none or a CA."""
    text = TIMEOUTS + L + "    option tcp-check\n    tcp-check connect ssl\n"
    assert "verify is enabled by default" in first_alert(text + "    server a 127.0.0.1:2 check\n")
    assert not read(text + "    server a 127.0.0.1:2 check verify none\n").fatal


def test_garbage_never_raises() -> None:
    """Bounded fuzzing: mutated corpus files and odd lines give messages, never an exception."""
    import random
    from pathlib import Path

    rnd = random.Random(2026)
    files = sorted((Path(__file__).parent / "corpus").glob("*.cfg"))
    tokens = [*" \t:'\"\\#${}[]!-+0123456789ax,@/", "check", "server", "bind", "listen"]
    tokens += ["timeout", "0", "65536", "-1", "{", "}", "if", "||", "ssl", "crt", "from", "no"]
    for _ in range(400):
        lines = rnd.choice(files).read_text(encoding="utf-8").splitlines()
        for _ in range(rnd.randint(1, 4)):
            j = rnd.randrange(len(lines))
            words = lines[j].split()
            if words and rnd.random() < 0.5:
                words[rnd.randrange(len(words))] = "".join(
                    rnd.choice(tokens) for _ in range(rnd.randint(0, 4))
                )
            else:
                words.insert(rnd.randint(0, len(words)), rnd.choice(tokens))
            lines[j] = "    " + " ".join(words)
        result = read_texts([("f.cfg", "\n".join(lines))], resolve_hosts=False)
        assert all(m.text for m in result.messages)
