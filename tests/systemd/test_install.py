"""impala-lb install / uninstall: everything in place, idempotent, reversible, validated."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends import flagsets
from haconfig import check
from proxy.appliance.install import install, uninstall

BINDIR = Path(sys.executable).parent


def _install(root: Path) -> str:
    out = io.StringIO()
    assert install(root, BINDIR, create_user=False, systemctl=False, out=out) == 0
    return out.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_install_puts_units_config_and_flagfiles_in_place(tmp_path: Path) -> None:
    """Units, the balancer config and one flagfile per daemon instance are written."""
    _install(tmp_path)
    etc = tmp_path / "etc"
    units = sorted(p.name for p in (etc / "systemd/system").iterdir() if p.is_file())
    assert units == [
        "catalogd@.service",
        "impala-lb-agent.service",
        "impala-lb.service",
        "impalad@.service",
        "statestored@.service",
    ]
    assert (etc / "impala-lb/impala-lb.cfg").is_file()
    dropin = (etc / "systemd/system/keepalived.service.d/impala-lb.conf").read_text()
    assert "After=impala-lb.service" in dropin and "Wants=impala-lb.service" in dropin
    assert "Restart=on-failure" in dropin
    names = ("common", "impalad-1", "impalad-2", "impalad-3", "statestored-1", "statestored-2")
    for name in (*names, "catalogd-1", "catalogd-2"):
        assert (etc / f"impala-lb/{name}.flags").is_file(), name
    assert (
        f"ExecStart={BINDIR}/impala-lb -f" in (etc / "systemd/system/impala-lb.service").read_text()
    )


def test_installed_agent_args_parse_and_the_in_process_agent_matches(tmp_path: Path) -> None:
    """/etc/impala-lb/agent.args is what impala-lb-agent.service (beside HAProxy) passes
    as @FILE: the agent's own parser reads it. impala-lb.service runs the controller
    in-process on the address and port the installed config's servers ask."""
    import re

    from proxy.impala.cli import parser

    _install(tmp_path)
    args_file = tmp_path / "etc/impala-lb/agent.args"
    args = parser().parse_args([f"@{args_file}"])
    assert args.config == ["/etc/haproxy/haproxy.cfg"]
    assert args.stats_socket == "/run/haproxy/admin.sock" and args.coordinator == []
    cfg = (tmp_path / "etc/impala-lb/impala-lb.cfg").read_text()
    unit = (tmp_path / "etc/systemd/system/impala-lb.service").read_text()
    found = re.search(r"^Environment=IMPALA_AGENT=--impala-agent=(\S+):(\d+)$", unit, re.M)
    assert found is not None and "$IMPALA_AGENT" in unit
    host, port = found.groups()
    assert f"agent-port {port}" in cfg and f"agent-addr {host}" in cfg
    assert (host, int(port)) == args.listen


def test_installed_config_passes_our_check_and_real_haproxy(tmp_path: Path) -> None:
    """The default config is clean for impala-lb -c and for the real haproxy -c."""
    _install(tmp_path)
    cfg = tmp_path / "etc/impala-lb/impala-lb.cfg"
    ours = check(str(cfg))
    assert ours.verdict == "clean", ours.messages
    assert shutil.which("haproxy"), "haproxy is part of the test setup"
    real = subprocess.run(
        ["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert real.returncode == 0, real.stderr
    assert "Warnings were found" not in real.stdout + real.stderr


def test_flagfiles_parse_with_the_daemons_own_flags(tmp_path: Path) -> None:
    """Each daemon reads common.flags then its own flagfile, as its unit passes them: no
    unknown flag, and none that no impala-lb daemon implements."""
    _install(tmp_path)
    conf = tmp_path / "etc/impala-lb"
    common = f"--flagfile={conf / 'common.flags'}"
    instances = {"impalad": (1, 2, 3), "statestored": (1, 2), "catalogd": (1, 2)}
    for daemon, numbers in instances.items():
        for i in numbers:
            own = f"--flagfile={conf / f'{daemon}-{i}.flags'}"
            flags = flagsets.DAEMONS[daemon]().parse([common, own])
            assert flagsets.not_implemented(flags) == [], (daemon, i)
            assert flags.get_bool("enable_statestored_ha"), (daemon, i)
            assert flags.get_str("listen_host").startswith("127.0.0."), (daemon, i)
    flags = flagsets.DAEMONS["impalad"]().parse([common, f"--flagfile={conf / 'impalad-1.flags'}"])
    assert flags.get_str("listen_host") == "127.0.0.11"


def test_install_is_idempotent(tmp_path: Path) -> None:
    """A second install changes nothing and says everything is up to date."""
    _install(tmp_path)
    before = _tree(tmp_path)
    out = _install(tmp_path)
    assert _tree(tmp_path) == before
    assert "0 written" in out


def test_operator_changes_survive_install_and_uninstall(tmp_path: Path) -> None:
    """An edited config is kept (new one beside it as .dist) and not removed by uninstall."""
    _install(tmp_path)
    cfg = tmp_path / "etc/impala-lb/impala-lb.cfg"
    cfg.write_text(cfg.read_text() + "# mine\n")
    out = _install(tmp_path)
    assert "kept /etc/impala-lb/impala-lb.cfg" in out
    assert cfg.read_text().endswith("# mine\n")
    assert (tmp_path / "etc/impala-lb/impala-lb.cfg.dist").is_file()
    buf = io.StringIO()
    assert uninstall(tmp_path, systemctl=False, out=buf) == 0
    assert cfg.is_file()
    assert not (tmp_path / "etc/systemd/system/impala-lb.service").exists()
    assert not (tmp_path / "etc/impala-lb/impalad-1.flags").exists()


def test_uninstall_reverses_install(tmp_path: Path) -> None:
    """After uninstall no installed file is left (state data stays)."""
    _install(tmp_path)
    assert uninstall(tmp_path, systemctl=False, out=io.StringIO()) == 0
    left = [p for p in _tree(tmp_path) if not p.startswith("var/lib/impala-lb")]
    assert left == []


@pytest.mark.parametrize("unit", ["impala-lb.service", "impalad@.service"])
def test_installed_units_verify(tmp_path: Path, unit: str) -> None:
    """The installed unit files pass systemd-analyze verify with no message."""
    _install(tmp_path)
    src = tmp_path / "etc/systemd/system" / unit
    name = unit.replace("@.", "@1.")
    shutil.copy(src, tmp_path / name)
    r = subprocess.run(
        ["systemd-analyze", "verify", f"./{name}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
