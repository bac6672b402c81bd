"""The CatalogService RPCs (catalogd's ``--catalog_service_port``, 26000) over AMP.

Impala's ``ExecDdl``/``UpdateCatalog``/``ResetMetadata`` become one :class:`ExecDdl`
command naming a change operation of the engine's ``Catalog`` Protocol
(``create_table``, ``add_files``, ...) with JSON arguments; Impala's topic/partial
fetches become :class:`GetCatalogDelta` (every object newer than a version).
Results, including refusals such as the standby's, travel in-band as JSON
(``{"ok": false, "error_kind", "error_message"}``) so a caller can tell "refused,
nothing done" from "the link broke".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.protocols import amp

from backends.catalog.objects import (
    DecodeError,
    database_from_json,
    database_to_json,
    datafile_from_json,
    table_from_json,
    table_to_json,
)
from backends.common.rpc import JSONArg, RpcError
from backends.impalad.sql import ColumnStats, Database, DataFile, Table, column_stats_from

CATALOG_IN_STANDBY_MODE = "CATALOG_IN_STANDBY_MODE"
CATALOG_NOT_READY = "CATALOG_NOT_READY"


def standby_message(address: str) -> str:
    """Impala's wording for a request that reached the standby (spec 3.5)."""
    return f"Request for Catalog service is rejected since catalogd {address} is in standby mode"


class ExecDdl(amp.Command):
    """impalad -> active catalogd: apply one metadata change; answers the new objects."""

    arguments = [(b"op", amp.Unicode()), (b"args", JSONArg())]
    response = [(b"result", JSONArg())]
    errors = {RpcError: b"RPC_ERROR"}


class GetCatalogDelta(amp.Command):
    """impalad -> active catalogd: every object changed after ``from_version``."""

    arguments = [(b"from_version", amp.Integer())]
    response = [(b"result", JSONArg())]
    errors = {RpcError: b"RPC_ERROR"}


# ----------------------------------------------------------------------------- operations


def _str(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"argument {name!r} must be a non-empty string")
    return value


def _bool(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise DecodeError(f"argument {name!r} must be a boolean")
    return value


def _files(raw: Mapping[str, Any]) -> list[DataFile]:
    files = raw.get("files")
    if not isinstance(files, list):
        raise DecodeError("argument 'files' must be a list")
    return [datafile_from_json(f) for f in files]


def _partitions(raw: Mapping[str, Any]) -> list[tuple[tuple[str, str], ...]] | None:
    parts = raw.get("partitions")
    if parts is None:
        return None
    if not isinstance(parts, list):
        raise DecodeError("argument 'partitions' must be a list or null")
    try:
        return [tuple((str(k), str(v)) for k, v in p) for p in parts]
    except (TypeError, ValueError) as e:
        raise DecodeError(f"bad partition spec: {e!r}") from None


def _rows(raw: Mapping[str, Any]) -> int:
    rows = raw.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool):
        raise DecodeError("argument 'rows' must be an integer")
    return rows


def _column_stats(raw: Mapping[str, Any]) -> tuple[ColumnStats, ...] | None:
    stats = raw.get("column_stats")
    if stats is None:
        return None
    try:
        return column_stats_from(stats)
    except (KeyError, TypeError, ValueError) as e:
        raise DecodeError(f"bad column statistics: {e!r}") from None


_DECODERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "create_database": lambda a: {
        "database": database_from_json(a.get("database")),
        "if_not_exists": _bool(a, "if_not_exists"),
    },
    "drop_database": lambda a: {
        "name": _str(a, "name"),
        "if_exists": _bool(a, "if_exists"),
        "cascade": _bool(a, "cascade"),
    },
    "create_table": lambda a: {
        "table": table_from_json(a.get("table")),
        "if_not_exists": _bool(a, "if_not_exists"),
    },
    "alter_table": lambda a: {
        "db": _str(a, "db"),
        "name": _str(a, "name"),
        "table": table_from_json(a.get("table")),
    },
    "drop_table": lambda a: {
        "db": _str(a, "db"),
        "name": _str(a, "name"),
        "if_exists": _bool(a, "if_exists"),
    },
    "add_files": lambda a: {"db": _str(a, "db"), "name": _str(a, "name"), "files": _files(a)},
    "replace_files": lambda a: {
        "db": _str(a, "db"),
        "name": _str(a, "name"),
        "files": _files(a),
        "partitions": _partitions(a),
    },
    "set_row_count": lambda a: {
        "db": _str(a, "db"),
        "name": _str(a, "name"),
        "rows": _rows(a),
        "column_stats": _column_stats(a),
    },
}
OPERATIONS = frozenset(_DECODERS)


def decode_op(op: str, args: Any) -> dict[str, Any]:
    """The keyword arguments of ``Catalog.<op>``; :class:`DecodeError` says what is wrong."""
    decoder = _DECODERS.get(op)
    if decoder is None:
        raise DecodeError(f"unknown catalog operation {op!r}")
    if not isinstance(args, dict):
        raise DecodeError("operation arguments must be an object")
    return decoder(args)


def encode_value(value: Any) -> Any:
    """An argument of a ``Catalog`` operation as JSON."""
    if isinstance(value, Database):
        return database_to_json(value)
    if isinstance(value, Table):
        return table_to_json(value)
    if isinstance(value, DataFile):
        return {"path": value.path, "size": value.size, "partition": list(value.partition)}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def encode_op(**kwargs: Any) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in kwargs.items()}


def error_result(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error_kind": kind, "error_message": message}
