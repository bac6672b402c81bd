"""``statestored``: flags (Impala's names), ``makeService(flags)`` and ``main()``.

HA port defaults follow the product documentation (seed 001): the peer's HA port
is 24020, as the documentation says (Impala's code defaults to 24021).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any

from twisted.application import internet, service
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from backends import flagsets
from backends.common import daemon, web
from backends.common.flags import Flags
from backends.common.rpc import TlsConfig, client_endpoint, server_endpoint
from backends.statestore import web as pages
from backends.statestore.catalogd_mgr import CatalogdManager
from backends.statestore.flags import flag_set
from backends.statestore.ha import HaConfig
from backends.statestore.statestore import Statestore, StatestoreConfig, build_service

log = Logger()


def makeService(flags: Flags, reactor: Any = None) -> service.MultiService:
    """The statestored service tree for ``flags``; raises FlagError on a bad combination."""
    reactor = daemon.reactor_or_global(reactor)
    tls = daemon.tls_config(flags)
    config = StatestoreConfig(
        heartbeat_interval=daemon.positive_ms(flags, "statestore_heartbeat_frequency_ms"),
        max_missed_heartbeats=daemon.positive(flags, "statestore_max_missed_heartbeats"),
        heartbeat_timeout=daemon.positive(flags, "statestore_heartbeat_tcp_timeout_seconds"),
        update_interval=daemon.positive_ms(flags, "statestore_update_frequency_ms"),
        priority_update_interval=daemon.positive_ms(
            flags, "statestore_priority_update_frequency_ms"
        ),
        update_timeout=daemon.positive(flags, "statestore_update_tcp_timeout_seconds"),
        role_rpc_resend_interval=daemon.positive_ms(
            flags, "update_statestore_rpc_resend_interval_ms"
        ),
        role_rpc_timeout=daemon.positive(flags, "statestore_update_statestore_tcp_timeout_seconds"),
        max_subscribers=daemon.positive(flags, "statestore_max_subscribers"),
        debug_actions=frozenset(
            a.strip().upper() for a in flags.get_str("debug_actions").split(",") if a.strip()
        ),
    )
    hostname = flags.get_str("hostname") or socket.gethostname()
    interface = flags.get_str("listen_host")
    ha_config = None
    peer = None
    if flags.get_bool("enable_statestored_ha"):
        ha_port = daemon.port(flags, "state_store_ha_port")
        ha_config = HaConfig(
            own_address=f"{hostname}:{ha_port}",
            force_active=flags.get_bool("statestore_force_active"),
            priority_by_address=flags.get_bool("use_network_address_as_statestore_priority"),
            monitor_interval=daemon.positive_ms(
                flags, "statestore_ha_heartbeat_monitoring_frequency_ms"
            ),
            max_missed_heartbeats=config.max_missed_heartbeats,
            preemption_wait=flags.get_int("statestore_ha_preemption_wait_period_ms") / 1000.0,
            rpc_timeout=daemon.positive_ms(flags, "statestore_ha_client_rpc_timeout_ms"),
            peer_timeout=daemon.positive(flags, "statestore_peer_timeout_seconds"),
        )
        peer = client_endpoint(
            reactor,
            flags.get_str("state_store_peer_host"),
            daemon.port(flags, "state_store_peer_ha_port"),
            tls,
            timeout=ha_config.rpc_timeout,
        )
    store = Statestore(
        reactor,
        config,
        lambda host, port: client_endpoint(reactor, host, port, tls, config.heartbeat_timeout),
        ha=ha_config,
        peer_endpoint=peer,
    )
    catalogd_mgr = CatalogdManager(
        reactor,
        store,
        enable_ha=flags.get_bool("enable_catalogd_ha"),
        preemption_wait=flags.get_int("catalogd_ha_preemption_wait_period_ms") / 1000.0,
        priority_by_subscriber_id=flags.get_bool("use_subscriber_id_as_catalogd_priority"),
        interval=daemon.positive_ms(flags, "active_catalogd_designation_monitoring_interval_ms"),
    )
    extra: list[Any] = [catalogd_mgr.service()]
    web_port = daemon.port(flags, "webserver_port", allow_zero=True)
    if web_port:
        site: Factory[Any] = web.make_site({**pages.routes(store), **catalogd_mgr.routes()})
        endpoint = server_endpoint(
            reactor, flags.get_str("webserver_interface"), web_port, TlsConfig()
        )
        extra.append(internet.StreamServerEndpointService(endpoint, site))
    ha_endpoint = None
    if ha_config is not None:
        ha_endpoint = server_endpoint(
            reactor, interface, daemon.port(flags, "state_store_ha_port"), tls
        )
    return build_service(
        store,
        server_endpoint(reactor, interface, daemon.port(flags, "state_store_port"), tls),
        ha_endpoint,
        extra,
    )


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
    application = service.Application("statestored")
    top.setServiceParent(service.IServiceCollection(application))
    for child in top:
        if isinstance(child, internet.StreamServerEndpointService):
            # A port that cannot be bound is a start-up error, not a silent log line.
            child._raiseSynchronously = True
    return daemon.run(reactor, top, "statestored")


if __name__ == "__main__":
    sys.exit(main())
