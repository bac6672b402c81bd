"""``impala-lb cluster`` for end-to-end suites: the appliance's own local cluster on its
own loopback net, started and stopped through its CLI (every daemon stopped by PID)::

    @pytest.fixture(scope="module")
    def run(tmp_path_factory):
        yield from cluster_up(tmp_path_factory, net="127.0.9", port=5000)

    cli(run, "kill", "impalad-2")
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.appliance import cluster, daemon

ROOT = Path(__file__).resolve().parents[2]
SHELL = str(Path(sys.executable).parent / "impala-shell")


def cli(run: Path, *argv: str, timeout: float = 180) -> tuple[int, str]:
    """``impala-lb cluster --dir run ARGV...``: exit code and output."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from proxy.appliance.cluster import main; sys.exit(main(sys.argv[1:]))",
            "--dir",
            str(run),
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return out.returncode, out.stdout + out.stderr


def cluster_up(
    factory: pytest.TempPathFactory,
    *,
    net: str,
    port: int,
    bind: str | None = None,
    impalad_flags: tuple[str, ...] = (),
) -> Iterator[Path]:
    """Start the local cluster on ``net``.x with the balancer on ``bind:port``; yields its
    run directory; stops every daemon at the end and checks none is left."""
    d = factory.mktemp("cluster")
    bind = bind or f"{net}.1"
    extra = [f"--impalad-flag={flag}" for flag in impalad_flags]
    rc, out = cli(d, "up", "--net", net, "--bind", bind, "--port", str(port), *extra)
    try:
        assert rc == 0, out + "".join(
            f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in (d / "logs").glob("*.out")
        )
        assert f"impala-shell -i {bind}:{port}" in out, out
        yield d
    finally:
        cli(d, "stop")
        daemons, _ = cluster.load(d)
        assert not any(daemon.alive(x.pid) for x in daemons)


def shell(bind: str, port: int, query: str) -> str:
    """One ``impala-shell -i bind:port -q query``; its output (asserts it succeeded)."""
    r = subprocess.run(
        [SHELL, "-i", f"{bind}:{port}", "-q", query], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr
