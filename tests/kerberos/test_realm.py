"""The throwaway KDC the Kerberos tests run against works for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import gssapi
import pytest

from tests.support.kdc import Realm


def test_realm_issues_service_tickets_an_acceptor_can_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's ticket for impala/lb.example.test is accepted with the exported keytab."""
    realm = Realm.start(tmp_path / "realm")
    try:
        alice = realm.add_user("alice", "alicepw")
        lb = realm.add_service("impala/lb.example.test")
        keytab = realm.export_keytab(tmp_path / "node1.keytab", "impala/lb.example.test")
        env = realm.kinit("alice", "alicepw")
        klist = subprocess.run(["klist"], env=env, capture_output=True, text=True, timeout=10)
        assert alice in klist.stdout
        # python-gssapi reads krb5.conf and the ccache from this process's environment.
        for key, value in env.items():
            if key.startswith("KRB5"):
                monkeypatch.setenv(key, value)
        target = gssapi.Name(lb, gssapi.NameType.kerberos_principal)
        client = gssapi.SecurityContext(name=target, usage="initiate")
        creds = gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{keytab}"})
        server = gssapi.SecurityContext(creds=creds, usage="accept")
        reply = server.step(client.step())
        if reply:
            client.step(reply)
        assert server.complete
        assert str(server.initiator_name) == alice
        assert str(server.target_name) == lb
    finally:
        realm.stop()
    assert realm.process.poll() is not None
