"""The one exception the engine raises, printed the way Impala prints its errors."""

from __future__ import annotations


class ImpalaError(Exception):
    """A statement failed; ``str(err)`` is ``"<kind>: <message>"`` as Impala shows it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def analysis(message: str) -> ImpalaError:
    """An ``AnalysisException``: the statement is well formed but means nothing here."""
    return ImpalaError("AnalysisException", message)


def parse_error(sql: str, detail: str = "") -> ImpalaError:
    """A ``ParseException`` pointing at the statement's first line, as Impala's parser does."""
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    message = f"Syntax error in line 1:\n{first}\n"
    if detail:
        message += detail
    return ImpalaError("ParseException", message.rstrip("\n"))
