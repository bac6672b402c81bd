"""One model, two directions: every corpus file we accept survives parse -> render -> parse."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from haconfig import parse_file, parse_text
from haconfig.render import render
from haconfig.validate import haproxy_binary
from tests.haconfig._corpus import Case, cases, make_certs, materialise

ACCEPTED = [c for c in cases() if c.ours != "fatal"]


def _verdict(path: Path) -> str:
    """Real HAProxy's verdict on a file, in the corpus vocabulary."""
    exe = haproxy_binary()
    assert exe is not None, "haproxy is part of the test setup (./dev installs it)"
    proc = subprocess.run(
        [exe, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode == 1:
        return "fatal"
    if proc.returncode == 2:
        return "nolistener"
    return "warnings" if "Warnings were found" in proc.stdout + proc.stderr else "clean"


def test_the_corpus_has_accepted_files_to_round_trip() -> None:
    """The round trip below runs over a real corpus, not an empty list."""
    assert len(ACCEPTED) >= 10


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_parse_render_parse_gives_an_equal_model(case: Case, tmp_path: Path) -> None:
    """parse(render(parse(file))) == parse(file), and render is stable on its own output."""
    certs = make_certs(tmp_path)
    original = materialise(case, tmp_path, certs)
    model = parse_file(original)
    text = render(model)
    again = parse_text(text, "rendered.cfg")
    assert again == model
    assert render(again) == text


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_rendered_corpus_file_gets_haproxys_verdict_on_the_original(
    case: Case, tmp_path: Path
) -> None:
    """Real `haproxy -c` judges the rendered file as it judges the original (a clean file
    renders clean, a warned one still only warns)."""
    certs = make_certs(tmp_path)
    original = materialise(case, tmp_path, certs)
    rendered = tmp_path / f"rendered-{case.name}"
    rendered.write_text(render(parse_file(original)))
    assert _verdict(rendered) == _verdict(original) == case.expect
