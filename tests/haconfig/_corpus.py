"""The config corpus (``tests/haconfig/corpus/*.cfg``): expectations and materialisation.

Line 1 of every file is ``# expect: clean|warnings|fatal|nolistener``: what HAProxy 2.6
says. Where impala-lb differs on purpose, a ``# deliberate: <verdict> <reason>`` line
gives our verdict. Placeholders (``@CERT@``, ``@CA@``, ``@CERT_ONLY@``) name files a
fixture generates; :func:`materialise` writes a runnable copy with them filled in.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CORPUS = Path(__file__).parent / "corpus"
VERDICTS = ("clean", "warnings", "fatal", "nolistener")

_EXPECT = re.compile(r"^# expect: (\w+)\s*$")
_DELIBERATE = re.compile(r"^# deliberate: (\w+) (.+)$", re.M)


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str  # HAProxy's verdict
    ours: str  # ours (== expect unless deliberate)
    deliberate: str | None

    @property
    def name(self) -> str:
        return self.path.name


def cases() -> list[Case]:
    out = []
    for path in sorted(CORPUS.glob("*.cfg")):
        text = path.read_text(encoding="utf-8")
        m = _EXPECT.match(text.splitlines()[0])
        if m is None or m.group(1) not in VERDICTS:
            raise ValueError(f"{path}: line 1 must be '# expect: <verdict>'")
        d = _DELIBERATE.search(text)
        ours = d.group(1) if d else m.group(1)
        out.append(Case(path, m.group(1), ours, d.group(2) if d else None))
    return out


def make_certs(directory: Path) -> dict[str, str]:
    """A CA, a server cert+key PEM signed by it, and a cert-only PEM: placeholder -> path.

    Built with ``cryptography`` (pyOpenSSL's own X509 builders are deprecated)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str,
        issuer: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca = build("impala-lb test CA", "impala-lb test CA", ca_key, ca_key, True)
    cert = build("localhost", "impala-lb test CA", key, ca_key, False)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files = {
        "@CERT@": ("server.pem", cert_pem + key_pem),
        "@CA@": ("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        "@CERT_ONLY@": ("cert-only.pem", cert_pem),
    }
    out = {}
    for placeholder, (name, data) in files.items():
        target = directory / name
        target.write_bytes(data)
        out[placeholder] = str(target)
    return out


def materialise(case: Case, directory: Path, substitutions: dict[str, str]) -> Path:
    """A copy of the case under ``directory`` (same file name) with placeholders filled."""
    text = case.path.read_text(encoding="utf-8")
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    target = directory / case.name
    target.write_text(text, encoding="utf-8")
    return target
