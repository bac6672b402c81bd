"""Impala's recommended balancer layout: a cluster description -> a :class:`Config`.

The description is a small TOML file (documented in ``docs/cluster-toml.md``):
the coordinators, the statestored and catalogd pairs, which client classes get a
frontend, TLS and Kerberos mode, the stats socket and page. :func:`layout` turns
it into the model that :func:`haconfig.render.render` writes and the balancer
runs. Every choice carries a note (rendered as a comment) saying why; the
reasons come from the specs (haproxy.md sections 5 and 6.8, landscape 3).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from haconfig.model import (
    Balance,
    Bind,
    CheckRule,
    Config,
    Global,
    LogTarget,
    Mode,
    Notes,
    Option,
    Proxy,
    SectionKind,
    Server,
    ServerParams,
    StatsLevel,
    StatsPage,
    StatsSocket,
    Timeouts,
)
from haconfig.pair import LbPair, PairBalancer, PairError, check_pair
from haconfig.units import UnitError, format_time, parse_time

__all__ = [
    "CLIENT_CLASSES",
    "TLS_MODES",
    "ClusterDescription",
    "Coordinator",
    "DescriptionError",
    "Frontend",
    "HaDaemon",
    "Logging",
    "Security",
    "Stats",
    "StatsPageSpec",
    "check_description",
    "description_from_mapping",
    "layout",
    "load_description",
]


class DescriptionError(ValueError):
    """A cluster description we cannot lay out; the message names the file and the key."""


# Client classes that may get a frontend, with their default port and idle timeout.
CLIENT_CLASSES: Mapping[str, tuple[int, str]] = {
    "shell": (21050, "1h"),
    "hue": (21051, "12h"),
    "hs2_http": (28000, "1h"),
    "beeswax": (21000, "1h"),
    "statestore_ui": (25010, "1h"),
    "catalog_ui": (25020, "1h"),
}
TLS_MODES = ("none", "passthrough", "offload", "bridge")


@dataclass(frozen=True)
class Coordinator:
    """One impalad with ``--is_coordinator``: where clients and health checks go."""

    host: str
    hs2_port: int = 21050
    hs2_http_port: int = 28000
    web_port: int = 25000
    metrics_port: int | None = None
    weight: int = 1
    fe_service_threads: int | None = None
    name: str | None = None
    beeswax_port: int = 21000


@dataclass(frozen=True)
class HaDaemon:
    """One statestored or catalogd of an HA pair: only its web UI is balanced."""

    host: str
    web_port: int
    name: str | None = None


@dataclass(frozen=True)
class Frontend:
    """A client class that gets a frontend: where it listens and how long it may idle."""

    port: int
    bind: str | None = None
    timeout: int | None = None  # ms; None = the class default


@dataclass(frozen=True)
class Security:
    """TLS and Kerberos mode. The balancer stays at layer 4 unless TLS is offloaded."""

    kerberos: bool = False
    lb_fqdn: str | None = None
    tls: str = "none"
    crt: str | None = None
    ca_file: str | None = None
    webserver_tls: bool = False


@dataclass(frozen=True)
class StatsPageSpec:
    port: int
    bind: str = "127.0.0.1"
    uri: str = "/stats"
    refresh: int = 10_000


@dataclass(frozen=True)
class Stats:
    socket: str | None = "/run/impala-lb/admin.sock"
    socket_mode: int = 0o660
    page: StatsPageSpec | None = None


@dataclass(frozen=True)
class Logging:
    address: str
    facility: str = "local0"


@dataclass(frozen=True)
class ImpalaAgent:
    """``[impala_agent]``: ask ``impala-lb agent`` (``proxy.impala``) at this address for
    each coordinator's state (agent-check: drain while it quiesces, down until ready)."""

    port: int = 25999
    address: str = "127.0.0.1"
    interval: int = 1_000  # ms, agent-inter
    #: "queries": the agent also answers a weight from each coordinator's registered
    #: queries (``impala-lb agent --weight-by queries``); servers are then weighted 100
    weights: str = "none"
    #: ``slowstart`` (ms) of the ``leastconn`` servers: a coordinator that comes back (or
    #: joins) has no connection, and leastconn would send it every new client at once
    #: while its caches are cold; 0 = off
    slowstart: int = 10_000


@dataclass(frozen=True)
class ClusterDescription:
    """Everything :func:`layout` needs, validated."""

    coordinators: tuple[Coordinator, ...]
    statestored: tuple[HaDaemon, ...] = ()
    catalogd: tuple[HaDaemon, ...] = ()
    frontends: Mapping[str, Frontend] = field(default_factory=dict)
    bind: str = "*"
    fe_service_threads: int = 64
    connect_timeout: int = 5_000
    queue_timeout: int = 60_000
    check_interval: int = 5_000
    security: Security = Security()
    stats: Stats = Stats()
    logging: Logging | None = None
    name: str = "impala"
    agent: ImpalaAgent | None = None
    #: ``[lb_pair]``: two balancers behind one virtual IP (haconfig.pair)
    lb_pair: LbPair | None = None


# --- reading the TOML --------------------------------------------------------------------


def load_description(path: str | Path, *, complete: bool = True) -> ClusterDescription:
    """Read and validate a cluster description file.

    ``complete=False`` allows a description without coordinators, for a caller that
    fills them in (discovery) and then calls :func:`check_description`."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise DescriptionError(f"{p}: cannot read: {e.strerror}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DescriptionError(f"{p}: not valid TOML: {e}") from e
    return description_from_mapping(data, source=str(p), complete=complete)


class _Reader:
    """Typed access to one TOML table, refusing unknown keys (typos) with file and key."""

    def __init__(self, data: Mapping[str, Any], where: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise DescriptionError(f"{source}: '{where}' must be a table")
        self.data = data
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def _fail(self, key: str, what: str) -> DescriptionError:
        name = f"{self.where}.{key}" if self.where else key
        return DescriptionError(f"{self.source}: '{name}' {what}")

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def string(self, key: str, default: str | None = None) -> str | None:
        v = self.get(key)
        if v is None:
            return default
        if not isinstance(v, str) or not v:
            raise self._fail(key, "must be a non-empty string")
        return v

    def required_string(self, key: str) -> str:
        v = self.string(key)
        if v is None:
            raise self._fail(key, "is required")
        return v

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        v = self.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise self._fail(key, f"must be an integer from {low} to {high}")
        return v

    def port(self, key: str, default: int | None = None) -> int | None:
        return self.integer(key, default, 1, 65535)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self._fail(key, "must be true or false")
        return v

    def time(self, key: str, default: int) -> int:
        v = self.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self._fail(key, 'must be an HAProxy time string such as "5s" or "12h"')
        try:
            ms = parse_time(v, key)
        except UnitError as e:
            raise self._fail(key, f"is not a time: {e}") from e
        if ms == 0:
            raise self._fail(key, "must not be 0 (HAProxy reads 0 as 'no timeout')")
        return ms

    def table(self, key: str) -> _Reader | None:
        v = self.get(key)
        if v is None:
            return None
        name = f"{self.where}.{key}" if self.where else key
        return _Reader(v, name, self.source)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self._fail(unknown[0], "is not a known key")


def _coordinator(r: _Reader) -> Coordinator:
    c = Coordinator(
        host=r.required_string("host"),
        hs2_port=r.port("hs2_port", 21050) or 21050,
        hs2_http_port=r.port("hs2_http_port", 28000) or 28000,
        beeswax_port=r.port("beeswax_port", 21000) or 21000,
        web_port=r.port("web_port", 25000) or 25000,
        metrics_port=r.port("metrics_port"),
        weight=r.integer("weight", 1, 0, 256) or 0,
        fe_service_threads=r.integer("fe_service_threads", None, 1, 1_000_000),
        name=r.string("name"),
    )
    r.done()
    return c


def _ha_pair(r: _Reader, default_port: int) -> tuple[HaDaemon, ...]:
    raw = r.get("servers")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
        raise DescriptionError(f"{r.source}: '{r.where}.servers' must list one or two daemons")
    out = []
    for i, item in enumerate(raw):
        s = _Reader(item, f"{r.where}.servers[{i}]", r.source)
        out.append(
            HaDaemon(
                s.required_string("host"), s.port("web_port", default_port) or 0, s.string("name")
            )
        )
        s.done()
    r.done()
    return tuple(out)


def description_from_mapping(
    data: Mapping[str, Any], source: str = "<description>", *, complete: bool = True
) -> ClusterDescription:
    """Validate a parsed TOML document into a :class:`ClusterDescription`."""
    top = _Reader(data, "", source)
    cluster = top.table("cluster") or _Reader({}, "cluster", source)
    raw_coords = top.get("coordinator")
    if raw_coords is None:
        raw_coords = []
    if not isinstance(raw_coords, list):
        raise DescriptionError(
            f"{source}: 'coordinator' must be an array of tables [[coordinator]]"
        )
    coords = tuple(
        _coordinator(_Reader(c, f"coordinator[{i}]", source)) for i, c in enumerate(raw_coords)
    )
    ss = top.table("statestored")
    cat = top.table("catalogd")
    fronts: dict[str, Frontend] = {}
    ft = top.table("frontends")
    if ft is not None:
        for cls in list(ft.data):
            if cls not in CLIENT_CLASSES:
                known = ", ".join(CLIENT_CLASSES)
                raise DescriptionError(
                    f"{source}: 'frontends.{cls}' is not a client class (one of: {known})"
                )
            f = ft.table(cls)
            assert f is not None
            port, idle = CLIENT_CLASSES[cls]
            fronts[cls] = Frontend(
                port=f.port("port", port) or port,
                bind=f.string("bind"),
                timeout=f.time("timeout", parse_time(idle, "timeout")),
            )
            f.done()
        ft.done()
    else:
        for cls in ("shell", "hue", "hs2_http"):
            port, idle = CLIENT_CLASSES[cls]
            fronts[cls] = Frontend(port=port, timeout=parse_time(idle, "timeout"))
    sec_r = top.table("security")
    security = Security()
    if sec_r is not None:
        tls = sec_r.string("tls", "none") or "none"
        if tls not in TLS_MODES:
            raise DescriptionError(
                f"{source}: 'security.tls' must be one of {', '.join(TLS_MODES)}, not {tls!r}"
            )
        security = Security(
            kerberos=sec_r.boolean("kerberos", False),
            lb_fqdn=sec_r.string("lb_fqdn"),
            tls=tls,
            crt=sec_r.string("crt"),
            ca_file=sec_r.string("ca_file"),
            webserver_tls=sec_r.boolean("webserver_tls", False),
        )
        sec_r.done()
        if tls in ("offload", "bridge") and security.crt is None:
            raise DescriptionError(
                f"{source}: 'security.crt' is required with tls = {tls!r} "
                "(a PEM holding the balancer's certificate and key)"
            )
        if tls == "bridge" and security.ca_file is None:
            raise DescriptionError(
                f"{source}: 'security.ca_file' is required with tls = 'bridge' "
                "(the CA that signed the impalad certificates)"
            )
    stats = Stats()
    st = top.table("stats")
    if st is not None:
        page_r = st.table("page")
        page = None
        if page_r is not None:
            page = StatsPageSpec(
                port=page_r.port("port", 8404) or 8404,
                bind=page_r.string("bind", "127.0.0.1") or "127.0.0.1",
                uri=page_r.string("uri", "/stats") or "/stats",
                refresh=page_r.time("refresh", 10_000),
            )
            page_r.done()
        mode_text = st.string("socket_mode", "660") or "660"
        try:
            mode = int(mode_text, 8)
        except ValueError as e:
            raise DescriptionError(
                f"{source}: 'stats.socket_mode' must be octal, like \"660\""
            ) from e
        socket: str | None = None
        if st.get("socket") is not False:
            socket = st.string("socket", Stats().socket)
        stats = Stats(socket=socket, socket_mode=mode, page=page)
        st.done()
    log_r = top.table("logging")
    logging = None
    if log_r is not None:
        logging = Logging(
            log_r.required_string("address"), log_r.string("facility", "local0") or "local0"
        )
        log_r.done()
    agent_r = top.table("impala_agent")
    agent = None
    if agent_r is not None:
        agent = ImpalaAgent(
            port=agent_r.port("port", 25999) or 25999,
            address=agent_r.string("address", "127.0.0.1") or "127.0.0.1",
            interval=agent_r.time("interval", 1_000),
            weights=agent_r.string("weights", "none") or "none",
            slowstart=0
            if agent_r.get("slowstart") in ("0", "0s")
            else agent_r.time("slowstart", 10_000),
        )
        agent_r.done()
        if agent.weights not in ("none", "queries"):
            raise DescriptionError(
                f"{source}: 'impala_agent.weights' must be 'none' or 'queries', "
                f"not {agent.weights!r}"
            )
    pair_r = top.table("lb_pair")
    lb_pair = _lb_pair(pair_r) if pair_r is not None else None
    desc = ClusterDescription(
        lb_pair=lb_pair,
        agent=agent,
        coordinators=coords,
        statestored=_ha_pair(ss, 25010) if ss is not None else (),
        catalogd=_ha_pair(cat, 25020) if cat is not None else (),
        frontends=fronts,
        bind=cluster.string("bind", "*") or "*",
        fe_service_threads=cluster.integer("fe_service_threads", 64, 1, 1_000_000) or 64,
        connect_timeout=cluster.time("connect_timeout", 5_000),
        queue_timeout=cluster.time("queue_timeout", 60_000),
        check_interval=cluster.time("check_interval", 5_000),
        security=security,
        stats=stats,
        logging=logging,
        name=cluster.string("name", "impala") or "impala",
    )
    cluster.done()
    top.done()
    if complete:
        check_description(desc, source)
    return desc


def _lb_pair(r: _Reader) -> LbPair:
    raw = r.get("balancer")
    if not isinstance(raw, list) or len(raw) != 2:
        raise DescriptionError(f"{r.source}: 'lb_pair.balancer' must list exactly two balancers")
    balancers = []
    for i, item in enumerate(raw):
        b = _Reader(item, f"lb_pair.balancer[{i}]", r.source)
        balancers.append(
            PairBalancer(
                name=b.required_string("name"),
                address=b.required_string("address"),
                priority=b.integer("priority", 100 - 10 * i, 1, 254) or 1,
            )
        )
        b.done()
    pair = LbPair(
        vip=r.required_string("vip"),
        interface=r.required_string("interface"),
        balancers=(balancers[0], balancers[1]),
        virtual_router_id=r.integer("virtual_router_id", 51, 1, 255) or 51,
        advert_int=r.integer("advert_int", 1, 1, 255) or 1,
        stats_socket=r.string("stats_socket", "/run/impala-lb/admin.sock") or "",
        alive_command=r.string("alive_command", LbPair.alive_command) or "",
    )
    r.done()
    return pair


def check_description(desc: ClusterDescription, source: str = "<description>") -> None:
    """Refuse a description whose parts do not fit together (frontends without servers,
    two frontends on one port, two coordinators with one name)."""
    hs2 = {"shell", "hue", "hs2_http", "beeswax"} & set(desc.frontends)
    if hs2 and not desc.coordinators:
        raise DescriptionError(
            f"{source}: frontends {', '.join(sorted(hs2))} need at least one [[coordinator]]"
        )
    if "statestore_ui" in desc.frontends and not desc.statestored:
        raise DescriptionError(f"{source}: frontends.statestore_ui needs [statestored] servers")
    if "catalog_ui" in desc.frontends and not desc.catalogd:
        raise DescriptionError(f"{source}: frontends.catalog_ui needs [catalogd] servers")
    names = [c.name for c in desc.coordinators if c.name]
    if len(names) != len(set(names)):
        raise DescriptionError(f"{source}: two coordinators share a name")
    if desc.lb_pair is not None:
        hosts = [c.host for c in desc.coordinators]
        hosts += [d.host for d in (*desc.statestored, *desc.catalogd)]
        try:
            check_pair(desc.lb_pair, hosts, source)
        except PairError as e:
            raise DescriptionError(str(e)) from None
    seen: dict[tuple[str, int], str] = {}
    for cls, f in desc.frontends.items():
        key = (f.bind or desc.bind, f.port)
        if key in seen:
            raise DescriptionError(
                f"{source}: frontends {seen[key]} and {cls} both listen on port {f.port}"
            )
        seen[key] = cls


# --- the layout ----------------------------------------------------------------------------

# Section names per client class (HAProxy proxy names: letters, digits, '_', '-', '.', ':').
_SECTION = {
    "shell": "impala_shell",
    "hue": "impala_hue",
    "hs2_http": "impala_hs2_http",
    "beeswax": "impala_beeswax",
    "statestore_ui": "statestore_ui",
    "catalog_ui": "catalog_ui",
}
_ACTIVE_METRIC = {
    "statestore_ui": "statestore.active-status",
    "catalog_ui": "catalog-server.active-status",
}


def layout(desc: ClusterDescription) -> Config:
    """Impala's recommended layout for ``desc`` as a model, with a note on every choice."""
    sections = [_defaults(desc)]
    for cls in CLIENT_CLASSES:
        if cls in desc.frontends:
            sections.append(_client_listen(desc, cls, desc.frontends[cls]))
    if desc.stats.page is not None:
        sections.append(_stats_listen(desc.stats.page))
    return Config(global_=_global(desc), sections=tuple(sections), header=_header(desc))


def _header(desc: ClusterDescription) -> tuple[str, ...]:
    sec = desc.security
    lines = [
        f"haproxy.cfg for the Impala cluster '{desc.name}', rendered by `impala-lb render`.",
        "It runs unchanged in HAProxy 2.6 and in impala-lb. Layer 4 (mode tcp) throughout:",
        "Thrift, SASL and TLS pass through untouched, and no PROXY protocol header is sent",
        "(impalad does not read one; it would corrupt the Thrift stream).",
    ]
    if sec.kerberos:
        fqdn = sec.lb_fqdn or "<balancer fqdn>"
        lines += [
            f"Kerberos passes through: clients ask for impala/{fqdn}@REALM. Start each",
            f"coordinator with --principal=impala/{fqdn}@REALM",
            "--be_principal=impala/<own fqdn>@REALM and a keytab holding both keys;",
            "the balancer itself needs no keytab.",
        ]
    if sec.tls == "passthrough":
        lines.append("TLS passes through: every coordinator's certificate must name the balancer.")
    elif sec.tls == "offload":
        lines.append(
            "TLS ends at the balancer; coordinators are reached in clear (trusted network)."
        )
    elif sec.tls == "bridge":
        lines.append("TLS ends at the balancer, which opens new TLS to coordinators it verifies.")
    return tuple(lines)


def _global(desc: ClusterDescription) -> Global:
    notes: list[tuple[str, str]] = []
    sockets: tuple[StatsSocket, ...] = ()
    if desc.stats.socket:
        sockets = (
            StatsSocket(desc.stats.socket, mode=desc.stats.socket_mode, level=StatsLevel.ADMIN),
        )
        notes.append(
            (
                "stats socket",
                "level admin: drain, disable, re-weight coordinators at runtime (operator may not)",
            )
        )
    logs: tuple[LogTarget, ...] = ()
    if desc.logging is not None:
        logs = (LogTarget(desc.logging.address, facility=desc.logging.facility),)
        notes.append(("log", "one tcplog line per connection: which client went to which server"))
    return Global(logs=logs, stats_sockets=sockets, notes=Notes(tuple(notes)))


def _defaults(desc: ClusterDescription) -> Proxy:
    options = [
        Option("tcpka"),
        Option("redispatch"),
        Option("dontlognull"),
    ]
    notes = [
        ("", "What every Impala proxy below shares."),
        ("mode", "Thrift, SASL/Kerberos and TLS are opaque bytes: balance at layer 4"),
        (
            "option tcpka",
            "keepalive on both legs: idle Impala sessions survive firewalls and NAT",
        ),
        (
            "option redispatch",
            "a connection refused by one coordinator is retried on another, at once",
        ),
        ("option dontlognull", "do not log connections that carried no data (probes, scanners)"),
        ("retries", "three more attempts before the client is closed"),
        ("timeout connect", "a coordinator that does not accept within this is tried again"),
        (
            "timeout client",
            "IMPALA-6959: short idle timeouts kill Impala sessions; at least 1h",
        ),
        ("timeout server", "the same on the coordinator side"),
        ("timeout client-fin", "a half-closed connection is released soon, not after hours"),
        (
            "timeout queue",
            "wait for a free coordinator slot, under impalad's 300s accepted_client_cnxn_timeout",
        ),
        ("timeout check", "a health check that gets no answer in time has failed"),
        (
            "default-server",
            "check less often than HAProxy's 2s (fewer probe lines), 1s while state changes",
        ),
    ]
    logs: tuple[LogTarget, ...] = ()
    if desc.logging is not None:
        logs = (LogTarget("global"),)
        options.append(Option("tcplog"))
        notes += [
            ("log", "log to the global targets"),
            ("option tcplog", "client, frontend, server, timers and termination flags"),
        ]
    return Proxy(
        SectionKind.DEFAULTS,
        "",
        mode=Mode.TCP,
        logs=logs,
        options=tuple(options),
        retries=3,
        timeouts=Timeouts(
            connect=desc.connect_timeout,
            client=3_600_000,
            server=3_600_000,
            client_fin=30_000,
            queue=desc.queue_timeout,
            check=5_000,
        ),
        default_server=ServerParams(
            inter=desc.check_interval,
            fastinter=1_000,
            downinter=desc.check_interval,
            rise=2,
            fall=3,
        ),
        notes=Notes(tuple(notes)),
    )


def _bind(desc: ClusterDescription, front: Frontend) -> Bind:
    host = front.bind or desc.bind
    if desc.security.tls in ("offload", "bridge"):
        assert desc.security.crt is not None
        return Bind(host, front.port, ssl=True, crt=(desc.security.crt,))
    return Bind(host, front.port)


def _check_tls(desc: ClusterDescription) -> ServerParams:
    """Health checks over HTTPS when the daemons' web servers use TLS."""
    if not desc.security.webserver_tls:
        return ServerParams()
    if desc.security.ca_file:
        return ServerParams(check_ssl=True, verify="required", ca_file=desc.security.ca_file)
    return ServerParams(check_ssl=True, verify="none")


def _client_listen(desc: ClusterDescription, cls: str, front: Frontend) -> Proxy:
    if cls in _ACTIVE_METRIC:
        return _ui_listen(desc, cls, front)
    idle = front.timeout or 3_600_000
    sec = desc.security
    notes: list[tuple[str, str]] = []
    options = [Option("httpchk", args=("GET", "/healthz"))]
    hash_type: tuple[str, ...] | None = None
    timeouts = Timeouts(tunnel=idle)
    if cls == "shell":
        balance = Balance("leastconn")
        notes += [
            ("", "impala-shell (hs2, its default since Impala 4.0), JDBC and ODBC clients"),
            (
                "balance",
                "many short independent sessions: each to the least busy coordinator",
            ),
        ]
        port_of = "hs2_port"
    elif cls == "hue":
        balance = Balance("source")
        hash_type = ("consistent",)
        timeouts = Timeouts(client=idle, server=idle, tunnel=idle)
        notes += [
            ("", "Hue: a pool of 10 Thrift connections shares each Impala session"),
            (
                "balance",
                "source affinity: Hue's pooled connections reach the coordinator of its session",
            ),
            (
                "timeout client",
                "Hue's pooled connections idle for hours: at least 6h, 12h ideal (Cloudera)",
            ),
            ("timeout server", "the same on the coordinator side"),
        ]
        port_of = "hs2_port"
    elif cls == "beeswax":
        balance = Balance("leastconn")
        notes += [
            ("", "Beeswax clients (impala-shell --protocol=beeswax, older shells)"),
            (
                "balance",
                "one session per connection: leastconn, as Impala's documented sample on 21000",
            ),
        ]
        port_of = "beeswax_port"
    else:
        balance = Balance("source")
        hash_type = ("consistent",)
        notes += [
            ("", "HiveServer2 over HTTP (impyla, impala-shell --protocol=hs2-http)"),
            (
                "balance",
                "source affinity: a connection per RPC, but a session lives on one coordinator",
            ),
        ]
        port_of = "hs2_http_port"
    if hash_type is not None:
        notes.append(
            (
                "hash-type",
                "consistent: a lost or added coordinator moves only its own clients",
            )
        )
    notes += [
        ("bind", _bind_note(sec)),
        (
            "option httpchk",
            "ready = /healthz 200 (started, registered); no Thrift connection just to probe",
        ),
        (
            "timeout tunnel",
            "idle limit of an established session: long queries are never cut",
        ),
        ("server", _server_note(desc)),
    ]
    servers = tuple(
        _coordinator_server(desc, i, c, port_of, leastconn=balance.algorithm == "leastconn")
        for i, c in enumerate(desc.coordinators)
    )
    return Proxy(
        SectionKind.LISTEN,
        _SECTION[cls],
        binds=(_bind(desc, front),),
        balance=balance,
        hash_type=hash_type,
        options=tuple(options),
        timeouts=timeouts,
        servers=servers,
        notes=Notes(tuple(notes)),
    )


def _bind_note(sec: Security) -> str:
    if sec.tls == "passthrough":
        return "TLS passes through: coordinators' certificates must name this balancer"
    if sec.tls == "offload":
        return "TLS ends here (the balancer's certificate); coordinators get clear TCP"
    if sec.tls == "bridge":
        return "TLS ends here; new TLS, verified against ca-file, goes to the coordinator"
    return "the clients' protocol (SASL, Kerberos) passes through untouched"


def _server_note(desc: ClusterDescription) -> str:
    sec = desc.security
    where = "the web port"
    if all(c.metrics_port for c in desc.coordinators):
        where = "the metrics port (no SPNEGO there)" if sec.kerberos else "the metrics port"
    elif any(c.metrics_port for c in desc.coordinators):
        where = "the metrics port if set, else the web port"
    how = " over HTTPS" if sec.webserver_tls else ""
    text = f"/healthz{how} on {where}; maxconn = fe_service_threads, excess clients queue here"
    if desc.agent is not None:
        text += "; the Impala agent drains a quiescing coordinator (/healthz stays 200)"
    return text


def _coordinator_server(
    desc: ClusterDescription, i: int, c: Coordinator, port_of: str, *, leastconn: bool
) -> Server:
    sec = desc.security
    # Agent weights only where weights may move: leastconn. A consistent hash (Hue,
    # hs2-http) would remap its clients, and their sessions, on every change.
    weighted = leastconn and desc.agent is not None and desc.agent.weights == "queries"
    params = ServerParams(
        check=True,
        port=c.metrics_port or c.web_port,
        # agent weights are percents of this: 100 gives them room (a weight of 1 cannot
        # be lowered without becoming 0)
        weight=c.weight * 100 if weighted else c.weight,
        maxconn=c.fe_service_threads or desc.fe_service_threads,
    )
    tls = _check_tls(desc)
    if sec.tls == "bridge":
        assert sec.ca_file is not None
        tls = replace(tls, ssl=True, verify="required", ca_file=sec.ca_file)
    params = tls.over(params)
    name = c.name or f"coord{i + 1}"
    if desc.agent is not None:
        params = ServerParams(
            agent_check=True,
            agent_addr=desc.agent.address,
            agent_port=desc.agent.port,
            agent_send=name + (" weight\n" if weighted else "\n"),
            agent_inter=desc.agent.interval,
            slowstart=(desc.agent.slowstart or None) if leastconn else None,
        ).over(params)
    return Server(name, c.host, getattr(c, port_of), params=params)


def _ui_listen(desc: ClusterDescription, cls: str, front: Frontend) -> Proxy:
    pair = desc.statestored if cls == "statestore_ui" else desc.catalogd
    daemon = "statestored" if cls == "statestore_ui" else "catalogd"
    metric = _ACTIVE_METRIC[cls]
    pattern = '"' + metric.replace(".", "\\.") + '": *true'
    tls = _check_tls(desc)
    servers = tuple(
        Server(
            d.name or f"{daemon}{i + 1}",
            d.host,
            d.web_port,
            params=tls.over(ServerParams(check=True)),
        )
        for i, d in enumerate(pair)
    )
    notes = (
        ("", f"The {daemon} web UI of the HA pair: whichever is active answers"),
        ("bind", "the web UI's bytes pass through (HTTP or HTTPS alike)"),
        ("balance", "first: every request goes to the first server that is UP"),
        (
            "option httpchk",
            f"/healthz is 200 on the standby too, so the check reads {metric} instead",
        ),
        ("http-check", "only the active one is UP, so 'first' always lands on it"),
        (
            "server",
            "the pair, checked on the web port they serve" + (" (HTTPS)" if tls.check_ssl else ""),
        ),
    )
    return Proxy(
        SectionKind.LISTEN,
        _SECTION[cls],
        binds=(Bind(front.bind or desc.bind, front.port),),
        balance=Balance("first"),
        options=(Option("httpchk", args=("GET", "/jsonmetrics?json")),),
        http_check_rules=(CheckRule("expect", ("rstring", pattern)),),
        servers=servers,
        notes=Notes(notes),
    )


def _stats_listen(page: StatsPageSpec) -> Proxy:
    return Proxy(
        SectionKind.LISTEN,
        "stats",
        mode=Mode.HTTP,
        binds=(Bind(page.bind, page.port),),
        stats=StatsPage(enabled=True, uri=page.uri, refresh=page.refresh),
        notes=Notes(
            (
                ("", "The statistics page (read-only; the stats socket is for changes)"),
                ("mode", "the page is served over HTTP"),
                ("bind", "loopback unless the description says otherwise"),
                (
                    "stats enable",
                    f"at {page.uri}, refreshed every {format_time(page.refresh)}",
                ),
            )
        ),
    )
