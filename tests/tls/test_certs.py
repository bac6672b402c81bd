"""The test CA's certificates verify with OpenSSL for the names they were issued for."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.certs import make_ca


def test_leaf_verifies_against_the_ca_for_its_names(tmp_path: Path) -> None:
    """openssl verify accepts the leaf for its DNS name and IP, and refuses another name."""
    ca = make_ca(tmp_path)
    leaf = ca.issue(tmp_path, "lb", ["lb.example.test", "127.0.0.1"])
    base = ["openssl", "verify", "-CAfile", str(ca.cert)]
    ok = subprocess.run(
        [*base, "-verify_hostname", "lb.example.test", str(leaf.cert)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ip = subprocess.run(
        [*base, "-verify_ip", "127.0.0.1", str(leaf.cert)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ip.returncode == 0, ip.stdout + ip.stderr
    bad = subprocess.run(
        [*base, "-verify_hostname", "other.example.test", str(leaf.cert)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0
    assert leaf.combined.read_bytes() == leaf.cert.read_bytes() + leaf.key.read_bytes()
