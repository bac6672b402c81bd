"""Impala's recommended layout: cluster description -> model -> a file real HAProxy accepts.

Golden files in ``golden/`` pin the text for three descriptions; run with
``IMPALA_LB_REGEN_GOLDEN=1`` to write them again after a deliberate change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from haconfig import parse_text
from haconfig.layouts import (
    DescriptionError,
    description_from_mapping,
    layout,
    load_description,
)
from haconfig.model import Config, Mode, SectionKind, StatsLevel
from haconfig.render import render
from haconfig.rendercli import haproxy_lint, own_lint
from tests.haconfig.test_render import write_lb_pem

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_NAMES = ("small", "kerberos_tls", "hue")
REGEN = os.environ.get("IMPALA_LB_REGEN_GOLDEN") == "1"

THREE = [{"host": f"127.0.0.{i}"} for i in (1, 2, 3)]


def _layout(**extra: Any) -> Config:
    return layout(description_from_mapping({"coordinator": THREE, **extra}))


def _without_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.lstrip().startswith("#"))


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_files_are_pinned(name: str) -> None:
    """Each golden description renders to exactly its pinned haproxy.cfg."""
    text = render(layout(load_description(GOLDEN / f"{name}.toml")))
    golden = GOLDEN / f"{name}.cfg"
    if REGEN:
        golden.write_text(text)
    assert golden.read_text() == text


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_files_pass_real_haproxy_and_our_check(name: str) -> None:
    """Real `haproxy -c` says valid with no warning, and so does haconfig.check."""
    path = str(GOLDEN / f"{name}.cfg")
    assert haproxy_lint(path) == []
    assert own_lint(path) == []


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_layouts_round_trip(name: str) -> None:
    """Parsing the rendered layout gives the layout's model; rendering that gives the same
    directives (only the layout's comments are gone, as the parser keeps none)."""
    model = layout(load_description(GOLDEN / f"{name}.toml"))
    text = render(model)
    parsed = parse_text(text, f"{name}.cfg")
    assert parsed == model
    again = render(parsed)
    assert again == _without_comments(text).lstrip("\n")
    assert render(parse_text(again)) == again


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_choice_carries_a_comment(name: str) -> None:
    """Every directive of a layout has a `# why` line above it, or continues a run of
    lines of the same kind (server, bind, stats, http-check) that has one."""
    lines = (GOLDEN / f"{name}.cfg").read_text().splitlines()
    previous = ""
    for line in lines:
        body = line.strip()
        if not body or body.startswith("#"):
            previous = body
            continue
        first = body.split()[0]
        if line.startswith(" "):
            continues = previous.split()[:1] == [first] and first in (
                "server",
                "bind",
                "stats",
                "http-check",
            )
            assert previous.startswith("#") or continues, f"{name}: no comment above {body!r}"
        previous = body


def test_shell_frontend_is_leastconn_with_checks_and_capacity_limits() -> None:
    """impala-shell/JDBC: leastconn, /healthz on the web port, maxconn = fe_service_threads,
    a queue in front, a long tunnel timeout and TCP keepalive."""
    cfg = _layout(frontends={"shell": {"port": 5000}})
    shell = cfg.backend("impala_shell")
    assert shell is not None
    assert shell.effective_mode is Mode.TCP
    assert shell.algorithm == "leastconn"
    assert shell.has_option("tcpka") and shell.has_option("redispatch")
    assert shell.option("httpchk") is not None
    assert shell.option("httpchk").args == ("GET", "/healthz")  # type: ignore[union-attr]
    assert shell.timeouts.tunnel is not None and shell.timeouts.tunnel >= 3_600_000
    assert shell.timeouts.queue is not None and shell.timeouts.queue < 300_000
    assert [b.port for b in shell.binds] == [5000]
    assert [(s.host, s.port) for s in shell.servers] == [(f"127.0.0.{i}", 21050) for i in (1, 2, 3)]
    for s in shell.servers:
        p = shell.server_params(s)
        assert (p.check, p.port, p.maxconn) == (True, 25000, 64)


def test_hue_frontend_is_source_affine_with_long_timeouts() -> None:
    """Hue: balance source, consistent hashing, 6 to 12 hour client/server/tunnel timeouts."""
    cfg = _layout(frontends={"hue": {}})
    hue = cfg.backend("impala_hue")
    assert hue is not None
    assert hue.algorithm == "source" and hue.hash_type == ("consistent",)
    assert [b.port for b in hue.binds] == [21051]
    for t in (hue.timeouts.client, hue.timeouts.server, hue.timeouts.tunnel):
        assert t is not None and 6 * 3_600_000 <= t <= 12 * 3_600_000
    assert all(hue.server_params(s).check for s in hue.servers)


def test_hs2_http_frontend_is_source_affine_to_the_http_port() -> None:
    """hs2-http: source affinity to each coordinator's hs2_http_port, checked on the web port."""
    coords = [{"host": "127.0.0.1", "hs2_http_port": 28001, "web_port": 25001}]
    cfg = layout(description_from_mapping({"coordinator": coords, "frontends": {"hs2_http": {}}}))
    h = cfg.backend("impala_hs2_http")
    assert h is not None
    assert h.algorithm == "source" and h.hash_type == ("consistent",)
    assert [(s.port, h.server_params(s).port) for s in h.servers] == [(28001, 25001)]


def test_ui_frontends_send_everything_to_the_active_daemon() -> None:
    """Statestore and catalog UIs: balance first, checked on the active-status metric."""
    pair = {"servers": [{"host": "127.0.0.1"}, {"host": "127.0.0.2"}]}
    cfg = _layout(
        statestored=pair,
        catalogd=pair,
        frontends={"statestore_ui": {}, "catalog_ui": {}},
    )
    for name, port, metric in (
        ("statestore_ui", 25010, "statestore"),
        ("catalog_ui", 25020, "catalog-server"),
    ):
        ui = cfg.backend(name)
        assert ui is not None
        assert ui.algorithm == "first"
        assert [s.port for s in ui.servers] == [port, port]
        assert [r.args[0] for r in ui.http_check_rules] == ["rstring"]
        assert metric in ui.http_check_rules[0].args[1]


def test_stats_socket_is_admin_and_stats_page_is_http() -> None:
    """The stats socket allows runtime changes (level admin); the page is its own http proxy."""
    cfg = _layout(stats={"socket": "/tmp/x.sock", "page": {"port": 8404}})
    (sock,) = cfg.global_.stats_sockets
    assert (sock.path, sock.level) == ("/tmp/x.sock", StatsLevel.ADMIN)
    page = cfg.backend("stats")
    assert page is not None and page.kind is SectionKind.LISTEN
    assert page.mode is Mode.HTTP and page.stats.enabled and page.stats.uri == "/stats"


def test_default_description_gets_the_three_client_frontends() -> None:
    """With no [frontends] table, shell, Hue and hs2-http frontends are laid out."""
    names = [p.name for p in _layout().sections if p.kind is SectionKind.LISTEN]
    assert names == ["impala_shell", "impala_hue", "impala_hs2_http"]


@pytest.mark.parametrize("mode", ["offload", "bridge"])
def test_tls_termination_layouts_pass_real_haproxy(mode: str, tmp_path: Path) -> None:
    """TLS offload and bridging bind with the balancer's certificate (bridging re-encrypts,
    verified against a CA) and still pass `haproxy -c` with no warning."""
    pem = write_lb_pem(tmp_path)
    cfg = _layout(
        frontends={"shell": {}},
        security={"tls": mode, "crt": str(pem), "ca_file": str(pem)},
    )
    shell = cfg.backend("impala_shell")
    assert shell is not None
    assert shell.binds[0].ssl and shell.binds[0].crt == (str(pem),)
    assert all(bool(shell.server_params(s).ssl) is (mode == "bridge") for s in shell.servers)
    path = tmp_path / "tls.cfg"
    path.write_text(render(cfg))
    assert haproxy_lint(str(path)) == []
    assert own_lint(str(path)) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"coordinator": [{"host": "a", "hs2port": 1}]}, "'coordinator\\[0\\].hs2port' is not"),
        ({"coordinator": [{"host": "a", "web_port": 70000}]}, "web_port' must be an integer"),
        ({"coordinator": [{"port": 1}]}, "coordinator\\[0\\].host' is required"),
        ({"coordinator": THREE, "frontends": {"hue": {"timeout": "1.5h"}}}, "is not a time"),
        ({"coordinator": THREE, "frontends": {"hue": {"timeout": "0"}}}, "must not be 0"),
        ({"coordinator": THREE, "frontends": {"telnet": {}}}, "not a client class"),
        ({"frontends": {"shell": {}}}, "need at least one \\[\\[coordinator\\]\\]"),
        ({"coordinator": THREE, "security": {"tls": "bridge", "crt": "x"}}, "ca_file' is required"),
        ({"coordinator": THREE, "security": {"tls": "offload"}}, "'security.crt' is required"),
        ({"coordinator": THREE, "security": {"tls": "maybe"}}, "'security.tls' must be one of"),
        (
            {"coordinator": THREE, "frontends": {"shell": {"port": 1}, "hue": {"port": 1}}},
            "both listen on port 1",
        ),
        ({"coordinator": THREE, "frontends": {"catalog_ui": {}}}, "needs \\[catalogd\\]"),
        ({"coordinator": THREE, "stats": {"socket_mode": "9"}}, "must be octal"),
        ({"coordinator": "x"}, "array of tables"),
    ],
)
def test_bad_descriptions_are_refused_naming_the_key(data: dict[str, Any], message: str) -> None:
    """A wrong or misspelt key is refused with a message naming it, before anything renders."""
    with pytest.raises(DescriptionError, match=message):
        description_from_mapping(data, source="c.toml")


def test_unreadable_or_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    """A missing file or broken TOML gives a DescriptionError naming the file."""
    with pytest.raises(DescriptionError, match="cannot read"):
        load_description(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[coordinator]\nhost=")
    with pytest.raises(DescriptionError, match=r"bad\.toml: not valid TOML"):
        load_description(bad)


def test_documented_example_is_a_valid_description(tmp_path: Path) -> None:
    """The complete example in docs/cluster-toml.md loads, and its file passes `haproxy -c`."""
    import re
    import tomllib

    doc = (Path(__file__).parents[2] / "docs" / "cluster-toml.md").read_text()
    example = re.search(r"## A complete example\n\n```toml\n(.*?)```", doc, re.S)
    assert example is not None
    cfg = layout(description_from_mapping(tomllib.loads(example.group(1)), source="docs"))
    path = tmp_path / "doc.cfg"
    path.write_text(render(cfg))
    assert haproxy_lint(str(path)) == []
    assert own_lint(str(path)) == []


@pytest.mark.parametrize("tls", ["none", "passthrough"])
@pytest.mark.parametrize("webserver_tls", [False, True])
@pytest.mark.parametrize("extras", [False, True])
def test_layout_variants_pass_real_haproxy_and_our_check(
    tls: str, webserver_tls: bool, extras: bool, tmp_path: Path
) -> None:
    """Every mix of TLS mode, HTTPS checks, logging, stats page, UI frontends and the
    Impala agent renders a file that `haproxy -c` and haconfig.check accept without a
    warning."""
    pair = {"servers": [{"host": "127.0.0.1"}, {"host": "127.0.0.2"}]}
    data: dict[str, Any] = {
        "coordinator": [*THREE, {"host": "127.0.0.4", "metrics_port": 25040, "weight": 0}],
        "security": {"tls": tls, "webserver_tls": webserver_tls, "kerberos": extras},
        "statestored": pair,
        "catalogd": pair,
    }
    if extras:
        data["logging"] = {"address": "127.0.0.1:514"}
        data["stats"] = {"socket": False, "page": {"port": 9000, "refresh": "30s"}}
        data["frontends"] = {c: {} for c in ("shell", "hue", "hs2_http", "statestore_ui")}
        data["frontends"]["catalog_ui"] = {"port": 25021}
        data["impala_agent"] = {"port": 25999, "interval": "2s", "weights": "queries"}
    path = tmp_path / "variant.cfg"
    path.write_text(render(layout(description_from_mapping(data))))
    assert haproxy_lint(str(path)) == []
    assert own_lint(str(path)) == []


def test_impala_agent_puts_an_agent_check_on_every_coordinator_server() -> None:
    """[impala_agent] gives each client-facing coordinator server an agent-check that
    sends its own name to the agent; the UI pairs get none."""
    data: dict[str, Any] = {"coordinator": THREE, "impala_agent": {"port": 26001}}
    text = render(layout(description_from_mapping(data)))
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("server ")]
    assert lines and all("agent-check agent-port 26001" in ln for ln in lines)
    assert all("agent-addr 127.0.0.1" in ln and "agent-inter 1s" in ln for ln in lines)
    names = [ln.split()[1] for ln in lines]
    assert all(f"agent-send {n}\\n" in ln for n, ln in zip(names, lines, strict=True))


def test_agent_weights_give_the_servers_room_to_be_weighted() -> None:
    """weights = "queries" renders the leastconn (impala-shell) servers at weight 100,
    asking the agent for a weight (agent-send "NAME weight"); the source-affine
    frontends keep their weights and plain names (a consistent hash must not move); a
    description with another value is refused naming the key."""
    data: dict[str, Any] = {"coordinator": THREE, "impala_agent": {"weights": "queries"}}
    cfg = layout(description_from_mapping(data))
    for proxy in cfg.sections:
        for s in proxy.servers:
            p = s.params
            if proxy.balance is not None and proxy.balance.algorithm == "leastconn":
                assert p.weight == 100 and p.agent_send == f"{s.name} weight\n"
            elif p.agent_check:
                assert p.weight == 1 and p.agent_send == f"{s.name}\n"
    assert any(p.balance and p.balance.algorithm == "leastconn" for p in cfg.sections)
    with pytest.raises(DescriptionError, match=r"impala_agent\.weights"):
        description_from_mapping({"coordinator": THREE, "impala_agent": {"weights": "cpu"}})
