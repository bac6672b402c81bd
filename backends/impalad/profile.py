"""What a query's runtime profile and exec summary say (``GetRuntimeProfile``,
``GetExecSummary``, Beeswax's ``GetRuntimeProfile``/``GetExecSummary``): Impala's
summary lines and one DuckDB plan node with the measured figures."""

from __future__ import annotations

import time

from backends.impalad.gen.ExecStats import ttypes as es
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.state import Operation, ServerIdentity, _safe_summary


def profile_text(op: Operation, identity: ServerIdentity, version: str, now: float) -> str:
    """The query's runtime profile, as Impala prints its summary part."""
    fmt = "%Y-%m-%d %H:%M:%S"
    end = time.strftime(fmt, time.localtime(op.end_time)) if op.end_time else ""
    summary = dict(op.summary_extra)
    if op.statement is not None and not op.closed:
        summary.update(_safe_summary(op.statement))
    plan = str(summary.get("plan", "")).rstrip()
    lines = [
        f"Query (id={op.id}):",
        "  Summary:",
        f"    Session ID: {op.session.id}",
        f"    Session Type: {op.session.session_type}",
        f"    Start Time: {time.strftime(fmt, time.localtime(op.start_time))}",
        f"    End Time: {end}",
        f"    Query Type: {op.statement_type or 'QUERY'}",
        f"    Query State: {op.state_name()}",
        f"    Impala Version: {version}",
        f"    User: {op.session.engine_session.user}",
        f"    Connected User: {op.session.connected_user}",
        f"    Network Address: {op.session.client}",
        f"    Default Db: {op.session.engine_session.database}",
        f"    Sql Statement: {op.sql}",
        f"    Coordinator: {identity.hostname}:{identity.krpc_port}",
        f"    Rows Produced: {summary.get('rows_produced', op.rows_fetched)}",
    ]
    if op.error:
        lines.append(f"    Query Status: {op.error.strip()}")
    else:
        lines.append("    Query Status: OK")
    if plan:
        lines.append("    Plan: ")
        lines.append("----------------")
        lines.extend(plan.splitlines())
        lines.append("----------------")
    lines.append(f"  Execution Profile {op.id}:(Total: {_duration_text(op, now)})")
    return "\n".join(lines) + "\n"


def _duration_text(op: Operation, now: float) -> str:
    end = op.end_time if op.end_time is not None else now
    return f"{(end - op.start_time) * 1000:.3f}ms"


def exec_summary(op: Operation, now: float) -> es.TExecSummary:
    """The exec summary of ``op``: one DuckDB node with the measured figures."""
    state = {
        t.TOperationState.PENDING_STATE: es.TExecState.PLANNING,
        t.TOperationState.RUNNING_STATE: es.TExecState.RUNNING,
        t.TOperationState.FINISHED_STATE: es.TExecState.FINISHED,
        t.TOperationState.ERROR_STATE: es.TExecState.FAILED,
        t.TOperationState.CANCELED_STATE: es.TExecState.CANCELLED,
    }.get(op.state, es.TExecState.FINISHED)
    done = op.state != t.TOperationState.RUNNING_STATE
    end = op.end_time if op.end_time is not None else now
    latency = int((end - op.start_time) * 1e9)
    rows = int(str(op.summary_extra.get("rows_produced", op.rows_fetched)) or 0)
    # measured: wall time and the CPU time of the threads that ran it; the peak
    # memory is not known (DuckDB keeps no per-query figure) and is left unset
    stats = es.TExecStats(latency_ns=latency, cpu_time_ns=op.cpu_ns, cardinality=rows)
    node = es.TPlanNodeExecSummary(
        node_id=0,
        fragment_idx=0,
        label="00:DUCKDB",
        label_detail=op.statement_type or "QUERY",
        num_children=0,
        estimated_stats=es.TExecStats(cardinality=-1, memory_used=-1),  # no estimates
        exec_stats=[stats],
        is_broadcast=False,
        num_hosts=1,
    )
    return es.TExecSummary(
        state=state,
        nodes=[node] if op.statement is not None else [],
        progress=es.TExecProgress(
            total_scan_ranges=1,
            num_completed_scan_ranges=1 if done else 0,
            total_fragment_instances=1,
            num_completed_fragment_instances=1 if done else 0,
        ),
        is_queued=False,
        error_logs=[op.error] if op.error else [],
    )
