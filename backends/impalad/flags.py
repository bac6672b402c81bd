"""The flags impalad implements (Impala's names); it accepts every other Impala flag
too (:mod:`backends.common.flags`). Kept apart from ``main`` so that reading them is
cheap (:mod:`backends.flagsets`)."""

from __future__ import annotations

from backends.common import logfiles
from backends.common.flags import FlagSet


def flag_set() -> FlagSet:
    fs = FlagSet.impala("impalad")
    d = fs.define
    d("hs2_port", 21050, "HiveServer2 binary port (NOSASL, SASL PLAIN/GSSAPI)")
    d("hs2_http_port", 28000, "HiveServer2 over HTTP port; 0 disables it")
    d("webserver_port", 25000, "debug web server port; 0 disables it")
    d("beeswax_port", 21000, "Beeswax port (impala-shell --protocol=beeswax); 0 or less: off")
    d("krpc_port", 27000, "internal RPC port (reported in /backends)")
    d(
        "listen_host",
        "0.0.0.0",
        "address every port binds to; 127.0.0.x for local clusters",
    )
    d("hostname", "", "host name this daemon reports; default: listen_host or the FQDN")
    d(
        "warehouse_dir",
        "./warehouse",
        "directory holding the tables' Parquet files",
    )
    d("catalog_path", "", "metastore database file; default: inside warehouse_dir")
    d("fe_service_threads", 64, "threads that run queries (DuckDB)")
    d("shutdown_grace_period_s", 120, "minimum seconds between shutdown start and exit")
    d("shutdown_deadline_s", 3600, "seconds after which shutdown cancels and exits")
    d("default_query_options", "", "comma-separated key=value query options")
    d("idle_session_timeout", 0, "seconds a session may be idle before it expires; 0: never")
    d("idle_query_timeout", 0, "seconds a query may be idle before it is cancelled; 0: never")
    d(
        "ldap_passwords_file",
        "",
        "user:password lines; when set, PLAIN/Basic check them",
    )
    # Cluster membership (backends/impalad/membership.py): an empty --state_store_host
    # makes a standalone impalad; Impala's default, localhost, registers there.
    d("state_store_host", "localhost", "statestored host; empty: standalone impalad")
    d("state_store_port", 24000, "statestored port")
    d("state_store_2_host", "localhost", "second statestored host (HA)")
    d("state_store_2_port", 24001, "second statestored port (HA)")
    d("enable_statestored_ha", False, "use a statestored HA pair")
    d("state_store_subscriber_port", 23000, "port the statestore calls back on; 0: any")
    d("statestore_heartbeat_frequency_ms", 1000, "expected statestore heartbeat period")
    d("statestore_max_missed_heartbeats", 10, "missed heartbeats until a statestore is lost")
    d(
        "statestore_subscriber_recovery_grace_period_ms",
        30000,
        "after a statestore failover, membership shrinkage is held back this long",
    )
    d(
        "catalog_service_host",
        "",
        "catalogd host; empty: a metastore file of our own",
        differs="the embedded metastore needs no catalogd: empty runs without one",
    )
    d("catalog_service_port", 26000, "catalogd port")
    d("enable_catalogd_ha", False, "use a catalogd HA pair")
    # The remote catalog (catalog_client.py)
    d("catalog_client_connection_num_retries", 10, "retries of a catalog RPC")
    d(
        "catalog_client_rpc_retry_interval_ms",
        500,
        "pause between catalog RPC retries",
        differs="a DDL retried across a catalogd failover waits 0.5 s, not 3 s, per retry",
    )
    d(
        "catalog_client_rpc_timeout_ms",
        30000,
        "catalog RPC timeout",
        differs="the embedded catalog answers in seconds: a hung catalogd is seen after "
        "30 s, not 10 hours",
    )
    d(
        "catalog_sync_reads",
        True,
        "ask catalogd for newer metadata before each read",
    )
    d("sync_ddl_timeout_s", 60, "longest SYNC_DDL wait")
    # Kerberos (gssapi_auth.py) and TLS (tls.py), as Impala spells them.
    d("principal", "", "Kerberos principal for client connections (_HOST expanded)")
    d("be_principal", "", "Kerberos principal for internal connections; default: principal")
    d("keytab_file", "", "Kerberos keytab; default: $KRB5_KTNAME")
    d("ssl_server_certificate", "", "PEM certificate (chain): TLS on hs2 and hs2-http")
    d("ssl_private_key", "", "PEM private key of --ssl_server_certificate")
    d("ssl_client_ca_certificate", "", "PEM CA trusted when impalad connects over TLS")
    d("ssl_minimum_version", "tlsv1.2", "lowest TLS version accepted")
    d("max_cookie_lifetime_s", 86400, "hs2-http's impala.auth cookie lifetime; 0: no cookies")
    d("cookie_require_secure", True, "the impala.auth cookie carries the Secure attribute")
    d("webserver_certificate_file", "", "PEM certificate: the web server speaks HTTPS")
    d("webserver_private_key_file", "", "PEM private key of the web server")
    d("is_coordinator", True, "accept client queries")
    d("is_executor", True, "run query fragments")
    logfiles.define_flags(fs)
    return fs
