"""The flags catalogd implements (Impala's names); it accepts every other Impala flag
too (:mod:`backends.common.flags`). Kept apart from ``main`` so that reading them is
cheap (:mod:`backends.flagsets`)."""

from __future__ import annotations

from backends.common import logfiles
from backends.common.flags import FlagSet


def flag_set() -> FlagSet:
    fs = FlagSet.impala("catalogd")
    d = fs.define
    d("hostname", "", "this host's name, advertised to the statestore (default: listen_host)")
    d(
        "listen_host",
        "0.0.0.0",
        "address the ports bind to; 127.0.0.x for local clusters",
    )
    d("catalog_service_port", 26000, "CatalogService port (ExecDdl, GetCatalogDelta)")
    d("webserver_port", 25020, "debug web server port (0: off)", differs="catalogd-main.cc")
    d("warehouse_dir", "./warehouse", "the shared warehouse directory")
    d(
        "catalog_db_path",
        "",
        "the shared metastore file; default <warehouse>/.catalogd/...",
    )
    d("load_catalog_in_background", False, "serve at once and load table metadata after")
    d("enable_catalogd_ha", False, "run as one of an active/standby pair")
    d("force_catalogd_active", False, "take the active role when registering")
    d("state_store_host", "localhost", "statestored host")
    d("state_store_port", 24000, "statestored port")
    d("enable_statestored_ha", False, "use a statestored HA pair")
    d("state_store_2_host", "localhost", "second statestored host (HA)")
    d("state_store_2_port", 24001, "second statestored port (HA)")
    d(
        "state_store_subscriber_port",
        23020,
        "port the statestore calls back on (0: any)",
        differs="catalogd-main.cc",
    )
    d("statestore_heartbeat_frequency_ms", 1000, "expected statestore heartbeat period")
    d("statestore_max_missed_heartbeats", 10, "missed heartbeats until a statestore is lost")
    d("ssl_server_certificate", "", "PEM certificate: serve the RPC ports over TLS")
    d("ssl_private_key", "", "PEM private key of --ssl_server_certificate")
    d("ssl_client_ca_certificate", "", "PEM CA: connect to the statestore over TLS")
    logfiles.define_flags(fs)
    return fs
