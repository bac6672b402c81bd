"""--ldap_passwords_file (impala-lb's stand-in for Impala's LDAP): once set, every client
authenticates on every client port, as with Impala's --enable_ldap_auth: NOSASL binary
and Beeswax connections are refused with a clear error, hs2-http without credentials gets
401, and a checked password earns the impala.auth cookie."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from impala.dbapi import connect

from tests.support.impalad import Impalad


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Impalad]:
    tmp = tmp_path_factory.mktemp("passwords")
    secrets = tmp / "passwords"
    secrets.write_text("ann:annpw\n")
    d = Impalad.start(tmp, flags=[f"--ldap_passwords_file={secrets}"])
    try:
        yield d
    finally:
        d.stop()


@pytest.mark.parametrize("port", ["hs2_port", "beeswax_port"])
def test_an_unauthenticated_binary_client_is_refused(guarded: Impalad, port: str) -> None:
    """NOSASL is refused on the HS2 and Beeswax ports, telling the user what to do."""
    conn = connect(host=guarded.host, port=getattr(guarded, port), timeout=20)
    with pytest.raises(Exception, match=r"requires SASL authentication.*user and password"):
        try:
            cur = conn.cursor()
            cur.execute("select 1")
        finally:
            conn.close()


def test_plain_with_the_password_works_and_a_wrong_one_does_not(guarded: Impalad) -> None:
    conn = connect(
        host=guarded.host,
        port=guarded.hs2_port,
        auth_mechanism="PLAIN",
        user="ann",
        password="annpw",
        timeout=20,
    )
    try:
        cur = conn.cursor()
        cur.execute("select effective_user()")
        assert cur.fetchall() == [("ann",)]
    finally:
        conn.close()
    with pytest.raises(Exception):  # noqa: B017 (impyla raises its transport's error)
        bad = connect(
            host=guarded.host,
            port=guarded.hs2_port,
            auth_mechanism="PLAIN",
            user="ann",
            password="wrong",
            timeout=20,
        )
        bad.cursor()


def test_hs2_http_needs_credentials_and_gives_a_cookie(guarded: Impalad) -> None:
    url = f"http://{guarded.http_address}/cliservice"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x"), timeout=10)
    assert refused.value.code == 401
    auth = "Basic " + base64.b64encode(b"ann:annpw").decode()
    request = urllib.request.Request(url, data=b"x", headers={"Authorization": auth})
    with pytest.raises(urllib.error.HTTPError) as answered:  # authenticated: a bad body
        urllib.request.urlopen(request, timeout=10)
    assert answered.value.code == 400
    cookies = answered.value.headers.get_all("Set-Cookie") or []
    assert any(c.startswith("impala.auth=") for c in cookies), cookies


def test_the_password_file_is_read_from_where_it_is_given(tmp_path: Path) -> None:
    """An unreadable password file stops the daemon at start, naming it."""
    with pytest.raises(RuntimeError):
        Impalad.start(tmp_path, flags=[f"--ldap_passwords_file={tmp_path / 'missing'}"])
    log = (tmp_path / "impalad-127.0.0.1.log").read_text()
    assert str(tmp_path / "missing") in log
