"""The renderer: any model -> haproxy.cfg text that HAProxy 2.6 and our parser read back equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from haconfig import parse_text
from haconfig.lexer import split_line
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
    LogTarget,
    Mode,
    Notes,
    Option,
    Proxy,
    SectionKind,
    Server,
    ServerParams,
    StatsLevel,
    StatsPage,
    StatsSocket,
    Timeouts,
    UseBackend,
)
from haconfig.render import quote, render
from haconfig.rendercli import haproxy_lint, own_lint
from tests.support.certs import make_ca


def _reparse(text: str) -> Config:
    return parse_text(text, "rendered.cfg")


@pytest.mark.parametrize(
    "word",
    [
        "plain",
        "",
        "two words",
        "has#hash",
        "it's",
        'say "hi"',
        "back\\slash",
        "$HOME",
        "tab\there",
        "PING\r\n",
        "both ' and \" and \\ and #",
        "nul\x00bel\x07del\x7f",
        '"statestore\\.active-status": *true',
    ],
)
def test_quote_reads_back_as_the_same_word(word: str) -> None:
    """Every word, special characters and control bytes included, survives HAProxy's tokenizer."""
    assert split_line(f"kw {quote(word)} end", {}) == ["kw", word, "end"]


def test_quote_leaves_plain_words_bare_and_prefers_strong_quotes() -> None:
    """Plain words stay bare; regexes with quotes are single-quoted rather than escaped."""
    assert quote("/healthz") == "/healthz"
    assert quote('"x": *true') == "'\"x\": *true'"
    assert quote("$VAR") == "$VAR"


def _kitchen_sink(cert: Path) -> Config:
    """A model touching every part of the grammar the renderer writes, valid for HAProxy 2.6."""
    g = Global(
        maxconn=2000,
        logs=(
            LogTarget("127.0.0.1:514", facility="local0", level="info", min_level="emerg"),
            LogTarget("127.0.0.2:514", facility="local1", length=1024, format="rfc5424"),
        ),
        stats_sockets=(
            StatsSocket("/tmp/impala-lb-test.sock", mode=0o600, level=StatsLevel.ADMIN),
            StatsSocket("/tmp/impala-lb-test-ro.sock", level=StatsLevel.USER),
            StatsSocket(
                "/tmp/impala-lb-test-fd.sock", expose_fd_listeners=True, user="root", group="root"
            ),
        ),
        stats_timeout=30_000,
        pidfile="/tmp/impala-lb-test.pid",
        nbthread=2,
        hard_stop_after=3_600_000,
        user="root",
        group="root",
        chroot="/tmp",
        daemon=True,
        master_worker=True,
    )
    defaults = Proxy(
        SectionKind.DEFAULTS,
        "base",
        mode=Mode.TCP,
        logs=(LogTarget("global"),),
        options=(Option("tcplog"), Option("dontlognull"), Option("redispatch")),
        retries=2,
        timeouts=Timeouts(connect=5_000, client=3_600_000, server=3_600_000, queue=30_000),
        default_server=ServerParams(inter=5_000, fastinter=1_000, rise=2, fall=3),
    )
    front = Proxy(
        SectionKind.FRONTEND,
        "clients",
        from_defaults="base",
        description="Impala clients, all of them",
        binds=(
            Bind("127.0.0.1", 21050, name="hs2", maxconn=500, backlog=100),
            Bind("::1", 21052, v6only=True),
            Bind("127.0.0.1", 21060, port_end=21062),
            Bind("127.0.0.1", 21443, ssl=True, crt=(str(cert),), ssl_min_ver="TLSv1.2"),
        ),
        maxconn=1000,
        acls=(
            Acl("from_lan", "src", patterns=("10.0.0.0/8", "192.168.0.0/16")),
            Acl("hue_port", "dst_port", patterns=("21051",)),
        ),
        use_backends=(
            UseBackend(
                "hue",
                Condition(
                    False,
                    (
                        (AclTerm(False, name="hue_port"),),
                        (
                            AclTerm(False, anonymous=Acl("", "src", patterns=("127.0.0.9",))),
                            AclTerm(True, name="from_lan"),
                        ),
                    ),
                ),
            ),
        ),
        default_backend="shell",
        timeouts=Timeouts(client=7_200_000, client_fin=30_000),
        options=(Option("tcpka"), Option("dontlognull", enabled=False)),
    )
    shell = Proxy(
        SectionKind.BACKEND,
        "shell",
        from_defaults="base",
        balance=Balance("leastconn"),
        options=(Option("httpchk", args=("GET", "/healthz")),),
        http_check_rules=(CheckRule("expect", ("status", "200")),),
        timeouts=Timeouts(tunnel=43_200_000, check=2_000),
        fullconn=300,
        default_server=ServerParams(check=True, port=25000, maxconn=64),
        servers=(
            Server("c1", "127.0.0.1", 21050, params=ServerParams(weight=10, slowstart=30_000)),
            Server("c2", "127.0.0.2", 21050, params=ServerParams(check=False, backup=True)),
            Server(
                "c3",
                "127.0.0.3",
                21050,
                params=ServerParams(
                    disabled=True,
                    on_marked_down="shutdown-sessions",
                    maxqueue=10,
                    downinter=10_000,
                    id=7,
                ),
            ),
            Server("c4", "::1", 21050),
            Server("c5", "127.0.0.1", 5, port_offset=True, params=ServerParams(port=25001)),
        ),
    )
    hue = Proxy(
        SectionKind.BACKEND,
        "hue",
        from_defaults="base",
        balance=Balance("source"),
        hash_type=("consistent",),
        options=(Option("tcp-check"),),
        tcp_check_rules=(
            CheckRule("connect", ("port", "21050")),
            CheckRule("send-binary", ("0102",)),
            CheckRule("expect", ("string", 'it\'s "ok"')),
        ),
        servers=(Server("h1", "127.0.0.1", 21050, params=ServerParams(check=True)),),
    )
    stats = Proxy(
        SectionKind.LISTEN,
        "stats",
        from_defaults="base",
        mode=Mode.HTTP,
        binds=(Bind("127.0.0.1", 8404),),
        stats=StatsPage(
            enabled=True,
            uri="/stats",
            refresh=10_000,
            realm="Impala LB",
            auth=("admin:secret", "ops:other"),
            admin=(Directive("stats", ("admin", "if", "TRUE")),),
            show_legends=True,
        ),
        options=(Option("httplog"),),
    )
    userlist = (
        Directive("userlist", ("admins",)),
        Directive("user", ("admin", "insecure-password", "secret")),
    )
    return Config(
        global_=g, sections=(defaults, front, shell, hue, stats), ignored_sections=userlist
    )


@pytest.fixture
def cert(tmp_path: Path) -> Path:
    """A certificate and its key in one PEM, as ``bind ... ssl crt`` wants."""
    return write_lb_pem(tmp_path)


def write_lb_pem(directory: Path) -> Path:
    """Write the balancer's certificate, issued by a throwaway CA, and its key to
    ``directory/lb.pem``."""
    return make_ca(directory).issue(directory, "lb", ["impala-lb.test"]).combined


def test_every_field_round_trips_through_text(cert: Path) -> None:
    """A model using every rendered construct parses back equal, and renders to the same text."""
    model = _kitchen_sink(cert)
    text = render(model)
    again = _reparse(text)
    assert again == model
    assert render(again) == text


def test_kitchen_sink_passes_real_haproxy_without_warnings(cert: Path, tmp_path: Path) -> None:
    """The rendered grammar is HAProxy 2.6's: `haproxy -c` says valid, with no warning."""
    path = tmp_path / "sink.cfg"
    path.write_text(render(_kitchen_sink(cert)))
    assert haproxy_lint(str(path)) == []


def test_notes_become_comments_above_their_lines_and_do_not_change_the_model() -> None:
    """A layout's notes are written as `# why` lines and are ignored when compared."""
    base = Proxy(
        SectionKind.LISTEN,
        "l",
        mode=Mode.TCP,
        binds=(Bind("127.0.0.1", 5000),),
        balance=Balance("leastconn"),
        timeouts=Timeouts(connect=1000, client=1000, server=1000),
        servers=(Server("a", "127.0.0.1", 21050), Server("b", "127.0.0.2", 21050)),
    )
    noted = Proxy(
        **{
            **base.__dict__,
            "notes": Notes(
                (("", "the section"), ("balance", "least busy"), ("server", "the pool"))
            ),
        }
    )
    assert noted == base
    text = render(Config(sections=(noted,), header=("top line",)))
    lines = text.splitlines()
    assert lines[0] == "# top line"
    assert lines[lines.index("listen l") - 1] == "# the section"
    assert lines[lines.index("    balance leastconn") - 1] == "    # least busy"
    assert lines[lines.index("    server a 127.0.0.1:21050") - 1] == "    # the pool"
    assert lines[lines.index("    server b 127.0.0.2:21050") - 1] == "    server a 127.0.0.1:21050"
    assert _reparse(text) == Config(sections=(base,))


def test_unmodelled_directives_are_kept_verbatim() -> None:
    """Directives the model keeps as text (`other`) come back out, arguments quoted as needed."""
    p = Proxy(
        SectionKind.BACKEND,
        "b",
        other=(Directive("stick-table", ("type", "ip", "size", "1m")),),
        servers=(Server("a", "127.0.0.1", 1, params=ServerParams(other=(Directive("tfo"),))),),
    )
    text = render(Config(sections=(p,)))
    assert "    stick-table type ip size 1m\n" in text
    assert "    server a 127.0.0.1:1 tfo\n" in text


def test_own_check_accepts_the_kitchen_sink(cert: Path, tmp_path: Path) -> None:
    """Our own `haproxy -c` (haconfig.check) finds no error in the rendered grammar."""
    path = tmp_path / "sink.cfg"
    path.write_text(render(_kitchen_sink(cert)))
    problems = own_lint(str(path))
    assert not [p for p in problems if "ALERT" in p], problems
