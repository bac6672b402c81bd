"""Shared fixtures: a real impalad on loopback, started once per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.impalad import Impalad


@pytest.fixture(scope="module")
def impalad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Impalad]:
    """One impalad (real Engine) on 127.0.0.1 with free ports, stopped by PID afterwards."""
    daemon = Impalad.start(tmp_path_factory.mktemp("impalad"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def fresh_impalad(tmp_path: Path) -> Iterator[Impalad]:
    """An impalad of its own for a test that ends it (shutdown tests)."""
    daemon = Impalad.start(tmp_path, flags=["--shutdown_grace_period_s=1"])
    try:
        yield daemon
    finally:
        daemon.stop()
