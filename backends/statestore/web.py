"""statestored's debug web pages (port 25010), Impala's names and JSON shapes (spec 5.2).

``/healthz`` (200 once started, on the standby too), ``/metrics`` (``?json``: Impala's
metric group document), ``/jsonmetrics`` (flat map), ``/metrics_prometheus``,
``/subscribers?json``, ``/topics?json`` and ``/ha?json`` (ours: the HA role view).
"""

from __future__ import annotations

from backends.common.web import Handler, Response, WebRequest, healthz
from backends.statestore.ha import Role
from backends.statestore.statestore import Statestore
from backends.statestore.topics import is_prioritized


def routes(store: Statestore) -> dict[str, Handler]:
    """The handlers, by path."""

    def metrics(request: WebRequest) -> Response:
        values = store.metrics()
        if request.wants_json:
            return Response.metric_group("statestore", values)
        return Response.text("".join(f"{k}: {v}\n" for k, v in sorted(values.items())))

    def jsonmetrics(_: WebRequest) -> Response:
        return Response.json(store.metrics())

    def prometheus(_: WebRequest) -> Response:
        return Response.prometheus(store.metrics())

    def subscribers(_: WebRequest) -> Response:
        now = store.clock.seconds()
        rows = []
        for sub in sorted(store.subscribers.values(), key=lambda s: s.subscriber_id):
            last = sub.last_heartbeat if sub.last_heartbeat is not None else sub.registered_at
            rows.append(
                {
                    "id": sub.subscriber_id,
                    "address": sub.location,
                    "subscriber_type": sub.subscriber_type,
                    "num_topics": sum(1 for t in sub.topics if not is_prioritized(t)),
                    "num_priority_topics": sum(1 for t in sub.topics if is_prioritized(t)),
                    "num_transient": sum(len(keys) for keys in sub.transient.values()),
                    "registration_id": sub.registration_id,
                    "secs_since_heartbeat": round(now - last, 3),
                    "active_conn_state": sub.active_conn_state,
                }
            )
        return Response.json({"subscribers": rows, "num_subscribers": len(rows)})

    def topics(_: WebRequest) -> Response:
        rows = []
        for name, topic in sorted(store.topics.items()):
            rows.append(
                {
                    "topic_id": name,
                    "num_entries": topic.num_live_entries,
                    "version": topic.version,
                    "oldest_version": topic.oldest_version,
                    "key_size": topic.key_bytes,
                    "value_size": topic.value_bytes,
                    "total_size": topic.key_bytes + topic.value_bytes,
                    "prioritized": is_prioritized(name),
                }
            )
        return Response.json({"topics": rows, "num_topics": len(rows)})

    def ha(_: WebRequest) -> Response:
        controller = store.ha
        return Response.json(
            {
                "statestore_id": store.statestore_id,
                "enable_statestored_ha": controller is not None,
                "role": Role.ACTIVE.value if controller is None else controller.role.value,
                "is_active": store.is_active,
                "active_version": store.active_version,
                "found_peer": bool(controller and controller.found_peer),
                "peer_statestore_id": controller.peer_statestore_id if controller else "",
                "peer_missed_heartbeats": controller.peer_missed_heartbeats()
                if controller
                else None,
                "witnesses_failed": store.failed(),
                "witnesses_total": store.total(),
            }
        )

    return {
        "/healthz": healthz(lambda: store.started),
        "/metrics": metrics,
        "/jsonmetrics": jsonmetrics,
        "/metrics_prometheus": prometheus,
        "/subscribers": subscribers,
        "/topics": topics,
        "/ha": ha,
    }
