"""Side by side with real HAProxy 2.6: same backend, same kills, same ``show stat`` states."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from haconfig import parse_text
from proxy.checks.testing import new_reactor, pump_for
from proxy.runtime import Runtime
from proxy.stats import FIELDS, ObservabilityService, show_stat
from tests.support.balancer import HAPROXY, STATS_HEAD, ask, check_backend, spawn
from tests.support.loopback import Replier
from tests.support.procs import free_port, kill_pid

CONFIG = (
    STATS_HEAD
    + """backend be
    server a 127.0.0.1:{port} check inter 200 rise 2 fall 2
"""
)


def row(csv: str, server: str) -> tuple[str, str]:
    for line in csv.splitlines():
        cells = line.split(",")
        if len(cells) > 40 and cells[0] == "be" and cells[1] == server:
            rec = dict(zip(FIELDS, cells, strict=False))
            return rec["status"], rec["check_status"].removeprefix("* ")
    raise AssertionError(f"no row for {server} in {csv!r}")


def dedup(seq: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in seq:
        if not out or out[-1] != item:
            out.append(item)
    return out


def test_same_state_sequence_as_haproxy(tmp_path: Path) -> None:
    """Killing and restarting a backend walks both through the same statuses and codes."""
    port = free_port()
    backend = check_backend(port)
    ha_sock = str(tmp_path / "haproxy.sock")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(CONFIG.format(sock=ha_sock, port=port))
    haproxy = spawn([*HAPROXY, str(cfg)])
    reactor = new_reactor()
    ours_cfg = parse_text(CONFIG.format(sock=str(tmp_path / "ours.sock"), port=port))
    obs: Any = ObservabilityService.from_runtime(Runtime(ours_cfg, reactor), reactor)
    obs.startService()
    try:

        def both() -> tuple[tuple[str, str], tuple[str, str]]:
            return row(ask(ha_sock, b"show stat\n", timeout=2), "a"), row(show_stat(obs.state), "a")

        def sample_until(done: Any, limit: float) -> tuple[list[Any], list[Any]]:
            theirs: list[Any] = []
            ours: list[Any] = []
            end = time.monotonic() + limit
            while time.monotonic() < end:
                pump_for(reactor, 0.02)
                t, o = both()
                theirs.append(t)
                ours.append(o)
                if done(t, o):
                    break
            return dedup(theirs), dedup(ours)

        deadline = time.monotonic() + 10
        while not Path(ha_sock).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        fully_up = ("UP", "L4OK")
        sample_until(lambda t, o: t == fully_up and o == fully_up, 5)
        assert both() == (fully_up, fully_up)

        kill_pid(backend)
        theirs, ours = sample_until(lambda t, o: t[0] == "DOWN" and o[0] == "DOWN", 5)
        falling = [("UP 1/2", "L4CON"), ("DOWN", "L4CON")]
        assert [x for x in theirs if x != fully_up] == falling
        assert [x for x in ours if x != fully_up] == falling

        backend = check_backend(port)
        theirs, ours = sample_until(lambda t, o: t == fully_up and o == fully_up, 5)
        # the spawn blocks this test (not HAProxy) for a moment: the first sample of ours may
        # already be past the DOWN it started from
        rising = [("DOWN 1/2", "L4OK"), fully_up]
        assert [s for s in theirs if s != ("DOWN", "L4CON")] == rising
        assert [s for s in ours if s != ("DOWN", "L4CON")] == rising

        counters = "chkfail", "chkdown"
        ha = dict(zip(FIELDS, _line(ask(ha_sock, b"show stat\n", timeout=2)), strict=False))
        mine = dict(zip(FIELDS, _line(show_stat(obs.state)), strict=False))
        assert [ha[c] for c in counters] == [mine[c] for c in counters] == ["2", "1"]
        same = "status weight act bck check_status check_code check_desc last_chk check_rise"
        same += " check_fall check_health addr mode uweight qlimit slim throttle agent_status"
        assert {k: mine[k] for k in same.split()} == {k: ha[k] for k in same.split()}
        theirs_row = zip(FIELDS, _line(ask(ha_sock, b"show stat\n", timeout=2)), strict=False)
        blank = {name for name, v in theirs_row if v == ""}
        our_row = zip(FIELDS, _line(show_stat(obs.state)), strict=False)
        mine_blank = {name for name, v in our_row if v == ""}
        assert mine_blank == blank

        def backend_row(csv: str) -> dict[str, str]:
            line = next(x for x in csv.splitlines() if x.startswith("be,BACKEND,"))
            return dict(zip(FIELDS, line.split(","), strict=False))

        ha_be = backend_row(ask(ha_sock, b"show stat\n", timeout=2))
        our_be = backend_row(show_stat(obs.state))
        keys = [
            "status",
            "weight",
            "act",
            "bck",
            "chkdown",
            "uweight",
            "mode",
            "algo",
            "stot",
            "scur",
        ]
        assert {k: our_be[k] for k in keys} == {k: ha_be[k] for k in keys}
        assert {k for k, v in our_be.items() if v == ""} == {k for k, v in ha_be.items() if v == ""}

        theirs_state = ask(ha_sock, b"show servers state be\n", timeout=2).splitlines()
        ours_state = socat_free(obs, b"show servers state be")
        assert ours_state[:2] == theirs_state[:2]  # version and header
        t_fields, o_fields = theirs_state[2].split(), ours_state[2].split()
        del t_fields[9], o_fields[9]  # srv_time_since_last_change
        del t_fields[0], o_fields[0]  # be_id: HAProxy numbers its internal proxies first
        assert o_fields == t_fields
    finally:
        obs.stopService()
        kill_pid(haproxy)
        kill_pid(backend)


def socat_free(obs: Any, command: bytes) -> list[str]:
    """Our reply to a command, through the same Cli the socket uses (admin level)."""
    from proxy.stats import Cli, Level

    return Cli(obs.state, Level.ADMIN).execute(command.decode().split()).splitlines()


def _line(csv: str) -> list[str]:
    return next(line.split(",") for line in csv.splitlines() if line.startswith("be,a,"))


KINDS_CONFIG = (
    STATS_HEAD
    + """    timeout check 500ms
backend h404
    option httpchk GET /does-not-exist
    server a 127.0.0.1:{web} check inter 200 rise 2 fall 2
backend hok
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host lb
    http-check expect status 200
    server a 127.0.0.1:{other} check port {web} inter 200 rise 2 fall 2
backend tc
    option tcp-check
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG
    server a 127.0.0.1:{web} check inter 200 rise 2 fall 2
backend ssl
    server a 127.0.0.1:{echo} check check-ssl verify none inter 200 rise 2 fall 2
backend refused
    server a 127.0.0.1:{other} check inter 200 rise 2 fall 2
"""
)


def test_check_kinds_report_like_haproxy(tmp_path: Path) -> None:
    """httpchk (404 and /healthz on a check port), tcp-check, check-ssl and a refused port
    end in the same status, check_status, check_code, last_chk and check_desc."""
    web, echo, other = free_port(), free_port(), free_port()
    procs = []
    for kind, port in (("healthz", web), ("tcp", echo)):
        procs.append(check_backend(port, kind))
    ha_sock = str(tmp_path / "haproxy.sock")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(KINDS_CONFIG.format(sock=ha_sock, web=web, echo=echo, other=other))
    procs.append(spawn([*HAPROXY, str(cfg)]))
    reactor = new_reactor()
    ours_cfg = parse_text(
        KINDS_CONFIG.format(sock=str(tmp_path / "o.sock"), web=web, echo=echo, other=other)
    )
    obs: Any = ObservabilityService.from_runtime(Runtime(ours_cfg, reactor), reactor)
    obs.startService()
    fields = ["pxname", "status", "check_status", "check_code", "last_chk", "check_desc"]

    def table(csv: str) -> list[dict[str, str]]:
        out = []
        for line in csv.splitlines():
            if line.startswith("#") or ",a," not in line:
                continue
            rec = dict(zip(FIELDS, line.split(","), strict=False))
            rec["check_status"] = rec["check_status"].removeprefix("* ")
            out.append({k: rec[k] for k in fields})
        return out

    try:
        deadline = time.monotonic() + 10
        while not Path(ha_sock).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = {
            "h404": ("DOWN", "L7STS", "404", "File not found", "Layer7 wrong status"),
            "hok": ("UP", "L7OK", "200", "", "Layer7 check passed"),
            "tc": (
                "DOWN",
                "L7RSP",
                "",
                "TCPCHK did not match content '+PONG' at step 2",
                "Layer7 invalid response",
            ),
            "ssl": ("DOWN", "L6RSP", "", "SSL handshake failure", "Layer6 invalid response"),
            "refused": (
                "DOWN",
                "L4CON",
                "",
                "Connection refused",
                "Layer4 connection problem",
            ),
        }
        want = [dict(zip(fields, (name, *vals), strict=True)) for name, vals in expected.items()]
        end = time.monotonic() + 8
        theirs = ours = []
        while time.monotonic() < end:
            pump_for(reactor, 0.05)
            theirs = table(ask(ha_sock, b"show stat\n", timeout=2))
            ours = table(show_stat(obs.state))
            if theirs == want and ours == want:
                break
        assert theirs == want
        assert ours == want
    finally:
        obs.stopService()
        for proc in procs:
            kill_pid(proc)


AGENT_CONFIG = (
    STATS_HEAD
    + """backend ag
    default-server agent-inter 200 weight 10
    server a 127.0.0.1:{port} check inter 200 agent-check agent-port {agent}
"""
)


def test_agent_words_like_haproxy(tmp_path: Path) -> None:
    """The agent's down/up/N%/drain/ready/maint replies give HAProxy's status and agent_*
    columns, and the same ``show servers state`` line."""
    traffic = socket.socket()
    traffic.bind(("127.0.0.1", 0))
    traffic.listen(128)
    agent = Replier(b"down #db gone\n")
    ha_sock = str(tmp_path / "haproxy.sock")
    cfg = tmp_path / "haproxy.cfg"
    port = traffic.getsockname()[1]
    cfg.write_text(AGENT_CONFIG.format(sock=ha_sock, port=port, agent=agent.port))
    haproxy = spawn([*HAPROXY, str(cfg)])
    reactor = new_reactor()
    ours_cfg = parse_text(
        AGENT_CONFIG.format(sock=str(tmp_path / "o.sock"), port=port, agent=agent.port)
    )
    obs: Any = ObservabilityService.from_runtime(Runtime(ours_cfg, reactor), reactor)
    obs.startService()
    keys = [
        "status",
        "weight",
        "agent_status",
        "agent_code",
        "last_agt",
        "agent_desc",
        "agent_health",
        "check_status",
    ]

    def view(csv: str) -> dict[str, str]:
        line = next(x for x in csv.splitlines() if x.startswith("ag,a,"))
        rec = dict(zip(FIELDS, line.split(","), strict=False))
        for k in ("agent_status", "check_status"):
            rec[k] = rec[k].removeprefix("* ")
        return {k: rec[k] for k in keys}

    try:
        deadline = time.monotonic() + 10
        while not Path(ha_sock).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        steps = [
            (b"down #db gone\n", "DOWN (agent)"),
            (b"up 50%\n", "UP"),
            (b"drain\n", "DRAIN (agent)"),
            (b"ready\n", "UP"),
            (b"maint\n", "MAINT"),
            (b"ready\n", "UP"),
        ]
        for reply, status in steps:
            agent.reply = reply
            end = time.monotonic() + 5
            theirs = ours = {}
            while time.monotonic() < end:
                pump_for(reactor, 0.05)
                theirs = view(ask(ha_sock, b"show stat\n", timeout=2))
                ours = view(show_stat(obs.state))
                if theirs["status"] == ours["status"] == status and theirs == ours:
                    break
            assert (reply, ours) == (reply, theirs)
            t_line = ask(ha_sock, b"show servers state ag\n", timeout=2).splitlines()[2].split()
            o_line = socat_free(obs, b"show servers state ag")[2].split()
            for fields in (t_line, o_line):
                del fields[9], fields[0]  # time since last change; be_id
            assert (reply, o_line) == (reply, t_line)
    finally:
        obs.stopService()
        kill_pid(haproxy)
        agent.close()
        traffic.close()
