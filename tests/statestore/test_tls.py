"""TLS on the internal RPC: a real statestored and subscriber with a throwaway cert."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backends.common.rpc import RegisterSubscriber, RpcError, call_blocking
from tests.statestore.procs import Statestored, Subscriber
from tests.support.procs import wait_for

pytestmark = pytest.mark.timeout(60)


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed cert for the loopback addresses (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impala-lb test")])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName("localhost")] + [
        x509.IPAddress(ipaddress.ip_address(f"127.0.0.{i}")) for i in (1, 2, 3)
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_procs(tmp_path: Path) -> Iterator[tuple[Statestored, Subscriber]]:
    cert, key = self_signed(tmp_path)
    tls = (
        f"--ssl_server_certificate={cert}",
        f"--ssl_private_key={key}",
        f"--ssl_client_ca_certificate={cert}",
    )
    store = Statestored(0, tmp_path)
    store.start(None, *tls)
    sub = Subscriber("tls0", [store], tmp_path, *tls)
    try:
        yield store, sub
    finally:
        sub.proc.stop()
        if store.proc is not None:
            store.proc.stop()


def test_registration_and_updates_over_tls(tls_procs: tuple[Statestored, Subscriber]) -> None:
    """With TLS flags on both sides the subscriber registers, is heartbeated and gets
    its own membership entry back; a plaintext client gets no answer."""
    store, sub = tls_procs
    wait_for("membership over TLS", lambda: sub.membership() == ["tls0"], timeout=15)
    assert store.metrics()["statestore.live-backends"] == 1
    with pytest.raises((RpcError, OSError)):
        call_blocking(
            store.host,
            store.port,
            RegisterSubscriber,
            timeout=1.0,
            protocol_version=2,
            subscriber_id="plain",
            subscriber_location="127.0.0.1:1",
            subscriber_type="EXECUTOR",
            topic_registrations=[],
        )
