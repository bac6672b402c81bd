"""``impala-lb -f``: a config it cannot run is refused at start, with an ALERT, not a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.procs import free_port

BIN = Path(sys.executable).parent / "impala-lb"


def _run(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "-f", str(cfg)], capture_output=True, text=True, timeout=60)


def test_check_rules_we_cannot_run_are_an_alert_and_exit_1(tmp_path: Path) -> None:
    """A second tcp-check connect (not supported) exits 1 with an ALERT and no traceback."""
    port = free_port("127.0.0.1")
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
        f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:{port}\n"
        "    option tcp-check\n    tcp-check connect\n    tcp-check send PING\\r\\n\n"
        "    tcp-check connect port 2\n    server a 127.0.0.1:2 check\n"
    )
    r = _run(cfg)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[ALERT]" in r.stderr
    assert "Traceback" not in r.stderr


def test_stats_socket_that_cannot_be_bound_is_an_alert_and_exit_1(tmp_path: Path) -> None:
    """A stats socket in a missing directory exits 1 with an ALERT naming it."""
    port = free_port("127.0.0.1")
    cfg = tmp_path / "lb.cfg"
    sock = tmp_path / "no-such-dir" / "admin.sock"
    cfg.write_text(
        f"global\n    stats socket {sock} level admin\n"
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
        f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:{port}\n    server a 127.0.0.1:2\n"
    )
    r = _run(cfg)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[ALERT]" in r.stderr and "admin.sock" in r.stderr
    assert "Traceback" not in r.stderr
