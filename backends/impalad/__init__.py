"""impalad: the Impala daemon clients talk to (HiveServer2 over Thrift, SQL on DuckDB).

- ``_wire``: Thrift message scanning, SASL negotiation and frames, on bytes alone;
- ``sasl``: server-side SASL mechanisms (PLAIN; GSSAPI plugs in the same way);
- ``transport``: Twisted protocols for the binary HS2 port and hs2-http;
- ``server``: the session and operation registry and every HS2 RPC's rules;
- ``state``: its records (sessions, operations, handles and statuses);
- ``handler``: the Thrift ``Iface`` of one connection, each RPC onto ``server``;
- ``profile``: what a runtime profile and an exec summary say;
- ``metadata``: the metadata RPCs (GetTables, GetColumns, ...) as Impala answers them;
- ``beeswax``: the Beeswax service on the same server;
- ``results``: engine columns to HS2 columnar results;
- ``shutdown``: graceful shutdown (``:shutdown()``, SIGRTMIN);
- ``webui``: the debug web server's pages (``/healthz``, ``/metrics``, ...);
- ``main``: flags, ``makeService`` and the ``impalad`` console script;
- ``sql``: the SQL engine (Impala SQL on DuckDB);
- ``gen``: code generated from ``thrift/`` by ``scripts/gen_thrift.sh`` (committed).
"""
