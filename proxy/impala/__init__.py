"""The Impala controller: what a coordinator says of itself, turned into answers that
HAProxy's own interfaces understand.

It knows Impala and nothing of the balancer's insides (``shared/ARCHITECTURE.md``):

- :mod:`proxy.impala._state` reads a coordinator's ``/?json`` and ``/jsonmetrics``
  (the shapes of real Impala, spec impala-awareness.md section 1) into a
  :class:`CoordinatorState`: ready, quiescing (with its shutdown status) or not ready;
- :mod:`proxy.impala._members` reads the membership (``/backends?json``);
- :mod:`proxy.impala._watch` polls every coordinator's web port and the membership,
  keeps the last state it could read, logging one line per change, and watches the
  coordinators that join;
- :mod:`proxy.impala._agent` answers HAProxy's **agent-check** protocol with it:
  ``ready up`` for a coordinator that takes clients, ``drain`` for one that
  quiesces (no new client, sessions already on it never cut), ``ready down`` for one
  that is not ready yet; and nothing at all (no change) when it knows nothing.

- :mod:`proxy.impala._pool` keeps backends equal to the coordinators through the
  runtime API (``add server`` / ``del server``), never cutting a session;
- :mod:`proxy.impala._controller` puts the three together, in impala-lb
  (``--impala-agent``) or beside HAProxy (``impala-lb agent``).

So ``server ... agent-check agent-addr A agent-port P agent-send "<name>\\n"`` works in
impala-lb and in real HAProxy alike; ``impala-lb agent`` runs it as its own process
(see ``docs/impala-agent.md``).
"""

from proxy.impala._agent import AgentFactory
from proxy.impala._controller import Controller
from proxy.impala._members import Member, read_members
from proxy.impala._pool import PoolSpec, PoolSync, unix_socket_api
from proxy.impala._state import CoordinatorState, State, read_state
from proxy.impala._watch import Coordinator, Watch

__all__ = [
    "AgentFactory",
    "Controller",
    "Coordinator",
    "CoordinatorState",
    "Member",
    "PoolSpec",
    "PoolSync",
    "State",
    "Watch",
    "read_members",
    "read_state",
    "unix_socket_api",
]
