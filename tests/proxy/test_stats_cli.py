"""The runtime API: parser on bytes, replies and permission errors per level, in memory."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import StringTransport

from proxy.server import AdminState, OpState
from proxy.stats import CliParser, Level, StatsFactory, split_commands
from proxy.stats.testing import World, make_world


def connect(world: World, level: Level) -> tuple[Any, StringTransport]:
    """A stats protocol connected to an in-memory transport."""
    proto: Any = StatsFactory(world.state, level, world.reactor).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def talk(world: World, level: Level, data: bytes) -> tuple[bytes, bool]:
    """Send ``data`` on a fresh connection; what came back and whether it was closed."""
    proto, transport = connect(world, level)
    proto.dataReceived(data)
    return transport.value(), transport.disconnecting


def test_parser_splits_lines_and_commands() -> None:
    """feed() returns complete lines only, each split on ``;`` into word lists."""
    parser = CliParser()
    assert parser.feed(b"show info; show stat\nget wei") == [[["show", "info"], ["show", "stat"]]]
    assert parser.feed(b"ght be/a\n") == [[["get", "weight", "be/a"]]]


def test_parser_escapes() -> None:
    """A backslash escapes ``;`` and blanks inside a word."""
    assert split_commands("set server a\\;b/c\\ d") == [["set", "server", "a;b/c d"]]


def test_parser_overflow_flagged() -> None:
    """A line longer than the limit without a newline is flagged, not buffered forever."""
    parser = CliParser(max_line=10)
    assert parser.feed(b"x" * 11) == []
    assert parser.overflow


def test_one_shot_reply_ends_with_empty_line_and_closes() -> None:
    """A one-shot command gets its reply, an empty line, and the connection closes."""
    out, closed = talk(make_world(), Level.OPERATOR, b"get weight be/a\n")
    assert out == b"5 (initial 5)\n\n"
    assert closed


def test_commands_without_output_return_newline() -> None:
    """``disable server`` at admin level answers just ``\\n`` and puts the server in MAINT."""
    world = make_world()
    out, _ = talk(world, Level.ADMIN, b"disable server be/a\n")
    assert out == b"\n"
    assert world.servers["a"].admin & AdminState.FMAINT
    out, _ = talk(world, Level.ADMIN, b"enable server be/a\n")
    assert out == b"\n"
    assert world.servers["a"].admin == AdminState.READY


@pytest.mark.parametrize(
    "command",
    [
        b"disable server be/a",
        b"enable server be/a",
        b"set server be/a state drain",
        b"set server be/a weight 3",
        b"set weight be/a 3",
        b"disable health be/a",
        b"enable agent be/a",
        b"shutdown sessions server be/a",
    ],
)
def test_operator_level_gets_permission_denied(command: bytes) -> None:
    """At the default operator level admin commands answer ``Permission denied``."""
    world = make_world()
    out, _ = talk(world, Level.OPERATOR, command + b"\n")
    assert out == b"Permission denied\n\n"
    assert world.servers["a"].admin == AdminState.READY and world.servers["a"].weight == 5


def test_user_level_cannot_change_but_reads() -> None:
    """The user level reads stats but is denied changes."""
    world = make_world()
    assert talk(world, Level.USER, b"show stat\n")[0].startswith(b"# pxname,")
    assert talk(world, Level.USER, b"set server be/a state maint\n")[0] == b"Permission denied\n\n"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"disable server be/zz", b"No such server.\n\n"),
        (b"disable server nope/a", b"No such backend.\n\n"),
        (b"disable server a", b"Require 'backend/server'.\n\n"),
        (
            b"set server be/a weight 300",
            b"Absolute weight can only be between 0 and 256 inclusive.\n\n",
        ),
        (
            b"set server be/a state up",
            b"'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n",
        ),
    ],
)
def test_error_replies(command: bytes, reply: bytes) -> None:
    """Errors use HAProxy's exact wording."""
    assert talk(make_world(), Level.ADMIN, command + b"\n")[0] == reply


def test_set_weight_absolute_and_relative() -> None:
    """``set server weight 3`` then ``get weight`` says ``3 (initial 5)``; 50% of 5 is 2."""
    world = make_world()
    talk(world, Level.ADMIN, b"set server be/a weight 3\n")
    assert talk(world, Level.ADMIN, b"get weight be/a\n")[0] == b"3 (initial 5)\n\n"
    talk(world, Level.ADMIN, b"set weight be/a 50%\n")
    assert world.servers["a"].weight == 2


def test_set_state_drain_and_ready() -> None:
    """``set server state drain`` drains (status DRAIN, or DRAIN 1/3 before the first
    check), ``ready`` restores."""
    world = make_world()
    talk(world, Level.ADMIN, b"set server be/a state drain;set server be/c state drain\n")
    assert world.servers["a"].admin.drain
    assert b",DRAIN 1/3," in talk(world, Level.ADMIN, b"show stat be 4 1\n")[0]
    assert b",DRAIN," in talk(world, Level.ADMIN, b"show stat be 4 3\n")[0]
    talk(world, Level.ADMIN, b"set server be/a state ready\n")
    assert not world.servers["a"].admin.drain


def test_set_health_down_marks_down() -> None:
    """``set server health down`` takes the server DOWN through the checker."""
    world = make_world()
    talk(world, Level.ADMIN, b"set server be/a health down\n")
    assert world.servers["a"].op is OpState.DOWN


def test_disable_health_shows_no_check() -> None:
    """``disable health`` makes the status ``no check``."""
    world = make_world()
    talk(world, Level.ADMIN, b"disable health be/a\n")
    assert b",no check," in talk(world, Level.ADMIN, b"show stat be 4 1\n")[0]


def test_shutdown_sessions_calls_hook() -> None:
    """``shutdown sessions server`` calls the runtime's session killer."""
    world = make_world()
    talk(world, Level.ADMIN, b"shutdown sessions server be/b\n")
    assert world.killed == [world.servers["b"]]


def test_semicolon_runs_each_command_with_its_blank_line() -> None:
    """``cmd1;cmd2`` answers each reply followed by its empty line."""
    out, _ = talk(make_world(), Level.OPERATOR, b"get weight be/a;get weight be/b\n")
    assert out == b"5 (initial 5)\n\n1 (initial 1)\n\n"


def test_prompt_mode() -> None:
    """``prompt`` keeps the connection open with ``> `` prompts until ``quit``."""
    world = make_world()
    proto, transport = connect(world, Level.ADMIN)
    proto.dataReceived(b"prompt\n")
    assert transport.value() == b"\n> "
    proto.dataReceived(b"get weight be/a\n")
    assert transport.value() == b"\n> 5 (initial 5)\n\n> "
    assert not transport.disconnecting
    proto.dataReceived(b"quit\n")
    assert transport.disconnecting


def test_idle_interactive_client_times_out() -> None:
    """An idle client is disconnected after the stats timeout (10 s)."""
    world = make_world()
    proto, transport = connect(world, Level.ADMIN)
    proto.dataReceived(b"prompt\n")
    world.reactor.advance(10)
    assert transport.disconnecting


def test_half_close_answers_last_line() -> None:
    """A command without newline followed by a half-close is still answered."""
    world = make_world()
    proto, transport = connect(world, Level.OPERATOR)
    proto.dataReceived(b"get weight be/b")
    assert transport.value() == b""
    proto.readConnectionLost()
    assert transport.value() == b"1 (initial 1)\n\n"


def test_unknown_command_lists_help() -> None:
    """An unknown command answers HAProxy's hint and lists the commands valid at this level."""
    out, _ = talk(make_world(), Level.USER, b"frobnicate\n")
    assert out.startswith(b"Unknown command, but maybe one of the following ones is")
    assert b"show stat" in out and b"disable server" not in out


def test_show_info_fields() -> None:
    """``show info`` gives ``Key: value`` lines including Pid, Uptime_sec and Maxconn."""
    out = talk(make_world(), Level.USER, b"show info\n")[0].decode()
    keys = [line.split(":")[0] for line in out.splitlines() if line]
    for key in ("Name", "Version", "Pid", "Uptime_sec", "Maxconn", "CurrConns", "node"):
        assert key in keys
    assert "Pid: 42\n" in out


def test_show_servers_state() -> None:
    """``show servers state`` prints the version, the header and one line per server."""
    world = make_world()
    talk(world, Level.ADMIN, b"set server be/a state drain\n")
    out = talk(world, Level.OPERATOR, b"show servers state\n")[0].decode()
    lines = out.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("# be_id be_name srv_id srv_name srv_addr srv_op_state")
    first = lines[2].split()
    assert first[:9] == ["3", "be", "1", "a", "127.0.0.1", "2", "8", "5", "5"]
    assert first[10:14] == ["1", "0", "2", "6"]  # INI, unknown, health 2, configured+enabled
    assert len(first) == 25
    assert (
        talk(world, Level.OPERATOR, b"show servers state nope\n")[0] == b"Can't find backend.\n\n"
    )


def test_garbage_bytes_do_not_break_the_socket() -> None:
    """Bytes that are not UTF-8 get the unknown-command reply, and the next client works."""
    world = make_world()
    out, closed = talk(world, Level.ADMIN, b"\xff\xfe\x00 show\n")
    assert out.startswith(b"Unknown command") and closed
    assert talk(world, Level.ADMIN, b"get weight be/a\n")[0] == b"5 (initial 5)\n\n"


def test_overlong_line_is_refused() -> None:
    """A request line longer than 16 kB without a newline is refused and the client closed."""
    out, closed = talk(make_world(), Level.ADMIN, b"x" * 20000)
    assert out == b"Command line too long.\n\n" and closed


def test_user_level_show_stat_hides_addresses() -> None:
    """At user level ``show stat`` leaves the server addresses out."""
    out, _ = talk(make_world(), Level.USER, b"show stat\n")
    assert b"127.0.0.1" not in out
    assert b"127.0.0.1:21050" in talk(make_world(), Level.OPERATOR, b"show stat\n")[0]


def test_level_can_be_lowered_not_raised() -> None:
    """``operator`` lowers an admin session; admin commands are then denied."""
    out, _ = talk(make_world(), Level.ADMIN, b"operator;show cli level;disable server be/a\n")
    assert out == b"\noperator\n\nPermission denied\n\n"
