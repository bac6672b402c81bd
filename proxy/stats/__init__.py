"""Observability: the stats socket (runtime API), ``show stat`` CSV, HTTP stats, metrics.

Public surface:

- :class:`StatsState` (with :meth:`StatsState.from_runtime`): the view every
  reader shares;
- :class:`StatsSocketService`: ``stats socket <path> [mode] [level]``;
- :class:`Cli` / :class:`CliParser`: the command language on bytes;
- :func:`show_stat` / :data:`HEADER`: HAProxy 2.6's CSV;
- :class:`StatsHttpService` / :class:`StatsResource`: the HTML page, its
  ``;csv`` export and the Prometheus exporter for a ``listen stats`` section;
- :class:`ObservabilityService`: checks, sockets and stats pages from a runtime.

Replies are byte-identical to HAProxy 2.6.12's for the commands we implement
(tests/proxy/test_stats_vs_haproxy.py). Deliberate differences:

- ``show info`` says ``Name: impala-lb`` and our version; ``help`` texts are ours.
- ``show stat`` fills what we track; session rates (``rate*``) are 0 and
  ``need_conn_est`` is the current sessions; ``typed``/``json`` are not supported.
- proxies are numbered (``iid``) from 2 in config order.
- ``stats socket`` ``user``/``group``/``expose-fd`` are accepted but not applied;
  ``set server`` ``agent-addr|agent-port|agent-send|check-addr|check-port|fqdn|ssl``,
  ``clear counters``, ``show sess`` and the master CLI are not implemented.
- ``add server`` resolves a host name at once (HAProxy 2.6 keeps it unresolved and the
  server unusable: ``init-addr none``), or refuses it.
"""

from __future__ import annotations

from proxy.stats._cli import Cli, CliParser, Level, split_commands
from proxy.stats._csv import FIELDS, HEADER, show_stat
from proxy.stats._http import StatsHttpService, StatsResource, metrics_path, render_page
from proxy.stats._prometheus import render_metrics
from proxy.stats._socket import StatsFactory, StatsProtocol, StatsSocketService
from proxy.stats._state import (
    BackendInfo,
    FrontendInfo,
    FrontendSample,
    ProxyInfo,
    StatsState,
)
from proxy.stats._wiring import ObservabilityService, command_api, syslog_events

__all__ = [
    "FIELDS",
    "HEADER",
    "BackendInfo",
    "Cli",
    "CliParser",
    "FrontendInfo",
    "FrontendSample",
    "Level",
    "ObservabilityService",
    "ProxyInfo",
    "StatsFactory",
    "StatsHttpService",
    "StatsProtocol",
    "StatsResource",
    "StatsSocketService",
    "StatsState",
    "command_api",
    "metrics_path",
    "render_metrics",
    "render_page",
    "show_stat",
    "split_commands",
    "syslog_events",
]
