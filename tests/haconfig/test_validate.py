"""check(): ``haproxy -c`` exit codes and printed lines; checkcli: the ``-c`` command line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from haconfig import check, haproxy_check
from haconfig.checkcli import main
from haconfig.validate import FATAL, NO_LISTENER, VALID, parse_haproxy_output

GOOD = """defaults
    timeout connect 5s
    timeout client 1m
    timeout server 1m
listen l
    bind 127.0.0.1:21050
    server a 127.0.0.1:21051
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_exits_0_and_says_so(tmp_path: Path) -> None:
    """A valid config gives rc 0, no messages and 'Configuration file is valid' on stdout."""
    result = check(write(tmp_path, "a.cfg", GOOD))
    assert (result.code, result.verdict) == (VALID, "clean")
    assert result.stdout == ("Configuration file is valid",)
    assert result.messages == ()
    assert result.model is not None and result.model.sections[1].name == "l"


def test_warnings_are_printed_and_announced(tmp_path: Path) -> None:
    """Warnings keep rc 0 and add 'Warnings were found.' before the verdict."""
    result = check(write(tmp_path, "a.cfg", GOOD + "    option tcplog\n"))
    assert (result.code, result.verdict) == (VALID, "warnings")
    assert result.stdout == ("Warnings were found.", "Configuration file is valid")
    assert result.stderr[0].startswith("[WARNING]  (")
    assert result.stderr[0].endswith(" : config : log format ignored for proxy 'l' since it "
                                     "has no log address.")  # fmt: skip


def test_parse_error_exits_1_with_haproxy_trailer(tmp_path: Path) -> None:
    """A parse error gives rc 1, the alert, then HAProxy's two closing alerts."""
    path = write(tmp_path, "bad.cfg", GOOD + "    mode udp\n")
    result = check(path)
    assert (result.code, result.verdict) == (FATAL, "fatal")
    assert [m.text for m in result.alerts] == [
        f"parsing [{path}:8] : unknown proxy mode 'udp'.",
        f"Error(s) found in configuration file : {path}",
        "Fatal errors found in configuration.",
    ]
    assert result.stdout == ()


def test_check_stage_error_has_no_file_trailer(tmp_path: Path) -> None:
    """A stage-2 error ends with only 'Fatal errors found in configuration.'."""
    result = check(write(tmp_path, "a.cfg", GOOD + "    default_backend nope\n"))
    assert [m.text for m in result.alerts][-1] == "Fatal errors found in configuration."
    assert len(result.alerts) == 2


def test_unresolvable_host_ends_with_addr_alert(tmp_path: Path) -> None:
    """An unresolvable server ends with 'Failed to initialize server(s) addr.'."""
    result = check(write(tmp_path, "a.cfg", GOOD + "    server b no-such-host.invalid:1\n"))
    assert result.code == FATAL
    assert result.alerts[-1].text == "Failed to initialize server(s) addr."


def test_no_listener_exits_2(tmp_path: Path) -> None:
    """A config with nothing to listen on gives rc 2 and HAProxy's message."""
    result = check(write(tmp_path, "a.cfg", "backend b\n"))
    assert (result.code, result.verdict) == (NO_LISTENER, "nolistener")
    assert result.stdout == (
        "Configuration file has no error but will not start (no listener) => exit(2).",
    )


def test_missing_file_is_fatal(tmp_path: Path) -> None:
    """An unreadable file is fatal with HAProxy's wording."""
    result = check(tmp_path / "nope.cfg")
    assert result.code == FATAL
    assert result.alerts[0].text == (
        f"Cannot open configuration file/directory {tmp_path / 'nope.cfg'} : "
        "No such file or directory"
    )


def test_several_files_are_one_configuration(tmp_path: Path) -> None:
    """check() on several files reads them in order as one configuration."""
    a = write(tmp_path, "a.cfg", GOOD.split("listen")[0] + "backend b\n    server s 127.0.0.1:1\n")
    b = write(tmp_path, "b.cfg", "frontend f\n    bind 127.0.0.1:2\n    default_backend b\n")
    assert check([a, b]).verdict == "clean"
    assert check([b]).verdict == "fatal"


def test_checkcli_prints_like_haproxy(tmp_path: Path) -> None:
    """'-c -f FILE' prints alerts/warnings on stderr and the verdict on stdout, rc as haproxy."""
    path = write(tmp_path, "a.cfg", GOOD + "    option tcplog\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", "-f", str(path)], stdout=out, stderr=err) == 0
    assert out.getvalue() == "Warnings were found.\nConfiguration file is valid\n"
    assert "log format ignored for proxy 'l'" in err.getvalue()


def test_checkcli_quiet_prints_only_alerts(tmp_path: Path) -> None:
    """'-q' silences warnings and the verdict but still prints alerts."""
    good = write(tmp_path, "a.cfg", GOOD + "    option tcplog\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", "-q", "-f", str(good)], stdout=out, stderr=err) == 0
    assert (out.getvalue(), err.getvalue()) == ("", "")
    bad = write(tmp_path, "b.cfg", GOOD + "    mode udp\n")
    assert main(["-cq", "-f", str(bad)], stdout=out, stderr=err) == 1
    assert "unknown proxy mode 'udp'" in err.getvalue() and out.getvalue() == ""


def test_checkcli_concatenates_files_and_refuses_bad_usage(tmp_path: Path) -> None:
    """Several -f are one config in order; no -f or a stray argument is an error (rc 1)."""
    a = write(tmp_path, "a.cfg", "backend b\n")
    b = write(tmp_path, "b.cfg", GOOD)
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", "-f", str(a), f"-f{b}"], stdout=out, stderr=err) == 0
    assert main(["-c"], stdout=out, stderr=err) == 1
    assert main(["-c", "-f", str(a), "extra"], stdout=out, stderr=err) == 1
    assert "no configuration file given" in err.getvalue()


def test_haproxy_check_runs_the_real_haproxy(tmp_path: Path) -> None:
    """haproxy_check() reports the real haproxy's rc, messages (with file:line) and verdict."""
    path = write(tmp_path, "a.cfg", GOOD + "    mode udp\n")
    result = haproxy_check(path)
    assert result.code == FATAL
    first = result.first_alert
    assert first is not None and first.text == f"parsing [{path}:8] : unknown proxy mode 'udp'."
    assert first.location is not None and first.location.line == 8
    assert haproxy_check(write(tmp_path, "b.cfg", GOOD)).stdout == ("Configuration file is valid",)


def test_parse_haproxy_output_joins_continuation_lines() -> None:
    """Continuation lines of a multi-line message join that message; NOTICE lines are dropped."""
    msgs = parse_haproxy_output(
        "[NOTICE]   (1) : haproxy version is 2.6.12\n"
        "[WARNING]  (1) : config : missing timeouts for backend 'b'.\n"
        "   | While not properly invalid\n"
        "[ALERT]    (1) : config : parsing [x.cfg:3] : boom\n"
    )
    assert [m.text for m in msgs] == [
        "missing timeouts for backend 'b'.\n   | While not properly invalid",
        "parsing [x.cfg:3] : boom",
    ]
    assert msgs[1].location is not None and str(msgs[1].location) == "x.cfg:3"


def test_impala_lb_cli_delegates_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'impala-lb -c -f FILE' prints HAProxy's lines and exits with check()'s code."""
    from proxy.cli import main as impala_lb

    path = write(tmp_path, "a.cfg", GOOD.replace("listen l", "frontend main *:5000"))
    assert impala_lb(["-c", "-f", str(path)]) == FATAL
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(f"parsing [{path}:5] : please use the 'bind' keyword for listening "
                           "addresses.")  # fmt: skip
    assert err[1].endswith(f"parsing [{path}:6] : 'listen' or 'defaults' expected.")


def test_directory_reads_its_cfg_files_in_order(tmp_path: Path) -> None:
    """A directory stands for its *.cfg files in lexical order, named dir/file as HAProxy does."""
    d = tmp_path / "conf.d"
    d.mkdir()
    write(d, "b.cfg", "listen l\n    mode udp\n")
    write(d, "a.cfg", "global\n    maxconn 10\n")
    write(d, "c.txt", "junk\n")
    result = check(d)
    assert result.alerts[0].text == f"parsing [{d}/b.cfg:2] : unknown proxy mode 'udp'."
    assert haproxy_check(d).alerts[0].text == result.alerts[0].text
