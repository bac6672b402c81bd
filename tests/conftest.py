"""Test markers: ``integration`` for every test whose module starts processes or opens
real sockets, so that ``pytest -m "not integration"`` runs the in-memory suite alone.

A module is integration when it imports what does either: ``subprocess``, ``socket``,
``urllib.request``, Twisted's global reactor, or one of the helpers of ``tests/support``
that start daemons, KDCs, balancers or listeners. Deciding by imports keeps the mark
correct as tests are added: a new test in such a module is marked without a decorator
to forget."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

#: imports that mean processes or real sockets
_REAL = (
    "subprocess",
    "socket",
    "urllib.request",
    "twisted.internet.reactor",
    "proxy.appliance.netns",
    "tests.support.procs",
    "tests.support.cluster",
    "tests.support.impalad",
    "tests.support.kdc",
    "tests.support.balancer",
    "tests.support.loopback",
    "tests.catalog._cluster",
)


@cache
def _is_integration(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if any(name == real or name.startswith(real + ".") for real in _REAL):
                return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: starts processes or opens real sockets (tests/conftest.py)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_integration(Path(str(item.path))):
            item.add_marker(pytest.mark.integration)
