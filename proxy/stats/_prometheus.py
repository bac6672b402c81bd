"""Prometheus text exposition with the names of HAProxy's exporter (promex).

Served when the stats section has ``http-request use-service
prometheus-exporter if { path /metrics }``. Metric and label names follow
HAProxy 2.6's built-in exporter (``haproxy_server_status{proxy,server,state}``,
``haproxy_backend_current_sessions{proxy}``, ...), so dashboards built for it
work unchanged. Only what we track is exported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from proxy.checks import CheckStatus
from proxy.stats._csv import server_status
from proxy.stats._state import BackendInfo, StatsState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SERVER_STATES = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
_CHECK_STATES = tuple(s.name for s in CheckStatus if s is not CheckStatus.UNK)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


@dataclass
class _Family:
    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def render(self) -> str:
        if not self.samples:
            return ""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{_labels(lb)} {_number(v)}" for lb, v in self.samples]
        return "\n".join(lines) + "\n"


class _Registry:
    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def add(self, name: str, kind: str, help: str, labels: dict[str, str], value: float) -> None:
        fam = self.families.setdefault(name, _Family(name, kind, help))
        fam.samples.append((labels, value))

    def render(self) -> str:
        return "".join(f.render() for f in self.families.values())


def _state_status(server_text: str) -> str:
    """Map a ``show stat`` server status to the exporter's state label."""
    word = server_text.split(" ")[0]
    if word == "no":  # "no check" counts as UP
        return "UP"
    return word if word in _SERVER_STATES else "DOWN"


def render_metrics(state: StatsState) -> str:
    """The whole ``/metrics`` body."""
    reg = _Registry()
    now = state.clock.seconds()
    start = state.start_time or now
    g, c = "gauge", "counter"
    reg.add("haproxy_process_nbthread", g, "Number of started threads.", {}, 1)
    reg.add(
        "haproxy_process_uptime_seconds",
        g,
        "How long ago this worker process was started (seconds).",
        {},
        int(now - start),
    )
    reg.add("haproxy_process_start_time_seconds", g, "Start time in seconds.", {}, int(start))
    reg.add(
        "haproxy_process_max_connections",
        g,
        "Maximum number of concurrent connections.",
        {},
        state.maxconn,
    )
    reg.add(
        "haproxy_process_current_connections",
        g,
        "Number of active sessions.",
        {},
        state.current_conns(),
    )
    reg.add(
        "haproxy_process_connections_total",
        c,
        "Total number of created sessions.",
        {},
        state.cum_conns(),
    )
    for p in state.proxies:
        if p.frontend is not None:
            s = p.frontend.sample()
            lb = {"proxy": p.name}
            reg.add(
                "haproxy_frontend_status",
                g,
                "Current status of the service.",
                lb,
                1 if s.status == "OPEN" else 0,
            )
            reg.add(
                "haproxy_frontend_current_sessions", g, "Number of current sessions.", lb, s.scur
            )
            reg.add(
                "haproxy_frontend_max_sessions",
                g,
                "Maximum observed number of active sessions.",
                lb,
                s.smax,
            )
            reg.add("haproxy_frontend_limit_sessions", g, "Configured session limit.", lb, s.slim)
            reg.add("haproxy_frontend_sessions_total", c, "Total number of sessions.", lb, s.stot)
            reg.add(
                "haproxy_frontend_connections_total", c, "Total number of connections.", lb, s.stot
            )
            reg.add(
                "haproxy_frontend_bytes_in_total", c, "Current total of incoming bytes.", lb, s.bin
            )
            reg.add(
                "haproxy_frontend_bytes_out_total",
                c,
                "Current total of outgoing bytes.",
                lb,
                s.bout,
            )
        if p.backend is not None:
            _backend(reg, p.backend, now)
    return reg.render()


def _backend(reg: _Registry, be: BackendInfo, now: float) -> None:
    g, c = "gauge", "counter"
    servers = list(be.servers())
    lb = {"proxy": be.name}
    usable = [s for s in servers if s.usable]
    active = [s for s in usable if not s.backup]
    in_use = active or usable
    counters = [s.counters for s in servers]
    up = bool(usable)
    for st in ("DOWN", "UP"):
        reg.add(
            "haproxy_backend_status",
            g,
            "Current status of the service.",
            {**lb, "state": st},
            1 if (st == "UP") == up else 0,
        )
    reg.add(
        "haproxy_backend_current_queue", g, "Number of current queued connections.", lb, be.queued()
    )
    reg.add(
        "haproxy_backend_max_queue",
        g,
        "Maximum observed number of queued connections.",
        lb,
        be.max_queued(),
    )
    reg.add(
        "haproxy_backend_current_sessions",
        g,
        "Number of current sessions.",
        lb,
        sum(s.served for s in servers),
    )
    reg.add(
        "haproxy_backend_max_sessions",
        g,
        "Maximum observed number of active sessions.",
        lb,
        max((x.max_sessions for x in counters), default=0),
    )
    reg.add("haproxy_backend_limit_sessions", g, "Configured session limit.", lb, be.fullconn)
    sums: list[tuple[str, str, Callable[..., int]]] = [
        ("haproxy_backend_sessions_total", "Total number of sessions.", lambda x: x.cum_sessions),
        (
            "haproxy_backend_bytes_in_total",
            "Current total of incoming bytes.",
            lambda x: x.bytes_in,
        ),
        (
            "haproxy_backend_bytes_out_total",
            "Current total of outgoing bytes.",
            lambda x: x.bytes_out,
        ),
        (
            "haproxy_backend_connection_errors_total",
            "Total number of connection errors.",
            lambda x: x.econ,
        ),
        (
            "haproxy_backend_response_errors_total",
            "Total number of response errors.",
            lambda x: x.eresp,
        ),
        (
            "haproxy_backend_retry_warnings_total",
            "Total number of retry warnings.",
            lambda x: x.wretr,
        ),
        (
            "haproxy_backend_redispatch_warnings_total",
            "Total number of redispatch warnings.",
            lambda x: x.wredis,
        ),
        (
            "haproxy_backend_loadbalanced_total",
            "Total number of times a service was selected.",
            lambda x: x.lbtot,
        ),
        (
            "haproxy_backend_connection_attempts_total",
            "Total number of connection establishment attempts.",
            lambda x: x.connect,
        ),
        (
            "haproxy_backend_client_aborts_total",
            "Total number of data transfers aborted by the client.",
            lambda x: x.cli_abrt,
        ),
        (
            "haproxy_backend_server_aborts_total",
            "Total number of data transfers aborted by the server.",
            lambda x: x.srv_abrt,
        ),
    ]
    for name, help_, get in sums:
        reg.add(name, c, help_, lb, sum(get(x) for x in counters))
    reg.add(
        "haproxy_backend_weight", g, "Service weight.", lb, sum(s.effective_weight for s in in_use)
    )
    reg.add("haproxy_backend_uweight", g, "Server user weight.", lb, sum(s.weight for s in in_use))
    reg.add(
        "haproxy_backend_active_servers", g, "Current number of active servers.", lb, len(active)
    )
    reg.add(
        "haproxy_backend_backup_servers",
        g,
        "Current number of backup servers.",
        lb,
        len([s for s in usable if s.backup]),
    )
    pool_counters = getattr(be.pool, "counters", None)
    chkdown = pool_counters.chkdown if pool_counters is not None else 0
    reg.add(
        "haproxy_backend_check_up_down_total",
        c,
        "Total number of UP->DOWN transitions.",
        lb,
        chkdown,
    )
    last_change = max((x.last_change for x in counters), default=now)
    reg.add(
        "haproxy_backend_check_last_change_seconds",
        g,
        "How long ago the last server state changed (seconds).",
        lb,
        int(now - last_change),
    )
    downtime = (
        int(be.pool.downtime()) if be.pool is not None and hasattr(be.pool, "downtime") else 0
    )
    reg.add(
        "haproxy_backend_downtime_seconds_total",
        c,
        "Total downtime (in seconds) for the service.",
        lb,
        downtime,
    )
    for server in servers:
        _server(reg, be, server, now)


def _server(reg: _Registry, be: BackendInfo, server: object, now: float) -> None:
    from proxy.server import Server

    assert isinstance(server, Server)
    g, c = "gauge", "counter"
    x = server.counters
    lb = {"proxy": be.name, "server": server.name}
    checker = be.checker(server)
    status = _state_status(server_status(server, checker))
    for st in _SERVER_STATES:
        reg.add(
            "haproxy_server_status",
            g,
            "Current status of the service.",
            {**lb, "state": st},
            1 if st == status else 0,
        )
    reg.add(
        "haproxy_server_current_queue",
        g,
        "Number of current queued connections.",
        lb,
        server.queued,
    )
    reg.add(
        "haproxy_server_max_queue",
        g,
        "Maximum observed number of queued connections.",
        lb,
        x.max_queue,
    )
    reg.add(
        "haproxy_server_queue_limit",
        g,
        "Configured maxqueue for the server (0 meaning no limit).",
        lb,
        server.maxqueue,
    )
    reg.add("haproxy_server_current_sessions", g, "Number of current sessions.", lb, server.served)
    reg.add(
        "haproxy_server_max_sessions",
        g,
        "Maximum observed number of active sessions.",
        lb,
        x.max_sessions,
    )
    reg.add("haproxy_server_limit_sessions", g, "Configured session limit.", lb, server.maxconn)
    values: Iterable[tuple[str, str, int]] = [
        ("haproxy_server_sessions_total", "Total number of sessions.", x.cum_sessions),
        ("haproxy_server_bytes_in_total", "Current total of incoming bytes.", x.bytes_in),
        ("haproxy_server_bytes_out_total", "Current total of outgoing bytes.", x.bytes_out),
        ("haproxy_server_connection_errors_total", "Total number of connection errors.", x.econ),
        ("haproxy_server_response_errors_total", "Total number of response errors.", x.eresp),
        ("haproxy_server_retry_warnings_total", "Total number of retry warnings.", x.wretr),
        (
            "haproxy_server_redispatch_warnings_total",
            "Total number of redispatch warnings.",
            x.wredis,
        ),
        (
            "haproxy_server_loadbalanced_total",
            "Total number of times a service was selected.",
            x.lbtot,
        ),
        (
            "haproxy_server_connection_attempts_total",
            "Total number of connection establishment attempts.",
            x.connect,
        ),
        (
            "haproxy_server_client_aborts_total",
            "Total number of data transfers aborted by the client.",
            x.cli_abrt,
        ),
        (
            "haproxy_server_server_aborts_total",
            "Total number of data transfers aborted by the server.",
            x.srv_abrt,
        ),
        (
            "haproxy_server_check_failures_total",
            "Total number of failed individual health checks.",
            x.chkfail,
        ),
        ("haproxy_server_check_up_down_total", "Total number of UP->DOWN transitions.", x.chkdown),
        (
            "haproxy_server_downtime_seconds_total",
            "Total downtime (in seconds) for the service.",
            int(server.downtime()),
        ),
    ]
    for name, help_, value in values:
        reg.add(name, c, help_, lb, value)
    reg.add("haproxy_server_weight", g, "Service weight.", lb, server.effective_weight)
    reg.add("haproxy_server_uweight", g, "Server user weight.", lb, server.weight)
    reg.add("haproxy_server_active", g, "Is the server active.", lb, 0 if server.backup else 1)
    reg.add("haproxy_server_backup", g, "Is the server backup.", lb, 1 if server.backup else 0)
    reg.add(
        "haproxy_server_check_last_change_seconds",
        g,
        "How long ago the last server state changed (seconds).",
        lb,
        server.seconds_since_change(),
    )
    reg.add(
        "haproxy_server_current_throttle",
        g,
        "Current throttle percentage for the server (100 when not in slowstart).",
        lb,
        server.throttle if server.throttle is not None else 100,
    )
    last_session = -1 if x.last_session is None else int(now - x.last_session)
    reg.add(
        "haproxy_server_last_session_seconds",
        g,
        "How long ago some traffic was seen on the server (seconds).",
        lb,
        last_session,
    )
    for name, help_, ms in [
        (
            "haproxy_server_queue_time_average_seconds",
            "Avg. queue time for last 1024 successful connections.",
            x.qtime.average,
        ),
        (
            "haproxy_server_connect_time_average_seconds",
            "Avg. connect time for last 1024 successful connections.",
            x.ctime.average,
        ),
        (
            "haproxy_server_total_time_average_seconds",
            "Avg. total time for last 1024 successful connections.",
            x.ttime.average,
        ),
        (
            "haproxy_server_max_queue_time_seconds",
            "Maximum observed time spent in the queue.",
            x.qtime_max,
        ),
        (
            "haproxy_server_max_connect_time_seconds",
            "Maximum observed time spent waiting for a connection to complete.",
            x.ctime_max,
        ),
        (
            "haproxy_server_max_total_time_seconds",
            "Maximum observed total session time (queue+connect+data transfer).",
            x.ttime_max,
        ),
    ]:
        reg.add(name, g, help_, lb, ms / 1000)
    if checker is not None and checker.settings is not None:
        last = checker.last
        for st in _CHECK_STATES:
            reg.add(
                "haproxy_server_check_status",
                g,
                "Status of last health check, per state value.",
                {**lb, "state": st},
                1 if st == last.status.name else 0,
            )
        reg.add(
            "haproxy_server_check_code",
            g,
            "layer5-7 code, if available of the last health check.",
            lb,
            last.code or 0,
        )
        reg.add(
            "haproxy_server_check_duration_seconds",
            g,
            "Total duration of the latest server health check, in seconds.",
            lb,
            last.duration_ms / 1000,
        )
