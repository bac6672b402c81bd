"""impalad's SASL GSSAPI mechanism against tickets from a real KDC."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import gssapi
import pytest

from backends.common.keytab import principals, read_keytab
from backends.impalad.gssapi_auth import expand_host, gssapi_mechanism
from backends.impalad.sasl import AuthenticationError, Mechanism
from tests.support.kdc import Realm


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    r = Realm.start(tmp_path_factory.mktemp("realm"))
    r.add_user("alice", "alicepw")
    r.add_service("impala/lb.example.test")
    r.add_service("impala/node1.example.test")
    r.add_service("impala/rogue.example.test")
    yield r
    r.stop()


@pytest.fixture
def krb_env(realm: Realm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    env = realm.kinit("alice", "alicepw", ccache=tmp_path / "cc")
    for key, value in env.items():
        if key.startswith("KRB5"):
            monkeypatch.setenv(key, value)
    keytab = tmp_path / "node1.keytab"
    realm.export_keytab(keytab, "impala/lb.example.test", "impala/node1.example.test")
    return keytab


def _handshake(mech: Mechanism, service: str, authzid: bytes = b"") -> str:
    """Drive a python-gssapi client through the RFC 4752 exchange; return the user."""
    name = gssapi.Name(f"{service}@EXAMPLE.TEST", gssapi.NameType.kerberos_principal)
    ctx = gssapi.SecurityContext(name=name, usage="initiate")
    step = mech.step(ctx.step())
    while not step.complete:
        if not ctx.complete:
            out = ctx.step(step.challenge)
            step = mech.step(out or b"")
            continue
        if step.challenge:
            offer = ctx.unwrap(step.challenge).message
            assert offer[0] == 0x01, "only 'no security layer' is offered"
            choice = struct.pack(">I", (0x01 << 24) | 0) + authzid
            step = mech.step(ctx.wrap(choice, False).message)
        else:
            step = mech.step(b"")
    assert step.user is not None
    return step.user


@pytest.mark.parametrize("service", ["impala/lb.example.test", "impala/node1.example.test"])
def test_both_the_lb_and_the_own_principal_are_accepted(krb_env: Path, service: str) -> None:
    """A ticket for the balancer's principal or the daemon's own one authenticates alice."""
    assert _handshake(gssapi_mechanism(krb_env)(), service) == "alice@EXAMPLE.TEST"


def test_authzid_equal_to_the_principal_is_accepted(krb_env: Path) -> None:
    """pure-sasl sends the principal as authzid; that is the same user and is fine."""
    user = _handshake(gssapi_mechanism(krb_env)(), "impala/lb.example.test", b"alice@EXAMPLE.TEST")
    assert user == "alice@EXAMPLE.TEST"


def test_authzid_naming_someone_else_is_refused(krb_env: Path) -> None:
    """Acting as another user through the authzid is refused."""
    with pytest.raises(AuthenticationError, match="may not act as bob"):
        _handshake(gssapi_mechanism(krb_env)(), "impala/lb.example.test", b"bob")


def test_wrong_principal_is_refused_naming_what_the_keytab_holds(krb_env: Path) -> None:
    """A ticket for a principal not in the keytab fails with both names in the message."""
    with pytest.raises(AuthenticationError) as info:
        _handshake(gssapi_mechanism(krb_env)(), "impala/rogue.example.test")
    text = str(info.value)
    assert "impala/rogue.example.test@EXAMPLE.TEST" in text
    assert "impala/lb.example.test@EXAMPLE.TEST (kvno 1)" in text
    assert "impala/node1.example.test@EXAMPLE.TEST (kvno 1)" in text


def test_garbage_token_is_refused_not_crashed(krb_env: Path) -> None:
    """Bytes that are no GSS token give an authentication error."""
    with pytest.raises(AuthenticationError, match="GSSAPI"):
        gssapi_mechanism(krb_env)().step(b"\x00garbage")


def test_keytab_reader_sees_principals_and_kvno_bumps(realm: Realm, tmp_path: Path) -> None:
    """The keytab reader lists principals and notices a re-randomised key's higher kvno."""
    kt = realm.export_keytab(tmp_path / "a.keytab", "impala/node1.example.test")
    assert principals(read_keytab(kt)) == {"impala/node1.example.test@EXAMPLE.TEST": 1}
    realm.add_service("impala/rekey.example.test")
    other = tmp_path / "b.keytab"
    realm.rekey("impala/rekey.example.test", other)
    assert principals(read_keytab(other))["impala/rekey.example.test@EXAMPLE.TEST"] == 2


def test_host_expansion() -> None:
    """_HOST becomes the given host name in lower case; other principals are untouched."""
    assert expand_host("impala/_HOST@R", "Node1.Example.Test") == "impala/node1.example.test@R"
    assert expand_host("impala/lb@R", "x") == "impala/lb@R"
