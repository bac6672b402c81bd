"""HAProxy's ``option tcplog`` line, the ``Connect from`` line, and where they are sent.

The line follows spec 3.5 exactly::

    %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq

Targets are the ``log`` lines of the config: UDP syslog (``ip[:port]``, RFC3164
framing like HAProxy's: ``<PRI>Mmm dd HH:MM:SS tag[pid]: message``), and
``stdout``/``stderr`` (the same framing unless ``format raw``). Unix socket
targets such as ``/dev/log`` are sent as datagrams when the socket exists.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from twisted.logger import Logger as _TwistedLogger

from haconfig.model import LogTarget

_log = _TwistedLogger()

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "auth2": 10,
    "ftp": 11,
    "ntp": 12,
    "audit": 13,
    "alert": 14,
    "cron2": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}

LEVELS = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}


@dataclass(slots=True)
class SessionRecord:
    """What one tcplog line says about one connection (times in ms, -1 = not reached)."""

    client_ip: str
    client_port: int
    accept_time: float  # epoch seconds
    frontend: str
    backend: str
    server: str = "<NOSRV>"
    tw: int = -1
    tc: int = -1
    tt: int = 0
    bytes_out: int = 0  # server -> client
    bytes_in: int = 0  # client -> server
    termination: str = "--"
    actconn: int = 0
    feconn: int = 0
    beconn: int = 0
    srv_conn: int = 0
    retries: int = 0
    redispatched: bool = False
    srv_queue: int = 0
    backend_queue: int = 0


def format_accept_date(epoch: float) -> str:
    """``22/Nov/2026:00:00:10.870``: HAProxy's ``%t`` (local time, milliseconds)."""
    seconds, ms = divmod(round(epoch * 1000), 1000)
    tm = time.localtime(seconds)
    return (
        f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}:"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d}"
    )


def format_tcplog(rec: SessionRecord) -> str:
    """The ``option tcplog`` message for ``rec`` (without the syslog header)."""
    retries = f"+{rec.retries}" if rec.redispatched else str(rec.retries)
    return (
        f"{rec.client_ip}:{rec.client_port} [{format_accept_date(rec.accept_time)}] "
        f"{rec.frontend} {rec.backend}/{rec.server} {rec.tw}/{rec.tc}/{rec.tt} "
        f"{rec.bytes_out} {rec.termination} "
        f"{rec.actconn}/{rec.feconn}/{rec.beconn}/{rec.srv_conn}/{retries} "
        f"{rec.srv_queue}/{rec.backend_queue}"
    )


def format_connect(
    client: tuple[str, int], local: tuple[str, int], frontend: str, mode: str = "TCP"
) -> str:
    """The line logged at accept time when ``option tcplog`` is off."""
    return f"Connect from {client[0]}:{client[1]} to {local[0]}:{local[1]} ({frontend}/{mode})"


def rfc3164(message: str, facility: int, level: int, tag: str, pid: int, now: float) -> str:
    """``<PRI>Mmm dd HH:MM:SS tag[pid]: message`` as HAProxy frames it (no hostname)."""
    tm = time.localtime(now)
    return (
        f"<{facility * 8 + level}>{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tag}[{pid}]: {message}"
    )


class LogError(ValueError):
    """A ``log`` target the runtime cannot use."""


def parse_udp_address(address: str) -> tuple[str, int]:
    """``127.0.0.1:5514`` / ``udp@1.2.3.4`` / ``ipv4@host:port`` -> (host, port); 514 by default."""
    addr = address
    for prefix in ("udp@", "udp4@", "ipv4@", "udp6@", "ipv6@"):
        if addr.startswith(prefix):
            addr = addr[len(prefix) :]
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else 514
    if addr.count(":") == 1:
        host, _, port = addr.partition(":")
        if not port.isdigit():
            raise LogError(f"bad log address '{address}'")
        return host, int(port)
    return addr, 514


class _Sink:
    """One resolved log target."""

    def __init__(
        self,
        target: LogTarget,
        tag: str,
        pid: int,
        clock: Callable[[], float],
        stream_for: Callable[[str], TextIO],
    ) -> None:
        self.facility = FACILITIES.get(target.facility or "user")
        if self.facility is None:
            raise LogError(f"unknown log facility '{target.facility}'")
        self.max_level = LEVELS.get(target.level or "debug", 7)
        self.tag, self.pid, self.clock = tag, pid, clock
        self.raw = target.format == "raw"
        self.length = target.length or 1024
        self.target = target.address
        #: lines lost because the target failed (stdout/stderr only: syslog is best effort)
        self.dropped = 0
        self.stream: TextIO | None = None
        self.sock: socket.socket | None = None
        self.dest: tuple[str, int] | str = ""
        addr = target.address
        if addr in ("stdout", "stderr"):
            self.stream = stream_for(addr)
        elif addr.startswith("/") or addr.startswith("unix@"):
            path = addr.removeprefix("unix@")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.dest = path
        else:
            host, port = parse_udp_address(addr)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.dest = (host, port)
        if self.sock is not None:
            self.sock.setblocking(False)

    def emit(self, message: str, level: int) -> None:
        if level > self.max_level:
            return
        assert self.facility is not None
        line = (
            message
            if self.raw
            else rfc3164(message, self.facility, level, self.tag, self.pid, self.clock())
        )
        if self.stream is not None:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError) as e:
                # A closed pipe, a full disk: the line is lost, never the traffic.
                self.dropped += 1
                if self.dropped == 1:
                    _log.warn(
                        "log to {target} failing ({error}); lines are dropped, traffic goes on",
                        target=self.target,
                        error=e,
                    )
            return
        assert self.sock is not None
        # Syslog is best effort, as in HAProxy: a full or absent receiver drops lines.
        with contextlib.suppress(OSError):
            self.sock.sendto(line.encode("utf-8", "replace")[: self.length], self.dest)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _std_stream(name: str) -> TextIO:
    return sys.stdout if name == "stdout" else sys.stderr


class Logger:
    """Sends messages to every log target of a proxy."""

    def __init__(
        self,
        targets: Iterable[LogTarget],
        *,
        tag: str = "impala-lb",
        pid: int | None = None,
        clock: Callable[[], float] = time.time,
        stream_for: Callable[[str], TextIO] = _std_stream,
    ) -> None:
        pid = os.getpid() if pid is None else pid
        self.sinks = [_Sink(t, tag, pid, clock, stream_for) for t in targets]

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def info(self, message: str) -> None:
        for sink in self.sinks:
            sink.emit(message, LEVELS["info"])

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def effective_targets(
    proxy_logs: Sequence[LogTarget], global_logs: Sequence[LogTarget]
) -> list[LogTarget]:
    """A proxy's ``log`` lines with ``log global`` replaced by the global ones."""
    out: list[LogTarget] = []
    for t in proxy_logs:
        if t.is_global:
            out.extend(global_logs)
        else:
            out.append(t)
    return out
