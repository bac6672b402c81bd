"""Health checks: HAProxy's state machine (spec 2), check kinds and the agent.

Public surface:

- :func:`start_checks` builds a backend's :class:`CheckService` from its
  resolved proxy model and pool;
- :class:`ServerChecker` is one server's checker (health counter, last result,
  stats status string);
- :class:`Health`, :class:`CheckStatus`, :class:`CheckResult` are the pure parts;
- the dialogues (:class:`TcpCheckDialogue`, :class:`HttpCheckDialogue`,
  :func:`parse_agent_line`) work on bytes alone.

Checked side by side with HAProxy 2.6.12 (tests/proxy/test_checks_vs_haproxy.py,
test_checks_logs_vs_haproxy.py): the same status sequence, result codes, texts and
syslog lines. Deliberate differences:

- ``tcp-check``: only a first ``connect`` rule is supported (later ones are refused
  when the config is loaded); ``comment`` rules count as steps in the step number.
- ``L7TOUT`` of a tcp-check comes exactly at ``timeout check``.
- ``set server b/s health stopping`` counts as ``up`` (no NOLB state).
- a server without address ("the client's destination") is checked on loopback.
- the real HAProxy logs ``backend <be> has no server available!`` (measured), which
  is what we log; the spec's ``proxy <be>`` wording is not what 2.6.12 prints.
"""

from __future__ import annotations

from proxy.checks._checker import (
    AgentSettings,
    CheckSettings,
    EventLog,
    PoolView,
    ServerChecker,
    SessionKiller,
)
from proxy.checks._dialogue import (
    AgentReply,
    CheckConfigError,
    ConnectOnly,
    HttpCheckDialogue,
    HttpCheckPlan,
    TcpCheckDialogue,
    TcpCheckPlan,
    parse_agent_line,
)
from proxy.checks._health import Health, Transition
from proxy.checks._probe import ProbeTimeouts, probe
from proxy.checks._service import CheckService, settings_for, start_checks, tls_options
from proxy.checks._status import CheckResult, CheckStatus, Verdict

__all__ = [
    "AgentReply",
    "AgentSettings",
    "CheckConfigError",
    "CheckResult",
    "CheckService",
    "CheckSettings",
    "CheckStatus",
    "ConnectOnly",
    "EventLog",
    "Health",
    "HttpCheckDialogue",
    "HttpCheckPlan",
    "PoolView",
    "ProbeTimeouts",
    "ServerChecker",
    "SessionKiller",
    "TcpCheckDialogue",
    "TcpCheckPlan",
    "Transition",
    "Verdict",
    "parse_agent_line",
    "probe",
    "settings_for",
    "start_checks",
    "tls_options",
]
