"""Statements and their results: what ``Engine.execute`` returns.

A result either sits in memory (SHOW, DESCRIBE, SET: a handful of rows) or streams
from a DuckDB cursor with ``fetchmany``, so a result of millions of rows is never held
whole. A query's DuckDB execution starts on the first ``wait()`` or ``fetch()``, not in
``execute()``: the protocol layer gets the statement (and can cancel it) at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from ._errors import ImpalaError
from ._types import ColumnDesc, Converter


class Session:
    """One client session: user, current database and the query options SET in it."""

    def __init__(
        self, user: str = "", database: str = "default", options: dict[str, str] | None = None
    ) -> None:
        self.user = user
        self.database = database
        self.options: dict[str, str] = dict(options or {})

    def __repr__(self) -> str:
        return f"Session(user={self.user!r}, database={self.database!r})"


def translate_duckdb_error(err: Exception, database: str = "default") -> ImpalaError:
    """A DuckDB error as the Impala error a user would see for the same mistake."""
    import re

    text = str(err)
    first = text.splitlines()[0] if text else type(err).__name__
    detail = re.sub(r"^[A-Za-z ]+ Error: ", "", first)
    if isinstance(err, duckdb.InterruptException):
        return ImpalaError("CANCELLED", "Cancelled")
    if isinstance(err, duckdb.BinderException):
        m = re.search(r'column "([^"]+)" not found', detail, re.IGNORECASE)
        if m:
            return ImpalaError(
                "AnalysisException", f"Could not resolve column/field reference: '{m.group(1)}'"
            )
        m = re.search(r'Column "([^"]+)" referenced that exists in the SELECT clause', detail)
        if m:
            return ImpalaError(
                "AnalysisException", f"Could not resolve column/field reference: '{m.group(1)}'"
            )
        m = re.search(r"No function matches the given name and argument types \'([^\']+)\'", detail)
        if m:
            return ImpalaError(
                "AnalysisException", f"No matching function with signature: {m.group(1)}."
            )
        return ImpalaError("AnalysisException", detail)
    if isinstance(err, duckdb.CatalogException):
        m = re.search(r"Function with name (\w+) does not exist", detail)
        if m:
            return ImpalaError(
                "AnalysisException",
                f"{database}.{m.group(1)}() unknown for database {database}. "
                f"Currently this db has 0 functions.",
            )
        return ImpalaError("AnalysisException", detail)
    if isinstance(err, duckdb.ParserException):
        return ImpalaError("ParseException", detail)
    return ImpalaError("ImpalaRuntimeException", detail)


class Statement:
    """What ``execute`` returned: the result schema, and rows to fetch as columns.

    ``fetch`` returns one list per column, values in HS2 wire form, and empty columns
    once the result is exhausted. ``cancel`` may be called from any thread.
    """

    def __init__(
        self,
        *,
        statement_type: str,
        schema: list[ColumnDesc] | None,
        rows: Sequence[Sequence[object]] = (),
        query: _DuckQuery | None = None,
        rows_modified: int | None = None,
        summary: dict[str, object] | None = None,
        plan: Callable[[], str] | None = None,
    ) -> None:
        self.statement_type = statement_type
        self.schema = schema
        self.rows_modified = rows_modified
        self._summary: dict[str, object] = dict(summary or {})
        self._summary.setdefault("rows_produced", 0)
        self._plan = plan
        self._rows = list(rows)
        self._offset = 0
        self._query = query
        self._lock = threading.Lock()
        self._cancelled = False
        self._closed = False
        self._started = time.monotonic()

    @property
    def in_engine(self) -> bool:
        """Whether DuckDB is running this statement's query right now."""
        return self._query is not None and self._query.busy

    @property
    def summary(self) -> dict[str, object]:
        """Rows produced, durations, the DuckDB SQL and (queries, made on first use) the plan."""
        if self._plan is not None and "plan" not in self._summary:
            plan, self._plan = self._plan, None
            try:
                self._summary["plan"] = plan()
            except Exception as err:  # a plan is a nicety for profiles; never fail for it
                self._summary["plan"] = f"(no plan: {err})"
        return self._summary

    def note(self, **values: object) -> None:
        """Add summary entries (without making the plan)."""
        for key, value in values.items():
            self._summary.setdefault(key, value)

    def _empty(self) -> list[list[object]]:
        return [[] for _ in self.schema or ()]

    def wait(self) -> None:
        """Block until rows can be fetched (runs the query); raise ImpalaError on failure."""
        if self._query is None:
            return
        with self._lock:
            self._check()
            self._query.start()

    def fetch(self, max_rows: int) -> list[list[object]]:
        """Up to ``max_rows`` rows as columns; empty columns when exhausted."""
        with self._lock:
            self._check()
            if self.schema is None or max_rows <= 0:
                return self._empty()
            if self._query is not None:
                try:
                    columns = self._query.fetch(max_rows)
                except ImpalaError:
                    if self._cancelled:
                        raise ImpalaError("CANCELLED", "Cancelled") from None
                    raise
            else:
                batch = self._rows[self._offset : self._offset + max_rows]
                self._offset += len(batch)
                columns = [list(c) for c in zip(*batch, strict=False)] if batch else self._empty()
            n = len(columns[0]) if columns else 0
            self._summary["rows_produced"] = int(str(self._summary["rows_produced"])) + n
            if n == 0:
                self._summary.setdefault("duration_s", round(time.monotonic() - self._started, 6))
            return columns

    def _check(self) -> None:
        if self._cancelled:
            raise ImpalaError("CANCELLED", "Cancelled")
        if self._closed:
            raise ImpalaError("CANCELLED", "Statement was closed")

    def cancel(self) -> None:
        """Stop the statement: interrupt its running DuckDB query; later fetches fail."""
        self._cancelled = True
        if self._query is not None:
            self._query.interrupt()

    def close(self) -> None:
        """Release the statement's DuckDB cursor."""
        self._closed = True
        if self._query is not None:
            self._query.interrupt()
            with self._lock:
                self._query.close()


class _DuckQuery:
    """A DuckDB query run on its own cursor and read in batches through converters."""

    def __init__(
        self,
        cursor_factory: Callable[[], Any],
        sql: str,
        converters: Sequence[Converter | None],
        database: str,
        time_limit_s: float = 0,
    ) -> None:
        self._cursor_factory = cursor_factory
        self.sql = sql
        self._converters = list(converters)
        self._database = database
        self._time_limit_s = time_limit_s
        self._cursor: Any = None
        self._started = False
        self._done = False
        self._interrupted = False
        self._expired = False
        self._busy = False  # inside DuckDB (execute or fetchmany)
        self._error: ImpalaError | None = None
        self._state = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether DuckDB is running it right now (execute or fetchmany)."""
        return self._busy

    def start(self) -> None:
        """Run the query (blocking until its first rows exist)."""
        if self._error is not None:
            raise self._error
        if self._started:
            return
        with self._state:
            if self._interrupted:
                self._error = ImpalaError("CANCELLED", "Cancelled")
                raise self._error
            try:
                cursor = self._cursor = self._cursor_factory()
            except duckdb.Error as err:
                self._error = translate_duckdb_error(err, self._database)
                raise self._error from None
            self._busy = True
        timer = None
        if self._time_limit_s > 0:
            timer = threading.Timer(self._time_limit_s, self._expire)
            timer.daemon = True
            timer.start()
        try:
            cursor.execute(self.sql)
        except duckdb.Error as err:
            self._done = True
            self._error = translate_duckdb_error(err, self._database)
            if self._expired:
                self._error = ImpalaError(
                    "ImpalaRuntimeException",
                    f"Query expired due to execution time limit of {self._time_limit_s:g}s "
                    "(EXEC_TIME_LIMIT_S)",
                )
            raise self._error from None
        finally:
            self._busy = False
            if timer is not None:
                timer.cancel()
        if self._interrupted:
            self._error = ImpalaError("CANCELLED", "Cancelled")
            raise self._error
        self._started = True

    def _expire(self) -> None:
        self._expired = True
        cursor = self._cursor
        if cursor is not None:
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()

    def fetch(self, max_rows: int) -> list[list[object]]:
        """The next batch of rows, as converted columns."""
        self.start()
        if self._done:
            return [[] for _ in self._converters]
        try:
            self._busy = True
            rows = self._cursor.fetchmany(max_rows)
        except duckdb.Error as err:
            self._done = True
            raise translate_duckdb_error(err, self._database) from None
        finally:
            self._busy = False
        if not rows:
            self._done = True
            self.close()
            return [[] for _ in self._converters]
        columns: list[list[object]] = [list(c) for c in zip(*rows, strict=True)]
        for i, convert in enumerate(self._converters):
            if convert is not None:
                columns[i] = [convert(v) for v in columns[i]]
        return columns

    def interrupt(self) -> None:
        """Interrupt the running query, now and again shortly (a query just starting)."""
        with self._state:
            self._interrupted = True
            cursor = self._cursor
        if cursor is not None and self._busy:
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()
            # a query that was just entering DuckDB may have missed it: once more, shortly
            self._reinterrupt_later(cursor, 20)

    def _reinterrupt_later(self, cursor: Any, times: int) -> None:
        timer = threading.Timer(0.05, self._reinterrupt, args=(cursor, times))
        timer.daemon = True
        timer.start()

    def _reinterrupt(self, cursor: Any, times: int) -> None:
        if self._busy:
            with contextlib.suppress(duckdb.Error):
                cursor.interrupt()
            if times > 1:
                self._reinterrupt_later(cursor, times - 1)

    def close(self) -> None:
        """Close the cursor."""
        with self._state:
            cursor, self._cursor = self._cursor, None
        if cursor is not None:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
