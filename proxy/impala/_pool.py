"""Keeping a balancer's backends equal to Impala's coordinators, through the runtime API.

The controller never touches a balancer's insides: it sends HAProxy 2.6's runtime
commands (``show servers state``, ``add server``, ``enable ...``, ``set server ...
state maint``, ``del server``, ``set server ... addr``) to a function that delivers
them, to impala-lb's own command table in-process or to a real HAProxy's stats socket
(:func:`unix_socket_api`). After each read of the membership:

- a coordinator that is in the membership, not blacklisted and ready by its own pages,
  and that has no server in a backend, is added there with the backend's template
  (the words of its first Impala server line: checks, agent, weight, maxconn...), its
  health check and agent enabled, then the server enabled;
- a server that the controller may remove (not a line of the config file) whose
  coordinator has left the membership or is blacklisted is put in maintenance (no new
  client; its sessions are never cut) and deleted once it holds no connection;
- a server whose coordinator now has another address is moved (``set server addr``);
- servers from the config file are never deleted: the agent's answers keep them out
  of the pool while their coordinator is absent;
- when the membership cannot be read, nothing changes (the watch says so once).

Every change is one log line; servers that nothing changed keep their state and
counters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, protocol
from twisted.logger import Logger

from haconfig.model import Config, Proxy, Server, ServerParams
from haconfig.units import format_time
from proxy.impala._members import Member
from proxy.impala._state import State
from proxy.impala._watch import Coordinator, Watch

log = Logger()

#: sends one runtime API command, fires with the reply text
RuntimeApi = Callable[[str], "defer.Deferred[str]"]

#: ServerParams fields a template never copies: the server's own identity and state
_NOT_COPIED = frozenset({"id", "disabled", "agent_send", "other", "init_addr", "track"})
_TIMES = frozenset({"inter", "fastinter", "downinter", "slowstart", "agent_inter"})


@dataclass(frozen=True)
class PoolSpec:
    """One backend the controller keeps equal to the coordinators."""

    backend: str
    #: the client port every coordinator serves this backend on
    port: int
    #: runtime API words after ``<addr>:<port>``; ``{name}`` stands for the server name
    template: tuple[str, ...]
    #: names of the servers the config file has: never deleted
    static: frozenset[str] = frozenset()

    def words(self, name: str) -> list[str]:
        return [w.replace("{name}", name) for w in self.template]


def _escape(word: str) -> str:
    """A word for the runtime API line (a backslash escapes a blank or ``;``)."""
    return "".join("\\" + ch if ch in " \t;\\" else ch for ch in word)


def template_words(params: ServerParams) -> tuple[str, ...]:
    """``add server`` words repeating ``params`` (a resolved server line: the runtime API
    applies no ``default-server``), with ``agent-send`` naming the new server."""
    out: list[str] = []
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.name in _NOT_COPIED or value is None:
            continue
        keyword = f.name.replace("_", "-")
        if isinstance(value, bool):
            if value:
                out.append(keyword)
        elif f.name in _TIMES:
            out += [keyword, format_time(value)]
        else:
            out += [keyword, _escape(str(value))]
    if params.agent_check:
        weighted = (params.agent_send or "").rstrip("\n").endswith(" weight")
        out += ["agent-send", "{name}" + ("\\ weight" if weighted else "")]
    return tuple(out)


def _agent_servers(proxy: Proxy, agent_port: int) -> list[tuple[Server, ServerParams]]:
    """The servers of ``proxy`` that ask this agent, with their resolved parameters."""
    found = []
    for s in proxy.servers:
        params = proxy.server_params(s)
        if params.agent_check and params.agent_port == agent_port:
            found.append((s, params))
    return found


def specs_from_config(config: Config, agent_port: int) -> list[PoolSpec]:
    """A spec for every backend whose servers ask this agent (``agent-check agent-port
    <agent_port>``) and that can take servers at run time (a dynamic algorithm: not
    ``static-rr``, nor a map-based hash); each copies its first such server line."""
    specs: list[PoolSpec] = []
    for proxy in config.backends:
        servers = _agent_servers(proxy, agent_port)
        if not servers or servers[0][0].port is None or servers[0][0].port_offset:
            continue
        static_algorithm = proxy.algorithm == "static-rr" or (
            proxy.algorithm not in ("roundrobin", "leastconn", "first")
            and not (proxy.hash_type and proxy.hash_type[0] == "consistent")
        )
        if static_algorithm:
            log.info(
                "backend {backend}: balance {algo} cannot take servers at run time; its "
                "servers stay those of the file",
                backend=proxy.name,
                algo=proxy.algorithm,
            )
            continue
        first, params = servers[0]
        assert first.port is not None
        specs.append(
            PoolSpec(
                backend=proxy.name,
                port=first.port,
                template=template_words(params),
                static=frozenset(s.name for s in proxy.servers),
            )
        )
    return specs


def coordinators_from_config(config: Config, agent_port: int) -> list[Coordinator]:
    """The coordinators a config's agent-checked servers name: NAME (what ``agent-send``
    sends) and ``http://<host>:<check port>`` (the layout checks ``/healthz`` on the
    web port)."""
    found: dict[str, Coordinator] = {}
    for proxy in config.backends:
        for s, params in _agent_servers(proxy, agent_port):
            name = (params.agent_send or "").split(" ")[0].rstrip("\n") or s.name
            if name in found or not params.port:
                continue
            host = config.addresses.get(s.host) or s.host
            found[name] = Coordinator(name, f"http://{_url_host(host)}:{params.port}")
    return list(found.values())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class _Row:
    name: str
    addr: str
    port: int
    admin: int


def parse_servers_state(text: str) -> list[_Row]:
    """The rows of ``show servers state <backend>`` (HAProxy's format, version 1)."""
    rows = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 19 or line.startswith("#"):
            continue
        try:
            rows.append(_Row(fields[3], fields[4], int(fields[18]), int(fields[6])))
        except ValueError:
            continue
    return rows


class PoolSync:
    """Applies the membership to the backends of ``specs`` after each membership read."""

    def __init__(
        self,
        watch: Watch,
        api: RuntimeApi,
        specs: Sequence[PoolSpec],
        *,
        resolve: Callable[[str], defer.Deferred[str]] | None = None,
    ) -> None:
        self.watch = watch
        self.api = api
        self.specs = list(specs)
        self._resolve = resolve
        #: (backend, server) the controller put in maintenance (it may take them out)
        self.parked: set[tuple[str, str]] = set()
        self._busy = False
        self._again = False
        self._failing = False
        self._held: set[tuple[str, str]] = set()
        watch.on_members.append(self.members_changed)

    def members_changed(self, members: dict[str, Member]) -> defer.Deferred[None] | None:
        if self._busy:
            self._again = True
            return None
        self._busy = True
        d = defer.Deferred.fromCoroutine(self.sync(members))
        d.addErrback(self._failed)
        d.addBoth(self._idle)
        return d

    def _failed(self, failure: Any) -> None:
        if not self._failing:
            log.warn(
                "the balancer's runtime API failed ({why}); the pool is left as it is",
                why=str(failure.value) or type(failure.value).__name__,
            )
        self._failing = True

    def _idle(self, _: object) -> None:
        self._busy = False
        if self._again and self.watch.members is not None:
            self._again = False
            self.members_changed(self.watch.members)

    async def sync(self, members: dict[str, Member]) -> None:
        wanted = {n: m for n, m in members.items() if m.takes_clients}
        addresses = {n: await self._address(m) for n, m in wanted.items()}
        for spec in self.specs:
            rows = parse_servers_state(await self.api(f"show servers state {spec.backend}"))
            await self._sync_backend(spec, rows, wanted, addresses)
        if self._failing:
            log.info("the balancer's runtime API answers again")
            self._failing = False

    async def _address(self, m: Member) -> str:
        if m.ip:
            return m.ip
        if self._resolve is None:
            return ""
        try:
            return await self._resolve(m.host)
        except Exception:
            return ""

    async def _sync_backend(
        self,
        spec: PoolSpec,
        rows: list[_Row],
        wanted: dict[str, Member],
        addresses: dict[str, str],
    ) -> None:
        be = spec.backend
        by_name = {r.name: r for r in rows}
        by_addr = {(r.addr, r.port): r for r in rows}
        matched: set[str] = set()
        for name, member in sorted(wanted.items()):
            ip = addresses.get(name, "")
            row = by_name.get(name) or (by_addr.get((ip, spec.port)) if ip else None)
            if row is None:
                await self._add(spec, name, member, ip)
                continue
            matched.add(row.name)
            if row.name not in spec.static and ip and row.addr != ip:
                reply = await self.api(f"set server {be}/{row.name} addr {ip} port {spec.port}")
                log.info(
                    "pool {be}: {name} moved: {reply}", be=be, name=row.name, reply=reply.strip()
                )
            elif (be, row.name) in self.parked and row.admin & 1:
                await self.api(f"set server {be}/{row.name} state ready")
                self.parked.discard((be, row.name))
                log.info("pool {be}: {name} is back in the cluster", be=be, name=row.name)
        for row in rows:
            if row.name not in spec.static and row.name not in matched:
                await self._remove(spec, row)

    async def _add(self, spec: PoolSpec, name: str, member: Member, ip: str) -> None:
        be = spec.backend
        state = self.watch.state(name)
        if state is None or state.state is not State.READY or member.quiescing:
            return  # readiness: no client before Impala says it serves
        if not ip:
            log.warn("pool {be}: coordinator {name} has no address; not added", be=be, name=name)
            return
        words = " ".join(spec.words(name))
        reply = await self.api(f"add server {be}/{name} {ip}:{spec.port} {words}".rstrip())
        if not reply.startswith("New server registered"):
            log.warn(
                "pool {be}: adding {name} refused: {reply}", be=be, name=name, reply=reply.strip()
            )
            return
        if "check" in spec.template:
            await self.api(f"enable health {be}/{name}")
        if "agent-check" in spec.template:
            await self.api(f"enable agent {be}/{name}")
        await self.api(f"enable server {be}/{name}")
        log.info("pool {be}: added {name} ({ip}:{port})", be=be, name=name, ip=ip, port=spec.port)

    async def _remove(self, spec: PoolSpec, row: _Row) -> None:
        be = spec.backend
        key = (be, row.name)
        if not row.admin & 1:
            await self.api(f"set server {be}/{row.name} state maint")
            self.parked.add(key)
            log.info("pool {be}: {name} left the cluster; no new client", be=be, name=row.name)
        reply = await self.api(f"del server {be}/{row.name}")
        if reply.startswith("Server deleted"):
            self.parked.discard(key)
            self._held.discard(key)
            log.info("pool {be}: deleted {name}", be=be, name=row.name)
        elif key not in self._held:
            self._held.add(key)
            log.info(
                "pool {be}: {name} kept until its sessions end ({reply})",
                be=be,
                name=row.name,
                reply=reply.strip(),
            )


class _OneCommand(protocol.Protocol):
    def __init__(self, command: str, done: defer.Deferred[str]) -> None:
        self.command = command
        self.done = done
        self.chunks: list[bytes] = []

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self.command.encode() + b"\n")

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(b"".join(self.chunks).decode("utf-8", "replace"))


class _OneCommandFactory(protocol.ClientFactory):
    noisy = False

    def __init__(self, command: str, done: defer.Deferred[str]) -> None:
        self.command = command
        self.done = done

    def buildProtocol(self, addr: Any) -> _OneCommand:
        return _OneCommand(self.command, self.done)

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        if not self.done.called:
            self.done.errback(reason)


def unix_socket_api(reactor: Any, path: str, timeout: float = 5.0) -> RuntimeApi:
    """A :data:`RuntimeApi` over a stats socket (HAProxy's or impala-lb's): one
    connection per command, the reply read until the balancer closes."""

    def send(command: str) -> defer.Deferred[str]:
        done: defer.Deferred[str] = defer.Deferred()
        reactor.connectUNIX(path, _OneCommandFactory(command, done), timeout=timeout)
        return done.addTimeout(timeout, reactor)

    return send
