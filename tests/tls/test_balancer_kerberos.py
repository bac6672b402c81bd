"""Kerberos inside TLS that the balancer terminates: GSSAPI still ends at impalad.

A real MIT KDC, a Kerberized plain impalad and a Kerberized TLS impalad sharing the
LB principal's key, and ``impala-shell -k --ssl --ca_cert -b lb.example.test``
through ``bind ... ssl crt`` (offload) and through ``server ... ssl ca-file``
(bridging). The balancer holds no keytab: it never sees inside SASL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import make_ca
from tests.support.impalad import Impalad, free_ports, run_shell
from tests.support.kdc import Realm
from tests.support.procs import accepts, stop_pid, wait_for

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent / "impala-lb"
LB = "impala/lb.example.test@EXAMPLE.TEST"
PLAIN = ("127.0.0.131", "node31.example.test")
SECURE = ("127.0.0.132", "node32.example.test")


@dataclass
class Rig:
    ca: Path
    env: dict[str, str]
    offload: int
    bridge: int


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("krbtls")
    realm = Realm.start(tmp / "realm")
    daemons: list[Impalad] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        realm.add_user("alice", "alicepw")
        realm.add_service("impala/lb.example.test")
        ca = make_ca(tmp / "ca")
        lb = ca.issue(tmp / "certs", "lb", ["lb.example.test", "127.0.0.1"])
        for (host, name), tls in ((PLAIN, False), (SECURE, True)):
            realm.add_service(f"impala/{name}")
            keytab = realm.export_keytab(
                tmp / f"{name}.keytab", "impala/lb.example.test", f"impala/{name}"
            )
            flags = [
                f"--hostname={name}",
                f"--principal={LB}",
                "--be_principal=impala/_HOST@EXAMPLE.TEST",
                f"--keytab_file={keytab}",
            ]
            if tls:
                leaf = ca.issue(tmp / "certs", name, [name, host])
                flags += [f"--ssl_server_certificate={leaf.cert}", f"--ssl_private_key={leaf.key}"]
            daemons.append(Impalad.start(tmp / name, host=host, env=realm.env, flags=flags))
        offload, bridge = free_ports("127.0.0.1", 2)
        cfg = tmp / "lb.cfg"
        cfg.write_text(
            f"""global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend offload
    bind 127.0.0.1:{offload} ssl crt {lb.combined}
    default_backend kplain
backend kplain
    server k1 {PLAIN[0]}:{daemons[0].hs2_port}
frontend bridge
    bind 127.0.0.1:{bridge} ssl crt {lb.combined}
    default_backend ktls
backend ktls
    server k2 {SECURE[0]}:{daemons[1].hs2_port} ssl verify required ca-file {ca.cert}
"""
        )
        proc = subprocess.Popen([str(BIN), "-f", str(cfg)], stderr=subprocess.DEVNULL)
        wait_for("the balancer listening", lambda: accepts("127.0.0.1", bridge), 15)
        yield Rig(ca.cert, realm.kinit("alice", "alicepw"), offload, bridge)
    finally:
        if proc is not None:
            stop_pid(proc, signal.SIGTERM, timeout=10, kill_timeout=10)
        for d in daemons:
            d.stop()
        realm.stop()


def kshell(rig: Rig, port: int) -> str:
    out = run_shell(
        [
            "-k",
            "--ssl",
            f"--ca_cert={rig.ca}",
            "-i",
            f"127.0.0.1:{port}",
            "-b",
            "lb.example.test",
            "-B",
            "-q",
            "select user()",
        ],
        env=rig.env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_kerberos_inside_offloaded_tls_reaches_impalad(rig: Rig) -> None:
    """GSSAPI inside TLS offloaded by the balancer authenticates alice at a plain impalad."""
    assert kshell(rig, rig.offload) == "alice@EXAMPLE.TEST"


def test_kerberos_inside_bridged_tls_reaches_impalad(rig: Rig) -> None:
    """GSSAPI inside TLS bridged by the balancer authenticates alice at a TLS impalad."""
    assert kshell(rig, rig.bridge) == "alice@EXAMPLE.TEST"
