"""The config corpus (``tests/haconfig/corpus/*.cfg``): expectations and materialisation.

Line 1 of every file is ``# expect: clean|warnings|fatal|nolistener``: what HAProxy 2.6
says. Where impala-lb differs on purpose, a ``# deliberate: <verdict> <reason>`` line
gives our verdict. Placeholders (``@CERT@``, ``@CA@``, ``@CERT_ONLY@``) name files a
fixture generates; :func:`materialise` writes a runnable copy with them filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.certs import make_ca

CORPUS = Path(__file__).parent / "corpus"
VERDICTS = ("clean", "warnings", "fatal", "nolistener")

_EXPECT = re.compile(r"^# expect: (\w+)\s*$")
_DELIBERATE = re.compile(r"^# deliberate: (\w+) (.+)$", re.M)


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str  # HAProxy's verdict
    ours: str  # ours (== expect unless deliberate)
    deliberate: str | None

    @property
    def name(self) -> str:
        return self.path.name


def cases() -> list[Case]:
    out = []
    for path in sorted(CORPUS.glob("*.cfg")):
        text = path.read_text(encoding="utf-8")
        m = _EXPECT.match(text.splitlines()[0])
        if m is None or m.group(1) not in VERDICTS:
            raise ValueError(f"{path}: line 1 must be '# expect: <verdict>'")
        d = _DELIBERATE.search(text)
        ours = d.group(1) if d else m.group(1)
        out.append(Case(path, m.group(1), ours, d.group(2) if d else None))
    return out


def make_certs(directory: Path) -> dict[str, str]:
    """A CA, a server cert+key PEM signed by it, and a cert-only PEM: placeholder -> path."""
    ca = make_ca(directory)
    server = ca.issue(directory, "server", ["localhost"])
    files = {"@CERT@": server.combined, "@CA@": ca.cert, "@CERT_ONLY@": server.cert}
    return {placeholder: str(path) for placeholder, path in files.items()}


def materialise(case: Case, directory: Path, substitutions: dict[str, str]) -> Path:
    """A copy of the case under ``directory`` (same file name) with placeholders filled."""
    text = case.path.read_text(encoding="utf-8")
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    target = directory / case.name
    target.write_text(text, encoding="utf-8")
    return target
