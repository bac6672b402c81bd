"""impala-lb kerberos-check finds the operator's usual Kerberos mistakes, from real keytabs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance.kerberos_check import Finding, check, main
from tests.support.kdc import Realm

LB = "lb.example.test"


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    r = Realm.start(tmp_path_factory.mktemp("realm"))
    for p in ("impala/lb.example.test", "impala/node1.example.test", "impala/node2.example.test"):
        r.add_service(p)
    yield r
    r.stop()


def _problems(findings: list[Finding]) -> list[str]:
    return [f.text for f in findings if not f.ok]


def _ok_dns(name: str) -> list[str]:
    return ["127.0.0.10"]


def _same_reverse(ip: str) -> str:
    return LB


def _no_kdc(principal: str) -> int | None:
    return None


def test_a_correct_setup_has_no_problems(realm: Realm, tmp_path: Path) -> None:
    """Both keytabs hold the LB key (same kvno) and their own: nothing to report."""
    k1 = realm.export_keytab(tmp_path / "1", "impala/lb.example.test", "impala/node1.example.test")
    k2 = realm.export_keytab(tmp_path / "2", "impala/lb.example.test", "impala/node2.example.test")
    findings = check(
        LB,
        [("node1.example.test", k1), ("node2.example.test", k2)],
        resolve=_ok_dns,
        reverse=_same_reverse,
        kvno=_no_kdc,
    )
    assert _problems(findings) == []


def test_missing_lb_principal_is_named(realm: Realm, tmp_path: Path) -> None:
    """A backend keytab without impala/<lb> is reported with what it does hold."""
    k1 = realm.export_keytab(tmp_path / "1", "impala/node1.example.test")
    problems = _problems(
        check(
            LB, [("node1.example.test", k1)], resolve=_ok_dns, reverse=_same_reverse, kvno=_no_kdc
        )
    )
    assert len(problems) == 1
    assert "missing LB principal impala/lb.example.test@EXAMPLE.TEST" in problems[0]
    assert "impala/node1.example.test@EXAMPLE.TEST" in problems[0]


def test_rerandomised_key_is_caught(realm: Realm, tmp_path: Path) -> None:
    """A plain ktadd that bumps the LB key's kvno on one backend is reported, with both kvnos."""
    k1 = realm.export_keytab(tmp_path / "1", "impala/lb.example.test", "impala/node1.example.test")
    k2 = realm.export_keytab(tmp_path / "2", "impala/node2.example.test")
    realm.rekey("impala/lb.example.test", k2)  # kvno 2 in k2 only; k1 keeps the old key
    problems = _problems(
        check(
            LB,
            [("node1.example.test", k1), ("node2.example.test", k2)],
            resolve=_ok_dns,
            reverse=_same_reverse,
            kvno=lambda p: 2,
        )
    )
    assert any(
        "node1.example.test has kvno 1, node2.example.test has kvno 2" in p for p in problems
    )
    assert any("kvno 2, but node1.example.test hold an older one" in p for p in problems)


def test_reverse_dns_difference_is_explained(realm: Realm, tmp_path: Path) -> None:
    """A PTR record naming another host warns which principal rdns clients would ask for."""
    k1 = realm.export_keytab(tmp_path / "1", "impala/lb.example.test", "impala/node1.example.test")
    problems = _problems(
        check(
            LB,
            [("node1.example.test", k1)],
            resolve=_ok_dns,
            reverse=lambda ip: "ip-127-0-0-10.internal",
            kvno=_no_kdc,
        )
    )
    assert problems == [
        "lb.example.test resolves to 127.0.0.10, whose reverse name is ip-127-0-0-10.internal: "
        "clients with MIT's default 'rdns = true' will ask for "
        "impala/ip-127-0-0-10.internal@EXAMPLE.TEST. Fix the PTR record, or set 'rdns = false' "
        "on clients."
    ]


def test_cli_exit_code_and_output(
    realm: Realm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command exits 1 and prints PROBLEM lines when a keytab lacks the LB key."""
    k1 = realm.export_keytab(tmp_path / "1", "impala/node1.example.test")
    rc = main(["--lb-fqdn", "localhost", "--keytab", f"node1.example.test={k1}"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "PROBLEM: node1.example.test: missing LB principal impala/localhost@EXAMPLE.TEST" in out
