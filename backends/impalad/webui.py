"""impalad's debug web server pages (``--webserver_port``, 25000), Impala's field names.

``/healthz`` (spec impala-ha.md 5.3): 200 once every client port listens and, for a
cluster member, the first statestore registration succeeded (a standalone impalad,
``--state_store_host=``, is ready as soon as it listens); losing the statestore later
does not make it unhealthy. As in Impala it stays 200 while the daemon quiesces after
``:shutdown()`` or SIGRTMIN: ``/?json`` (``is_quiescing``, ``shutdown_status``) and
the metrics say so, and the Impala agent (:mod:`proxy.impala`) turns that into a drain.

``/backends?json`` lists the live cluster from the membership topic (this daemon
first) with Impala's field names, plus ``hs2_address`` and ``hs2_http_address``, the
client ports the balancer's discovery (``haconfig/discover.py``) reads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from backends.common import web
from backends.impalad.membership import ImpaladDescriptor, Membership, backend_json
from backends.impalad.server import ImpalaServer
from backends.impalad.state import Operation


def _ts(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _query(op: Operation, server: ImpalaServer) -> dict[str, Any]:
    end = op.end_time
    duration = ((end if end is not None else time.time()) - op.start_time) * 1000
    return {
        "query_id": op.id,
        "session_id": op.session.id,
        "session_type": op.session.session_type,
        "stmt": op.sql,
        "stmt_type": op.statement_type or "QUERY",
        "effective_user": op.session.engine_session.user,
        "default_db": op.session.engine_session.database,
        "state": op.state_name(),
        "rows_fetched": op.rows_fetched,
        "start_time": _ts(op.start_time),
        "end_time": _ts(end),
        "duration": f"{duration:.0f}ms",
        "waiting": False,
        "executing": end is None,
        "coordinator": server.identity.hostname,
    }


def _own(server: ImpalaServer) -> ImpaladDescriptor:
    """This daemon's entry before (or without) a published descriptor."""
    ident = server.identity
    web_port = ident.webserver_address.rpartition(":")[2]
    return ImpaladDescriptor(
        backend_id="",
        address=f"{ident.hostname}:{ident.krpc_port}",
        hs2_port=ident.hs2_port,
        webserver_port=int(web_port) if web_port.isdigit() else 0,
        hs2_http_port=ident.hs2_http_port,
        webserver_https=ident.webserver_address.startswith("https:"),
        version=server.version,
        start_time=server.start_time,
    )


def routes(server: ImpalaServer, membership: Membership | None = None) -> Mapping[str, web.Handler]:
    """The handlers of impalad's web server."""
    members = membership if membership is not None else Membership(None, 0.0)

    def is_ready() -> bool:
        return server.is_ready and members.registered

    def quiescing() -> bool:
        return server.shutdown is not None and server.shutdown.started

    def all_metrics() -> dict[str, float | int | bool]:
        flat: dict[str, float | int | bool] = dict(server.metrics())
        for key, value in members.metrics().items():
            if isinstance(value, int | float):
                flat[key] = value
        return flat

    def metrics(req: web.WebRequest) -> web.Response:
        flat = all_metrics()
        if req.wants_json:
            return web.Response.metric_group("impala-server", flat, gauges=True)
        return web.Response.prometheus(flat)

    def jsonmetrics(_: web.WebRequest) -> web.Response:
        return web.Response.json(all_metrics())

    def queries(_: web.WebRequest) -> web.Response:
        in_flight = [_query(op, server) for op in server.operations.values()]
        completed = [_query(op, server) for op in reversed(server.closed_operations.values())]
        return web.Response.json(
            {
                "num_in_flight_queries": len(in_flight),
                "num_executing_queries": sum(1 for q in in_flight if q["executing"]),
                "in_flight_queries": in_flight,
                "completed_queries": completed,
                "completed_log_size": len(completed),
            }
        )

    def sessions(_: web.WebRequest) -> web.Response:
        rows = [
            {
                "type": s.session_type,
                "session_id": s.id,
                "user": s.connected_user,
                "delegated_user": ""
                if s.engine_session.user == s.connected_user
                else s.engine_session.user,
                "network_address": s.client,
                "default_database": s.engine_session.database,
                "start_time": _ts(s.start_time),
                "last_accessed": _ts(s.last_access),
                "inflight_queries": len(s.operations),
                "expired": False,
                "closed": s.closed,
            }
            for s in server.sessions.values()
        ]
        return web.Response.json({"num_sessions": len(rows), "sessions": rows})

    def backends(_: web.WebRequest) -> web.Response:
        listed = members.backends() or [_own(server)]
        rows = []
        for i, d in enumerate(listed):
            if i == 0 and quiescing() and not d.is_quiescing:
                d = dataclasses.replace(d, is_quiescing=True)
            rows.append(backend_json(d, is_self=i == 0))
        return web.Response.json(
            {
                "backends": rows,
                "num_active_backends": sum(1 for r in rows if r["is_active"]),
                "num_quiescing_backends": sum(1 for r in rows if r["is_quiescing"]),
                "num_blacklisted_backends": 0,
                "statestore": members.role_view(),
            }
        )

    def root(req: web.WebRequest) -> web.Response:
        if not req.wants_json:
            return web.Response.text(f"{server.version}\n")
        # default-path-handlers.cc's root page, the fields a balancer reads
        page: dict[str, Any] = {
            "version": server.version,
            "is_coordinator": True,
            "is_executor": True,
            "is_quiescing": quiescing(),
            "process_start_time": _ts(server.start_time),
        }
        if quiescing() and server.shutdown is not None:
            page["shutdown_status"] = server.shutdown.status_text()
        return web.Response.json(page)

    return {
        "/": root,
        "/healthz": web.healthz(is_ready),
        "/metrics": metrics,
        "/metrics_prometheus": lambda req: web.Response.prometheus(all_metrics()),
        "/jsonmetrics": jsonmetrics,
        "/queries": queries,
        "/sessions": sessions,
        "/backends": backends,
    }
