"""The real impala-shell over TLS through the balancer: offload, bridging and passthrough.

One ``impala-lb`` with three frontends in front of a plain impalad and a TLS impalad:

- offload: ``bind ... ssl crt`` -> plain impalad (``impala-shell --ssl --ca_cert``);
- bridge: ``bind ... ssl crt`` -> ``server ... ssl verify required ca-file`` -> TLS impalad;
- passthrough: plain ``bind`` -> TLS impalad, the client's TLS untouched.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import make_ca
from tests.support.impalad import Impalad, free_ports, run_shell
from tests.support.procs import accepts, stop_pid, wait_for

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent / "impala-lb"
PLAIN_HOST = "127.0.0.121"
TLS_HOST = "127.0.0.122"


@dataclass
class Rig:
    ca: Path
    config: Path
    ports: dict[str, int]
    log: socket.socket


def lines_from(log: socket.socket, pattern: str, timeout: float = 5.0) -> str:
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        log.settimeout(max(0.01, end - time.monotonic()))
        try:
            line = log.recv(4096).decode()
        except TimeoutError:
            break
        seen.append(line)
        if rx.search(line):
            return line
    raise AssertionError(f"no log line matching {pattern!r} in {seen}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("lbimpala")
    ca = make_ca(tmp / "ca")
    lb = ca.issue(tmp / "certs", "lb", ["lb.example.test", "127.0.0.1"])
    srv = ca.issue(tmp / "certs", "impalad", [TLS_HOST, "127.0.0.1", "lb.example.test"])
    plain = Impalad.start(tmp / "plain", host=PLAIN_HOST)
    secure = Impalad.start(
        tmp / "tls",
        host=TLS_HOST,
        flags=[f"--ssl_server_certificate={srv.cert}", f"--ssl_private_key={srv.key}"],
    )
    log = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log.bind(("127.0.0.1", 0))
    offload, bridge, passthrough = free_ports("127.0.0.1", 3)
    cfg = tmp / "lb.cfg"
    cfg.write_text(
        f"""global
    maxconn 100
    log 127.0.0.1:{log.getsockname()[1]} local2
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend offload
    bind 127.0.0.1:{offload} ssl crt {lb.combined}
    default_backend plain
backend plain
    server p1 {PLAIN_HOST}:{plain.hs2_port}
frontend bridge
    bind 127.0.0.1:{bridge} ssl crt {lb.combined} ssl-min-ver TLSv1.2
    default_backend secure
backend secure
    server s1 {TLS_HOST}:{secure.hs2_port} ssl verify required ca-file {ca.cert}
frontend passthrough
    bind 127.0.0.1:{passthrough}
    default_backend direct
backend direct
    server d1 {TLS_HOST}:{secure.hs2_port}
"""
    )
    proc = subprocess.Popen([str(BIN), "-f", str(cfg)], stderr=subprocess.PIPE)
    try:
        wait_for("the balancer listening", lambda: accepts("127.0.0.1", passthrough), 15)
        yield Rig(
            ca.cert,
            cfg,
            {"offload": offload, "bridge": bridge, "passthrough": passthrough},
            log,
        )
    finally:
        stop_pid(proc, signal.SIGTERM, timeout=10, kill_timeout=10)
        plain.stop()
        secure.stop()
        log.close()


def shell(rig: Rig, port: int, query: str) -> str:
    out = run_shell(
        ["--ssl", f"--ca_cert={rig.ca}", "-i", f"127.0.0.1:{port}", "-B", "-q", query],
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_shell_over_tls_offloaded_to_a_plain_impalad(rig: Rig) -> None:
    """impala-shell --ssl --ca_cert through `bind ... ssl crt` reaches a plain impalad."""
    assert shell(rig, rig.ports["offload"], "select 40 + 2").strip() == "42"
    line = lines_from(rig.log, r"offload~ plain/p1 ")
    assert re.search(r" \d+ -- ", line), line


def test_shell_over_tls_bridged_to_a_tls_impalad(rig: Rig) -> None:
    """`server ... ssl verify required ca-file` re-encrypts the shell's session to a TLS impalad."""
    assert shell(rig, rig.ports["bridge"], "select 'bridged'").strip() == "bridged"
    lines_from(rig.log, r"bridge~ secure/s1 ")


def test_shell_tls_passed_through_to_a_tls_impalad(rig: Rig) -> None:
    """Without `ssl` on the bind, the shell's TLS ends at impalad itself (passthrough)."""
    assert shell(rig, rig.ports["passthrough"], "select 7").strip() == "7"
    line = lines_from(rig.log, r"passthrough direct/d1 ")
    assert "~" not in line.split("]", 1)[1].split()[0]


def test_real_haproxy_accepts_the_impala_tls_config(rig: Rig) -> None:
    """`haproxy -c` accepts the offload/bridge/passthrough config the balancer runs."""
    out = subprocess.run(
        ["haproxy", "-c", "-f", str(rig.config)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr
