"""``show stat`` CSV: the exact 2.6 header and HAProxy's row shapes, in memory."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from proxy.server import Server
from proxy.stats import FIELDS, HEADER, BackendInfo, ProxyInfo, StatsState, show_stat
from proxy.stats.testing import make_world

SPEC_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,"
    "safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,"
    "h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n"
)

# The measured no-check server row of spec 3.2 (HAProxy 2.6.12).
SPEC_SERVER_ROW = (
    "lc_w,a,0,0,0,6,,11,0,99,,0,,0,0,0,0,no check,2,1,0,,,47,,,1,7,1,,11,,2,0,,11,,,,,,,,,,,,,,"
    "0,0,,,,,39,,,0,0,0,2,,,,,,,,,,,,127.0.0.1:21100,,tcp,,,,,,,,0,11,0,,,0,,0,0,0,2,0,0,0,0,1,"
    "2,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
)
SPEC_FRONTEND_ROW = (
    "lc_w,FRONTEND,,,0,9,4000,18,0,162,0,0,0,,,,,OPEN,,,,,,,,,1,7,0,,,,0,0,0,18,,,,,,,,,,,0,0,0,,,"
    "0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,18,18,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,"
    "0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
)
SPEC_BACKEND_ROW = (
    "lc_w,BACKEND,0,0,0,9,400,18,0,162,0,0,,0,0,0,0,UP,3,2,0,,0,47,0,,1,7,0,,18,,1,0,,18,,,,,,,,,"
    ",,,,,0,0,0,0,0,0,39,,,0,0,0,1,,,,,,,,,,,,,,tcp,leastconn,,,,,,,0,18,0,,,,,0,0,0,3,0,,,,,3,"
    "0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
)


def blanks(line: str) -> list[int]:
    return [i for i, v in enumerate(line.rstrip("\n").split(",")) if v == ""]


def test_header_is_byte_exact() -> None:
    """The header is HAProxy 2.6.12's, byte for byte, with 128 fields and the ``-``."""
    assert HEADER == SPEC_HEADER
    assert len(FIELDS) == 128 and FIELDS[103] == "-"


def test_no_check_server_row_matches_haproxy() -> None:
    """A no-check server with the spec's counters gives HAProxy's measured row exactly."""
    reactor = MemoryReactorClock()
    clock: Any = reactor
    server = Server(
        "a", clock=clock, backend="lc_w", puid=1, host="127.0.0.1", port=21100, weight=2
    )
    for _ in range(11):
        server.take_slot()
        server.release_slot()
    server.counters.bytes_out = 99
    server.counters.max_sessions = 6
    server.counters.connect = 11
    for _ in range(11):
        server.counters.record_times(qtime=0, ctime=0, ttime=2)
    server.counters.last_change = reactor.seconds() - 47
    server.counters.last_session = reactor.seconds() - 39
    backend = BackendInfo("lc_w", lambda: [server], algo="leastconn")
    state = StatsState(reactor, [ProxyInfo("lc_w", 7, backend=backend)])
    out = show_stat(state, "lc_w", 4, -1)
    # we do not track session rates nor HAProxy's idle-connection estimate: 0 there
    expected = SPEC_SERVER_ROW.split(",")
    expected[FIELDS.index("rate_max")] = "0"
    expected[FIELDS.index("need_conn_est")] = "0"
    assert out == HEADER + ",".join(expected)


def test_frontend_and_backend_rows_have_haproxy_shape() -> None:
    """FRONTEND and BACKEND rows are blank exactly where HAProxy leaves them blank."""
    world = make_world()
    lines = show_stat(world.state).splitlines(keepends=True)
    fe = next(line for line in lines if ",FRONTEND," in line)
    be = next(line for line in lines if ",BACKEND," in line)
    assert blanks(fe) == blanks(SPEC_FRONTEND_ROW)
    # our backend has no fullconn and no lastsess yet: slim is 0, lastsess -1
    assert blanks(be) == blanks(SPEC_BACKEND_ROW)


def test_rows_in_config_order_with_trailing_comma() -> None:
    """Rows come FRONTEND, servers, BACKEND, each with 128 fields and a trailing comma."""
    world = make_world()
    lines = show_stat(world.state).splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == ["FRONTEND", "a", "b", "c", "BACKEND"]
    assert all(line.endswith(",") and line.count(",") == 128 for line in lines)


def test_checked_server_fields() -> None:
    """A checked server shows ``UP 1/3``, INI, rise/fall/health and chkfail/chkdown."""
    world = make_world()
    row = dict(
        zip(FIELDS, show_stat(world.state, "be", 4, 1).splitlines()[1].split(","), strict=False)
    )
    assert row["status"] == "UP 1/3"
    assert row["check_status"] == "INI"
    assert row["check_desc"] == "Initializing"
    assert (row["check_rise"], row["check_fall"], row["check_health"]) == ("2", "3", "2")
    assert (row["chkfail"], row["chkdown"], row["weight"], row["uweight"]) == ("0", "0", "5", "5")
    unchecked = show_stat(world.state, "be", 4, 3).splitlines()[1].split(",")
    assert unchecked[FIELDS.index("status")] == "no check"


def test_filter_by_type_and_sid() -> None:
    """``show stat be 4 2`` returns only server 2 of backend be."""
    world = make_world()
    lines = show_stat(world.state, "be", 4, 2).splitlines()
    assert len(lines) == 2 and lines[1].startswith("be,b,")


def test_user_level_hides_addresses() -> None:
    """Addresses are left out when asked without operator rights."""
    world = make_world()
    out = show_stat(world.state, "be", 4, 1, show_addr=False)
    assert "127.0.0.1" not in out


def test_fields_with_commas_are_quoted() -> None:
    """A field containing a comma is quoted, as HAProxy does."""
    world = make_world()
    checker = world.checks.checker("a")
    assert checker is not None
    from proxy.checks import CheckResult, CheckStatus

    checker.last = CheckResult(CheckStatus.L7STS, "Bad, very bad", 500, 3)
    line = show_stat(world.state, "be", 4, 1).splitlines()[1]
    assert '"Bad, very bad"' in line


def test_maint_and_disabled_health_blank_check_columns() -> None:
    """In MAINT the check columns are blank (counters stay); with health disabled the row
    looks like a no-check server, as HAProxy shows them."""
    world = make_world()
    world.servers["a"].set_admin("maint")
    row = dict(
        zip(FIELDS, show_stat(world.state, "be", 4, 1).splitlines()[1].split(","), strict=False)
    )
    assert row["status"] == "MAINT"
    assert [row[k] for k in ("check_status", "check_desc", "check_rise", "check_health")] == [
        ""
    ] * 4
    assert (row["chkfail"], row["chkdown"]) == ("0", "1")  # going to maint counts as a DOWN
    world.servers["a"].set_admin("ready")
    checker = world.checks.checker("a")
    assert checker is not None
    checker.set_enabled(False)
    row = dict(
        zip(FIELDS, show_stat(world.state, "be", 4, 1).splitlines()[1].split(","), strict=False)
    )
    assert row["status"] == "no check"
    assert [row[k] for k in ("chkfail", "chkdown", "downtime", "check_status")] == [""] * 4
