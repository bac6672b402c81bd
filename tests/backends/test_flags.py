"""Impala-style flag parsing, and one registry of Impala's flags for every daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends import flagsets
from backends.common import logfiles
from backends.common.flags import EXTENSIONS, FlagError, FlagSet, impala_flags

ROOT = Path(__file__).resolve().parents[2]
DAEMONS = sorted(flagsets.DAEMONS)


def make() -> FlagSet:
    fs = FlagSet.impala("impalad")
    fs.define("hs2_port", 21050, "HS2 port")
    fs.define("enable_statestored_ha", False, "HA")
    fs.define("state_store_host", "localhost", "statestore host")
    fs.define("statestore_ha_heartbeat_monitoring_frequency_ms", 1000, "a double in Impala")
    return fs


def test_defaults_and_overrides() -> None:
    """Unset flags keep their defaults; --name=value and --name value both set."""
    flags = make().parse(["--hs2_port=21051", "--state_store_host", "127.0.0.2"])
    assert flags.get_int("hs2_port") == 21051
    assert flags.get_str("state_store_host") == "127.0.0.2"
    assert flags.get_bool("enable_statestored_ha") is False
    assert flags.get_float("statestore_ha_heartbeat_monitoring_frequency_ms") == 1000.0


def test_bool_forms() -> None:
    """Booleans take --name, --noname and explicit true/false values."""
    assert make().parse(["--enable_statestored_ha"]).get_bool("enable_statestored_ha")
    assert not make().parse(["--noenable_statestored_ha"]).get_bool("enable_statestored_ha")
    assert make().parse(["-enable_statestored_ha=true"]).get_bool("enable_statestored_ha")
    assert not make().parse(["--enable_statestored_ha=0"]).get_bool("enable_statestored_ha")
    assert make().parse(["--enable-statestored-ha"]).get_bool("enable_statestored_ha")


def test_flagfile_is_read_in_place(tmp_path: Path) -> None:
    """A flagfile's lines apply where it appears; later flags override them."""
    ff = tmp_path / "impalad.flags"
    ff.write_text("# comment\n--hs2_port=1\n\n--state_store_host=ss\n")
    flags = make().parse([f"--flagfile={ff}", "--hs2_port=2"])
    assert flags.get_int("hs2_port") == 2
    assert flags.get_str("state_store_host") == "ss"


def test_flagfiles_nest_and_the_later_wins(tmp_path: Path) -> None:
    """A flagfile may name another (gflags); a common file then a daemon's own, in order."""
    common = tmp_path / "common.flags"
    common.write_text("--state_store_host=ss1\n--hs2_port=1\n")
    own = tmp_path / "impalad.flags"
    own.write_text(f"--flagfile={common}\n--hs2_port=2\n")
    flags = make().parse([f"--flagfile={own}"])
    assert (flags.get_str("state_store_host"), flags.get_int("hs2_port")) == ("ss1", 2)
    loop = tmp_path / "loop.flags"
    loop.write_text(f"--flagfile={loop}\n")
    with pytest.raises(FlagError, match="nests too deeply"):
        make().parse([f"--flagfile={loop}"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nosuch=1"], "unknown command line flag 'nosuch'"),
        (["--hs2_port=abc"], "illegal value 'abc' specified for int32 flag 'hs2_port'"),
        (["--hs2_port=2147483648"], "illegal value '2147483648' specified for int32 flag"),
        (["--enable_statestored_ha=maybe"], "for bool flag 'enable_statestored_ha'"),
        (["--flagfile=/nonexistent/x"], "cannot read flagfile"),
        # not implemented here, still checked by its Impala type
        (["--max_cookie_lifetime_s=soon"], "for int64 flag 'max_cookie_lifetime_s'"),
        (["--hs2_port"], "flag 'hs2_port' is missing its argument"),
        (["--fromenv=hs2_port"], r"hs2_port not found in environment \(FLAGS_hs2_port\)"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], message: str) -> None:
    """A bad flag is an error whose message names it (and its value), as gflags words it."""
    with pytest.raises(FlagError, match=message):
        make().parse(argv, environ={})


def test_other_impala_flags_are_accepted_typed_and_recorded() -> None:
    """An Impala flag the daemon does not implement is accepted and kept, typed, in order."""
    flags = make().parse(["--idle_session_timeout=60", "--noenable_workload_mgmt", "--v=2"])
    assert dict(flags.unimplemented) == {
        "idle_session_timeout": 60,
        "enable_workload_mgmt": False,
        "v": 2,
    }
    assert "idle_session_timeout" not in flags


def test_undefok_and_fromenv() -> None:
    """--undefok names unknown flags to ignore (wherever it appears); --fromenv and
    --tryfromenv read FLAGS_<name> from the environment."""
    flags = make().parse(["--not_impala=1", "--undefok=not_impala,other"])
    assert "not_impala" not in flags.unimplemented
    env = {"FLAGS_hs2_port": "7"}
    assert make().parse(["--fromenv=hs2_port"], environ=env).get_int("hs2_port") == 7
    assert make().parse(["--tryfromenv=hs2_port,v"], environ={}).get_int("hs2_port") == 21050


def test_define_keeps_to_impalas_names_and_types() -> None:
    """A daemon may implement an Impala flag in Impala's type only, and a flag of its own
    only when it is listed among impala-lb's extensions."""
    fs = FlagSet.impala("x")
    with pytest.raises(ValueError, match="not Impala's"):
        fs.define("no_such_impala_flag", 1, "")
    with pytest.raises(ValueError, match="int32 in Impala"):
        fs.define("hs2_port", "21050", "")


def test_the_registry_holds_impalas_flags() -> None:
    """Facts read from Impala 4.5.0's source, glog and gflags."""
    r = impala_flags()
    assert (r["hs2_port"].kind, r["hs2_port"].default) == ("int32", 21050)
    assert (r["beeswax_port"].kind, r["beeswax_port"].default) == ("int32", 21000)
    assert (r["max_cookie_lifetime_s"].kind, r["max_cookie_lifetime_s"].default) == (
        "int64",
        86400,
    )
    assert r["statestore_peer_timeout_seconds"].default == 30
    assert r["state_store_peer_ha_port"].default == 24021
    assert r["log_dir"].source == "glog" and r["undefok"].source == "gflags"
    assert len(r) > 700


@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_daemon_takes_one_common_flag_set(daemon: str) -> None:
    """The flags the issue found refused somewhere are accepted by every daemon."""
    fs = flagsets.DAEMONS[daemon]()
    flags = fs.parse(
        [
            "--log_dir=/tmp/x",
            "--max_log_files=3",
            "--statestore_update_frequency_ms=100",
            "--statestore_peer_timeout_seconds=5",
            "--listen_host=127.0.0.1",
            "--hs2_port=21050",
            "--catalog_service_port=26000",
            "--state_store_peer_host=localhost",
            "--enable_workload_mgmt=false",
        ]
    )
    assert flags.get_str("listen_host") == "127.0.0.1"
    assert flags.get_int("max_log_files") == 3
    # only flags no impala-lb daemon implements are warned about
    assert flagsets.not_implemented(flags) == ["enable_workload_mgmt"]


@pytest.mark.parametrize("daemon", DAEMONS)
def test_implemented_defaults_are_impalas_or_say_why_not(daemon: str) -> None:
    """Every implemented Impala flag has Impala's type and default, or a written reason."""
    registry = impala_flags()
    for flag in flagsets.DAEMONS[daemon]().flags():
        if flag.extension:
            assert flag.name in EXTENSIONS and flag.name not in registry
            continue
        known = registry[flag.name]
        assert flag.kind == known.kind, flag.name
        if known.default is not None:
            same = flag.default == known.default
            assert same != bool(flag.differs), (flag.name, flag.default, known.default)


def test_docs_list_the_flags() -> None:
    """docs/impala-flags.md is what ``python -m backends.flagsets`` prints."""
    assert (ROOT / "docs" / "impala-flags.md").read_text() == flagsets.markdown()


def test_log_files_are_named_linked_and_pruned_as_glog_and_impala_do(tmp_path: Path) -> None:
    """Each start writes a new glog-named file, <prefix>.INFO points at it, and only the
    newest --max_log_files stay."""
    fs = FlagSet.impala("statestored")
    logfiles.define_flags(fs)
    names = []
    for i in range(4):
        flags = fs.parse([f"--log_dir={tmp_path}", "--max_log_files=2"])
        out = logfiles.open_log("statestored", flags, now=1_700_000_000 + i)
        assert out is not None
        out.write(f"start {i}\n")
        out.close()
        names.append(os.readlink(tmp_path / "statestored.INFO"))
        os.utime(tmp_path / names[-1], (1_700_000_000 + i, 1_700_000_000 + i))
    kept = sorted(p.name for p in tmp_path.glob("statestored.*.log.INFO.*"))
    assert kept == sorted(names[-2:])
    assert names[-1].startswith("statestored.") and ".log.INFO.20231114-" in names[-1]
    assert (tmp_path / "statestored.INFO").read_text() == "start 3\n"
    stderr = fs.parse([f"--log_dir={tmp_path}", "--logtostderr"])
    assert logfiles.open_log("statestored", stderr) is None


def test_a_daemon_reads_the_common_flagfile_and_warns_once(tmp_path: Path) -> None:
    """statestored started on a common flagfile (with impalad's flags in it) and its own:
    it logs into --log_dir, and one warning names only the flag no daemon implements."""
    common = tmp_path / "common.flags"
    common.write_text(
        "--state_store_host=127.0.0.1\n--hs2_port=21050\n--enable_workload_mgmt=false\n"
        f"--log_dir={tmp_path / 'logs'}\n"
    )
    own = tmp_path / "statestored.flags"
    own.write_text("--state_store_port=-5\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "backends.statestore.main",
            *(f"--flagfile={f}" for f in (common, own)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # a bad value exits 2 before anything listens, naming the flag and the value
    assert proc.returncode == 2
    assert "--state_store_port is not a port: -5" in proc.stderr
    log = (tmp_path / "logs" / "statestored.INFO").read_text()
    warnings = [line for line in log.splitlines() if "does not implement" in line]
    assert len(warnings) == 1 and warnings[0].endswith(": --enable_workload_mgmt")


def test_bad_value_names_flag_and_value_and_exits_2() -> None:
    """A value of the wrong type stops the daemon with status 2 before it listens."""
    proc = subprocess.run(
        [sys.executable, "-m", "backends.catalog.main", "--catalog_service_port=many"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "illegal value 'many' specified for int32 flag 'catalog_service_port'" in proc.stderr
