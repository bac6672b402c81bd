"""The Impala controller as one piece: the watch, the agent on its port, the pool sync.

Two ways to run it, the same parts:

- beside real HAProxy (``impala-lb agent --config haproxy.cfg --stats-socket S``): the
  runtime API is HAProxy's stats socket (:func:`~proxy.impala._pool.unix_socket_api`);
- inside impala-lb (``impala-lb -f haproxy.cfg --impala-agent HOST:PORT``): the runtime
  API is impala-lb's own command table, called directly.

Either way the config file says which servers are Impala coordinators: those whose
``agent-check`` asks this agent's port. Their names are what ``agent-send`` sends,
their web ports the ``check port`` of the layout's ``/healthz`` check; each backend
with such servers (and a dynamic algorithm) follows the membership.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.logger import Logger

from haconfig.model import Config
from proxy.impala._agent import AgentFactory
from proxy.impala._pool import (
    PoolSpec,
    PoolSync,
    RuntimeApi,
    coordinators_from_config,
    specs_from_config,
)
from proxy.impala._watch import Coordinator, Watch

log = Logger()


class Controller:
    """Watches the coordinators, answers agent-checks on ``listen``, keeps the pools."""

    def __init__(
        self,
        reactor: Any,
        listen: tuple[str, int],
        *,
        config: Config | None = None,
        coordinators: Iterable[Coordinator] = (),
        api: RuntimeApi | None = None,
        interval: float = 1.0,
    ) -> None:
        self.reactor = reactor
        self.listen = listen
        self.extra = list(coordinators)
        specs = specs_from_config(config, listen[1]) if config is not None else []
        found = coordinators_from_config(config, listen[1]) if config is not None else []
        self.watch = Watch(reactor, [*self.extra, *found], interval=interval)
        self.agent = AgentFactory(self.watch.state, reactor, lambda: self.watch.coordinators)
        self.sync: PoolSync | None = None
        if api is not None:
            self.sync = PoolSync(self.watch, api, specs, resolve=reactor.resolve)
        self._port: Any = None

    def start(self) -> None:
        """Listen (raises ``CannotListenError``), then poll."""
        host, port = self.listen
        self._port = self.reactor.listenTCP(port, self.agent, interface=host)
        self.watch.start()
        pools = ", ".join(s.backend for s in self.sync.specs) if self.sync else ""
        log.info(
            "Impala controller: agent on {host}:{port}, coordinators {names}; pools that "
            "follow the membership: {pools}",
            host=host,
            port=port,
            names=", ".join(self.watch.coordinators) or "none yet",
            pools=pools or "none",
        )

    def stop(self) -> None:
        self.watch.stop()
        if self._port is not None:
            self._port.stopListening()
            self._port = None

    def reconfigure(self, config: Config) -> None:
        """A reload: the coordinators and pools of the new file (discovered ones stay)."""
        port = self.listen[1]
        configured = {c.name: c for c in [*self.extra, *coordinators_from_config(config, port)]}
        self.watch.configure(configured.values())
        if self.sync is not None:
            self.sync.specs = specs_from_config(config, port)

    @property
    def specs(self) -> list[PoolSpec]:
        return self.sync.specs if self.sync is not None else []
