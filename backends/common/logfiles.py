"""Log files the way Impala's daemons keep them (glog, plus Impala's retention).

With ``--log_dir`` each start writes a new file named as glog names it,
``<log_dir>/<prefix>.<host>.<user>.log.INFO.<yyyymmdd-hhmmss>.<pid>``, points the
symlink ``<prefix>.INFO`` at it, and deletes the oldest files beyond
``--max_log_files`` (Impala's rule; 0 keeps all). ``<prefix>`` is
``--log_filename``, by default the program's name. ``--logtostderr`` keeps the
log on stderr even with ``--log_dir``.

One deliberate difference: without ``--log_dir`` the log goes to stderr (the
journal, under systemd), where glog would write files under ``/tmp``. The one
file holds every level (glog also splits WARNING and ERROR into files of their
own).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
from pathlib import Path
from typing import IO

from backends.common.flags import Flags, FlagSet


def define_flags(fs: FlagSet) -> None:
    """The log flags every daemon implements."""
    fs.define("log_dir", "", "write the log to files in this directory; empty: to stderr")
    fs.define("log_filename", "", "prefix of the log files' names; empty: the program's name")
    fs.define("max_log_files", 10, "log files kept per prefix, the newest; 0 keeps them all")
    fs.define("logtostderr", False, "log to stderr, even with --log_dir")


def open_log(program: str, flags: Flags, *, now: float | None = None) -> IO[str] | None:
    """This start's log file (opened for appending), or None for stderr."""
    log_dir = flags.get_str("log_dir")
    if not log_dir or flags.get_bool("logtostderr"):
        return None
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = flags.get_str("log_filename") or program
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    name = f"{prefix}.{_host()}.{_user()}.log.INFO.{stamp}.{os.getpid()}"
    out = open(directory / name, "a", encoding="utf-8")  # noqa: SIM115 (the daemon's life)
    link = directory / f"{prefix}.INFO"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(name)
    except OSError:
        pass  # a link we may not replace leaves the log itself in place
    prune(directory, prefix, flags.get_int("max_log_files"), keep=name)
    return out


def prune(directory: Path, prefix: str, keep_count: int, *, keep: str = "") -> list[str]:
    """Delete ``prefix``'s oldest INFO logs beyond ``keep_count`` (0: none); the names
    deleted. ``keep`` is never deleted (the file just opened)."""
    if keep_count <= 0:
        return []
    logs = sorted(
        (p for p in directory.glob(f"{prefix}.*.log.INFO.*") if p.is_file()),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    doomed = [p for p in logs[: max(0, len(logs) - keep_count)] if p.name != keep]
    for path in doomed:
        with contextlib.suppress(OSError):
            path.unlink()
    return [p.name for p in doomed]


def _host() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "invalid-user"
