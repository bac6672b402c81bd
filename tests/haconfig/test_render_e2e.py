"""End to end: a rendered layout in front of three real impalads, run by impala-lb and by
real HAProxy, serves the real impala-shell on every frontend it declares."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haconfig import parse_text
from haconfig.layouts import description_from_mapping, layout
from haconfig.render import render
from haconfig.rendercli import haproxy_lint, main, own_lint
from haconfig.validate import haproxy_binary
from tests.support.impalad import ROOT, Impalad, free_ports, run_shell
from tests.support.procs import accepts, stop_pid

START_TIMEOUT_S = 20.0
# The `impala-lb` console script's entry point, run with this interpreter.
RUN_IMPALA_LB = "from proxy.cli import main; raise SystemExit(main())"


@pytest.fixture(scope="module")
def impalads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Impalad]]:
    """Three impalads on 127.0.0.1, .2 and .3, stopped by PID afterwards."""
    base = tmp_path_factory.mktemp("impalads")
    started: list[Impalad] = []
    try:
        for i in (1, 2, 3):
            started.append(Impalad.start(base / f"impalad{i}", host=f"127.0.0.{i}"))
        yield started
    finally:
        for d in started:
            d.stop()


def _description(impalads: list[Impalad], directory: Path) -> dict[str, object]:
    shell, hue, http = free_ports("127.0.0.1", 3)
    return {
        "cluster": {"bind": "127.0.0.1", "check_interval": "1s"},
        "coordinator": [
            {
                "host": d.host,
                "hs2_port": d.hs2_port,
                "hs2_http_port": d.hs2_http_port,
                "web_port": d.webserver_port,
            }
            for d in impalads
        ],
        "frontends": {"shell": {"port": shell}, "hue": {"port": hue}, "hs2_http": {"port": http}},
        "stats": {"socket": str(directory / "admin.sock")},
    }


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"balancer exited: {log.read_text()[-2000:]}"
        if accepts("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_pid(proc, signal.SIGTERM, timeout=10, kill_timeout=10)


def _balancer_argv(which: str, cfg: Path) -> list[str]:
    if which == "haproxy":
        exe = haproxy_binary()
        assert exe is not None, "haproxy is part of the test setup (./dev installs it)"
        return [exe, "-db", "-f", str(cfg)]
    return [sys.executable, "-c", RUN_IMPALA_LB, "-f", str(cfg)]


@pytest.mark.parametrize("which", ["impala-lb", "haproxy"])
def test_rendered_layout_serves_impala_shell_on_every_frontend(
    which: str, impalads: list[Impalad], tmp_path: Path
) -> None:
    """The same rendered file, run by `which`, answers impala-shell's query on the shell,
    Hue and hs2-http frontends."""
    model = layout(description_from_mapping(_description(impalads, tmp_path)))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render(model))
    assert haproxy_lint(str(cfg)) == []
    assert own_lint(str(cfg)) == []
    log = tmp_path / f"{which}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            _balancer_argv(which, cfg), cwd=ROOT, stdout=err, stderr=err, start_new_session=True
        )
    try:
        fronts = {p.name: p.binds[0].port for p in model.frontends}
        assert set(fronts) == {"impala_shell", "impala_hue", "impala_hs2_http"}
        for port in fronts.values():
            _wait_listening(port, proc, log)
        for name, port in fronts.items():
            protocol = ["--protocol=hs2-http"] if name == "impala_hs2_http" else []
            done = run_shell(
                ["-i", f"127.0.0.1:{port}", *protocol, "-B", "-q", "select 40 + 2"], timeout=60
            )
            assert done.returncode == 0, f"{which} {name}: {done.stderr[-2000:]}"
            assert done.stdout.strip() == "42", f"{which} {name}"
    finally:
        _stop(proc)


def test_from_impala_reads_our_impalads_backends_json(impalads: list[Impalad]) -> None:
    """Discovery against our impalad's /backends?json takes its real client ports."""
    d = impalads[1]
    out = io.StringIO()
    assert main(["--from-impala", d.web_url], stdout=out) == 0
    shell = parse_text(out.getvalue()).backend("impala_shell")
    assert shell is not None
    assert [(s.host, s.port, shell.server_params(s).port) for s in shell.servers] == [
        (d.host, d.hs2_port, d.webserver_port)
    ]
    http = parse_text(out.getvalue()).backend("impala_hs2_http")
    assert http is not None and [s.port for s in http.servers] == [d.hs2_http_port]


def test_impala_lb_render_dispatches_to_rendercli(tmp_path: Path) -> None:
    """`impala-lb render --check -o FILE desc.toml` (the installed entry point's dispatch)
    writes the checked file."""
    out = tmp_path / "haproxy.cfg"
    golden = Path(__file__).parent / "golden"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_IMPALA_LB,
            "render",
            "--check",
            "-o",
            str(out),
            str(golden / "small.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (golden / "small.cfg").read_text()
