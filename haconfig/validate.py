"""``haproxy -c`` in Python (:func:`check`) and the real one (:func:`haproxy_check`).

Both give a :class:`CheckResult`: the exit code (0 valid, 1 fatal, 2 no listener),
the lines printed on stderr (alerts, warnings) and stdout (the verdict), and for
ours the model. Exit codes and verdict lines are HAProxy 2.6's (spec 1.3).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from haconfig.model import Config, Location
from haconfig.parse import (
    ConfigError,
    Diagnostics,
    Level,
    Message,
    ParseResult,
    Stage,
    load_files,
    read_texts,
)

VALID = 0
FATAL = 1
NO_LISTENER = 2

_ALERT_RE = re.compile(r"^\[(ALERT|WARNING)\]\s+\(\d+\) : config : (.*)$")
_LOC_RE = re.compile(r"\[([^\[\]]+):(\d+)\]")


@dataclass(frozen=True)
class CheckResult(Diagnostics):
    """What ``haproxy -c`` would do with a configuration."""

    code: int
    messages: tuple[Message, ...]
    stdout: tuple[str, ...]
    model: Config | None = None
    pid: int = 0

    @property
    def verdict(self) -> str:
        """``clean``, ``warnings``, ``fatal`` or ``nolistener`` (the corpus vocabulary)."""
        if self.code == FATAL:
            return "fatal"
        if self.code == NO_LISTENER:
            return "nolistener"
        return "warnings" if self.warnings else "clean"

    @property
    def first_alert(self) -> Message | None:
        return next(iter(self.alerts), None)

    @property
    def stderr(self) -> tuple[str, ...]:
        return tuple(m.format(self.pid) for m in self.messages)

    @property
    def lines(self) -> tuple[str, ...]:
        """Everything printed, stderr first (as a terminal shows it for ``-c``)."""
        return self.stderr + self.stdout

    def printed(self, quiet: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(stderr lines, stdout lines) as ``haproxy -c [-q]`` prints them."""
        if quiet:
            return tuple(m.format(self.pid) for m in self.alerts), ()
        return self.stderr, self.stdout


def _verdict_from(result: ParseResult, pid: int) -> CheckResult:
    msgs = list(result.messages)
    stdout: list[str] = []
    if result.failed_stage is Stage.PARSE:
        for name in result.files_with_errors:
            msgs.append(Message(Level.ALERT, f"Error(s) found in configuration file : {name}"))
        if not result.aborted:
            msgs.append(Message(Level.ALERT, "Fatal errors found in configuration."))
        return CheckResult(FATAL, tuple(msgs), (), result.config, pid)
    if result.failed_stage is Stage.CHECK:
        msgs.append(Message(Level.ALERT, "Fatal errors found in configuration."))
        return CheckResult(FATAL, tuple(msgs), (), result.config, pid)
    if result.failed_stage is Stage.ADDR:
        msgs.append(Message(Level.ALERT, "Failed to initialize server(s) addr."))
        return CheckResult(FATAL, tuple(msgs), (), result.config, pid)
    if result.warnings:
        stdout.append("Warnings were found.")
    if not _has_listener(result.config):
        stdout.append(
            "Configuration file has no error but will not start (no listener) => exit(2)."
        )
        return CheckResult(NO_LISTENER, tuple(msgs), tuple(stdout), result.config, pid)
    stdout.append("Configuration file is valid")
    return CheckResult(VALID, tuple(msgs), tuple(stdout), result.config, pid)


def _has_listener(config: Config) -> bool:
    return any(p.binds and not p.disabled for p in config.frontends)


def check(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
) -> CheckResult:
    """Check a configuration file, a directory of ``*.cfg``, or several in order, like
    ``haproxy -c -f``. An unreadable path is fatal, with HAProxy's wording."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    pid = os.getpid()
    try:
        files = load_files(paths)
    except ConfigError as exc:
        return CheckResult(FATAL, exc.messages, (), None, pid)
    return check_texts(files, env=env, resolve_hosts=resolve_hosts, pid=pid)


def check_texts(
    files: Sequence[tuple[str, str]],
    *,
    env: Mapping[str, str] | None = None,
    resolve_hosts: bool = True,
    pid: int | None = None,
) -> CheckResult:
    """:func:`check` on texts already in memory: ``[(filename, text), ...]``."""
    result = read_texts(files, env=env, resolve_hosts=resolve_hosts)
    return _verdict_from(result, os.getpid() if pid is None else pid)


def haproxy_binary() -> str | None:
    """The installed ``haproxy`` executable, if any."""
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
    )


def haproxy_check(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run the real ``haproxy -c -f`` on the file(s); raise ``FileNotFoundError`` when
    HAProxy is not installed. Messages are read back from its output (NOTICE lines are
    dropped); continuation lines are joined to the message they belong to."""
    binary = haproxy_binary()
    if binary is None:
        raise FileNotFoundError("haproxy is not installed")
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    argv = [binary, "-c"]
    for p in paths:
        argv += ["-f", os.fspath(p)]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        check=False,
    )
    return CheckResult(
        proc.returncode,
        parse_haproxy_output(proc.stderr),
        tuple(line for line in proc.stdout.splitlines() if line),
        None,
        0,
    )


def parse_haproxy_output(stderr: str) -> tuple[Message, ...]:
    """HAProxy's stderr as messages, each with the first ``[file:line]`` it cites."""
    msgs: list[Message] = []
    for line in stderr.splitlines():
        m = _ALERT_RE.match(line)
        if m:
            text = m.group(2)
            msgs.append(Message(Level(m.group(1)), text, _location_in(text)))
        elif msgs and line and not line.startswith("[NOTICE]"):
            last = msgs[-1]
            msgs[-1] = Message(last.level, last.text + "\n" + line, last.location)
    return tuple(msgs)


def _location_in(text: str) -> Location | None:
    m = _LOC_RE.search(text)
    return Location(m.group(1), int(m.group(2))) if m else None
