"""What every daemon's ``main()`` does the same way: flags, logging, start, stop.

A daemon's ``main`` reads as::

    top = daemon.build(
        flag_set(), argv, lambda flags: makeService(flags, reactor),
        logging=flagsets.not_implemented,
    )
    if isinstance(top, int):
        return top  # --help or --version (0), or a flag error (2), already printed
    return daemon.run(reactor, top, "statestored")

and ``makeService`` checks its numeric flags with :func:`port`, :func:`positive`
and :func:`positive_ms`, so every daemon words a bad value the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, TypeVar

from twisted.application import service
from twisted.internet.error import CannotListenError
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from backends.common import logfiles
from backends.common.flags import FlagError, Flags, FlagSet
from backends.common.rpc import RpcError, TlsConfig

log = Logger()
T = TypeVar("T")

HELP_WORDS = ("--help", "-help")
# Reconnect chatter of outbound links (ClientService retries) is logged at warn only.
QUIET_NAMESPACES = ("twisted.application._client_service", "twisted.python.log")


def reactor_or_global(reactor: Any) -> Any:
    """``reactor``, or the global one when it is None: for ``makeService`` only."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        return global_reactor
    return reactor


def tls_config(flags: Flags) -> TlsConfig:
    """The ``--ssl_*`` RPC flags checked (pairs given together, files readable)."""
    try:
        return TlsConfig.from_flags(flags)
    except RpcError as e:
        raise FlagError(str(e)) from None


def port(flags: Flags, name: str, *, allow_zero: bool = False) -> int:
    """The TCP port in flag ``name``; 0 only with ``allow_zero`` (off / any free port)."""
    value = flags.get_int(name)
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise FlagError(f"--{name} is not a port: {value}")
    return value


def positive(flags: Flags, name: str) -> int:
    """The integer in flag ``name``, which must be above zero."""
    value = flags.get_int(name)
    if value <= 0:
        raise FlagError(f"--{name} must be positive, got {value}")
    return value


def positive_ms(flags: Flags, name: str) -> float:
    """The positive millisecond count in flag ``name`` (an integer or, where Impala's
    flag is a double, a number), in seconds."""
    value = flags.get_float(name)
    if value <= 0:
        raise FlagError(f"--{name} must be positive, got {value:g}")
    return value / 1000.0


def build(
    fs: FlagSet,
    argv: Sequence[str] | None,
    make: Callable[[Flags], T],
    *,
    help_words: Iterable[str] = HELP_WORDS,
    logging: Callable[[Flags], Sequence[str]] | None = None,
    level: LogLevel | None = LogLevel.info,
) -> T | int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and ``make`` something of the flags.

    Returns what ``make`` returned, or the exit status when there is nothing to run:
    0 after printing the usage for a help word (or the version for ``--version``), 2
    after printing a :class:`FlagError` (from parsing or from ``make``) as
    ``<program>: <error>``.

    With ``logging`` (a daemon's start), logging begins before ``make`` runs: to the
    log file of ``--log_dir`` (:mod:`backends.common.logfiles`) or stderr, at
    ``level``; ``logging(flags)`` names the flags given that act nowhere, logged in one
    warning."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(word in args for word in help_words):
        print(fs.usage())
        return 0
    if "--version" in args:
        print(f"{fs.program} (impala-lb {_version()})")
        return 0
    try:
        flags = fs.parse(args)
        if logging is not None:
            out = logfiles.open_log(fs.program, flags) if "log_dir" in flags else None
            begin_logging(out, level=level)
            ignored = logging(flags)
            if ignored:
                log.warn(
                    "{program}: accepted, but impala-lb does not implement (see "
                    "docs/impala-flags.md): {names}",
                    program=fs.program,
                    names=", ".join(f"--{name}" for name in ignored),
                )
        return make(flags)
    except FlagError as e:
        print(f"{fs.program}: {e}", file=sys.stderr)
        return 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("impala-lb")
    except PackageNotFoundError:
        return "unknown"


def begin_logging(
    out: IO[str] | None = None,
    *,
    level: LogLevel | None = LogLevel.info,
    quiet: Iterable[str] = QUIET_NAMESPACES,
) -> None:
    """Log text lines to ``out`` (default stderr): events at ``level`` and above, the
    ``quiet`` namespaces at warn and above; ``level=None`` writes every event unfiltered."""
    text: Any = textFileLogObserver(sys.stderr if out is None else out)
    observer: Any = text
    if level is not None:
        predicate: Any = LogLevelFilterPredicate(defaultLogLevel=level)
        for namespace in quiet:
            predicate.setLogLevelForNamespace(namespace, LogLevel.warn)
        observer = FilteringLogObserver(text, [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def run(reactor: Any, top: service.Service, program: str) -> int:
    """Start ``top`` once the reactor runs, stop it at shutdown; the exit status.

    A service that raises while starting (a port that cannot be bound, say) is
    logged, the reactor stops and the status is 1; the half-started tree is not
    stopped again."""
    failed: list[bool] = []

    def start() -> None:
        try:
            top.startService()
        except CannotListenError as e:
            log.critical("{program} cannot listen: {error}", program=program, error=str(e))
            failed.append(True)
            reactor.stop()
        except Exception:
            log.failure("{program} failed to start", program=program)
            failed.append(True)
            reactor.stop()

    def stop() -> Any:
        # After a failed start some children never started; the process just exits.
        return None if failed else top.stopService()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()
    return 1 if failed else 0
