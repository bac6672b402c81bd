"""``impala-lb agent``: the Impala controller as its own process, beside real HAProxy
(or an impala-lb) that asks it through ``agent-check`` and the runtime API::

    impala-lb agent --listen 127.0.0.1:25999 --config /etc/haproxy/haproxy.cfg \\
        --stats-socket /run/haproxy/admin.sock

reads the coordinators from the config (servers with ``agent-check agent-port 25999``:
their ``agent-send`` name, their ``check port`` as the web port), follows the cluster's
membership, and keeps those backends equal to it through the stats socket (``add
server`` / ``del server``). Without ``--stats-socket`` it only answers agent-checks;
``--coordinator NAME=URL`` names coordinators by hand. SIGTERM stops it; the balancer
then keeps the last state it was told (an agent that does not answer changes nothing).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from proxy.impala._watch import Coordinator


def _coordinator(text: str) -> Coordinator:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http://HOST:PORT, got {text!r}")
    return Coordinator(name, url.rstrip("/"))


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


class _Parser(argparse.ArgumentParser):
    """``@FILE`` reads one argument per line; blank lines and ``#`` comments are skipped."""

    def convert_arg_line_to_args(self, arg_line: str) -> list[str]:
        line = arg_line.strip()
        return [] if not line or line.startswith("#") else [line]


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="impala-lb agent",
        description="Answer HAProxy agent-checks from Impala coordinators' own state.",
        fromfile_prefix_chars="@",
    )
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 25999), help="HOST:PORT")
    p.add_argument(
        "--coordinator",
        type=_coordinator,
        action="append",
        default=[],
        help="NAME=URL of a coordinator's web server (repeatable); NAME is what the "
        "balancer sends (agent-send)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="the balancer's haproxy.cfg: coordinators and the backends that follow the "
        "membership (repeatable, in order, as -f)",
    )
    p.add_argument(
        "--stats-socket",
        metavar="PATH",
        help="the balancer's admin stats socket: keep its backends equal to the membership",
    )
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.coordinator and not args.config:
        p.error("give --config FILE (the balancer's haproxy.cfg) or --coordinator NAME=URL")
    if args.stats_socket and not args.config:
        p.error("--stats-socket needs --config (which backends follow the membership)")
    config = None
    if args.config:
        from haconfig.parse import ConfigError, read_file

        try:
            config = read_file(args.config).require()
        except (ConfigError, OSError) as e:
            print(f"impala-lb agent: {e}", file=sys.stderr)
            return 1
    from twisted.internet import reactor as _reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from proxy.impala._controller import Controller
    from proxy.impala._pool import unix_socket_api
    from proxy.sdnotify import Notifier

    reactor: Any = _reactor
    observer: Any = textFileLogObserver(sys.stderr)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    host, port = args.listen
    api = unix_socket_api(reactor, args.stats_socket) if args.stats_socket else None
    controller = Controller(
        reactor,
        (host, port),
        config=config,
        coordinators=args.coordinator,
        api=api,
        interval=args.interval,
    )
    if not controller.watch.coordinators:
        print(
            f"impala-lb agent: no server of the config asks agent port {port} "
            "(agent-check agent-port ...)",
            file=sys.stderr,
        )
        return 1
    try:
        controller.start()
    except Exception as e:
        print(f"impala-lb agent: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(reactor.stop))
    print(f"impala-lb agent listening on {host}:{port}", file=sys.stderr, flush=True)
    Notifier().ready()
    reactor.run(installSignalHandlers=False)
    controller.stop()
    return 0
