"""Every corpus config gets the same verdict from impala-lb as from the real ``haproxy -c``."""

from __future__ import annotations

from pathlib import Path

import pytest

from haconfig.validate import CheckResult, check, haproxy_binary, haproxy_check
from tests.haconfig._corpus import Case, cases, make_certs, materialise

CASES = cases()
NOTE = "not implemented by impala-lb"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("corpus")
    return directory, make_certs(directory)


def _keyword(result: CheckResult) -> str:
    """The first quoted word of the first alert: the keyword HAProxy names."""
    alert = result.first_alert
    assert alert is not None
    text = alert.text
    start = text.find("'")
    return text[start + 1 : text.find("'", start + 1)] if start >= 0 else text


def test_corpus_is_large_and_covers_every_verdict() -> None:
    """The corpus has at least 40 configs and each verdict, seed and Impala samples included."""
    assert len(CASES) >= 40
    assert {c.expect for c in CASES} == {"clean", "warnings", "fatal", "nolistener"}
    names = {c.name for c in CASES}
    assert {"seed_as_written.cfg", "seed_fixed.cfg", "impala_doc_as_written.cfg"} <= names
    assert "impala_doc_fixed.cfg" in names


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_verdict_matches_haproxy(case: Case, workdir: tuple[Path, dict[str, str]]) -> None:
    """HAProxy gives the file's expected verdict and we give ours; unless the file says we
    differ on purpose, we print exactly HAProxy's messages in its order (plus our notes on
    what is not implemented), and fatal ones agree on the first alert's file:line and keyword."""
    assert haproxy_binary() is not None, "haproxy 2.6 must be installed (./dev installs it)"
    directory, certs = workdir
    path = materialise(case, directory, certs)
    real = haproxy_check(path)
    ours = check(path)
    assert real.verdict == case.expect, "\n".join(m.text for m in real.messages)
    assert ours.verdict == case.ours, "\n".join(m.text for m in ours.messages)
    if case.deliberate is None:
        ours_without_notes = [m.text for m in ours.messages if NOTE not in m.text]
        assert ours_without_notes == [m.text for m in real.messages]
    if case.expect == "fatal" and case.ours == "fatal":
        assert real.first_alert is not None and ours.first_alert is not None
        assert ours.first_alert.location == real.first_alert.location
        assert _keyword(ours) == _keyword(real), (ours.first_alert.text, real.first_alert.text)
