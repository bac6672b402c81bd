"""Impala-style flag parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.common.flags import FlagError, FlagSet


def make() -> FlagSet:
    fs = FlagSet("impalad")
    fs.define("hs2_port", 21050, "HS2 port")
    fs.define("enable_statestored_ha", False, "HA")
    fs.define("state_store_host", "localhost", "statestore host")
    fs.define("ratio", 0.5, "a double")
    return fs


def test_defaults_and_overrides() -> None:
    """Unset flags keep their defaults; --name=value and --name value both set."""
    flags = make().parse(["--hs2_port=21051", "--state_store_host", "127.0.0.2"])
    assert flags.get_int("hs2_port") == 21051
    assert flags.get_str("state_store_host") == "127.0.0.2"
    assert flags.get_bool("enable_statestored_ha") is False
    assert flags.get_float("ratio") == 0.5


def test_bool_forms() -> None:
    """Booleans take --name, --noname and explicit true/false values."""
    assert make().parse(["--enable_statestored_ha"]).get_bool("enable_statestored_ha")
    assert not make().parse(["--noenable_statestored_ha"]).get_bool("enable_statestored_ha")
    assert make().parse(["-enable_statestored_ha=true"]).get_bool("enable_statestored_ha")
    assert not make().parse(["--enable_statestored_ha=0"]).get_bool("enable_statestored_ha")


def test_flagfile_is_read_in_place(tmp_path: Path) -> None:
    """A flagfile's lines apply where it appears; later flags override them."""
    ff = tmp_path / "impalad.flags"
    ff.write_text("# comment\n--hs2_port=1\n\n--state_store_host=ss\n")
    flags = make().parse([f"--flagfile={ff}", "--hs2_port=2"])
    assert flags.get_int("hs2_port") == 2
    assert flags.get_str("state_store_host") == "ss"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nosuch=1"], "unknown command line flag 'nosuch'"),
        (["--hs2_port=abc"], "illegal value 'abc' specified for int flag 'hs2_port'"),
        (["--enable_statestored_ha=maybe"], "for bool flag 'enable_statestored_ha'"),
        (["--flagfile=/nonexistent/x"], "cannot read flagfile"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], message: str) -> None:
    """A bad flag is an error whose message names it."""
    with pytest.raises(FlagError, match=message.replace("(", r"\(")):
        make().parse(argv)
