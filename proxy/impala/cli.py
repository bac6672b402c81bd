"""``impala-lb agent``: the Impala controller as its own process, beside real HAProxy
(or an impala-lb) that asks it through ``agent-check``::

    impala-lb agent --listen 127.0.0.1:25999 \\
        --coordinator impalad-1=http://10.0.0.11:25000 \\
        --coordinator impalad-2=http://10.0.0.12:25000

and in haproxy.cfg, for each server: ``agent-check agent-addr 127.0.0.1 agent-port 25999
agent-send "impalad-1\\n" agent-inter 1s``. SIGTERM stops it; the balancer then keeps
the last state it was told (an agent that does not answer changes nothing).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from proxy.impala._agent import AgentFactory
from proxy.impala._watch import Coordinator, Watch


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
        required=True,
        help="NAME=URL of a coordinator's web server (repeatable); NAME is what the "
        "balancer sends (agent-send)",
    )
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from twisted.internet import reactor as _reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from proxy.sdnotify import Notifier

    reactor: Any = _reactor
    observer: Any = textFileLogObserver(sys.stderr)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    watch = Watch(reactor, args.coordinator, interval=args.interval)
    host, port = args.listen
    try:
        factory = AgentFactory(watch.state, reactor, lambda: watch.coordinators)
        reactor.listenTCP(port, factory, interface=host)
    except Exception as e:
        print(f"impala-lb agent: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        return 1
    watch.start()
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(reactor.stop))
    print(f"impala-lb agent listening on {host}:{port}", file=sys.stderr, flush=True)
    Notifier().ready()
    reactor.run(installSignalHandlers=False)
    watch.stop()
    return 0
