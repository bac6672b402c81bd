"""The config model: inheritance from defaults, and HAProxy's time units."""

from __future__ import annotations

import pytest

from haconfig.model import (
    Balance,
    Config,
    Option,
    Proxy,
    SectionKind,
    Server,
    ServerParams,
    Timeouts,
)
from haconfig.units import UnitError, format_time, parse_time


def test_proxy_inherits_from_the_last_defaults_above_it() -> None:
    """Unset fields come from the nearest preceding defaults; set ones are kept."""
    d1 = Proxy(SectionKind.DEFAULTS, "", retries=3, timeouts=Timeouts(connect=5000, client=1))
    d2 = Proxy(SectionKind.DEFAULTS, "", retries=7, timeouts=Timeouts(connect=9))
    b1 = Proxy(SectionKind.BACKEND, "b1", timeouts=Timeouts(server=2))
    b2 = Proxy(SectionKind.BACKEND, "b2", retries=1, balance=Balance("leastconn"))
    cfg = Config(sections=(d1, b1, d2, b2))
    r1 = cfg.resolve(b1)
    assert r1.retries == 3
    assert r1.timeouts == Timeouts(connect=5000, client=1, server=2)
    r2 = cfg.resolve(b2)
    assert r2.retries == 1
    assert r2.timeouts.connect == 9
    assert r2.algorithm == "leastconn"
    assert cfg.resolve(Proxy(SectionKind.BACKEND, "x")).algorithm == "roundrobin"


def test_named_defaults_and_options_override_in_order() -> None:
    """`from name` picks that defaults section; a proxy's own option setting wins."""
    named = Proxy(SectionKind.DEFAULTS, "base", options=(Option("redispatch"),))
    last = Proxy(SectionKind.DEFAULTS, "", options=(Option("tcpka"),))
    lst = Proxy(
        SectionKind.LISTEN, "l", from_defaults="base", options=(Option("redispatch", False),)
    )
    cfg = Config(sections=(named, last, lst))
    r = cfg.resolve(lst)
    assert not r.has_option("redispatch")
    assert not r.has_option("tcpka")
    assert r.option("redispatch") == Option("redispatch", False)


def test_server_params_lay_over_default_server() -> None:
    """A server's own parameters override default-server ones; unset ones are inherited."""
    d = Proxy(SectionKind.DEFAULTS, "", default_server=ServerParams(inter=1000, rise=5))
    s = Server("a", "127.0.0.1", 21050, params=ServerParams(rise=1, check=True))
    b = Proxy(SectionKind.BACKEND, "b", default_server=ServerParams(fall=2), servers=(s,))
    r = Config(sections=(d, b)).resolve(b)
    p = r.server_params(s)
    assert (p.inter, p.rise, p.fall, p.check) == (1000, 1, 2, True)


def test_locations_do_not_take_part_in_equality() -> None:
    """Two models read from different places compare equal when their content is equal."""
    from haconfig.model import Location

    a = Server("a", "h", 1, location=Location("x.cfg", 3))
    b = Server("a", "h", 1, location=Location("y.cfg", 9))
    assert a == b


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("5000", 5000),
        ("5s", 5000),
        ("1m", 60000),
        ("2h", 7200000),
        ("1d", 86400000),
        ("100us", 1),
        ("1500us", 2),
        ("0", 0),
        ("50000s", 50000000),
    ],
)
def test_parse_time_units(text: str, ms: int) -> None:
    """Times parse with HAProxy's units, default ms, microseconds rounded up."""
    assert parse_time(text, "timeout connect") == ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5x", "unexpected character 'x' in 'timeout connect'"),
        ("30S", "unexpected character 'S' in 'timeout connect'"),
        ("1.5s", "unexpected character '.' in 'timeout connect'"),
        ("25d", "timer overflow in argument '25d' to 'timeout connect'"),
    ],
)
def test_parse_time_refuses_what_haproxy_refuses(text: str, message: str) -> None:
    """Bad units, decimals and overflows are refused with HAProxy's wording."""
    with pytest.raises(UnitError, match=message):
        parse_time(text, "timeout connect")


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 1500, 60000, 3600000, 43200000, 2147483647])
def test_format_time_round_trips(ms: int) -> None:
    """The canonical spelling parses back to the same number of milliseconds."""
    assert parse_time(format_time(ms), "timeout client") == ms


def test_default_server_in_proxy_without_one_in_defaults() -> None:
    """A proxy's default-server resolves when its defaults section has none."""
    d = Proxy(SectionKind.DEFAULTS, "", timeouts=Timeouts(connect=1000))
    b = Proxy(SectionKind.BACKEND, "b", default_server=ServerParams(check=True))
    r = Config(sections=(d, b)).resolve(b)
    assert r.default_server == ServerParams(check=True)
    assert r.timeouts.connect == 1000
