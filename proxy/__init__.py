"""The balancer: an HAProxy-compatible TCP load balancer on Twisted.

A connection's way, one module each: :mod:`proxy.frontend` (listening sockets,
accept), :mod:`proxy.routing` (``use_backend`` rules), :mod:`proxy.pool` (a
backend's servers and queues, picking through :mod:`proxy.balance`),
:mod:`proxy.connect` (the dial, retries, redispatch, the session), :mod:`proxy.pump`
(the bytes, on its own epoll; :mod:`proxy.reactor` makes the process wait on it) and
:mod:`proxy.tcplog` (the log line).

What runs: :mod:`proxy.server` (one owner of each server's state),
:mod:`proxy.build` (makes the running objects from the config model),
:mod:`proxy.runtime` (holds them, accepts, drains, applies a reload) and
:mod:`proxy.reload` (computes a reload's plan; SIGHUP's work). Around them:
:mod:`proxy.checks` (health and agent checks), :mod:`proxy.stats` (runtime API,
stats pages), :mod:`proxy.impala` (the Impala controller), :mod:`proxy.tls`,
:mod:`proxy.sdnotify`, :mod:`proxy.cli` (the ``impala-lb`` command) and
:mod:`proxy.appliance` (the local cluster, systemd installation).
"""
