"""The systemd units: systemd-analyze verify accepts them, and they carry the hardening."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.appliance.install import KEEPALIVED_DROPIN, UNITS, render_unit

BINDIR = Path(sys.executable).parent


def _sections(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return cp


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify_passes(unit: str, tmp_path: Path) -> None:
    """Each unit, rendered for this installation, verifies with no message at all."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is part of the test setup"
    name = unit.replace("@.", "@1.")
    (tmp_path / name).write_text(render_unit(unit, BINDIR))
    result = subprocess.run(
        ["systemd-analyze", "verify", f"./{name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify only warns (rc 0) about unknown or misspelt settings, so stderr must be empty too.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_keepalived_dropin_verifies_with_debians_unit(tmp_path: Path) -> None:
    """keepalived.service (Debian's) with our drop-in verifies with no message at all: the
    drop-in is read (a misspelt key in it would be named) and orders it after impala-lb."""
    debian = Path("/lib/systemd/system/keepalived.service")
    assert debian.is_file(), "keepalived is part of the test setup (./dev installs it)"
    (tmp_path / "keepalived.service").write_text(debian.read_text())
    dropins = tmp_path / "keepalived.service.d"
    dropins.mkdir()
    (dropins / "impala-lb.conf").write_text(KEEPALIVED_DROPIN)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemd-analyze", "verify", "./keepalived.service"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = verify()
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    (dropins / "impala-lb.conf").write_text(KEEPALIVED_DROPIN.replace("RestartSec", "RestrtSec"))
    assert "Unknown key 'RestrtSec'" in verify().stderr  # the drop-in is really read


def test_balancer_unit_is_notify_with_checked_reload() -> None:
    """impala-lb.service is Type=notify, checks the config before reload, then sends SIGHUP."""
    cp = _sections(render_unit("impala-lb.service", BINDIR))
    svc = cp["Service"]
    assert svc["Type"] == "notify"
    assert svc["Restart"] == "on-failure"
    assert "WatchdogSec" in svc
    text = render_unit("impala-lb.service", BINDIR)
    reloads = [line for line in text.splitlines() if line.startswith("ExecReload=")]
    assert reloads[0] == f"ExecReload={BINDIR}/impala-lb -c -q -f ${{CONFIG}}"
    assert reloads[1] == "ExecReload=/bin/kill -HUP $MAINPID"


def test_balancer_unit_hardening() -> None:
    """The balancer runs as its own user with only CAP_NET_BIND_SERVICE and a read-only system."""
    svc = _sections(render_unit("impala-lb.service", BINDIR))["Service"]
    assert svc["User"] == "impala-lb"
    assert svc["ProtectSystem"] == "strict"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert int(svc["LimitNOFILE"]) >= 65536


@pytest.mark.parametrize("daemon", ["impalad", "statestored", "catalogd"])
def test_daemon_units_read_their_flagfile(daemon: str) -> None:
    """Each daemon instance reads the common flagfile, then /etc/impala-lb/<daemon>-<i>.flags."""
    svc = _sections(render_unit(f"{daemon}@.service", BINDIR))["Service"]
    assert svc["ExecStart"] == (
        f"{BINDIR}/{daemon} --flagfile=/etc/impala-lb/common.flags "
        f"--flagfile=/etc/impala-lb/{daemon}-%i.flags"
    )
    assert svc["User"] == "impala-lb"
