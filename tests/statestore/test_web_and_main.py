"""statestored's flags, service tree and web pages."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from twisted.application import internet
from twisted.internet.testing import MemoryReactorClock

from backends.common.flags import FlagError
from backends.common.web import WebRequest
from backends.statestore import web
from backends.statestore.flags import flag_set
from backends.statestore.main import makeService
from tests.statestore.test_memory_cluster import Cluster
from tests.support.procs import ROOT


def request(path: str) -> WebRequest:
    return WebRequest(path, {"json": [""]}, "GET", {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--statestore_heartbeat_frequency_ms=0"], "statestore_heartbeat_frequency_ms must be"),
        (["--state_store_port=70000"], "--state_store_port is not a port"),
        (["--ssl_server_certificate=/nonexistent.pem"], "go together"),
        (
            ["--ssl_server_certificate=/nonexistent.pem", "--ssl_private_key=/x"],
            "cannot read TLS file",
        ),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], message: str) -> None:
    """makeService refuses bad flag values with a FlagError that names the problem."""
    with pytest.raises(FlagError, match=message):
        makeService(flag_set().parse(argv), MemoryReactorClock())


def test_ha_service_tree() -> None:
    """With HA on the tree has the RPC, HA and web listeners and six periodic timers."""
    flags = flag_set().parse(["--enable_statestored_ha", "--webserver_port=25010"])
    top = makeService(flags, MemoryReactorClock())
    children = list(top)
    listeners = [c for c in children if isinstance(c, internet.StreamServerEndpointService)]
    timers = [c for c in children if isinstance(c, internet.TimerService)]
    assert (len(listeners), len(timers)) == (3, 6)  # the 6th: the catalogd election
    plain = makeService(flag_set().parse(["--webserver_port=0"]), MemoryReactorClock())
    assert len([c for c in plain if isinstance(c, internet.StreamServerEndpointService)]) == 1


def test_statestored_exits_2_on_a_bad_flag() -> None:
    """The statestored command prints the bad flag and exits 2 instead of starting."""
    done = subprocess.run(
        [sys.executable, "-m", "backends.statestore.main", "--no_such_flag=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "unknown command line flag 'no_such_flag'" in done.stderr


def test_web_pages_show_subscribers_topics_and_metrics() -> None:
    """/subscribers, /topics, /jsonmetrics and /healthz answer with Impala's fields."""
    cluster = Cluster()
    store = cluster.start_store(0, ha=False)
    cluster.start_sub("a", stores=1)
    cluster.net.run(0.5)
    pages = web.routes(store)
    subs = pages["/subscribers"](request("/subscribers")).body
    assert b'"id": "a"' in subs and b'"num_priority_topics": 1' in subs
    topics = pages["/topics"](request("/topics")).body
    assert b'"topic_id": "impala-membership"' in topics and b'"num_entries": 1' in topics
    metrics = pages["/jsonmetrics"](request("/jsonmetrics")).body
    assert b'"statestore.active-status": true' in metrics
    assert b'"statestore.live-backends": 1' in metrics
    prom = pages["/metrics_prometheus"](request("/metrics_prometheus")).body
    assert b"statestore_active_status 1" in prom
    assert pages["/healthz"](request("/healthz")).status == 200


def test_statestored_exits_1_when_its_port_is_taken() -> None:
    """A statestored whose RPC port is in use says so and exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["-m", "backends.statestore.main", "--listen_host=127.0.0.1"]
        argv += [f"--state_store_port={port}", "--webserver_port=0"]
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert "statestored cannot listen" in done.stderr
