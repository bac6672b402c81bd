"""The ``impala-lb`` command line: subcommand dispatch and the -c / -f entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import SUBCOMMANDS, main


def test_render_subcommand_is_dispatched_to_rendercli() -> None:
    """``impala-lb render`` hands its arguments to haconfig.rendercli (bad ones exit 2)."""
    assert SUBCOMMANDS["render"] == "haconfig.rendercli:main"
    assert main(["render", "--no-such-flag"]) == 2


def test_check_flag_delegates_to_checkcli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``impala-lb -c -f FILE`` is haproxy -c: 0 and ``Configuration file is valid``."""
    cfg = tmp_path / "ok.cfg"
    cfg.write_text(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\nlisten l\n    bind 127.0.0.1:1\n    server a 127.0.0.1:2\n"
    )
    assert main(["-c", "-f", str(cfg)]) == 0
    assert "Configuration file is valid" in capsys.readouterr().out


def test_no_config_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running without -f exits 1 with a message naming the missing flag."""
    assert main([]) == 1
    assert "-f FILE" in capsys.readouterr().err
