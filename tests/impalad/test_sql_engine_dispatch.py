"""The engine's dispatch tables cover every statement kind the recognizer names."""

from __future__ import annotations

from backends.impalad.sql import _engine, _recognize


def test_every_recognized_kind_has_a_handler() -> None:
    kinds = {kind for kind, _ in _recognize._PATTERNS}
    assert kinds - set(_engine._IMPALA_ONLY) == set()
    assert set(_engine._IMPALA_ONLY) - kinds == set()  # no handler for a kind never named
