"""TLS for impalad's listeners, from Impala's flags, via pyOpenSSL (``twisted.internet.ssl``).

``--ssl_server_certificate`` (PEM; the leaf first, any intermediates after it) and
``--ssl_private_key`` turn TLS on for the HS2 binary and hs2-http ports, as in
Impala; the web server has its own pair, ``--webserver_certificate_file`` and
``--webserver_private_key_file``, also as in Impala. ``--ssl_minimum_version``
(``tlsv1.2`` by default, Impala's default) bounds the protocol version.
``--ssl_client_ca_certificate`` is the CA impalad trusts when *it* connects over
TLS (the statestore links); clients are not asked for certificates, as in Impala.

Everything is loaded and checked once, at start-up: a missing file, a key that
does not match the certificate or an unknown version is a clear error then,
never a failed handshake later.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from OpenSSL import SSL, crypto
from twisted.internet import ssl

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.DOTALL)

VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1_0,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsError(ValueError):
    """The TLS files or settings cannot be used; the message says which and why."""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TlsError(f"cannot read {what} {path!r}: {e.strerror}") from None


def server_options(
    certificate: str, private_key: str, minimum_version: str = "tlsv1.2"
) -> ssl.CertificateOptions:
    """Checked server-side TLS options for a certificate chain file and its key."""
    if not certificate or not private_key:
        raise TlsError("a TLS certificate and its private key go together")
    version = VERSIONS.get(minimum_version.strip().lower())
    if version is None:
        raise TlsError(f"unknown TLS version {minimum_version!r}; use one of {', '.join(VERSIONS)}")
    pems = _PEM_CERT.findall(_read(certificate, "certificate"))
    if not pems:
        raise TlsError(f"{certificate!r} holds no PEM certificate")
    try:
        chain = [crypto.load_certificate(crypto.FILETYPE_PEM, pem) for pem in pems]
    except crypto.Error as e:
        raise TlsError(f"bad certificate in {certificate!r}: {e}") from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, _read(private_key, "private key"))
    except crypto.Error as e:
        raise TlsError(f"bad private key in {private_key!r}: {e}") from None
    options = ssl.CertificateOptions(
        privateKey=key,
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=version,
    )
    try:
        # Loads both and checks that the key matches the certificate; the context is
        # cached, so this is the only call. (Twisted hands pyOpenSSL X509/PKey objects,
        # which pyOpenSSL now warns about; that is Twisted's business, not the operator's.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            options.getContext()
    except SSL.Error as e:
        raise TlsError(
            f"the private key {private_key!r} does not match the certificate {certificate!r}: {e}"
        ) from None
    return options
