"""Choosing the backend: use_backend rules over layer-4 acls, then default_backend (spec 1.11)."""

from __future__ import annotations

from haconfig.model import Acl, AclTerm, Condition, Proxy, SectionKind, UseBackend
from proxy.routing import ConnInfo, Router


def _conn(src: str = "10.1.2.3", dst_port: int = 5000) -> ConnInfo:
    return ConnInfo(src=src, src_port=40000, dst="127.0.0.1", dst_port=dst_port)


def _term(name: str, negated: bool = False) -> AclTerm:
    return AclTerm(negated=negated, name=name)


def _fe(*rules: UseBackend, acls: tuple[Acl, ...] = (), default: str | None = "dflt") -> Proxy:
    return Proxy(SectionKind.FRONTEND, "fe", acls=acls, use_backends=rules, default_backend=default)


def test_src_network_acl_routes() -> None:
    """An acl on src with a CIDR sends matching clients to its backend, others to default."""
    acl = Acl("lan", "src", patterns=("10.0.0.0/8", "192.168.1.1"))
    r = Router(_fe(UseBackend("lanbe", Condition(False, ((_term("lan"),),))), acls=(acl,)))
    assert r.choose(_conn("10.9.9.9")) == "lanbe"
    assert r.choose(_conn("192.168.1.1")) == "lanbe"
    assert r.choose(_conn("172.16.0.1")) == "dflt"


def test_negation_or_and_unless() -> None:
    """``!`` negates, ``||`` ORs alternatives, juxtaposition ANDs, ``unless`` inverts."""
    acls = (
        Acl("lan", "src", patterns=("10.0.0.0/8",)),
        Acl("hs2", "dst_port", patterns=("21050",)),
        Acl("web", "dst_port", patterns=("25000:25010",)),
    )
    cond_or = Condition(False, ((_term("hs2"),), (_term("web"),)))
    cond_and_not = Condition(False, ((_term("lan", negated=True), _term("hs2")),))
    r = Router(_fe(UseBackend("wan_hs2", cond_and_not), UseBackend("ports", cond_or), acls=acls))
    assert r.choose(_conn("8.8.8.8", 21050)) == "wan_hs2"
    assert r.choose(_conn("10.0.0.1", 21050)) == "ports"
    assert r.choose(_conn("10.0.0.1", 25005)) == "ports"
    assert r.choose(_conn("10.0.0.1", 26000)) == "dflt"
    unless = Router(_fe(UseBackend("u", Condition(True, ((_term("lan"),),))), acls=acls))
    assert unless.choose(_conn("10.0.0.1")) == "dflt"
    assert unless.choose(_conn("8.8.8.8")) == "u"


def test_anonymous_acl_and_always() -> None:
    """Anonymous ``{ src ... }`` terms and always_true/always_false evaluate in place."""
    anon = AclTerm(negated=False, anonymous=Acl("", "src", patterns=("127.0.0.0/8",)))
    never = AclTerm(negated=False, anonymous=Acl("", "always_false"))
    always = AclTerm(negated=False, anonymous=Acl("", "always_true"))
    r = Router(
        _fe(
            UseBackend("never", Condition(False, ((never,),))),
            UseBackend("local", Condition(False, ((anon,),))),
            UseBackend("rest", Condition(False, ((always,),))),
        )
    )
    assert r.choose(_conn("127.0.0.5")) == "local"
    assert r.choose(_conn("10.0.0.5")) == "rest"


def test_content_acl_never_matches_and_no_default() -> None:
    """A content fetch sees an empty buffer (never matches); no default means no backend."""
    acl = Acl("static", "path_beg", patterns=("/static",))
    r = Router(
        _fe(UseBackend("s", Condition(False, ((_term("static"),),))), acls=(acl,), default=None)
    )
    assert r.choose(_conn()) is None


def test_listen_section_is_its_own_backend() -> None:
    """A listen section with no default_backend uses its own servers."""
    assert Router(Proxy(SectionKind.LISTEN, "l")).choose(_conn()) == "l"
