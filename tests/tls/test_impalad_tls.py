"""impalad over TLS with a throwaway CA: the real impala-shell (--ssl --ca_cert) and impyla on
HS2 binary and hs2-http, HTTPS on the web server, Kerberos over TLS, and TLS passed through
the real balancer."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from impala.dbapi import connect

from backends.impalad.tls import TlsError, server_options
from tests.support.certs import CA, Leaf, make_ca
from tests.support.impalad import Balancer, Impalad, run_shell
from tests.support.kdc import Realm

pytestmark = pytest.mark.timeout(120)

HOST = "127.0.0.101"
HOST2 = "127.0.0.102"


class Secured:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ca: CA = make_ca(tmp / "ca")
        self.impalads: list[Impalad] = []

    def leaf(self, host: str) -> Leaf:
        # 127.0.0.1 too: clients that come through the balancer check the balancer's address.
        return self.ca.issue(self.tmp / "certs", host, [host, "127.0.0.1", "lb.example.test"])

    def start(self, host: str, *extra: str, env: dict[str, str] | None = None) -> Impalad:
        leaf = self.leaf(host)
        d = Impalad.start(
            self.tmp / host,
            host=host,
            env=env,
            flags=[
                f"--ssl_server_certificate={leaf.cert}",
                f"--ssl_private_key={leaf.key}",
                f"--webserver_certificate_file={leaf.cert}",
                f"--webserver_private_key_file={leaf.key}",
                *extra,
            ],
        )
        self.impalads.append(d)
        return d

    def stop(self) -> None:
        for d in self.impalads:
            d.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    s = Secured(tmp_path_factory.mktemp("tls"))
    try:
        s.start(HOST)
        s.start(HOST2)
        yield s
    finally:
        s.stop()


def test_shell_ssl_with_ca_cert(tls: Secured) -> None:
    """impala-shell --ssl --ca_cert verifies impalad's certificate and runs a query."""
    d = tls.impalads[0]
    out = run_shell(["--ssl", "--ca_cert", str(tls.ca.cert), "-i", d.hs2_address, "-q", "select 5"])
    assert out.returncode == 0, out.stderr
    assert "| 5 " in out.stdout


def test_impyla_use_ssl_with_ca_cert(tls: Secured) -> None:
    """impyla use_ssl=True with ca_cert runs a query over TLS."""
    d = tls.impalads[0]
    conn = connect(host=d.host, port=d.hs2_port, use_ssl=True, ca_cert=str(tls.ca.cert), timeout=20)
    try:
        cur = conn.cursor()
        cur.execute("select 6")
        assert cur.fetchall() == [(6,)]
    finally:
        conn.close()


def test_hs2_http_over_tls(tls: Secured) -> None:
    """impala-shell --protocol hs2-http --ssl --ca_cert works against the hs2-http port."""
    d = tls.impalads[0]
    out = run_shell(
        [
            "--protocol",
            "hs2-http",
            "--ssl",
            "--ca_cert",
            str(tls.ca.cert),
            "-i",
            d.http_address,
            "-q",
            "select 8",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert "| 8 " in out.stdout


def test_web_server_speaks_https_and_backends_say_so(tls: Secured) -> None:
    """With --webserver_certificate_file the web server answers HTTPS and lists an https URL."""
    d = tls.impalads[0]
    context = ssl.create_default_context(cafile=str(tls.ca.cert))
    base = f"https://{d.host}:{d.webserver_port}"
    with urllib.request.urlopen(base + "/healthz", timeout=10, context=context) as answer:
        assert answer.read() == b"OK\n"
    with urllib.request.urlopen(base + "/backends?json", timeout=10, context=context) as answer:
        entry = json.loads(answer.read())["backends"][0]
    assert entry["webserver_url"] == base


def test_a_plaintext_client_fails_and_the_daemon_goes_on(tls: Secured) -> None:
    """Plain Thrift bytes on the TLS port close that connection; TLS clients still work."""
    d = tls.impalads[1]
    with socket.create_connection((d.host, d.hs2_port), timeout=5) as s:
        s.sendall(b"\x80\x01\x00\x01\x00\x00\x00\x0bOpenSession\x00\x00\x00\x01\x00")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"\x80\x01")  # never a Thrift reply in the clear
    out = run_shell(["--ssl", "--ca_cert", str(tls.ca.cert), "-i", d.hs2_address, "-q", "select 9"])
    assert out.returncode == 0, out.stderr


def test_tls_passthrough_through_the_balancer(tls: Secured) -> None:
    """TLS passes through impala-lb untouched: the shell verifies the impalads' certificates."""
    lb = Balancer.start(
        tls.tmp / "lb", [(d.host, d.hs2_port, 0) for d in tls.impalads], check=False
    )
    try:
        for _ in range(2):
            out = run_shell(
                ["--ssl", "--ca_cert", str(tls.ca.cert), "-i", lb.address, "-q", "select 10"]
            )
            assert out.returncode == 0, out.stderr
            assert "| 10 " in out.stdout
    finally:
        lb.stop()


def test_kerberos_over_tls(tmp_path: Path) -> None:
    """impala-shell -k --ssl --ca_cert: SASL GSSAPI inside TLS authenticates alice."""
    realm = Realm.start(tmp_path / "realm")
    s = Secured(tmp_path)
    try:
        realm.add_user("alice", "alicepw")
        realm.add_service("impala/lb.example.test")
        keytab = realm.export_keytab(tmp_path / "lb.keytab", "impala/lb.example.test")
        env = realm.kinit("alice", "alicepw")
        d = s.start(
            "127.0.0.103",
            "--principal=impala/lb.example.test@EXAMPLE.TEST",
            f"--keytab_file={keytab}",
            env=realm.env,
        )
        out = run_shell(
            [
                "-k",
                "--ssl",
                "--ca_cert",
                str(s.ca.cert),
                "-i",
                d.hs2_address,
                "-b",
                "lb.example.test",
                "-q",
                "select user()",
            ],
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert "alice@EXAMPLE.TEST" in out.stdout
    finally:
        s.stop()
        realm.stop()


def test_mismatched_key_is_refused_at_startup(tmp_path: Path) -> None:
    """A private key that does not belong to the certificate is a clear start-up error."""
    ca = make_ca(tmp_path / "ca")
    one = ca.issue(tmp_path, "one", ["127.0.0.1"])
    two = ca.issue(tmp_path, "two", ["127.0.0.1"])
    with pytest.raises(TlsError, match="does not match the certificate"):
        server_options(str(one.cert), str(two.key))
    with pytest.raises(TlsError, match="cannot read certificate"):
        server_options(str(tmp_path / "missing.crt"), str(one.key))
    with pytest.raises(TlsError, match="unknown TLS version"):
        server_options(str(one.cert), str(one.key), "sslv3")
    assert server_options(str(one.combined), str(one.key)) is not None


def test_membership_over_tls_with_a_tls_statestore(tmp_path: Path) -> None:
    """With Impala's TLS flags on both, impalad registers with statestored over TLS and keeps
    getting its heartbeats (the statestore's calls back are TLS too)."""
    from tests.statestore.procs import TIMING, Statestored
    from tests.support.impalad import free_ports
    from tests.support.procs import wait_for

    s = Secured(tmp_path)  # one CA for every daemon
    store = Statestored(0, tmp_path)
    store_leaf = s.ca.issue(tmp_path / "certs", "statestored", [store.host])
    tls_of = [f"--ssl_client_ca_certificate={s.ca.cert}"]
    store.start(
        None,
        f"--ssl_server_certificate={store_leaf.cert}",
        f"--ssl_private_key={store_leaf.key}",
        *tls_of,
    )
    try:
        d = s.start(
            "127.0.0.104",
            f"--state_store_host={store.host}",
            f"--state_store_port={store.port}",
            f"--state_store_subscriber_port={free_ports('127.0.0.104')[0]}",
            *tls_of,
            *TIMING,
        )
        context = ssl.create_default_context(cafile=str(s.ca.cert))

        def registered() -> bool:
            url = f"https://{d.host}:{d.webserver_port}/backends?json"
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:
                doc = json.loads(answer.read())
            return any(stub["is_primary"] for stub in doc["statestore"])

        wait_for("registration over TLS", registered, timeout=20)
        time.sleep(1.0)  # longer than 5 missed heartbeats: the statestore's calls arrive too
        url = f"https://{d.host}:{d.webserver_port}/jsonmetrics"
        with urllib.request.urlopen(url, timeout=2, context=context) as answer:
            assert json.loads(answer.read())["statestore-subscriber.connected"] is True
    finally:
        s.stop()
        if store.proc is not None:
            store.proc.stop()
