"""``show stat``: HAProxy 2.6's CSV, byte for byte in shape (spec 3.2).

Every row has all 128 fields of the 2.6.12 header, a trailing comma, and the
same blank-versus-``0`` convention per row type as HAProxy (measured rows in
the spec). Fields we track get real values; HTTP-only and module fields stay
blank or ``0`` exactly where HAProxy puts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from proxy.checks import CheckStatus, ServerChecker
from proxy.server import Server
from proxy.stats._state import BackendInfo, FrontendInfo, StatsState

FIELDS: tuple[str, ...] = tuple(
    [
        "pxname",
        "svname",
        "qcur",
        "qmax",
        "scur",
        "smax",
        "slim",
        "stot",
        "bin",
        "bout",
        "dreq",
        "dresp",
        "ereq",
        "econ",
        "eresp",
        "wretr",
        "wredis",
        "status",
        "weight",
        "act",
        "bck",
        "chkfail",
        "chkdown",
        "lastchg",
        "downtime",
        "qlimit",
        "pid",
        "iid",
        "sid",
        "throttle",
        "lbtot",
        "tracked",
        "type",
        "rate",
        "rate_lim",
        "rate_max",
        "check_status",
        "check_code",
        "check_duration",
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
        "hanafail",
        "req_rate",
        "req_rate_max",
        "req_tot",
        "cli_abrt",
        "srv_abrt",
        "comp_in",
        "comp_out",
        "comp_byp",
        "comp_rsp",
        "lastsess",
        "last_chk",
        "last_agt",
        "qtime",
        "ctime",
        "rtime",
        "ttime",
        "agent_status",
        "agent_code",
        "agent_duration",
        "check_desc",
        "agent_desc",
        "check_rise",
        "check_fall",
        "check_health",
        "agent_rise",
        "agent_fall",
        "agent_health",
        "addr",
        "cookie",
        "mode",
        "algo",
        "conn_rate",
        "conn_rate_max",
        "conn_tot",
        "intercepted",
        "dcon",
        "dses",
        "wrew",
        "connect",
        "reuse",
        "cache_lookups",
        "cache_hits",
        "srv_icur",
        "src_ilim",
        "qtime_max",
        "ctime_max",
        "rtime_max",
        "ttime_max",
        "eint",
        "idle_conn_cur",
        "safe_conn_cur",
        "used_conn_cur",
        "need_conn_est",
        "uweight",
        "agg_server_status",
        "agg_server_check_status",
        "agg_check_status",
        "-",
        "ssl_sess",
        "ssl_reused_sess",
        "ssl_failed_handshake",
        "h2_headers_rcvd",
        "h2_data_rcvd",
        "h2_settings_rcvd",
        "h2_rst_stream_rcvd",
        "h2_goaway_rcvd",
        "h2_detected_conn_protocol_errors",
        "h2_detected_strm_protocol_errors",
        "h2_rst_stream_resp",
        "h2_goaway_resp",
        "h2_open_connections",
        "h2_backend_open_streams",
        "h2_total_connections",
        "h2_backend_total_streams",
        "h1_open_connections",
        "h1_open_streams",
        "h1_total_connections",
        "h1_total_streams",
        "h1_bytes_in",
        "h1_bytes_out",
        "h1_spliced_bytes_in",
        "h1_spliced_bytes_out",
    ]
)

HEADER = "# " + ",".join(FIELDS) + ",\n"

_H2H1 = [f for f in FIELDS if f.startswith(("h2_", "h1_"))]
_SSL = ["ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"]
_COMP = ["comp_in", "comp_out", "comp_byp", "comp_rsp"]

# Fields HAProxy prints as 0 (not blank) for each row type when nothing happened.
_ZERO_FRONTEND = frozenset(
    [
        *[
            "scur",
            "bin",
            "dreq",
            "dresp",
            "ereq",
            "sid",
            "rate",
            "rate_lim",
            "req_rate",
            "req_rate_max",
            "req_tot",
        ],
        *[
            "conn_rate",
            "dcon",
            "dses",
            "wrew",
            "eint",
        ],
        *_COMP,
        *_SSL,
        *_H2H1,
    ]
)
_ZERO_SERVER = frozenset(
    [
        *[
            "qcur",
            "qmax",
            "scur",
            "bin",
            "dresp",
            "econ",
            "eresp",
            "wretr",
            "wredis",
            "bck",
            "rate",
            "cli_abrt",
            "srv_abrt",
        ],
        *[
            "qtime",
            "ctime",
            "rtime",
            "wrew",
            "reuse",
            "srv_icur",
            "qtime_max",
            "ctime_max",
            "rtime_max",
            "eint",
        ],
        *[
            "idle_conn_cur",
            "safe_conn_cur",
            "used_conn_cur",
        ],
        *_SSL,
    ]
)
_ZERO_BACKEND = frozenset(
    [
        *[
            "qcur",
            "qmax",
            "scur",
            "bin",
            "dreq",
            "dresp",
            "econ",
            "eresp",
            "wretr",
            "wredis",
            "bck",
            "chkdown",
            "downtime",
        ],
        *[
            "sid",
            "rate",
            "cli_abrt",
            "srv_abrt",
            "qtime",
            "ctime",
            "rtime",
            "wrew",
            "reuse",
            "qtime_max",
            "ctime_max",
        ],
        *[
            "rtime_max",
            "eint",
            "agg_server_status",
            "agg_server_check_status",
            "agg_check_status",
        ],
        *_COMP,
        *_SSL,
        *_H2H1,
    ]
)

TYPE_FRONTEND, TYPE_BACKEND, TYPE_SERVER = 0, 1, 2
MASK_FRONTEND, MASK_BACKEND, MASK_SERVER = 1, 2, 4

Row = dict[str, object]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def format_row(row: Row) -> str:
    """One CSV line: every field in header order, ``-`` at the separator, trailing comma."""
    row = {**row, "-": "-"}
    return ",".join(_cell(row.get(name)) for name in FIELDS) + ",\n"


def _base(zero: frozenset[str]) -> Row:
    return dict.fromkeys(zero, 0)


def frontend_row(state: StatsState, iid: int, fe: FrontendInfo) -> Row:
    s = fe.sample()
    row = _base(_ZERO_FRONTEND)
    row.update(
        pxname=fe.name,
        svname="FRONTEND",
        scur=s.scur,
        smax=s.smax,
        slim=s.slim,
        stot=s.stot,
        bin=s.bin,
        bout=s.bout,
        status=s.status,
        pid=1,
        iid=iid,
        type=TYPE_FRONTEND,
        rate_max=0,
        mode=fe.mode,
        conn_rate_max=0,
        conn_tot=s.stot,
    )
    return row


def check_fields(checker: ServerChecker | None, row: Row, maint: bool = False) -> None:
    """The check_* and agent_* columns of a server row (blank while checks are disabled
    or paused by maintenance, as HAProxy shows them)."""
    if checker is None or checker.settings is None or not checker.enabled or maint:
        pass
    else:
        last = checker.last
        row["check_status"] = ("* " if checker.in_progress else "") + last.status.name
        if last.status.layer >= 5 and last.code is not None:
            row["check_code"] = last.code
        if last.status is not CheckStatus.INI:
            row["check_duration"] = last.duration_ms
        # HAProxy clears the text when a check starts (status kept, marked "* ")
        row["last_chk"] = "" if checker.in_progress else last.info
        row["check_desc"] = last.status.description
        row["check_rise"] = checker.health.rise
        row["check_fall"] = checker.health.fall
        row["check_health"] = checker.health.value
    if checker is not None and checker.agent is not None:
        agent = checker.last_agent
        row["agent_status"] = ("* " if checker.agent_in_progress else "") + agent.status.name
        if agent.status.layer >= 5 and agent.code is not None:
            row["agent_code"] = agent.code
        if agent.status is not CheckStatus.INI:
            row["agent_duration"] = agent.duration_ms
        row["last_agt"] = agent.info
        row["agent_desc"] = agent.status.description
        row["agent_rise"] = 1
        row["agent_fall"] = 1
        row["agent_health"] = 0 if checker.server.agent_down else 1


def server_status(server: Server, checker: ServerChecker | None) -> str:
    if checker is not None:
        return checker.status
    if server.admin.maint:
        return "MAINT"
    if server.op.value == 0:
        return "DOWN"
    return "DRAIN" if server.admin.drain else "no check"


def server_row(
    state: StatsState, iid: int, be: BackendInfo, server: Server, *, show_addr: bool = True
) -> Row:
    c = server.counters
    checker = be.checker(server)
    checked = checker is not None and checker.settings is not None and checker.enabled
    now = state.clock.seconds()
    row = _base(_ZERO_SERVER)
    row.update(
        pxname=be.name,
        svname=server.name,
        qcur=server.queued,
        qmax=c.max_queue,
        scur=server.served,
        smax=c.max_sessions,
        slim=server.maxconn or "",
        stot=c.cum_sessions,
        bin=c.bytes_in,
        bout=c.bytes_out,
        econ=c.econ,
        eresp=c.eresp,
        wretr=c.wretr,
        wredis=c.wredis,
        status=server_status(server, checker),
        weight=server.effective_weight,
        act=0 if server.backup else 1,
        bck=1 if server.backup else 0,
        lastchg=server.seconds_since_change(),
        qlimit=server.maxqueue or "",
        pid=1,
        iid=iid,
        sid=server.puid,
        throttle="" if server.throttle is None else server.throttle,
        lbtot=c.lbtot,
        type=TYPE_SERVER,
        rate_max=0,
        cli_abrt=c.cli_abrt,
        srv_abrt=c.srv_abrt,
        lastsess=-1 if c.last_session is None else int(now - c.last_session),
        qtime=c.qtime.average,
        ctime=c.ctime.average,
        ttime=c.ttime.average,
        mode=be.mode,
        connect=c.connect,
        qtime_max=c.qtime_max,
        ctime_max=c.ctime_max,
        ttime_max=c.ttime_max,
        need_conn_est=server.served,
        uweight=server.weight,
    )
    if checked:
        row["chkfail"] = c.chkfail
        row["chkdown"] = c.chkdown
        row["downtime"] = int(server.downtime())
    if show_addr and server.host:
        port = "" if server.port is None else server.port
        sign = "+" if server.port_offset and server.port and server.port > 0 else ""
        row["addr"] = f"{server.host}:{sign}{port}"
    check_fields(checker, row, server.admin.maint)
    return row


def backend_row(state: StatsState, iid: int, be: BackendInfo) -> Row:
    servers = list(be.servers())
    usable = [s for s in servers if s.usable]
    active = [s for s in usable if not s.backup]
    backup = [s for s in usable if s.backup]
    # HAProxy: the backend's weight is that of the servers taking traffic now
    in_use = active or backup
    now = state.clock.seconds()
    sessions = [s.counters.last_session for s in servers if s.counters.last_session is not None]
    counters = [s.counters for s in servers]
    down = not usable
    row = _base(_ZERO_BACKEND)
    row.update(
        pxname=be.name,
        svname="BACKEND",
        qcur=be.queued(),
        qmax=be.max_queued(),
        scur=sum(s.served for s in servers),
        smax=max((c.max_sessions for c in counters), default=0),
        slim=be.fullconn,
        stot=sum(c.cum_sessions for c in counters),
        bin=sum(c.bytes_in for c in counters),
        bout=sum(c.bytes_out for c in counters),
        econ=sum(c.econ for c in counters),
        eresp=sum(c.eresp for c in counters),
        wretr=sum(c.wretr for c in counters),
        wredis=sum(c.wredis for c in counters),
        status="DOWN" if down else "UP",
        weight=sum(s.effective_weight for s in in_use),
        act=len(active),
        bck=len(backup),
        lastchg=int(now - max((c.last_change for c in counters), default=now)),
        pid=1,
        iid=iid,
        lbtot=sum(c.lbtot for c in counters),
        type=TYPE_BACKEND,
        rate_max=0,
        cli_abrt=sum(c.cli_abrt for c in counters),
        srv_abrt=sum(c.srv_abrt for c in counters),
        lastsess=int(now - max(sessions)) if sessions else -1,
        qtime=_avg([c.qtime.average for c in counters if c.qtime.count]),
        ctime=_avg([c.ctime.average for c in counters if c.ctime.count]),
        ttime=_avg([c.ttime.average for c in counters if c.ttime.count]),
        mode=be.mode,
        algo=be.algo,
        connect=sum(c.connect for c in counters),
        qtime_max=max((c.qtime_max for c in counters), default=0),
        ctime_max=max((c.ctime_max for c in counters), default=0),
        ttime_max=max((c.ttime_max for c in counters), default=0),
        uweight=sum(s.weight for s in in_use),
    )
    if down:
        row["downtime"] = int(now - max((c.last_change for c in counters), default=now))
    pc = getattr(be.pool, "counters", None)
    if pc is not None:
        _pool_fields(be.pool, pc, row, now)
    return row


def _pool_fields(pool: Any, pc: Any, row: Row, now: float) -> None:
    """The BACKEND row from the pool's own counters (``proxy.pool.BackendPool``)."""
    row.update(
        qmax=pc.max_queue,
        scur=pool.sessions,
        smax=pc.max_sessions,
        stot=pc.cum_sessions,
        bin=pc.bytes_in,
        bout=pc.bytes_out,
        econ=pc.econ,
        eresp=pc.eresp,
        wretr=pc.wretr,
        wredis=pc.wredis,
        status=pool.status,
        chkdown=pc.chkdown,
        lastchg=int(now - pc.last_change),
        downtime=int(pool.downtime()),
        lbtot=pc.lbtot,
        cli_abrt=pc.cli_abrt,
        srv_abrt=pc.srv_abrt,
        lastsess=-1 if pc.last_session is None else int(now - pc.last_session),
        qtime=pc.qtime.average,
        ctime=pc.ctime.average,
        ttime=pc.ttime.average,
        qtime_max=pc.qtime_max,
        ctime_max=pc.ctime_max,
        ttime_max=pc.ttime_max,
    )


def _avg(values: list[int]) -> int:
    return (sum(values) + len(values) - 1) // len(values) if values else 0


def rows(
    state: StatsState,
    proxy: str | None = None,
    mask: int = -1,
    sid: int = -1,
    *,
    show_addr: bool = True,
) -> Iterator[Row]:
    """The rows of ``show stat [<proxy>|<iid>] [<type> <sid>]`` in HAProxy's order."""
    for p in state.proxies:
        if proxy not in (None, "-1") and proxy not in (p.name, str(p.iid)):
            continue
        if p.frontend is not None and mask & MASK_FRONTEND and sid in (-1, 0):
            yield frontend_row(state, p.iid, p.frontend)
        if p.backend is not None:
            if mask & MASK_SERVER:
                for server in p.backend.servers():
                    if sid in (-1, server.puid):
                        yield server_row(state, p.iid, p.backend, server, show_addr=show_addr)
            if mask & MASK_BACKEND and sid in (-1, 0):
                yield backend_row(state, p.iid, p.backend)


def show_stat(
    state: StatsState,
    proxy: str | None = None,
    mask: int = -1,
    sid: int = -1,
    *,
    show_addr: bool = True,
) -> str:
    """The whole ``show stat`` text: header, rows, then (added by the CLI) an empty line."""
    body = "".join(format_row(r) for r in rows(state, proxy, mask, sid, show_addr=show_addr))
    return HEADER + body
