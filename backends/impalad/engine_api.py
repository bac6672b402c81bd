"""The slice of the SQL engine (``backends.impalad.sql``) the protocol layer uses.

Typed as protocols so the protocol layer can be tested with an in-memory
engine and never imports DuckDB itself; ``main`` wires the real Engine in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class SessionLike(Protocol):
    user: str
    database: str
    options: dict[str, str]


class StatementLike(Protocol):
    @property
    def schema(self) -> list[Any] | None: ...
    @property
    def statement_type(self) -> str: ...
    @property
    def rows_modified(self) -> int | None: ...
    @property
    def summary(self) -> dict[str, object]: ...

    def fetch(self, max_rows: int) -> list[list[object]]: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


class EngineLike(Protocol):
    def execute(self, session: Any, sql: str) -> StatementLike: ...
    def query_options(self, session: Any) -> list[tuple[str, str, str]]: ...
    def close(self) -> None: ...


SessionFactory = Callable[[str], SessionLike]


def error_text(err: BaseException) -> str:
    """How an engine error reads to the client: Impala's ``Kind: message``.

    The engine's ImpalaError already prints that way; anything else is an
    internal error of ours and is labelled so.
    """
    if hasattr(err, "kind") and hasattr(err, "message"):
        return str(err)
    return f"InternalException: {type(err).__name__}: {err}"
