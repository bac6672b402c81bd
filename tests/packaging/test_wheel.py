"""The wheel: `pip install` of it yields working commands, with templates, units and the
generated Thrift code inside, run from the installed files and not from the source tree."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of the tree: setuptools writes build/ and *.egg-info beside the sources
    src = out / "src"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "run", "__pycache__", "*.egg-info"),
    )
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (whl,) = out.glob("impala_lb-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv holding only the wheel; third-party packages come from the dev
    environment's site-packages (added as a plain path, so its editable finder stays off)."""
    d = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(d / "v")], check=True, timeout=300)
    py = d / "v/bin/python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(purelib, "impala_lb_test_deps.pth").write_text(
        "\n".join([deps, *site.getsitepackages()]) + "\n"
    )
    yield d / "v"


def _run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_wheel_carries_templates_units_and_generated_code(wheel: Path) -> None:
    """Templates, systemd units and the generated Thrift modules are inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "templates/haproxy.cfg.j2" in names
    assert "proxy/appliance/units/impala-lb.service.in" in names
    assert "proxy/appliance/units/impalad@.service.in" in names
    assert "backends/impalad/gen/TCLIService/TCLIService.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_commands_run_from_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    """impala-lb -c, render and install, and the daemons' --help, work from the wheel."""
    where = _run(
        venv, "python", "-c", "import proxy, haconfig; print(proxy.__file__)", cwd=tmp_path
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(
        "defaults\n mode tcp\n timeout connect 5s\n timeout client 1h\n timeout server 1h\n"
        "listen impala\n bind 127.0.0.1:5000\n server a 127.0.0.1:21050\n"
    )
    check = _run(venv, "impala-lb", "-c", "-f", str(cfg), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout + check.stderr
    desc = tmp_path / "c.toml"
    desc.write_text('[[coordinator]]\nhost = "127.0.0.1"\n[frontends.shell]\nport = 5000\n')
    rendered = _run(venv, "impala-lb", "render", str(desc), cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert "balance leastconn" in rendered.stdout
    inst = _run(
        venv,
        "impala-lb",
        "install",
        "--root",
        str(tmp_path / "root"),
        "--no-user",
        "--no-systemctl",
        cwd=tmp_path,
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    unit = (tmp_path / "root/etc/systemd/system/impala-lb.service").read_text()
    assert f"ExecStart={venv}/bin/impala-lb -f" in unit
    for daemon in ("impalad", "statestored"):
        r = _run(venv, daemon, "--help", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "--flagfile" in r.stdout + r.stderr
