"""Impala's query options: names, defaults and levels as ``SET ALL`` lists them.

Values are strings, as on the wire. Booleans are shown as ``0``/``1`` (``SET x=true``
stores ``1``), as Impala 4 does. Only a few options change what this engine does
(``MEM_LIMIT``, ``EXPLAIN_LEVEL``, ``DEFAULT_FILE_FORMAT``, ``NUM_THREADS`` via ``MT_DOP``);
the others are accepted and remembered so clients that set them keep working.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from ._errors import ImpalaError


@dataclasses.dataclass(frozen=True)
class QueryOption:
    """One query option: its default, its level, and the kind of value it takes."""

    name: str
    default: str
    level: str  # REGULAR | ADVANCED | DEVELOPMENT | DEPRECATED | REMOVED
    kind: str = "str"  # bool | int | mem | enum | str
    choices: tuple[str, ...] = ()


_B, _I, _M, _E, _S = "bool", "int", "mem", "enum", "str"
_R, _A, _D = "REGULAR", "ADVANCED", "DEVELOPMENT"

OPTIONS: tuple[QueryOption, ...] = (
    QueryOption("ABORT_ON_ERROR", "0", _R, _B),
    QueryOption("ALLOW_ERASURE_CODED_FILES", "0", _D, _B),
    QueryOption("APPX_COUNT_DISTINCT", "0", _A, _B),
    QueryOption("BATCH_SIZE", "0", _D, _I),
    QueryOption("BUFFER_POOL_LIMIT", "", _A, _M),
    QueryOption("CLIENT_IDENTIFIER", "", _A, _S),
    QueryOption(
        "COMPRESSION_CODEC",
        "",
        _R,
        _E,
        (
            "",
            "NONE",
            "GZIP",
            "BZIP2",
            "DEFAULT",
            "SNAPPY",
            "SNAPPY_BLOCKED",
            "LZO",
            "LZ4",
            "ZLIB",
            "ZSTD",
        ),
    ),
    QueryOption("COMPUTE_STATS_MIN_SAMPLE_SIZE", "1073741824", _A, _I),
    QueryOption("DEBUG_ACTION", "", _D, _S),
    QueryOption("DECIMAL_V2", "1", _D, _B),
    QueryOption(
        "DEFAULT_FILE_FORMAT",
        "TEXT",
        _R,
        _E,
        (
            "TEXT",
            "RC_FILE",
            "SEQUENCE_FILE",
            "AVRO",
            "PARQUET",
            "KUDU",
            "ORC",
            "HUDI_PARQUET",
            "ICEBERG",
            "JSON",
            "JDBC",
        ),
    ),
    QueryOption("DEFAULT_JOIN_DISTRIBUTION_MODE", "BROADCAST", _A, _E, ("BROADCAST", "SHUFFLE")),
    QueryOption("DEFAULT_SPILLABLE_BUFFER_SIZE", "2097152", _A, _M),
    QueryOption("DEFAULT_TRANSACTIONAL_TYPE", "NONE", _A, _E, ("NONE", "INSERT_ONLY")),
    QueryOption("DELETE_STATS_IN_TRUNCATE", "1", _A, _B),
    QueryOption("DISABLE_CODEGEN", "0", _R, _B),
    QueryOption("DISABLE_CODEGEN_ROWS_THRESHOLD", "50000", _A, _I),
    QueryOption("DISABLE_HBASE_NUM_ROWS_ESTIMATE", "0", _A, _B),
    QueryOption("DISABLE_ROW_RUNTIME_FILTERING", "0", _A, _B),
    QueryOption("DISABLE_STREAMING_PREAGGREGATIONS", "0", _A, _B),
    QueryOption("DISABLE_UNSAFE_SPILLS", "0", _A, _B),
    QueryOption("ENABLE_EXPR_REWRITES", "1", _A, _B),
    QueryOption("EXEC_SINGLE_NODE_ROWS_THRESHOLD", "100", _A, _I),
    QueryOption("EXEC_TIME_LIMIT_S", "0", _R, _I),
    QueryOption(
        "EXPLAIN_LEVEL",
        "1",
        _R,
        _E,
        ("0", "1", "2", "3", "MINIMAL", "STANDARD", "EXTENDED", "VERBOSE"),
    ),
    QueryOption("FETCH_ROWS_TIMEOUT_MS", "10000", _A, _I),
    QueryOption("HBASE_CACHE_BLOCKS", "0", _A, _B),
    QueryOption("HBASE_CACHING", "0", _A, _I),
    QueryOption("IDLE_SESSION_TIMEOUT", "0", _R, _I),
    QueryOption("MAX_ERRORS", "100", _A, _I),
    QueryOption("MAX_MEM_ESTIMATE_FOR_ADMISSION", "", _A, _M),
    QueryOption("MAX_NUM_RUNTIME_FILTERS", "10", _A, _I),
    QueryOption("MAX_RESULT_SPOOLING_MEM", "104857600", _A, _M),
    QueryOption("MAX_ROW_SIZE", "524288", _R, _M),
    QueryOption("MAX_SCAN_RANGE_LENGTH", "0", _D, _M),
    QueryOption("MAX_SPILLED_RESULT_SPOOLING_MEM", "1073741824", _A, _M),
    QueryOption("MEM_LIMIT", "0", _R, _M),
    QueryOption("MIN_SPILLABLE_BUFFER_SIZE", "65536", _A, _M),
    QueryOption("MT_DOP", "", _R, _I),
    QueryOption("NUM_NODES", "0", _D, _I),
    QueryOption("NUM_ROWS_PRODUCED_LIMIT", "0", _A, _I),
    QueryOption("NUM_SCANNER_THREADS", "0", _R, _I),
    QueryOption("OPTIMIZE_PARTITION_KEY_SCANS", "0", _R, _B),
    QueryOption("PARQUET_ANNOTATE_STRINGS_UTF8", "0", _A, _B),
    QueryOption(
        "PARQUET_ARRAY_RESOLUTION",
        "THREE_LEVEL",
        _R,
        _E,
        ("THREE_LEVEL", "TWO_LEVEL", "TWO_LEVEL_THEN_THREE_LEVEL"),
    ),
    QueryOption(
        "PARQUET_FALLBACK_SCHEMA_RESOLUTION", "POSITION", _R, _E, ("POSITION", "NAME", "FIELD_ID")
    ),
    QueryOption("PARQUET_FILE_SIZE", "0", _A, _M),
    QueryOption("PREFETCH_MODE", "1", _A, _E, ("0", "1", "NONE", "HT_BUCKET")),
    QueryOption("QUERY_TIMEOUT_S", "0", _R, _I),
    QueryOption(
        "REPLICA_PREFERENCE",
        "CACHE_LOCAL",
        _A,
        _E,
        ("CACHE_LOCAL", "CACHE_RACK", "DISK_LOCAL", "DISK_RACK", "REMOTE"),
    ),
    QueryOption("REQUEST_POOL", "", _R, _S),
    QueryOption("RESOURCE_TRACE_RATIO", "0", _A, _S),
    QueryOption("RUNTIME_BLOOM_FILTER_SIZE", "1048576", _A, _M),
    QueryOption("RUNTIME_FILTER_MAX_SIZE", "16777216", _A, _M),
    QueryOption("RUNTIME_FILTER_MIN_SIZE", "1048576", _A, _M),
    QueryOption("RUNTIME_FILTER_MODE", "GLOBAL", _R, _E, ("0", "1", "2", "OFF", "LOCAL", "GLOBAL")),
    QueryOption("RUNTIME_FILTER_WAIT_TIME_MS", "0", _R, _I),
    QueryOption("S3_SKIP_INSERT_STAGING", "1", _A, _B),
    QueryOption("SCAN_BYTES_LIMIT", "0", _A, _M),
    QueryOption("SCHEDULE_RANDOM_REPLICA", "0", _A, _B),
    QueryOption("SCRATCH_LIMIT", "-1", _A, _M),
    QueryOption("SHUFFLE_DISTINCT_EXPRS", "1", _A, _B),
    QueryOption("SPOOL_QUERY_RESULTS", "1", _A, _B),
    QueryOption("STATEMENT_EXPRESSION_LIMIT", "250000", _A, _I),
    QueryOption("STRICT_MODE", "0", _D, _B),
    QueryOption("SUPPORT_START_OVER", "false", _A, _S),
    QueryOption("SYNC_DDL", "0", _R, _B),
    QueryOption("THREAD_RESERVATION_AGGREGATE_LIMIT", "0", _A, _I),
    QueryOption("THREAD_RESERVATION_LIMIT", "3000", _R, _I),
    QueryOption("TIMEZONE", "", _R, _S),
    QueryOption("TOPN_BYTES_LIMIT", "536870912", _A, _M),
    QueryOption("USE_LOCAL_TZ_FOR_UNIX_TIMESTAMP_CONVERSIONS", "0", _A, _B),
    QueryOption("UTF8_MODE", "0", _D, _B),
)

BY_NAME: Mapping[str, QueryOption] = {o.name: o for o in OPTIONS}

_MEM_RE = re.compile(r"^-?\d+(\.\d+)?\s*([kmgtp]b?|b|%)?$", re.IGNORECASE)


def _invalid(name: str, value: str, why: str) -> ImpalaError:
    return ImpalaError(
        "AnalysisException", f"Invalid value for query option {name}: '{value}' ({why})"
    )


def normalize(name: str, value: str) -> tuple[str, str]:
    """Check a ``SET name=value``; the option's canonical name and stored value."""
    key = name.strip().upper()
    option = BY_NAME.get(key)
    if option is None:
        raise ImpalaError("AnalysisException", f"Invalid query option: {name.strip()}")
    v = value.strip()
    if option.kind == _B:
        low = v.lower()
        if low in ("true", "1"):
            return key, "1"
        if low in ("false", "0"):
            return key, "0"
        raise _invalid(key, v, "expected true or false")
    if option.kind == _I:
        if v and not re.fullmatch(r"-?\d+", v):
            raise _invalid(key, v, "expected an integer")
        return key, v
    if option.kind == _M:
        if v and not _MEM_RE.match(v):
            raise _invalid(key, v, "expected a memory size such as 2g")
        return key, v
    if option.kind == _E:
        if v.upper() not in option.choices:
            raise _invalid(key, v, "expected one of " + ", ".join(c for c in option.choices if c))
        return key, v.upper()
    return key, v


def defaults(overrides: Mapping[str, str] = {}) -> dict[str, str]:
    """All options at their defaults, with the daemon's ``default_query_options`` applied."""
    values = {o.name: o.default for o in OPTIONS}
    for name, value in overrides.items():
        key, v = normalize(name, value)
        values[key] = v
    return values
