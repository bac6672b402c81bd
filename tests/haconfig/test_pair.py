"""[lb_pair] -> keepalived.conf (haconfig.pair): rendered, checked by keepalived -t, and
refused when it cannot work; ``impala-lb alive`` on a stats socket."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haconfig.layouts import DescriptionError, description_from_mapping
from haconfig.rendercli import keepalived_lint
from haconfig.rendercli import main as render_main
from proxy.appliance.pair import serving

PAIR: dict[str, Any] = {
    "vip": "10.250.0.100/24",
    "interface": "eth0",
    "balancer": [
        {"name": "lb1", "address": "10.250.0.11", "priority": 100},
        {"name": "lb2", "address": "10.250.0.12", "priority": 90},
    ],
}


def _desc(**pair: Any) -> Any:
    return description_from_mapping(
        {"coordinator": [{"host": "10.250.0.21"}], "lb_pair": {**PAIR, **pair}}, source="c.toml"
    )


def test_each_balancer_gets_its_own_half_of_the_pair(tmp_path: Path) -> None:
    """lb1 and lb2 differ only in who they are and who the peer is; keepalived -t takes
    both; both are BACKUP with nopreempt, unicast to the other, tracking impala-lb."""
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[[coordinator]]\nhost = "10.250.0.21"\n[lb_pair]\nvip = "10.250.0.100/24"\n'
        'interface = "eth0"\n[[lb_pair.balancer]]\nname = "lb1"\naddress = "10.250.0.11"\n'
        'priority = 100\n[[lb_pair.balancer]]\nname = "lb2"\naddress = "10.250.0.12"\n'
        "priority = 90\n"
    )
    texts = {}
    for name in ("lb1", "lb2"):
        out = io.StringIO()
        assert render_main(["--check", "--keepalived", name, str(toml)], stdout=out) == 0
        texts[name] = out.getvalue()
        assert keepalived_lint(texts[name]) == []
    one, two = texts["lb1"], texts["lb2"]
    for text in (one, two):
        assert "state BACKUP" in text and "nopreempt" in text
        assert "10.250.0.100/24 dev eth0" in text and "track_script" in text
        assert "impala-lb alive --stats-socket /run/impala-lb/admin.sock" in text
    assert "unicast_src_ip 10.250.0.11" in one and "priority 100" in one
    assert "unicast_src_ip 10.250.0.12" in two and "priority 90" in two
    assert "        10.250.0.12\n" in one and "        10.250.0.11\n" in two


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ({"vip": "10.250.0.21/24"}, "'lb_pair.vip' 10.250.0.21/24 is also the address of server"),
        ({"vip": "10.250.0.11/24"}, "is also balancer lb1's address"),
        ({"vip": "nonsense"}, "'lb_pair.vip' 'nonsense' is not an address/prefix"),
        ({"vip": "10.9.0.100/24"}, "outside the VIP's network 10.9.0.0/24"),
        (
            {"balancer": [{"name": "a", "address": "10.250.0.11"}] * 2},
            "balancers a and a share address 10.250.0.11",
        ),
        (
            {
                "balancer": [
                    {"name": "a", "address": "10.250.0.11", "priority": 50},
                    {"name": "b", "address": "10.250.0.12", "priority": 50},
                ]
            },
            "share priority 50",
        ),
        ({"balancer": [PAIR["balancer"][0]]}, "must list exactly two balancers"),
        ({"virtual_router_id": 300}, "'lb_pair.virtual_router_id' must be an integer from 1"),
    ],
)
def test_a_pair_that_cannot_work_is_refused_naming_the_values(
    pair: dict[str, Any], message: str
) -> None:
    with pytest.raises(DescriptionError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _desc(**pair)


@pytest.fixture
def stats_socket(tmp_path: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A stats socket that answers ``show stat`` with the CSV in ``replies[0]``."""
    path = tmp_path / "admin.sock"
    replies: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(100)
                conn.sendall(replies[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path, replies
    finally:
        done.set()
        server.close()
        thread.join(timeout=5)


HEADER = b"# pxname,svname,status\n"


def test_alive_asks_whether_a_frontend_is_open(stats_socket: tuple[Path, list[bytes]]) -> None:
    path, replies = stats_socket
    replies.append(HEADER + b"impala,FRONTEND,OPEN\nimpala,s1,UP\n\n")
    assert serving(str(path), 2.0) == (True, "")
    replies[0] = HEADER + b"impala,FRONTEND,STOP\n\n"
    assert serving(str(path), 2.0) == (False, "no frontend OPEN (impala=STOP)")
    replies[0] = b"Unknown command\n\n"
    assert serving(str(path), 2.0)[1].startswith("stats socket")
    ok, why = serving(str(path.parent / "missing.sock"), 1.0)
    assert not ok and "missing.sock" in why


def test_the_two_balancers_must_run_one_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """render --same-as A B: comments and spacing aside, the configs must be equal; a
    difference is named with both files, lines and values."""
    a, b = tmp_path / "lb1.cfg", tmp_path / "lb2.cfg"
    a.write_text(
        "global\n    maxconn 100\nlisten x\n    bind *:5000\n    server s 10.0.0.1:21050\n"
    )
    b.write_text(
        "# lb2\nglobal\n  maxconn   100\nlisten x\n  bind *:5000\n  server s 10.0.0.1:21050\n"
    )
    assert render_main(["--same-as", str(a), str(b)]) == 0
    b.write_text(b.read_text().replace("10.0.0.1:21050", "10.0.0.2:21050"))
    assert render_main(["--same-as", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert f"{a}:5 'server s 10.0.0.1:21050' differs from {b}:6 'server s 10.0.0.2:21050'" in err
    b.write_text(a.read_text() + "    server t 10.0.0.3:21050\n")
    assert render_main(["--same-as", str(a), str(b)]) == 1
    assert "has no counterpart in the other config" in capsys.readouterr().err
