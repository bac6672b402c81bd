"""The runtime API: a line parser on bytes and the commands, with HAProxy's replies.

:class:`CliParser` turns bytes into command lines (``;`` separates commands, a
backslash escapes a space or ``;``); :class:`Cli` executes one command at a
given access level and returns its text. The socket protocol
(:mod:`proxy.stats._socket`) only glues the two to a transport and adds the
prompt. Replies and error texts are HAProxy 2.6's (spec 3.1, 3.4).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from haconfig.model import StatsLevel
from proxy.checks import ServerChecker
from proxy.server import Server, ServerStateError
from proxy.stats._csv import show_stat
from proxy.stats._state import RELEASE_DATE, VERSION, BackendInfo, StatsState

MAX_LINE = 16384

PERMISSION_DENIED = "Permission denied\n"


class Bare(str):
    """A reply HAProxy sends without the empty line that ends most replies (its
    ``cli_err`` / ``cli_msg`` texts, e.g. ``del server``'s)."""


class Level(enum.IntEnum):
    USER = 0
    OPERATOR = 1
    ADMIN = 2

    @classmethod
    def of(cls, level: StatsLevel | str) -> Level:
        name = level.value if isinstance(level, StatsLevel) else level
        return cls[name.upper()]


class CliParser:
    """``feed(bytes) -> [line, ...]``, each line a list of commands, each a list of words."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = b""
        self._max = max_line
        self.overflow = False

    def feed(self, data: bytes) -> list[list[list[str]]]:
        self._buf += data
        lines: list[list[list[str]]] = []
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > self._max:
                    self.overflow = True
                    self._buf = b""
                break
            raw, self._buf = self._buf[:end], self._buf[end + 1 :]
            lines.append(split_commands(raw.rstrip(b"\r").decode("utf-8", "replace")))
        return lines

    def pending(self) -> bytes:
        """What was received after the last newline (a command sent without one)."""
        return self._buf


def split_commands(line: str) -> list[list[str]]:
    """Split a request line into commands (``;``) and words (blanks); ``\\`` escapes."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            word.append(line[i + 1])
            in_word = True
            i += 2
            continue
        if ch in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif ch == ";":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            commands.append(words)
            words = []
        else:
            word.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    commands.append(words)
    return [c for c in commands if c] or [[]]


@dataclass(frozen=True)
class _Command:
    words: tuple[str, ...]
    level: Level
    usage: str
    help: str
    handler: Callable[[Cli, list[str]], str]


_COMMANDS: list[_Command] = []


def command(
    words: str, level: Level, usage: str, help: str
) -> Callable[[Callable[[Cli, list[str]], str]], Callable[[Cli, list[str]], str]]:
    def register(fn: Callable[[Cli, list[str]], str]) -> Callable[[Cli, list[str]], str]:
        _COMMANDS.append(_Command(tuple(words.split()), level, usage, help, fn))
        return fn

    return register


class Cli:
    """Executes runtime commands against a :class:`StatsState` at one access level."""

    def __init__(self, state: StatsState, level: Level) -> None:
        self.state = state
        self.level = level

    def execute(self, words: list[str]) -> str:
        """The reply to one command (without the trailing prompt)."""
        if not words:
            return ""
        best: _Command | None = None
        for cmd in _COMMANDS:
            n = len(cmd.words)
            if tuple(words[:n]) == cmd.words and (best is None or n > len(best.words)):
                best = cmd
        if best is None:
            return (
                "Unknown command, but maybe one of the following ones is a better match:\n"
                + self.help_text(header=False)
            )
        if self.level < best.level:
            return PERMISSION_DENIED
        try:
            return best.handler(self, words[len(best.words) :])
        except Exception as exc:  # never let a command kill the daemon
            return f"Internal error: {exc}\n"

    def help_text(self, *, header: bool = True) -> str:
        lines = ["The following commands are valid at this level:\n"] if header else []
        width = max(len(c.usage) for c in _COMMANDS)
        for cmd in sorted(_COMMANDS, key=lambda c: c.usage):
            if self.level >= cmd.level:
                lines.append(f"  {cmd.usage.ljust(width)} : {cmd.help}\n")
        return "".join(lines)

    # -- lookups with HAProxy's errors ----------------------------------------------------

    def find_server(self, ref: str) -> tuple[BackendInfo, Server] | str:
        if "/" not in ref:
            return "Require 'backend/server'.\n"
        be_name, _, srv_name = ref.partition("/")
        backend = self.state.backend(be_name)
        if backend is None:
            return "No such backend.\n"
        server = backend.server(srv_name)
        if server is None:
            return "No such server.\n"
        return backend, server


def _server_arg(cli: Cli, args: list[str]) -> tuple[BackendInfo, Server] | str:
    if not args:
        return "Require 'backend/server'.\n"
    return cli.find_server(args[0])


# -- reads ---------------------------------------------------------------------------------


@command("help", Level.USER, "help [<command>]", "list matching or all commands")
def _help(cli: Cli, args: list[str]) -> str:
    return cli.help_text()


@command("show info", Level.USER, "show info", "report information about the running process")
def _show_info(cli: Cli, args: list[str]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in info_fields(cli.state))


def info_fields(state: StatsState) -> list[tuple[str, object]]:
    now = state.clock.seconds()
    start = state.start_time or now
    up = int(now - start)
    days, rest = divmod(up, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    try:
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError):
        nofile = 0
    return [
        ("Name", "impala-lb"),
        ("Version", VERSION),
        ("Release_date", RELEASE_DATE),
        ("Nbthread", 1),
        ("Nbproc", 1),
        ("Process_num", 1),
        ("Pid", state.pid),
        ("Uptime", f"{days}d {hours}h{minutes:02d}m{seconds:02d}s"),
        ("Uptime_sec", up),
        ("Memmax_MB", 0),
        ("PoolAlloc_MB", 0),
        ("PoolUsed_MB", 0),
        ("PoolFailed", 0),
        ("Ulimit-n", nofile),
        ("Maxsock", nofile),
        ("Maxconn", state.maxconn),
        ("Hard_maxconn", state.maxconn),
        ("CurrConns", state.current_conns()),
        ("CumConns", state.cum_conns()),
        ("CumReq", state.cum_conns()),
        ("MaxSslConns", 0),
        ("CurrSslConns", 0),
        ("CumSslConns", 0),
        ("Maxpipes", 0),
        ("PipesUsed", 0),
        ("PipesFree", 0),
        ("ConnRate", 0),
        ("ConnRateLimit", 0),
        ("MaxConnRate", 0),
        ("SessRate", 0),
        ("SessRateLimit", 0),
        ("MaxSessRate", 0),
        ("SslRate", 0),
        ("SslRateLimit", 0),
        ("MaxSslRate", 0),
        ("SslFrontendKeyRate", 0),
        ("SslFrontendMaxKeyRate", 0),
        ("SslFrontendSessionReuse_pct", 0),
        ("SslBackendKeyRate", 0),
        ("SslBackendMaxKeyRate", 0),
        ("SslCacheLookups", 0),
        ("SslCacheMisses", 0),
        ("CompressBpsIn", 0),
        ("CompressBpsOut", 0),
        ("CompressBpsRateLim", 0),
        ("Tasks", 0),
        ("Run_queue", 0),
        ("Idle_pct", 100),
        ("node", state.node),
        ("Stopping", 0),
        ("Jobs", state.current_conns()),
        ("Unstoppable Jobs", 0),
        ("Listeners", sum(1 for p in state.proxies if p.frontend is not None)),
        ("ActivePeers", 0),
        ("ConnectedPeers", 0),
        ("DroppedLogs", 0),
        ("BusyPolling", 0),
        ("FailedResolutions", 0),
        ("TotalBytesOut", 0),
        ("TotalSplicdedBytesOut", 0),  # sic, HAProxy's spelling
        ("BytesOutRate", 0),
        ("DebugCommandsIssued", 0),
        ("CumRecvLogs", 0),
        ("Build info", VERSION),
        ("Memmax_bytes", 0),
        ("PoolAlloc_bytes", 0),
        ("PoolUsed_bytes", 0),
        ("Start_time_sec", int(start)),
        ("Tainted", 0),
    ]


@command("show stat", Level.USER, "show stat [<iid>|<proxy>] [<type> <sid>]", "report counters")
def _show_stat(cli: Cli, args: list[str]) -> str:
    args = [a for a in args if a not in ("up", "no-maint")]
    if any(a in ("typed", "json", "desc") for a in args):
        return "Only the CSV format is supported.\n"
    proxy: str | None = None
    mask, sid = -1, -1
    try:
        if len(args) == 1:
            proxy = args[0]
        elif len(args) >= 3:
            proxy, mask, sid = args[0], int(args[1]), int(args[2])
        elif len(args) == 2:
            return "Require a type and a server id.\n"
    except ValueError:
        return "Invalid type or server id.\n"
    return show_stat(cli.state, proxy, mask, sid, show_addr=cli.level >= Level.OPERATOR)


SERVERS_STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
)


def servers_state_line(iid: int, be: BackendInfo, server: Server) -> str:
    checker: ServerChecker | None = be.checker(server)
    settings = checker.settings if checker else None
    agent = checker.agent if checker else None
    last = checker.last if checker else None
    fields: list[object] = [
        iid,
        be.name,
        server.puid,
        server.name,
        server.host or "-",
        0 if server.admin.maint else server.op.value,  # HAProxy: STOPPED while in maint
        server.admin.value,
        server.weight,
        server.initial_weight,
        server.seconds_since_change(),
        last.status.number if last and settings else 0,
        last.status.verdict.value if last and settings else 0,
        checker.health.value if checker and settings and not server.admin.maint else 0,
        checker.check_state if checker else 0,
        checker.agent_state if checker else 0,
        0,
        0,
        "-",
        server.port if server.port is not None else 0,
        "-",
        1 if settings is not None and settings.tls is not None else 0,
        settings.port if settings and settings.port != server.port else 0,
        settings.host if settings and settings.host != server.host else "-",
        agent.host if agent and agent.host != server.host else "-",
        agent.port if agent else 0,
    ]
    return " ".join(str(f) for f in fields) + "\n"


@command(
    "show servers state",
    Level.USER,
    "show servers state [<backend>]",
    "dump volatile server information (for server-state-file)",
)
def _show_servers_state(cli: Cli, args: list[str]) -> str:
    backends = cli.state.backends
    if args:
        found = cli.state.backend(args[0])
        if found is None:
            return "Can't find backend.\n"
        backends = [found]
    out = ["1\n", SERVERS_STATE_HEADER]
    for be in backends:
        iid = cli.state.iid_of(be)
        out += [servers_state_line(iid, be, s) for s in be.servers()]
    return "".join(out)


@command("show backend", Level.USER, "show backend", "list backends in the current running config")
def _show_backend(cli: Cli, args: list[str]) -> str:
    return "# name\n" + "".join(f"{b.name}\n" for b in cli.state.backends)


@command("get weight", Level.USER, "get weight <bk>/<srv>", "report a server's current weight")
def _get_weight(cli: Cli, args: list[str]) -> str:
    found = _server_arg(cli, args)
    if isinstance(found, str):
        return found
    _, server = found
    return f"{server.weight} (initial {server.initial_weight})\n"


# -- changes (admin) --------------------------------------------------------------------------


def _set_admin(cli: Cli, args: list[str], state: str) -> str:
    found = _server_arg(cli, args)
    if isinstance(found, str):
        return found
    found[1].set_admin(state)
    return ""


@command(
    "disable server", Level.ADMIN, "disable server <bk>/<srv>", "disable a server for maintenance"
)
def _disable_server(cli: Cli, args: list[str]) -> str:
    return _set_admin(cli, args, "maint")


@command("enable server", Level.ADMIN, "enable server <bk>/<srv>", "enable a disabled server")
def _enable_server(cli: Cli, args: list[str]) -> str:
    return _set_admin(cli, args, "ready")


def parse_weight(be: BackendInfo, server: Server, text: str) -> int | str:
    """A weight change request: ``N`` (0..256) or ``N%`` of the initial weight."""
    relative = text.endswith("%")
    digits = text[:-1] if relative else text
    try:
        value = int(digits)
    except ValueError:
        # HAProxy's reply, without a final newline
        return "Empty weight string empty or preceded by garbage"
    if relative:
        if value < 0:
            return "Relative weight must be positive.\n"
        weight = server.initial_weight * value // 100
        if weight > 256:
            return "Relative weight is too high.\n"
    else:
        if not 0 <= value <= 256:
            return "Absolute weight can only be between 0 and 256 inclusive.\n"
        weight = value
    if be.static and weight not in (0, server.initial_weight):
        return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
    return weight


def _set_weight(cli: Cli, ref: str, value: str | None) -> str:
    found = cli.find_server(ref)
    if isinstance(found, str):
        return found
    if value is None:
        return "Require <weight> or <weight%>.\n"
    be, server = found
    weight = parse_weight(be, server, value)
    if isinstance(weight, str):
        return weight
    server.set_weight(weight)
    return ""


@command(
    "set weight",
    Level.ADMIN,
    "set weight <bk>/<srv> (DEPRECATED)",
    "change a server's weight (use 'set server')",
)
def _set_weight_cmd(cli: Cli, args: list[str]) -> str:
    if not args:
        return "Require 'backend/server'.\n"
    return _set_weight(cli, args[0], args[1] if len(args) > 1 else None)


def _checker_of(cli: Cli, args: list[str]) -> tuple[Server, ServerChecker | None] | str:
    found = _server_arg(cli, args)
    if isinstance(found, str):
        return found
    be, server = found
    return server, be.checker(server)


SET_SERVER_USAGE = (
    "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send "
    "| check-addr | check-port | fqdn | health | ssl | state | weight\n"
)
_NOT_SUPPORTED = ("agent-addr", "agent-port", "agent-send", "check-addr", "check-port")
_NOT_SUPPORTED_TOO = ("fqdn", "ssl")


@command(
    "set server",
    Level.ADMIN,
    "set server <bk>/<srv> [opts]",
    "change a server's state, weight, health or agent status",
)
def _set_server(cli: Cli, args: list[str]) -> str:
    found = _checker_of(cli, args)
    if isinstance(found, str):
        return found
    server, checker = found
    what = args[1] if len(args) > 1 else ""
    value = args[2] if len(args) > 2 else None
    if what == "state":
        if value not in ("ready", "drain", "maint"):
            return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
        server.set_admin(value)
        return ""
    if what == "weight":
        return _set_weight(cli, args[0], value)
    if what == "health":
        if value not in ("up", "stopping", "down"):
            return "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"
        if checker is not None and checker.settings is not None:
            checker.force_health(value)
        return ""  # HAProxy accepts it silently on a server without checks
    if what == "agent":
        if checker is None or checker.agent is None:
            return "agent checks are not enabled on this server.\n"
        if value not in ("up", "down"):
            return "'set server <srv> agent' expects 'up' or 'down'.\n"
        checker.apply_agent_health(value)
        return ""
    if what == "addr":
        return _set_addr(server, checker, args[2:])
    if what in _NOT_SUPPORTED + _NOT_SUPPORTED_TOO:
        return f"'set server <srv> {what}' is not supported by impala-lb.\n"
    return SET_SERVER_USAGE


def _set_addr(server: Server, checker: ServerChecker | None, args: list[str]) -> str:
    """``set server b/s addr <ip> [port <port>]``, with HAProxy 2.6's reply
    (``srv_update_addr_port``); health and agent checks that followed the server's
    address (and port) follow it to the new one."""
    if not args:
        return "set server <b>/<s> addr requires an address and optionally a port.\n"
    addr = args[0]
    port_text = args[2] if len(args) > 2 and args[1] == "port" else None
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return f"Invalid addr '{addr}' by 'stats socket command'\n"
    parts: list[str] = []
    changed = False
    host, port = server.host, server.port
    if addr == server.host:
        parts.append("no need to change the addr")
    else:
        parts.append(f"IP changed from '{server.host or '-'}' to '{addr}'")
        host, changed = addr, True
    if port_text is not None:
        try:
            new_port = int(port_text)
        except ValueError:
            return ", ".join([*parts, f"problem converting port '{port_text}' to an int"]) + (
                " by 'stats socket command'\n"
            )
        if new_port != server.port:
            parts.append(f"port changed from '{server.port or 0}' to '{new_port}'")
            port, changed = new_port, True
        else:
            parts.append("no need to change the port")
    if changed:
        old_host, old_port = server.host, server.port
        server.set_address(host, port)
        if checker is not None:
            checker.follow_address(old_host, old_port, host, port)
    text = ", ".join(parts)
    if changed:
        text = text[0].upper() + text[1:]
    return text + " by 'stats socket command'\n"


@command(
    "set maxconn server",
    Level.ADMIN,
    "set maxconn server <bk>/<srv>",
    "change a server's maxconn",
)
def _set_maxconn_server(cli: Cli, args: list[str]) -> str:
    found = _server_arg(cli, args)
    if isinstance(found, str):
        return found
    try:
        value = int(args[1]) if len(args) > 1 else -1
    except ValueError:
        value = -1
    if value < 0:
        return "Integer value expected.\n"
    try:
        found[1].set_maxconn(value)
    except ServerStateError as exc:
        return f"{exc}\n"
    return ""


def _toggle_health(cli: Cli, args: list[str], on: bool) -> str:
    found = _checker_of(cli, args)
    if isinstance(found, str):
        return found
    _, checker = found
    if checker is None or checker.settings is None:
        return "Health check was not configured on this server, cannot enable.\n" if on else ""
    checker.set_enabled(on)
    return ""


def _toggle_agent(cli: Cli, args: list[str], on: bool) -> str:
    found = _checker_of(cli, args)
    if isinstance(found, str):
        return found
    _, checker = found
    if checker is None or checker.agent is None:
        return "Agent was not configured on this server, cannot enable.\n" if on else ""
    checker.set_agent_enabled(on)
    return ""


@command("disable health", Level.ADMIN, "disable health <bk>/<srv>", "disable health checks")
def _disable_health(cli: Cli, args: list[str]) -> str:
    return _toggle_health(cli, args, False)


@command("enable health", Level.ADMIN, "enable health <bk>/<srv>", "enable health checks")
def _enable_health(cli: Cli, args: list[str]) -> str:
    return _toggle_health(cli, args, True)


@command("disable agent", Level.ADMIN, "disable agent <bk>/<srv>", "disable agent checks")
def _disable_agent(cli: Cli, args: list[str]) -> str:
    return _toggle_agent(cli, args, False)


@command("enable agent", Level.ADMIN, "enable agent <bk>/<srv>", "enable agent checks")
def _enable_agent(cli: Cli, args: list[str]) -> str:
    return _toggle_agent(cli, args, True)


def _split_ref(ref: str) -> tuple[str, str] | None:
    """``backend/server`` split at the first ``/``, as HAProxy does; None without one."""
    be_name, sep, srv_name = ref.partition("/")
    return (be_name, srv_name) if sep and srv_name else None


def _dynamic(cli: Cli, args: list[str], *, add: bool) -> str:
    """``add server`` / ``del server``: HAProxy's checks of the reference, then the
    runtime's :class:`~proxy.stats._state.ServerAdder`."""
    ref = _split_ref(args[0]) if args else None
    if ref is None:
        return Bare("Require 'backend/server'.\n")
    dynamic = cli.state.dynamic
    if dynamic is None:
        return f"Servers cannot be {'added' if add else 'deleted'} here.\n"
    backend = cli.state.backend(ref[0])
    if backend is None:
        return Bare("No such backend.\n")
    if add:
        return dynamic.add(backend.name, [ref[1], *args[1:]])
    return dynamic.delete(backend.name, ref[1])


@command("add server", Level.ADMIN, "add server <bk>/<srv>", "create a new server")
def _add_server(cli: Cli, args: list[str]) -> str:
    return _dynamic(cli, args, add=True)


@command("del server", Level.ADMIN, "del server <bk>/<srv>", "remove a dynamically added server")
def _del_server(cli: Cli, args: list[str]) -> str:
    return _dynamic(cli, args, add=False)


@command(
    "shutdown sessions server",
    Level.ADMIN,
    "shutdown sessions server <bk>/<srv>",
    "kill sessions on a server",
)
def _shutdown_sessions(cli: Cli, args: list[str]) -> str:
    found = _server_arg(cli, args)
    if isinstance(found, str):
        return found
    if cli.state.kill_sessions is not None:
        cli.state.kill_sessions(found[1])
    return ""


@command("show cli level", Level.USER, "show cli level", "display the session's access level")
def _show_cli_level(cli: Cli, args: list[str]) -> str:
    return cli.level.name.lower() + "\n"


@command("operator", Level.OPERATOR, "operator", "lower this session's level to operator")
def _operator(cli: Cli, args: list[str]) -> str:
    cli.level = min(cli.level, Level.OPERATOR)
    return ""


@command("user", Level.USER, "user", "lower this session's level to user")
def _user(cli: Cli, args: list[str]) -> str:
    cli.level = Level.USER
    return ""


@command("prompt", Level.USER, "prompt", "toggle interactive mode with prompt")
def _prompt(cli: Cli, args: list[str]) -> str:
    return ""  # handled by the protocol


@command("quit", Level.USER, "quit", "disconnect")
def _quit(cli: Cli, args: list[str]) -> str:
    return ""  # handled by the protocol
