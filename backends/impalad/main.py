"""``impalad``: the daemon, built as one tree of services by :func:`makeService`.

Listening: ``--listen_host`` (default ``0.0.0.0``, all interfaces, as Impala
binds; give ``127.0.0.x`` to run several daemons on one machine) with
``--hs2_port`` (21050), ``--hs2_http_port`` (28000, 0 = off) and
``--webserver_port`` (25000, 0 = off). A port of ``-1`` is not allowed; a port
of 0 for hs2 picks a free port (the ready line says which). When everything
listens it prints one line to stdout::

    impalad ready: hs2=127.0.0.1:21050 hs2_http=127.0.0.1:28000 webserver=127.0.0.1:25000

Cluster membership (``membership.py``): with ``--state_store_host`` (Impala's
default, ``localhost``; and ``--state_store_2_host`` with
``--enable_statestored_ha``) impalad registers with the statestore(s) and
publishes its descriptor once it listens; ``--state_store_host=`` (empty) keeps
it standalone. Kerberos (``--principal``, ``--be_principal``, ``--keytab_file``;
``gssapi_auth.py``) makes every client authenticate: SASL GSSAPI on hs2,
SPNEGO on hs2-http. TLS (``--ssl_server_certificate``, ``--ssl_private_key``;
the web server's own ``--webserver_certificate_file``; ``tls.py``).

Signals: SIGRTMIN starts a graceful shutdown (Impala's IMPALA_SHUTDOWN_SIGNAL),
SIGTERM exits at once with status 0 (as Impala does), SIGINT stops cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import defer, endpoints, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from backends import flagsets
from backends.common import daemon, web
from backends.common import flags as flagmod
from backends.common.rpc import TopicRegistration
from backends.impalad import catalog_client, sasl, transport, webui
from backends.impalad.cookies import CookieSigner
from backends.impalad.engine_api import EngineLike, SessionFactory
from backends.impalad.flags import flag_set
from backends.impalad.membership import (
    MEMBERSHIP_TOPICS,
    ImpaladDescriptor,
    Membership,
    new_backend_id,
)
from backends.impalad.server import SERVER_VERSION, ImpalaServer
from backends.impalad.shutdown import ShutdownController
from backends.impalad.state import ServerIdentity

log = Logger()


def _cookies(flags: flagmod.Flags, *, checked: bool) -> CookieSigner | None:
    """hs2-http's cookie signer: when credentials are really checked (Kerberos, or a
    password file) and --max_cookie_lifetime_s is above 0, as Impala."""
    lifetime = flags.get_int("max_cookie_lifetime_s")
    if lifetime <= 0 or not (checked or flags.get_str("ldap_passwords_file")):
        return None
    return CookieSigner(lifetime, secure=flags.get_bool("cookie_require_secure"))


def _password_checker(path: str) -> sasl.PasswordChecker:
    if not path:
        return sasl.accept_any
    table: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, password = line.partition(":")
            table[user.strip()] = password
    return lambda user, password: table.get(user) == password


def _options(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip().upper()] = value.strip()
    return out


class _ThreadPoolService(service.Service):
    """Owns the query thread pool and the engine: started and stopped with the daemon."""

    def __init__(self, pool: ThreadPool, engine: EngineLike) -> None:
        self.pool = pool
        self.engine = engine

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        self.pool.stop()
        try:
            self.engine.close()
        except Exception as e:
            log.warn("closing the engine: {err!r}", err=e)


class _ListenersService(service.Service):
    """Opens the three listening ports, then marks the server ready and says so."""

    def __init__(
        self,
        reactor: Any,
        server: ImpalaServer,
        listen: list[tuple[str, Any, Any]],
        on_ready: Callable[[str], None],
        on_fail: Callable[[str], None],
        on_listening: Callable[[ServerIdentity], None] | None = None,
        web_scheme: str = "http",
    ) -> None:
        self._reactor = reactor
        self._server = server
        self._listen = listen
        self._on_ready = on_ready
        self._on_fail = on_fail
        self._on_listening = on_listening
        self._web_scheme = web_scheme
        self.ports: dict[str, Any] = {}

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        try:
            for name, ep, factory in self._listen:
                self.ports[name] = await ep.listen(factory)
        except Exception as e:
            self._on_fail(f"impalad: cannot listen: {e}")
            return
        addr = {name: port.getHost() for name, port in self.ports.items()}
        ident = self._server.identity
        hs2_http = addr.get("hs2_http")
        webserver = addr.get("webserver")
        self._server.identity = ServerIdentity(
            hostname=ident.hostname,
            hs2_port=addr["hs2"].port,
            hs2_http_port=hs2_http.port if hs2_http else 0,
            webserver_address=f"{self._web_scheme}://{ident.hostname}:{webserver.port}"
            if webserver
            else "",
            krpc_port=ident.krpc_port,
        )
        self._server.ready = True
        self._server.expiry.start()
        if self._on_listening is not None:
            self._on_listening(self._server.identity)
        parts = " ".join(f"{name}={a.host}:{a.port}" for name, a in addr.items())
        self._on_ready(f"impalad ready: {parts}")

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()  # type: ignore[no-untyped-call]
        self._server.expiry.stop()
        return defer.DeferredList(
            [defer.maybeDeferred(p.stopListening) for p in self.ports.values()]
        )


def makeService(
    flags: flagmod.Flags,
    *,
    reactor: Any = None,
    engine: EngineLike | None = None,
    session_factory: SessionFactory | None = None,
    exit: Callable[[int], None] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> service.MultiService:
    """Build impalad's service tree from parsed flags."""
    reactor = daemon.reactor_or_global(reactor)
    version = SERVER_VERSION
    remote: catalog_client.RemoteCatalog | None = None
    if engine is None or session_factory is None:
        from backends.impalad.sql import VERSION, Engine, Session

        version = VERSION
        catalog = flags.get_str("catalog_path")
        if flags.get_str("catalog_service_host"):
            remote = catalog_client.remote_catalog(flags)
        engine = Engine(
            Path(flags.get_str("warehouse_dir")),
            catalog_path=Path(catalog) if catalog else None,
            default_options=_options(flags.get_str("default_query_options")),
            catalog=remote,
        )
        if remote is not None:
            engine = catalog_client.SyncDdlEngine(
                engine, remote, timeout=flags.get_int("sync_ddl_timeout_s")
            )

        def new_session(user: str) -> Any:
            return Session(user=user)

        session_factory = new_session
    listen_host = flags.get_str("listen_host")
    hostname = flags.get_str("hostname") or (
        listen_host if listen_host not in ("", "0.0.0.0", "::") else socket.getfqdn()
    )
    threads_n = max(1, flags.get_int("fe_service_threads"))
    pool = ThreadPool(minthreads=0, maxthreads=threads_n, name="impalad-query")

    def run_blocking(fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(reactor, pool, fn, *args)

    identity = ServerIdentity(
        hostname=hostname,
        hs2_port=flags.get_int("hs2_port"),
        hs2_http_port=flags.get_int("hs2_http_port"),
        webserver_address="",
        krpc_port=flags.get_int("krpc_port"),
    )
    server = ImpalaServer(engine, session_factory, run_blocking, reactor, identity, version)
    server.idle_session_timeout = max(0, flags.get_int("idle_session_timeout"))
    server.idle_query_timeout = max(0, flags.get_int("idle_query_timeout"))

    def cancel_all() -> None:
        for op in list(server.operations.values()):
            if op.statement is not None:
                op.statement.cancel()

    def default_exit(code: int) -> None:
        # Leave a hard exit behind in case a cancelled query does not return.
        timer = threading.Timer(10.0, os._exit, (code,))
        timer.daemon = True
        timer.start()
        reactor.stop()

    server.shutdown = ShutdownController(
        reactor,
        flags.get_float("shutdown_grace_period_s"),
        flags.get_float("shutdown_deadline_s"),
        lambda: len(server.operations),
        cancel_all,
        exit or default_exit,
    )
    check = _password_checker(flags.get_str("ldap_passwords_file"))
    mechanisms = dict(sasl.default_mechanisms(check))
    kerberos = _kerberos(flags)
    negotiate = None
    if kerberos is not None:
        from backends.impalad.gssapi_auth import NegotiateAcceptor, gssapi_mechanism

        # As Impala: with Kerberos on, every client authenticates (GSSAPI; PLAIN only
        # when a password file is configured, Impala's LDAP case); NOSASL is refused.
        if not flags.get_str("ldap_passwords_file"):
            mechanisms = {}
        mechanisms["GSSAPI"] = gssapi_mechanism(kerberos)
        negotiate = NegotiateAcceptor(acceptor_credentials(kerberos), kerberos).accept
    # Kerberos or a password file (Impala's LDAP): every client authenticates, on every
    # client port; NOSASL connections and credential-less hs2-http requests are refused
    authenticated = kerberos is not None or bool(flags.get_str("ldap_passwords_file"))
    client_tls, web_tls = _tls(flags)
    membership = _membership(
        flags,
        reactor,
        hostname,
        listen_host,
        catalog_client.TOPICS if remote is not None else (),
    )
    if remote is not None and membership.subscriber is not None:
        catalog_client.attach(remote, membership.subscriber)
        server.catalog_loaded = lambda: remote.loaded  # not ready before the first catalog
    interface = listen_host
    listen: list[tuple[str, Any, Any]] = [
        (
            "hs2",
            _endpoint(reactor, flags.get_int("hs2_port"), interface, client_tls),
            transport.HS2Factory(server, mechanisms, allow_nosasl=not authenticated),
        )
    ]
    if flags.get_int("beeswax_port") > 0:  # Impala: 0 or less, no Beeswax server
        listen.append(
            (
                "beeswax",
                _endpoint(reactor, flags.get_int("beeswax_port"), interface, client_tls),
                transport.BeeswaxFactory(server, mechanisms, allow_nosasl=not authenticated),
            )
        )
    if flags.get_int("hs2_http_port"):
        listen.append(
            (
                "hs2_http",
                _endpoint(reactor, flags.get_int("hs2_http_port"), interface, client_tls),
                transport.make_http_site(
                    server,
                    check,
                    negotiate=negotiate,
                    basic_allowed=kerberos is None or bool(flags.get_str("ldap_passwords_file")),
                    require_auth=authenticated,
                    cookies=_cookies(flags, checked=authenticated),
                ),
            )
        )
    if flags.get_int("webserver_port"):
        listen.append(
            (
                "webserver",
                _endpoint(reactor, flags.get_int("webserver_port"), interface, web_tls),
                web.make_site(webui.routes(server, membership)),
            )
        )
    start_time = server.start_time

    def publish(ident: ServerIdentity) -> None:
        membership.publish(
            ImpaladDescriptor(
                backend_id=new_backend_id(),
                address=f"{ident.hostname}:{ident.krpc_port}",
                hs2_port=ident.hs2_port,
                webserver_port=int(ident.webserver_address.rpartition(":")[2] or 0)
                if ident.webserver_address
                else 0,
                is_coordinator=flags.get_bool("is_coordinator"),
                is_executor=flags.get_bool("is_executor"),
                is_quiescing=False,
                hs2_http_port=ident.hs2_http_port,
                webserver_https=web_tls is not None,
                version=server.version,
                start_time=start_time,
            )
        )

    assert server.shutdown is not None
    server.shutdown.on_start(membership.set_quiescing)

    def print_ready(line: str) -> None:
        log.info("{line}", line=line)
        print(line, flush=True)

    def fail(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        (exit or _hard_exit)(1)

    top = service.MultiService()
    _ThreadPoolService(pool, engine).setServiceParent(top)  # type: ignore[no-untyped-call]
    listeners = _ListenersService(
        reactor,
        server,
        listen,
        on_ready or print_ready,
        fail,
        on_listening=publish,
        web_scheme="https" if web_tls is not None else "http",
    )
    listeners.setServiceParent(top)  # type: ignore[no-untyped-call]
    if membership.subscriber is not None:
        membership.subscriber.setServiceParent(top)  # type: ignore[no-untyped-call]
    top.impala_server = server  # type: ignore[attr-defined]
    top.membership = membership  # type: ignore[attr-defined]
    return top


def _endpoint(reactor: Any, port: int, interface: str, tls: Any) -> Any:
    """A listening endpoint: TCP, or TLS when ``tls`` (CertificateOptions) is given."""
    if tls is not None:
        return endpoints.SSL4ServerEndpoint(reactor, port, tls, interface=interface)
    if ":" in interface:
        return endpoints.TCP6ServerEndpoint(reactor, port, interface=interface)
    return endpoints.TCP4ServerEndpoint(reactor, port, interface=interface)


def _tls(flags: flagmod.Flags) -> tuple[Any, Any]:
    """(options for hs2 + hs2-http, options for the web server); None where TLS is off."""
    from backends.impalad.tls import TlsError, server_options

    minimum = flags.get_str("ssl_minimum_version")
    try:
        client = None
        if flags.get_str("ssl_server_certificate") or flags.get_str("ssl_private_key"):
            client = server_options(
                flags.get_str("ssl_server_certificate"), flags.get_str("ssl_private_key"), minimum
            )
        web_tls = None
        if flags.get_str("webserver_certificate_file") or flags.get_str(
            "webserver_private_key_file"
        ):
            web_tls = server_options(
                flags.get_str("webserver_certificate_file"),
                flags.get_str("webserver_private_key_file"),
                minimum,
            )
    except TlsError as e:
        raise flagmod.FlagError(f"TLS: {e}") from None
    return client, web_tls


def _kerberos(flags: flagmod.Flags) -> Path | None:
    """The keytab to accept with when Kerberos is on (``--principal`` set), else None.

    Impala's rules: ``_HOST`` is ``--hostname`` or the machine's FQDN (never the
    listen address); ``--be_principal`` defaults to
    ``--principal`` and alone is an error; the keytab must hold ``--principal``."""
    principal = flags.get_str("principal")
    be_principal = flags.get_str("be_principal")
    if not principal:
        if be_principal:
            raise flagmod.FlagError("--be_principal needs --principal")
        return None
    from backends.impalad.gssapi_auth import check_keytab, expand_host
    from backends.impalad.sasl import AuthenticationError

    keytab = flags.get_str("keytab_file") or os.environ.get("KRB5_KTNAME", "")
    if not keytab:
        raise flagmod.FlagError("--principal needs --keytab_file (or KRB5_KTNAME)")
    path = Path(keytab.removeprefix("FILE:"))
    host = flags.get_str("hostname") or socket.getfqdn()
    expanded = expand_host(principal, host)
    be_expanded = expand_host(be_principal, host) if be_principal else expanded
    try:
        check_keytab(path, expanded)
        if be_expanded != expanded:
            check_keytab(path, be_expanded)
    except AuthenticationError as e:
        raise flagmod.FlagError(str(e)) from None
    log.info(
        "Kerberos on: principal {p}, be_principal {be}, keytab {kt}",
        p=expanded,
        be=be_expanded,
        kt=str(path),
    )
    return path


def acceptor_credentials(keytab: Path) -> Any:
    from backends.impalad.gssapi_auth import acceptor_credentials as creds
    from backends.impalad.sasl import AuthenticationError

    try:
        return creds(keytab)
    except AuthenticationError as e:
        raise flagmod.FlagError(str(e)) from None


def _membership(
    flags: flagmod.Flags,
    reactor: Any,
    hostname: str,
    listen_host: str,
    extra_topics: Sequence[TopicRegistration] = (),
) -> Membership:
    """Standalone (empty ``--state_store_host``) or a statestore subscriber's membership.

    impalad has ONE subscriber: other parts (the catalog client) register their topics
    through ``extra_topics`` and add callbacks to ``membership.subscriber``."""
    grace = flags.get_int("statestore_subscriber_recovery_grace_period_ms") / 1000.0
    if not flags.get_str("state_store_host"):
        return Membership(None, grace)
    from backends.common.rpc import RpcError
    from backends.common.subscriber import subscriber_from_flags

    try:
        sub = subscriber_from_flags(
            flags,
            reactor,
            subscriber_id=f"impalad@{hostname}:{flags.get_int('krpc_port')}",
            subscriber_type=_subscriber_type(flags),
            topics=(*MEMBERSHIP_TOPICS, *extra_topics),
            hostname=hostname,
            listen_interface="" if listen_host in ("0.0.0.0", "::") else listen_host,
        )
    except (RpcError, ValueError) as e:
        raise flagmod.FlagError(f"statestore: {e}") from None
    return Membership(sub, grace)


def _subscriber_type(flags: flagmod.Flags) -> str:
    coordinator, executor = flags.get_bool("is_coordinator"), flags.get_bool("is_executor")
    if coordinator and executor:
        return "COORDINATOR_EXECUTOR"
    return "COORDINATOR" if coordinator else "EXECUTOR"


def _hard_exit(code: int) -> None:
    os._exit(code)


def _install_signals(server: ImpalaServer, reactor: Any) -> None:
    def on_term(signum: int, frame: Any) -> None:
        os.write(2, b"impalad: caught SIGTERM, exiting\n")
        os._exit(0)

    def on_rtmin(signum: int, frame: Any) -> None:
        reactor.callFromThread(_start_shutdown, server)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGRTMIN, on_rtmin)


def _start_shutdown(server: ImpalaServer) -> None:
    if server.shutdown is not None:
        log.info("SIGRTMIN: {status}", status=server.shutdown.start())


def main(argv: Sequence[str] | None = None) -> int:
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    flags = daemon.build(
        flag_set(),
        argv,
        lambda parsed: parsed,
        help_words=("--help", "-h"),
        logging=flagsets.not_implemented,
        level=None,
    )
    if isinstance(flags, int):
        return flags
    try:
        top = makeService(flags, reactor=reactor)
    except Exception as e:
        print(f"impalad: {e}", file=sys.stderr)
        return 1
    server: ImpalaServer = top.impala_server  # type: ignore[attr-defined]
    reactor.callWhenRunning(_install_signals, server, reactor)
    return daemon.run(reactor, top, "impalad")


if __name__ == "__main__":
    sys.exit(main())
