"""``catalogd``: flags (Impala's names), ``makeService(flags)`` and ``main()``.

Listens on ``--catalog_service_port`` (26000, the CatalogService AMP commands) and
``--webserver_port`` (25020: ``/healthz``, ``/metrics``, ``/jsonmetrics``,
``/catalog``), and subscribes to the statestore(s) for the ``catalog-update`` topic
(which it publishes when active) and the active-catalogd designation.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.application import internet, service
from twisted.internet import defer, threads
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from backends import flagsets
from backends.catalog.flags import flag_set
from backends.catalog.objects import CATALOG_TOPIC
from backends.catalog.server import (
    DESIGNATION_KEY,
    DESIGNATION_TOPIC,
    REGISTRATION_TOPIC,
    CatalogServer,
    CatalogServiceProtocol,
    Designation,
    Registration,
    open_local_store,
)
from backends.common import daemon, web
from backends.common.flags import Flags
from backends.common.rpc import TlsConfig, TopicRegistration, server_endpoint
from backends.common.subscriber import StatestoreSubscriber, TopicUpdate, subscriber_from_flags

log = Logger()


class _CatalogService(service.Service):
    """Owns the metastore's worker thread and the server's role; stops them in order."""

    def __init__(self, server: CatalogServer, sub: StatestoreSubscriber, pool: ThreadPool) -> None:
        self.server = server
        self.sub = sub
        self.pool = pool

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.pool.start()
        self.server.start()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        d = self.server.stop()
        d.addBoth(lambda _: self.pool.stop())
        return d

    def watch(self) -> None:
        """Periodic: step down when every statestore is lost (HA only)."""
        states = [s["state"] for s in self.sub.role_view()]
        if states and all(s == "failed" for s in states):
            self.server.lost_statestore()


def makeService(flags: Flags, reactor: Any = None) -> service.MultiService:
    """The catalogd service tree; raises FlagError on bad flags."""
    reactor = daemon.reactor_or_global(reactor)
    tls = daemon.tls_config(flags)
    listen_host = flags.get_str("listen_host")
    hostname = flags.get_str("hostname") or (
        listen_host if listen_host not in ("", "0.0.0.0") else socket.gethostname()
    )
    port = daemon.port(flags, "catalog_service_port")
    address = f"{hostname}:{port}"
    warehouse = Path(flags.get_str("warehouse_dir")).resolve()
    db_path = Path(flags.get_str("catalog_db_path") or warehouse / ".catalogd" / "metastore.duckdb")
    interface = "" if listen_host == "0.0.0.0" else listen_host
    sub = subscriber_from_flags(
        flags,
        reactor,
        subscriber_id=f"catalog-server@{address}",
        subscriber_type="CATALOGD",
        topics=[
            TopicRegistration(CATALOG_TOPIC, is_transient=False),
            TopicRegistration(REGISTRATION_TOPIC, is_transient=True),
            TopicRegistration(DESIGNATION_TOPIC, is_transient=False),
        ],
        hostname=hostname,
        listen_interface=interface,
    )
    # One worker thread: metastore work stays ordered (a close runs after pending changes).
    pool = ThreadPool(minthreads=1, maxthreads=1, name="catalogd-metastore")

    def run(fn: Callable[[], Any]) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(reactor, pool, fn)

    server = CatalogServer(
        reactor,
        open_local_store(warehouse, db_path),
        sub,
        address=address,
        enable_ha=flags.get_bool("enable_catalogd_ha"),
        load_in_background=flags.get_bool("load_catalog_in_background"),
        run=run,
    )
    registration = Registration(
        sub.subscriber_id,
        address,
        flags.get_bool("enable_catalogd_ha"),
        flags.get_bool("force_catalogd_active"),
    )
    sub.publish(REGISTRATION_TOPIC, sub.subscriber_id, registration.to_bytes())

    def on_registration(update: TopicUpdate) -> None:
        if update.entries.get(sub.subscriber_id) != registration.to_bytes():
            sub.publish(REGISTRATION_TOPIC, sub.subscriber_id, registration.to_bytes())

    def on_designation(update: TopicUpdate) -> None:
        value = update.entries.get(DESIGNATION_KEY)
        if value is None:
            return
        try:
            server.designated(Designation.from_bytes(value))
        except ValueError as e:
            log.warn("ignoring designation: {e}", e=str(e))

    sub.add_topic_callback(REGISTRATION_TOPIC, on_registration)
    sub.add_topic_callback(DESIGNATION_TOPIC, on_designation)
    sub.add_topic_callback(CATALOG_TOPIC, lambda u: server.topic_updated(u.entries))

    top = service.MultiService()
    core = _CatalogService(server, sub, pool)
    core.setServiceParent(top)  # type: ignore[no-untyped-call]
    sub.setServiceParent(top)  # type: ignore[no-untyped-call]
    watch = internet.TimerService(sub.heartbeat_interval, core.watch)
    watch.clock = reactor
    watch.setServiceParent(top)
    factory = Factory.forProtocol(lambda: CatalogServiceProtocol(server))
    factory.noisy = False
    rpc = internet.StreamServerEndpointService(
        server_endpoint(reactor, interface, port, tls), factory
    )
    rpc._raiseSynchronously = True
    rpc.setServiceParent(top)
    top.catalog_server = server  # type: ignore[attr-defined]
    web_port = flags.get_int("webserver_port")
    if web_port:

        def metrics() -> dict[str, Any]:
            out = server.metrics()
            out.update(sub.metrics())
            return out

        def metrics_page(request: web.WebRequest) -> web.Response:
            values = metrics()
            if request.wants_json:
                return web.Response.metric_group("catalog-server", values)
            return web.Response.json(values)

        def catalog_page(_: web.WebRequest) -> web.Response:
            return web.Response.json(server.catalog_view())

        routes: dict[str, web.Handler] = {
            "/healthz": web.healthz(lambda: bool(rpc.running)),
            "/metrics": metrics_page,
            "/jsonmetrics": lambda _: web.Response.json(metrics()),
            "/metrics_prometheus": lambda _: web.Response.prometheus(metrics()),
            "/catalog": catalog_page,
        }
        internet.StreamServerEndpointService(
            server_endpoint(reactor, interface, web_port, TlsConfig()),
            web.make_site(routes),
        ).setServiceParent(top)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    top = daemon.build(
        flag_set(),
        argv,
        lambda flags: makeService(flags, reactor),
        logging=flagsets.not_implemented,
    )
    if isinstance(top, int):
        return top
    return daemon.run(reactor, top, "catalogd")


if __name__ == "__main__":
    sys.exit(main())
