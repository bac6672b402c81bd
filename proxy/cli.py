"""``impala-lb``: run the balancer, check a config, or one of the subcommands.

HAProxy's flags where they exist::

    impala-lb -f FILE [-f FILE...] [-p PIDFILE] [-d]   run in the foreground
        [--impala-agent HOST:PORT]                     ... with the Impala controller inside
    impala-lb -c [-q] -f FILE [-f FILE...]             check the configuration (exit 0/1/2)
    impala-lb render ...                               render a config (haconfig.rendercli)
    impala-lb cluster up|status|stop|kill|start ...    a local Impala cluster behind it
    impala-lb install|uninstall [--root DIR]           systemd units, config and flagfiles
    impala-lb kerberos-check --lb-fqdn N --keytab H=K  find Kerberos setup mistakes
    impala-lb agent --coordinator NAME=URL ...         agent-checks from Impala's own state
    impala-lb alive --stats-socket PATH                does it serve? (keepalived's check)

Signals of the running balancer: SIGHUP re-reads the files and applies them in
place (:mod:`proxy.reload`; a broken file is refused and logged, the running
config keeps serving), SIGUSR1 stops softly (listeners close, sessions finish,
bounded by ``hard-stop-after``), SIGTERM/SIGINT stop at once.

Subcommands are a small table (:data:`SUBCOMMANDS`): a name and a function
``main(argv) -> int``, imported only when used.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

#: Subcommand -> "module:function" taking ``argv`` and returning an exit code.
SUBCOMMANDS: dict[str, str] = {
    "render": "haconfig.rendercli:main",
    "cluster": "proxy.appliance.cluster:main",
    "agent": "proxy.impala.cli:main",
    "install": "proxy.appliance.install:main_install",
    "uninstall": "proxy.appliance.install:main_uninstall",
    "kerberos-check": "proxy.appliance.kerberos_check:main",
    "alive": "proxy.appliance.pair:main",
}


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    fn: Callable[[list[str]], int] = getattr(importlib.import_module(module), func)
    return fn


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="impala-lb",
        description="A TCP load balancer that runs HAProxy configurations.",
        epilog="subcommands: " + ", ".join(sorted(SUBCOMMANDS)),
    )
    p.add_argument("-f", dest="files", action="append", metavar="FILE", help="config file")
    p.add_argument("-c", dest="check", action="store_true", help="check the config and exit")
    p.add_argument("-q", dest="quiet", action="store_true", help="quiet (with -c)")
    p.add_argument("-p", dest="pidfile", metavar="PIDFILE", help="write the pid here")
    p.add_argument("-d", dest="debug", action="store_true", help="debug: log to stderr")
    p.add_argument("-V", dest="verbose", action="store_true", help="verbose")
    p.add_argument(
        "--impala-agent",
        metavar="HOST:PORT",
        help="run the Impala controller in-process: answer agent-checks on HOST:PORT and "
        "keep the backends whose servers ask it equal to the cluster's membership "
        "(docs/impala-agent.md)",
    )
    return p


def load_config(files: Sequence[str]) -> Any:
    """Parse ``files`` in order, print HAProxy-style diagnostics; the Config or ``None``."""
    from haconfig.parse import read_file

    result = read_file(list(files))
    for message in result.messages:
        print(message.format(os.getpid()), file=sys.stderr)
    if result.fatal:
        print(
            f"[ALERT]    ({os.getpid()}) : config : Fatal errors found in configuration.",
            file=sys.stderr,
        )
        return None
    return result.config


def _observability(runtime: Any, reactor: Any) -> Any:
    """Health checks, stats sockets and stats pages over ``runtime`` (proxy.stats)."""
    from proxy.stats import ObservabilityService

    return ObservabilityService.from_runtime(
        runtime, reactor, kill_sessions=runtime.kill_server_sessions
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        return _load(SUBCOMMANDS[args[0]])(args[1:])
    opts = _parser().parse_args(args)
    if opts.check:
        return _load("haconfig.checkcli:main")(args)
    if not opts.files:
        print("impala-lb: no configuration file given (-f FILE)", file=sys.stderr)
        return 1
    agent: tuple[str, int] | None = None
    if opts.impala_agent:
        host, sep, port = opts.impala_agent.rpartition(":")
        if not sep or not port.isdigit():
            print(f"impala-lb: --impala-agent expects HOST:PORT, got {opts.impala_agent!r}")
            return 1
        agent = (host or "127.0.0.1", int(port))
    return run(opts.files, pidfile=opts.pidfile, debug=opts.debug, agent=agent)


def run(
    files: Sequence[str],
    *,
    pidfile: str | None = None,
    debug: bool = False,
    agent: tuple[str, int] | None = None,
) -> int:
    """Run the balancer on ``files`` until SIGTERM/SIGINT (or SIGUSR1 and drain)."""
    from twisted.internet.error import ReactorAlreadyInstalledError

    from proxy import reactor as pump_reactor

    # A caller may have chosen the reactor already (the pump only needs addReader).
    with contextlib.suppress(ReactorAlreadyInstalledError):
        pump_reactor.install()
    from twisted.internet import reactor as _reactor
    from twisted.logger import (
        FilteringLogObserver,
        Logger,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from proxy.frontend import ListenError
    from proxy.runtime import Runtime, raise_nofile_limit

    reactor: Any = _reactor
    _log = Logger(namespace="impala-lb")
    predicate: Any = LogLevelFilterPredicate(LogLevel.debug if debug else LogLevel.info)
    text_observer: Any = textFileLogObserver(sys.stderr)
    observer: Any = FilteringLogObserver(text_observer, [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    nofile = raise_nofile_limit()
    try:
        config = load_config(files)
    except OSError as e:
        print(f"[ALERT]    ({os.getpid()}) : config : {e}", file=sys.stderr)
        return 1
    if config is None:
        return 1
    try:
        runtime = Runtime(config, reactor, nofile=nofile)
        runtime.start()
    except (ListenError, ValueError) as e:
        print(f"[ALERT]    ({os.getpid()}) : {e}", file=sys.stderr)
        return 1
    from proxy.reload import Reloader

    try:
        # Check rules we cannot run raise ValueError here; a stats socket path that cannot
        # be bound fails at start.
        observability = _observability(runtime, reactor)
        observability.startService()
    except Exception as e:
        print(f"[ALERT]    ({os.getpid()}) : {e}", file=sys.stderr)
        runtime.stop()
        return 1
    from proxy.sdnotify import Notifier, WatchdogService

    notifier = Notifier()
    watchdog = WatchdogService(notifier, reactor, healthy=lambda: not runtime.loop.lost)
    pidpath = pidfile or config.global_.pidfile
    if pidpath:
        with open(pidpath, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")

    def hard_stop(signum: int, frame: object) -> None:
        reactor.callFromThread(reactor.stop)

    def soft_stop(signum: int, frame: object) -> None:
        def begin() -> None:
            reloader.stopping = True
            for fe in runtime.frontends.values():
                for listener in fe.listeners:
                    listener.close()
                fe.listeners.clear()
            limit = runtime.config.global_.hard_stop_after
            if limit:
                # HAProxy's hard-stop-after: the soft stop's sessions get this long
                reactor.callLater(limit / 1000.0, _hard_stop_after)
            _stop_when_idle()

        reactor.callFromThread(begin)

    def _hard_stop_after() -> None:
        from twisted.internet.error import ReactorNotRunning

        _log.warn(
            "hard-stop-after: stopping with {count} session(s) left",
            count=len(runtime.sessions),
        )
        with contextlib.suppress(ReactorNotRunning):
            reactor.stop()

    def _stop_when_idle() -> None:
        if not runtime.sessions:
            reactor.stop()
        else:
            reactor.callLater(0.2, _stop_when_idle)

    def reload(signum: int, frame: object) -> None:
        reactor.callFromThread(reloader.request)

    def build_observability() -> Any:
        return _observability(runtime, reactor)

    reloader = Reloader(files, runtime, notifier, build_observability, observability)
    controller = None
    if agent is not None:
        from proxy.impala import Controller
        from proxy.stats import command_api

        def stats_state() -> Any:
            obs = reloader.observability
            return obs.state if obs is not None else None

        controller = Controller(reactor, agent, config=config, api=command_api(stats_state))
        reloader.on_applied.append(lambda: controller.reconfigure(runtime.config))
        try:
            controller.start()
        except Exception as e:
            print(f"[ALERT]    ({os.getpid()}) : impala agent: {e}", file=sys.stderr)
            observability.stopService()
            runtime.stop()
            if pidpath:
                with contextlib.suppress(OSError):
                    os.unlink(pidpath)
            return 1
    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, hard_stop)
    signal.signal(signal.SIGINT, hard_stop)
    signal.signal(signal.SIGUSR1, soft_stop)
    watchdog.startService()
    notifier.ready()
    reactor.run(installSignalHandlers=False)
    notifier.stopping()
    if controller is not None:
        controller.stop()
    watchdog.stopService()
    if reloader.observability is not None:
        reloader.observability.stopService()
    runtime.stop()
    if pidpath:
        with contextlib.suppress(OSError):
            os.unlink(pidpath)
    return 0
