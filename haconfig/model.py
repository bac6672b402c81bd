"""The HAProxy configuration language (TCP-mode subset) as a typed, frozen model.

One model, two directions: :mod:`haconfig.parse` builds it from text and
:mod:`haconfig.render` turns it back into text; the balancer (``proxy``) runs it.

The model keeps a file *as written*: sections in file order (``defaults``
included), and in each section only the directives that section sets. A field
that is ``None`` was not set there. What a proxy really runs with, its own
settings over the ``defaults`` section it inherits from, is computed by
:meth:`Config.resolve`; the runtime only ever looks at resolved proxies.
Keeping both views is what lets parse -> render -> parse give an equal model
while the runtime still sees HAProxy's inheritance.

Every time is an integer number of milliseconds (HAProxy's unit; ``0`` means
"no timeout"). Source locations are kept for error messages but take no part
in equality, so a rendered and re-parsed config compares equal.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """Where a directive was read: HAProxy cites ``[file:line]``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NOWHERE = Location("<model>", 0)


class Mode(enum.Enum):
    TCP = "tcp"
    HTTP = "http"


class SectionKind(enum.Enum):
    DEFAULTS = "defaults"
    FRONTEND = "frontend"
    BACKEND = "backend"
    LISTEN = "listen"

    @property
    def has_frontend(self) -> bool:
        return self in (SectionKind.FRONTEND, SectionKind.LISTEN, SectionKind.DEFAULTS)

    @property
    def has_backend(self) -> bool:
        return self in (SectionKind.BACKEND, SectionKind.LISTEN, SectionKind.DEFAULTS)


@dataclass(frozen=True)
class Notes:
    """One-line comments saying *why* a line is in a section, keyed by the line they explain.

    A layout (:mod:`haconfig.layouts`) fills them and the renderer writes each one
    above its line; the parser does not read comments back, so notes take no part
    in equality. Keys are the words a line starts with: ``""`` for the section
    header, then e.g. ``"mode"``, ``"balance"``, ``"option tcpka"``,
    ``"timeout tunnel"``, ``"bind"``, ``"server"`` (every server line),
    ``"server <name>"``, ``"stats socket"``, ``"default-server"``, ``"http-check"``."""

    items: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        for k, text in self.items:
            if k == key:
                return text
        return None

    def __bool__(self) -> bool:
        return bool(self.items)


@dataclass(frozen=True)
class Directive:
    """A directive kept verbatim: accepted (and warned about) but not modelled further.

    It survives a render so that nothing an operator wrote is lost.
    """

    keyword: str
    args: tuple[str, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class LogTarget:
    """A ``log`` line. ``address`` is ``global``, ``stdout``, ``stderr``, a unix path or
    ``ip[:port]`` (UDP syslog, default port 514)."""

    address: str
    facility: str | None = None
    level: str | None = None
    min_level: str | None = None
    length: int | None = None
    format: str | None = None
    location: Location = field(default=NOWHERE, compare=False, repr=False)

    @property
    def is_global(self) -> bool:
        return self.address == "global"


class StatsLevel(enum.Enum):
    USER = "user"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True)
class StatsSocket:
    """``stats socket <path> [mode <octal>] [level user|operator|admin] ...``.

    HAProxy's default level is ``operator`` (spec 1.2)."""

    path: str
    mode: int | None = None
    level: StatsLevel | None = None
    expose_fd_listeners: bool = False
    user: str | None = None
    group: str | None = None
    location: Location = field(default=NOWHERE, compare=False, repr=False)

    @property
    def effective_level(self) -> StatsLevel:
        return self.level or StatsLevel.OPERATOR


@dataclass(frozen=True)
class Global:
    """The ``global`` section."""

    maxconn: int | None = None
    logs: tuple[LogTarget, ...] = ()
    stats_sockets: tuple[StatsSocket, ...] = ()
    stats_timeout: int | None = None
    pidfile: str | None = None
    user: str | None = None
    group: str | None = None
    uid: int | None = None
    gid: int | None = None
    chroot: str | None = None
    daemon: bool = False
    master_worker: bool = False
    nbthread: int | None = None
    hard_stop_after: int | None = None
    #: ``tune.bufsize``: the most a session holds per direction (HAProxy: 16384)
    tune_bufsize: int | None = None
    other: tuple[Directive, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)
    # Why each line is there, for the renderer (see :class:`Notes`); never compared.
    notes: Notes = field(default=Notes(), compare=False, repr=False)


@dataclass(frozen=True)
class Bind:
    """``bind [<ip>]:<port>[-<end>] [params]``.

    ``host`` is as written without brackets: ``""`` or ``"*"`` (all IPv4), ``"::"``
    (all IPv6), or an address. ``ssl``/``crt`` are TLS termination (issue 8)."""

    host: str
    port: int
    port_end: int | None = None
    name: str | None = None
    maxconn: int | None = None
    backlog: int | None = None
    v4v6: bool = False
    v6only: bool = False
    accept_proxy: bool = False
    ssl: bool = False
    crt: tuple[str, ...] = ()
    ca_file: str | None = None
    verify: str | None = None
    alpn: str | None = None
    ssl_min_ver: str | None = None
    other: tuple[Directive, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)

    @property
    def listen_host(self) -> str:
        """The address to listen on: ``0.0.0.0`` for ``*``/empty, ``::`` for IPv6 any."""
        return "0.0.0.0" if self.host in ("", "*") else self.host

    @property
    def ports(self) -> range:
        return range(self.port, (self.port_end or self.port) + 1)


@dataclass(frozen=True)
class ServerParams:
    """Parameters of a ``server`` or ``default-server`` line; ``None`` means not given.

    ``no-<kw>`` forms on a server line set the boolean to ``False`` explicitly so
    that they undo a ``default-server`` setting."""

    check: bool | None = None
    inter: int | None = None
    fastinter: int | None = None
    downinter: int | None = None
    rise: int | None = None
    fall: int | None = None
    port: int | None = None  # check port
    addr: str | None = None  # check address
    weight: int | None = None
    maxconn: int | None = None
    maxqueue: int | None = None
    minconn: int | None = None
    backup: bool | None = None
    disabled: bool | None = None
    id: int | None = None
    slowstart: int | None = None
    on_marked_down: str | None = None
    on_marked_up: str | None = None
    check_ssl: bool | None = None
    ssl: bool | None = None
    verify: str | None = None
    ca_file: str | None = None
    crt: str | None = None
    sni: str | None = None
    verifyhost: str | None = None
    agent_check: bool | None = None
    agent_port: int | None = None
    agent_inter: int | None = None
    agent_addr: str | None = None
    agent_send: str | None = None
    send_proxy: bool | None = None
    send_proxy_v2: bool | None = None
    init_addr: str | None = None
    track: str | None = None
    observe: str | None = None
    error_limit: int | None = None
    on_error: str | None = None
    other: tuple[Directive, ...] = ()

    def over(self, base: ServerParams) -> ServerParams:
        """These parameters laid over ``base`` (a ``default-server`` line)."""
        return _overlay(self, base)


@dataclass(frozen=True)
class Server:
    """``server <name> <addr>[:<port>] [params]``.

    ``host == ""`` means "the destination address the client connected to";
    ``port is None`` means "the port the client connected to"; with
    ``port_offset`` the port is added to the client's destination port
    (``+N``/``-N``)."""

    name: str
    host: str
    port: int | None
    port_offset: bool = False
    params: ServerParams = ServerParams()
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Acl:
    """``acl <name> <criterion> [flags] <patterns...>``."""

    name: str
    criterion: str
    flags: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class AclTerm:
    """One term of a condition: a named acl or an anonymous ``{ criterion patterns }``."""

    negated: bool
    name: str | None = None
    anonymous: Acl | None = None


@dataclass(frozen=True)
class Condition:
    """``if|unless`` followed by terms: OR (``||``/``or``) of ANDs (juxtaposition)."""

    unless: bool
    alternatives: tuple[tuple[AclTerm, ...], ...]


@dataclass(frozen=True)
class UseBackend:
    """``use_backend <backend> [if|unless <condition>]``."""

    backend: str
    condition: Condition | None = None
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Option:
    """``[no] option <name> [args]``; the last setting of a name wins."""

    name: str
    enabled: bool = True
    args: tuple[str, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class CheckRule:
    """A ``tcp-check`` or ``http-check`` rule: its action and arguments, verbatim.

    Actions: ``connect``, ``send``, ``send-binary``, ``expect``, ``comment`` (and
    ``http-check send|expect``). The checker interprets the arguments."""

    action: str
    args: tuple[str, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Balance:
    """``balance <algorithm> [args]``; ``hash-type`` is kept separately in the proxy."""

    algorithm: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeouts:
    """Every ``timeout`` of spec 1.10, in milliseconds; ``None`` = not set here."""

    connect: int | None = None
    client: int | None = None
    server: int | None = None
    tunnel: int | None = None
    client_fin: int | None = None
    server_fin: int | None = None
    queue: int | None = None
    check: int | None = None
    http_request: int | None = None
    http_keep_alive: int | None = None
    tarpit: int | None = None

    def over(self, base: Timeouts) -> Timeouts:
        return _overlay(self, base)

    @staticmethod
    def keyword(field_name: str) -> str:
        """``client_fin`` -> ``client-fin``: the word after ``timeout``."""
        return field_name.replace("_", "-")


@dataclass(frozen=True)
class StatsPage:
    """HTTP statistics in a ``mode http`` proxy: ``stats enable|uri|refresh|auth|realm``."""

    enabled: bool | None = None
    uri: str | None = None
    refresh: int | None = None
    auth: tuple[str, ...] = ()  # "user:password"
    realm: str | None = None
    admin: tuple[Directive, ...] = ()
    show_legends: bool | None = None

    def over(self, base: StatsPage) -> StatsPage:
        return _overlay(self, base)


@dataclass(frozen=True)
class Proxy:
    """A ``defaults``, ``frontend``, ``backend`` or ``listen`` section.

    ``from_defaults`` is the ``from <name>`` clause; without it a proxy inherits
    from the last ``defaults`` section above it (see :meth:`Config.resolve`)."""

    kind: SectionKind
    name: str
    from_defaults: str | None = None
    mode: Mode | None = None
    description: str | None = None
    disabled: bool | None = None
    binds: tuple[Bind, ...] = ()
    balance: Balance | None = None
    hash_type: tuple[str, ...] | None = None
    default_server: ServerParams | None = None
    servers: tuple[Server, ...] = ()
    options: tuple[Option, ...] = ()
    retries: int | None = None
    timeouts: Timeouts = Timeouts()
    maxconn: int | None = None
    fullconn: int | None = None
    backlog: int | None = None
    default_backend: str | None = None
    use_backends: tuple[UseBackend, ...] = ()
    acls: tuple[Acl, ...] = ()
    logs: tuple[LogTarget, ...] = ()
    no_log: bool | None = None
    tcp_check_rules: tuple[CheckRule, ...] = ()
    http_check_rules: tuple[CheckRule, ...] = ()
    stats: StatsPage = StatsPage()
    http_requests: tuple[Directive, ...] = ()
    tcp_requests: tuple[Directive, ...] = ()
    other: tuple[Directive, ...] = ()
    location: Location = field(default=NOWHERE, compare=False, repr=False)
    # Why each line is there, for the renderer (see :class:`Notes`); never compared.
    notes: Notes = field(default=Notes(), compare=False, repr=False)

    # --- questions the runtime asks of a resolved proxy -------------------------------

    def option(self, name: str) -> Option | None:
        """The last ``[no] option <name>`` setting, or ``None`` when never set."""
        for opt in reversed(self.options):
            if opt.name == name:
                return opt
        return None

    def has_option(self, name: str) -> bool:
        opt = self.option(name)
        return opt is not None and opt.enabled

    @property
    def effective_mode(self) -> Mode:
        return self.mode or Mode.TCP

    @property
    def serves_stats_page(self) -> bool:
        """A ``mode http`` section with ``stats enable``/``stats uri`` is the statistics page
        (HTML, ``;csv``, Prometheus), served by the stats service rather than proxied."""
        return self.effective_mode is Mode.HTTP and bool(self.stats.enabled or self.stats.uri)

    @property
    def algorithm(self) -> str:
        """The balance algorithm; HAProxy's default is ``roundrobin``."""
        return self.balance.algorithm if self.balance else "roundrobin"

    @property
    def effective_retries(self) -> int:
        return 3 if self.retries is None else self.retries

    def server(self, name: str) -> Server | None:
        for s in self.servers:
            if s.name == name:
                return s
        return None

    def server_params(self, server: Server) -> ServerParams:
        """A server's parameters over this proxy's ``default-server``."""
        return server.params.over(self.default_server or ServerParams())


@dataclass(frozen=True)
class Config:
    """A whole configuration: ``global`` and the proxy sections in file order."""

    global_: Global = Global()
    sections: tuple[Proxy, ...] = ()
    ignored_sections: tuple[Directive, ...] = ()
    source: str = field(default="<model>", compare=False)
    # Comment lines the renderer puts at the top of the file; never compared.
    header: tuple[str, ...] = field(default=(), compare=False, repr=False)
    #: server host name -> the IP address the parser's stage 3 resolved it to (``""``: it
    #: did not resolve), so the runtime looks nothing up again (and never on the reactor
    #: thread); never compared
    addresses: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    def __iter__(self) -> Iterator[Proxy]:
        return iter(self.sections)

    def named_defaults(self, name: str) -> Proxy | None:
        found = None
        for p in self.sections:
            if p.kind is SectionKind.DEFAULTS and p.name == name:
                found = p
        return found

    def defaults_for(self, proxy: Proxy) -> Proxy | None:
        """The ``defaults`` section ``proxy`` inherits from, if any."""
        if proxy.from_defaults:
            return self.named_defaults(proxy.from_defaults)
        last = None
        for p in self.sections:
            if p is proxy:
                return last
            if p.kind is SectionKind.DEFAULTS:
                last = p
        return last

    def resolve(self, proxy: Proxy) -> Proxy:
        """``proxy`` with the settings of its ``defaults`` section filled in.

        Scalars and timeouts are inherited field by field, options are the
        defaults' followed by the proxy's own (so the proxy's win), ``log`` lines
        and check rules are inherited only when the proxy has none, and what only
        a proxy can hold (binds, servers, acls, rules) is never inherited."""
        base = self.defaults_for(proxy)
        if base is None or proxy.kind is SectionKind.DEFAULTS:
            return proxy
        base = self.resolve(base) if base.from_defaults else base
        merged = _overlay(proxy, base, keep=_NOT_INHERITED)
        return replace(
            merged,
            options=base.options + proxy.options,
            logs=proxy.logs or base.logs,
            tcp_check_rules=proxy.tcp_check_rules or base.tcp_check_rules,
            http_check_rules=proxy.http_check_rules or base.http_check_rules,
            default_server=_overlay_optional(proxy.default_server, base.default_server),
        )

    def proxies(self, *kinds: SectionKind) -> tuple[Proxy, ...]:
        """The resolved proxies of the given kinds, in file order."""
        return tuple(self.resolve(p) for p in self.sections if p.kind in kinds)

    @property
    def frontends(self) -> tuple[Proxy, ...]:
        """Resolved proxies that accept connections (``frontend`` and ``listen``)."""
        return self.proxies(SectionKind.FRONTEND, SectionKind.LISTEN)

    @property
    def backends(self) -> tuple[Proxy, ...]:
        """Resolved proxies that hold servers (``backend`` and ``listen``)."""
        return self.proxies(SectionKind.BACKEND, SectionKind.LISTEN)

    def backend(self, name: str) -> Proxy | None:
        for p in self.backends:
            if p.name == name:
                return p
        return None


# What a proxy never takes from its defaults section: its identity and the things only
# a proxy can hold.
_NOT_INHERITED = frozenset(
    {
        "kind",
        "name",
        "from_defaults",
        "binds",
        "servers",
        "use_backends",
        "acls",
        "default_backend",
        "location",
        "other",
        "http_requests",
        "tcp_requests",
        "description",
    }
)


def _overlay(top: T, base: T, keep: frozenset[str] = frozenset()) -> T:
    """``top`` with every field it leaves unset (``None``) taken from ``base``.

    Nested frozen dataclasses with an ``over`` method (timeouts, stats) are
    overlaid field by field too."""
    changes: dict[str, object] = {}
    for f in fields(top):  # type: ignore[arg-type]
        if f.name in keep or f.name == "location":
            continue
        mine = getattr(top, f.name)
        theirs = getattr(base, f.name)
        if mine is None:
            changes[f.name] = theirs
        elif dataclasses.is_dataclass(mine) and hasattr(mine, "over"):
            changes[f.name] = mine.over(theirs) if theirs is not None else mine
        elif f.name == "other" and isinstance(mine, tuple) and not mine:
            changes[f.name] = theirs
    return replace(top, **changes)  # type: ignore[type-var]


def _overlay_optional(top: ServerParams | None, base: ServerParams | None) -> ServerParams | None:
    if top is None:
        return base
    if base is None:
        return top
    return top.over(base)
