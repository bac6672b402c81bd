"""Fixtures shared by the balancer's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import LogEvent, globalLogPublisher


@pytest.fixture
def events() -> Iterator[list[LogEvent]]:
    """Every Twisted log event emitted during the test."""
    seen: list[LogEvent] = []
    observer: Any = seen.append
    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)
