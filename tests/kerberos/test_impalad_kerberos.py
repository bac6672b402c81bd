"""impalad with Kerberos against a real MIT KDC: the real impala-shell (-k, Cyrus SASL and
pykerberos SPNEGO) and impyla (GSSAPI), directly and through the real balancer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from impala.dbapi import connect

from tests.support.impalad import Balancer, Impalad, run_shell
from tests.support.kdc import Realm

pytestmark = pytest.mark.timeout(120)

LB = "impala/lb.example.test@EXAMPLE.TEST"
NODES = {"127.0.0.91": "node1.example.test", "127.0.0.92": "node2.example.test"}


class Kerberized:
    """A realm, alice's ticket, and two Kerberized impalads sharing the LB principal's key."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.realm = Realm.start(tmp / "realm")
        self.impalads: list[Impalad] = []
        self.realm.add_user("alice", "alicepw")
        self.realm.add_service("impala/lb.example.test")
        self.realm.add_service("impala/rogue.example.test")  # in the KDC, in no keytab
        for name in NODES.values():
            self.realm.add_service(f"impala/{name}")
        self.env = self.realm.kinit("alice", "alicepw")

    def start(self, host: str, *extra: str) -> Impalad:
        name = NODES[host]
        keytab = self.realm.export_keytab(
            self.tmp / f"{name}.keytab", "impala/lb.example.test", f"impala/{name}"
        )
        d = Impalad.start(
            self.tmp / name,
            host=host,
            env=self.realm.env,
            flags=[
                f"--hostname={name}",
                f"--principal={LB}",
                "--be_principal=impala/_HOST@EXAMPLE.TEST",
                f"--keytab_file={keytab}",
                *extra,
            ],
        )
        self.impalads.append(d)
        return d

    def stop(self) -> None:
        for d in self.impalads:
            d.stop()
        self.realm.stop()


@pytest.fixture(scope="module")
def krb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kerberized]:
    k = Kerberized(tmp_path_factory.mktemp("krb"))
    try:
        for host in NODES:
            k.start(host)
        yield k
    finally:
        k.stop()


def shell(krb: Kerberized, *args: str) -> Any:
    return run_shell(list(args), env=krb.env, timeout=60)


def users_seen(d: Impalad) -> list[str]:
    """Who ran queries on ``d`` (the effective user of each completed query)."""
    doc = json.loads(d.get("/queries?json")[1])
    return [q["effective_user"] for q in doc["completed_queries"] if "user()" in q["stmt"]]


@pytest.fixture
def impyla_env(krb: Kerberized, monkeypatch: pytest.MonkeyPatch) -> None:
    """impyla reads the ticket cache and krb5.conf from this process's environment."""
    for key, value in krb.env.items():
        if key.startswith("KRB5"):
            monkeypatch.setenv(key, value)


def test_shell_k_with_b_authenticates_and_user_is_the_principal(krb: Kerberized) -> None:
    """impala-shell -k -b lb.example.test runs a query whose user() is alice's principal."""
    d = krb.impalads[0]
    out = shell(krb, "-k", "-i", d.hs2_address, "-b", "lb.example.test", "-q", "select user()")
    assert out.returncode == 0, out.stderr
    assert "alice@EXAMPLE.TEST" in out.stdout


def test_shell_k_with_the_node_principal_also_works(krb: Kerberized) -> None:
    """A direct client naming the node's own principal (--be_principal) is accepted too."""
    d = krb.impalads[1]
    out = shell(krb, "-k", "-i", d.hs2_address, "-b", NODES[d.host], "-q", "select 7")
    assert out.returncode == 0, out.stderr
    assert "| 7 " in out.stdout


def test_impyla_gssapi_with_krb_host(krb: Kerberized, impyla_env: None) -> None:
    """impyla auth_mechanism='GSSAPI' with krb_host authenticates; effective_user() is alice."""
    d = krb.impalads[0]
    conn = connect(
        host=d.host,
        port=d.hs2_port,
        auth_mechanism="GSSAPI",
        kerberos_service_name="impala",
        krb_host="lb.example.test",
        timeout=20,
    )
    try:
        cur = conn.cursor()
        cur.execute("select effective_user()")
        assert cur.fetchall() == [("alice@EXAMPLE.TEST",)]
    finally:
        conn.close()


def test_wrong_principal_is_refused_clearly_and_others_are_unaffected(
    krb: Kerberized, impyla_env: None
) -> None:
    """A ticket for a principal the keytab lacks gets an error naming both; the daemon logs it
    once without a traceback, and an open session on it keeps working."""
    d = krb.impalads[1]
    conn = connect(
        host=d.host,
        port=d.hs2_port,
        auth_mechanism="GSSAPI",
        krb_host="lb.example.test",
        timeout=20,
    )
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        assert cur.fetchall() == [(1,)]
        out = shell(krb, "-k", "-i", d.hs2_address, "-b", "rogue.example.test", "-q", "select 1")
        assert out.returncode != 0
        text = out.stdout + out.stderr
        assert "impala/rogue.example.test@EXAMPLE.TEST not found in keytab" in text
        assert "the keytab holds impala/lb.example.test@EXAMPLE.TEST (kvno 1)" in text
        cur.execute("select 2")
        assert cur.fetchall() == [(2,)]
    finally:
        conn.close()
    log = d.log.read_text()
    assert log.count("rogue.example.test") == 1, log[-2000:]
    assert "Traceback" not in log
    again = shell(krb, "-k", "-i", d.hs2_address, "-b", "lb.example.test", "-q", "select 3")
    assert again.returncode == 0, again.stderr


def test_unauthenticated_client_is_told_to_use_kerberos(krb: Kerberized) -> None:
    """A NOSASL client on a Kerberized impalad gets an error saying Kerberos is required."""
    d = krb.impalads[0]
    conn = connect(host=d.host, port=d.hs2_port, timeout=20)
    with pytest.raises(Exception, match="requires SASL authentication"):
        try:
            conn.cursor()
        finally:
            conn.close()


def test_spnego_on_hs2_http(krb: Kerberized) -> None:
    """impala-shell -k --protocol hs2-http authenticates with Negotiate; user() is alice."""
    d = krb.impalads[0]
    out = shell(
        krb,
        "-k",
        "--protocol",
        "hs2-http",
        "-i",
        d.http_address,
        "-b",
        "lb.example.test",
        "-q",
        "select user()",
    )
    assert out.returncode == 0, out.stderr
    assert "alice@EXAMPLE.TEST" in out.stdout


def test_impyla_over_hs2_http_authenticates_once_then_uses_the_cookie(
    krb: Kerberized, impyla_env: None
) -> None:
    """impyla GSSAPI over hs2-http: SPNEGO on the first call earns the impala.auth cookie,
    and the session's later calls ride it (no Kerberos handshake per call)."""
    d = krb.impalads[0]
    prefix = "impala.thrift-server.hiveserver2-http-frontend.total-cookie-auth"

    def metric(name: str) -> int:
        return int(json.loads(d.get("/jsonmetrics?json")[1])[f"{prefix}-{name}"])

    before = metric("success")
    conn = connect(
        host=d.host,
        port=d.hs2_http_port,
        use_http_transport=True,
        http_path="cliservice",
        auth_mechanism="GSSAPI",
        kerberos_service_name="impala",
        krb_host="lb.example.test",
        timeout=20,
    )
    try:
        cur = conn.cursor()
        for i in range(3):
            cur.execute(f"select effective_user(), {i}")
            assert cur.fetchall() == [("alice@EXAMPLE.TEST", i)]
    finally:
        conn.close()
    # OpenSession authenticated with Negotiate; at least the 3 x (execute, status, fetch,
    # close) calls after it came with the cookie
    assert metric("success") - before >= 12
    assert metric("failure") == 0


def test_hs2_http_without_credentials_is_401_with_negotiate(krb: Kerberized) -> None:
    """An hs2-http POST without Authorization gets 401 and a Negotiate challenge."""
    import urllib.error
    import urllib.request

    d = krb.impalads[0]
    request = urllib.request.Request(f"http://{d.http_address}/cliservice", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 401
    assert "Negotiate" in (err.value.headers.get_all("WWW-Authenticate") or [])


def test_kerberos_passthrough_through_the_balancer_round_robin(krb: Kerberized) -> None:
    """impala-shell -k -b lb.example.test through impala-lb reaches both impalads in turn,
    each time authenticated as alice."""
    lb = Balancer.start(
        krb.tmp / "lb", [(d.host, d.hs2_port, d.webserver_port) for d in krb.impalads]
    )
    try:
        before = [len(users_seen(d)) for d in krb.impalads]
        for _ in range(4):
            out = shell(krb, "-k", "-i", lb.address, "-b", "lb.example.test", "-q", "select user()")
            assert out.returncode == 0, out.stderr
            assert "alice@EXAMPLE.TEST" in out.stdout
        for d, n in zip(krb.impalads, before, strict=True):
            seen = users_seen(d)  # newest first
            assert len(seen) - n == 2, (d.host, seen)
            assert seen[:2] == ["alice@EXAMPLE.TEST"] * 2, (d.host, seen)
    finally:
        lb.stop()


def test_impyla_gssapi_through_the_balancer(krb: Kerberized, impyla_env: None) -> None:
    """impyla GSSAPI with krb_host=<lb> through impala-lb: every new connection authenticates,
    the connections reach both impalads, and the session user is the client principal."""
    lb = Balancer.start(
        krb.tmp / "lb-impyla", [(d.host, d.hs2_port, d.webserver_port) for d in krb.impalads]
    )
    try:
        before = [len(users_seen(d)) for d in krb.impalads]
        for _ in range(4):
            conn = connect(
                host="127.0.0.1",
                port=lb.port,
                auth_mechanism="GSSAPI",
                kerberos_service_name="impala",
                krb_host="lb.example.test",
                timeout=20,
            )
            try:
                cur = conn.cursor()
                cur.execute("select effective_user()")
                assert cur.fetchall() == [("alice@EXAMPLE.TEST",)]
            finally:
                conn.close()
        ran = [len(users_seen(d)) - n for d, n in zip(krb.impalads, before, strict=True)]
        assert sum(ran) == 4 and min(ran) >= 1, ran
    finally:
        lb.stop()


def test_principal_missing_from_keytab_is_a_startup_error(krb: Kerberized) -> None:
    """An impalad whose --principal is not in its keytab exits at once with a clear message."""
    keytab = krb.realm.export_keytab(krb.tmp / "only-node1.keytab", "impala/node1.example.test")
    with pytest.raises(RuntimeError, match=r"has no key for impala/lb\.example\.test"):
        Impalad.start(
            krb.tmp / "bad",
            host="127.0.0.93",
            env=krb.realm.env,
            flags=[f"--principal={LB}", f"--keytab_file={keytab}"],
            timeout=20,
        )
