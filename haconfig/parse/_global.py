"""The ``global`` section's keywords: one handler each, and their table."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from haconfig.model import (
    Directive,
    Location,
    LogTarget,
    StatsLevel,
    StatsSocket,
)
from haconfig.parse._words import _FACILITIES, _LEVELS, _atoi
from haconfig.units import UnitError, parse_time

if TYPE_CHECKING:
    from haconfig.parse._parser import _Parser


# --- global handlers ----------------------------------------------------------------------


def _g_int(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects an integer argument.")
            return
        ps.gset(**{field_name: _atoi(words[1])})

    return handler


def _g_str(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects an argument.")
            return
        ps.gset(**{field_name: words[1]})

    return handler


def _g_flag(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        ps.gset(**{field_name: True})

    return handler


def _g_nbthread(ps: _Parser, words: list[str], loc: Location) -> None:
    n = _atoi(words[1]) if len(words) > 1 else 0
    if not 1 <= n <= 64:
        ps.alert(loc, f"'nbthread' value must be between 1 and 64 (was {n})")
        return
    ps.gset(nbthread=n)


def _g_bufsize(ps: _Parser, words: list[str], loc: Location) -> None:
    n = _atoi(words[1]) if len(words) > 1 else 0
    if n <= 0:
        ps.alert(loc, f"'{words[0]}' expects a positive integer argument.")
        return
    ps.gset(tune_bufsize=n)


def _g_nbproc(ps: _Parser, words: list[str], loc: Location) -> None:
    ps.alert(
        loc,
        "nbproc is not supported any more since HAProxy 2.5. Threads will automatically "
        "be used on multi-processor machines if available.",
    )


def _g_user(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'user' expects an argument.")
        return
    try:
        pwd.getpwnam(words[1])
    except KeyError:
        ps.alert(loc, f"cannot find user id for '{words[1]}' (0:Success)")
        return
    ps.gset(user=words[1])


def _g_group(ps: _Parser, words: list[str], loc: Location) -> None:
    if len(words) < 2:
        ps.alert(loc, "'group' expects an argument.")
        return
    try:
        grp.getgrnam(words[1])
    except KeyError:
        ps.alert(loc, f"cannot find group id for '{words[1]}' (0:Success)")
        return
    ps.gset(group=words[1])


def _g_time(field_name: str) -> Callable[[_Parser, list[str], Location], None]:
    def handler(ps: _Parser, words: list[str], loc: Location) -> None:
        if len(words) < 2:
            ps.alert(loc, f"'{words[0]}' expects <time> as argument.")
            return
        try:
            ps.gset(**{field_name: parse_time(words[1], words[0])})
        except UnitError as exc:
            ps.alert(loc, str(exc))

    return handler


def _g_log(ps: _Parser, words: list[str], loc: Location) -> None:
    target = _parse_log(ps, words, loc, in_global=True)
    if target is not None:
        ps.gset(logs=(*ps.global_.logs, target))


def _g_stats(ps: _Parser, words: list[str], loc: Location) -> None:
    sub = words[1] if len(words) > 1 else ""
    if sub == "socket":
        if len(words) < 3:
            ps.alert(loc, "'stats socket' requires an address.")
            return
        sock = StatsSocket(words[2], location=loc)
        i = 3
        other: list[str] = []
        while i < len(words):
            w = words[i]
            val = words[i + 1] if i + 1 < len(words) else None
            if w == "mode" and val is not None:
                sock = replace(sock, mode=int(val, 8) if val.isdigit() else 0)
                i += 2
            elif w == "level" and val is not None:
                try:
                    sock = replace(sock, level=StatsLevel(val))
                except ValueError:
                    ps.alert(
                        loc,
                        f"'stats socket' 'level' only supports 'user', 'operator', and "
                        f"'admin' (got '{val}').",
                    )
                    return
                i += 2
            elif w == "expose-fd" and val == "listeners":
                sock = replace(sock, expose_fd_listeners=True)
                i += 2
            elif w in ("user", "group", "uid", "gid") and val is not None:
                if w == "user":
                    sock = replace(sock, user=val)
                elif w == "group":
                    sock = replace(sock, group=val)
                else:
                    other += [w, val]
                i += 2
            else:
                other.append(w)
                i += 1
        if other:
            ps.unimplemented(loc, f"'stats socket' parameter(s) {' '.join(other)}")
        ps.gset(stats_sockets=(*ps.global_.stats_sockets, sock))
    elif sub == "timeout":
        if len(words) < 3:
            ps.alert(loc, "'stats timeout' expects a timeout.")
            return
        try:
            ps.gset(stats_timeout=parse_time(words[2], "stats timeout"))
        except UnitError as exc:
            ps.alert(loc, str(exc))
    elif sub in ("maxconn", "bind-process"):
        ps.unimplemented(loc, f"'stats {sub}'")
        ps.gset(other=(*ps.global_.other, Directive("stats", tuple(words[1:]), loc)))
    else:
        ps.alert(
            loc,
            "'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' "
            f"(got '{sub}').",
        )


_GLOBAL_KW: dict[str, Callable[[_Parser, list[str], Location], None]] = {
    "maxconn": _g_int("maxconn"),
    "log": _g_log,
    "stats": _g_stats,
    "pidfile": _g_str("pidfile"),
    "user": _g_user,
    "group": _g_group,
    "uid": _g_int("uid"),
    "gid": _g_int("gid"),
    "chroot": _g_str("chroot"),
    "daemon": _g_flag("daemon"),
    "master-worker": _g_flag("master_worker"),
    "nbthread": _g_nbthread,
    "nbproc": _g_nbproc,
    "hard-stop-after": _g_time("hard_stop_after"),
    "tune.bufsize": _g_bufsize,
}


def _parse_log(
    ps: _Parser, words: list[str], loc: Location, *, in_global: bool
) -> LogTarget | None:
    args = words[1:]
    if args == ["global"] and not in_global:
        return LogTarget("global", location=loc)
    if len(args) < 2:
        ps.alert(loc, "log : expects <address> and <facility>  as arguments")
        return None
    target = LogTarget(args[0], location=loc)
    i = 1
    while i < len(args) and args[i] in ("len", "format", "sample"):
        if i + 1 >= len(args):
            ps.alert(loc, f"log : '{args[i]}' expects a value")
            return None
        if args[i] == "len":
            target = replace(target, length=_atoi(args[i + 1]))
        elif args[i] == "format":
            target = replace(target, format=args[i + 1])
        i += 2
    if i >= len(args):
        ps.alert(loc, "log : expects <address> and <facility>  as arguments")
        return None
    facility = args[i]
    if facility not in _FACILITIES:
        ps.alert(loc, f"log : unknown log facility '{facility}'")
        return None
    target = replace(target, facility=facility)
    levels = args[i + 1 : i + 3]
    for j, lvl in enumerate(levels):
        if lvl not in _LEVELS:
            ps.alert(loc, f"log : unknown optional log level '{lvl}'")
            return None
        target = replace(target, level=lvl) if j == 0 else replace(target, min_level=lvl)
    return target
