"""Who may import whom (ARCHITECTURE.md), read from the source, imports inside
functions and under ``TYPE_CHECKING`` included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: (importer prefix, imported prefix): the importer never imports it
FORBIDDEN = [
    ("haconfig", "proxy"),
    ("haconfig", "backends"),
    ("backends", "proxy"),
    ("backends", "haconfig"),
    # a reload runs one way: runtime -> reload -> build (issue 17)
    ("proxy.reload", "proxy.runtime"),
    ("proxy.build", "proxy.runtime"),
    ("proxy.build", "proxy.reload"),
    # a server's state has one owner, which knows no one above it
    ("proxy.server", "proxy"),
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _sources() -> list[Path]:
    files: list[Path] = []
    for package in ("haconfig", "proxy", "backends"):
        files.extend(p for p in (ROOT / package).rglob("*.py") if "gen" not in p.parts)
    return sorted(files)


def test_the_sources_are_found() -> None:
    names = {_module(p) for p in _sources()}
    assert {"proxy.reload", "proxy.runtime", "proxy.build", "proxy.server"} <= names
    assert "haconfig.parse" in names and "backends.impalad.server" in names


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_imports_run_one_way(importer: str, imported: str) -> None:
    """No module under ``importer`` imports anything under ``imported``."""
    wrong = []
    for path in _sources():
        me = _module(path)
        if not _under(me, importer):
            continue
        for name in _imports(path):
            if _under(name, imported) and not _under(name, importer):
                wrong.append(f"{me} imports {name}")
    assert wrong == []
