"""The flags statestored implements (Impala's names); it accepts every other Impala flag
too (:mod:`backends.common.flags`). Kept apart from ``main`` so that reading them is
cheap (:mod:`backends.flagsets`)."""

from __future__ import annotations

from backends.common import logfiles
from backends.common.flags import FlagSet

SEED_001 = "the product documentation (seed 001) gives 24020 for the peer's HA port"


def flag_set() -> FlagSet:
    fs = FlagSet.impala("statestored")
    d = fs.define
    d("hostname", "", "this host's name, advertised to the peer (default: the machine's name)")
    d("listen_host", "", "address the ports listen on (default: all)")
    d("state_store_port", 24000, "port for subscriber registrations")
    d("webserver_port", 25010, "debug web server port (0: off)", differs="statestored-main.cc")
    d("webserver_interface", "", "address the web server listens on (default: all)")
    d("statestore_heartbeat_frequency_ms", 1000, "heartbeat period per subscriber")
    d("statestore_max_missed_heartbeats", 10, "consecutive missed heartbeats until failure")
    d("statestore_heartbeat_tcp_timeout_seconds", 3, "heartbeat RPC timeout")
    d("statestore_update_frequency_ms", 2000, "period of non-priority topic updates")
    d("statestore_priority_update_frequency_ms", 100, "period of membership/queue topic updates")
    d("statestore_update_tcp_timeout_seconds", 300, "topic update RPC timeout")
    d("statestore_max_subscribers", 10000, "most subscribers accepted")
    d("enable_statestored_ha", False, "run as one of a primary/standby pair")
    d("state_store_ha_port", 24020, "port of this statestored's HA service")
    d("state_store_peer_host", "localhost", "host of the peer statestored")
    d("state_store_peer_ha_port", 24020, "HA port of the peer statestored", differs=SEED_001)
    d("statestore_peer_timeout_seconds", 30, "seconds without the active's HA heartbeat: lost")
    d("statestore_force_active", False, "take the active role in the handshake")
    d("use_network_address_as_statestore_priority", False, "lower HA address wins, not id")
    d("statestore_ha_preemption_wait_period_ms", 10000, "start-up wait for the peer")
    d("statestore_ha_heartbeat_monitoring_frequency_ms", 1000, "HA heartbeat / monitor period")
    d(
        "statestore_ha_client_rpc_timeout_ms",
        3000,
        "HA RPC timeout",
        differs="a peer that does not answer an HA heartbeat in 3 s is lost long before 300 s",
    )
    d("update_statestore_rpc_resend_interval_ms", 100, "resend period of role notifications")
    d("statestore_update_statestore_tcp_timeout_seconds", 3, "role notification RPC timeout")
    d("ssl_server_certificate", "", "PEM certificate: serve the RPC ports over TLS")
    d("ssl_private_key", "", "PEM private key of --ssl_server_certificate")
    d("ssl_client_ca_certificate", "", "PEM CA: connect to subscribers/peer over TLS")
    d("debug_actions", "", "test hooks; DISABLE_STATESTORE_NETWORK enables the fault RPC")
    d("enable_catalogd_ha", False, "elect one active catalogd of a pair")
    d("catalogd_ha_preemption_wait_period_ms", 10000, "wait for the 2nd catalogd before electing")
    d("use_subscriber_id_as_catalogd_priority", False, "lower subscriber id wins, not random")
    d("active_catalogd_designation_monitoring_interval_ms", 100, "catalogd election period")
    logfiles.define_flags(fs)
    return fs
