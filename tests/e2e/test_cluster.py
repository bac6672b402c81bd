"""The appliance end to end: `impala-lb cluster up`, the seed's loop through the balancer,
failover by hand, status and stop. Real daemons, the real impala-shell, on 127.0.9.x."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import cli, cluster_up, shell

NET = "127.0.9"
BIND = f"{NET}.1"
PORT = 5000


def _cli(run: Path, *argv: str) -> tuple[int, str]:
    return cli(run, *argv)


def _shell(query: str, port: int = PORT) -> str:
    return shell(BIND, port, query)


def _coordinator(output: str) -> str:
    m = re.search(r"Coordinator: http://([0-9.]+):25000", output)
    assert m, output
    return m.group(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from cluster_up(tmp_path_factory, net=NET, port=PORT, bind=BIND)


def test_seed_loop_lands_on_different_coordinators(run: Path) -> None:
    """Five impala-shell -q runs through :5000 land on the three impalads in turn."""
    seen = [_coordinator(_shell("select 1")) for _ in range(5)]
    assert set(seen) == {f"{NET}.11", f"{NET}.12", f"{NET}.13"}
    assert all(a != b for a, b in itertools.pairwise(seen)), seen


def test_sample_data_is_queryable_on_every_coordinator(run: Path) -> None:
    """The generated sample tables answer the same on each impalad."""
    for _ in range(3):
        out = _shell("select count(*) from sample.orders")
        assert "| 100000   |" in out


def test_kill_one_impalad_queries_keep_working_then_start_it(run: Path) -> None:
    """With one impalad killed, every query still succeeds; started again, it serves again."""
    rc, out = _cli(run, "kill", "impalad-2")
    assert rc == 0, out
    seen = [_coordinator(_shell("select 1")) for _ in range(6)]
    assert f"{NET}.12" not in seen
    rc, out = _cli(run, "status")
    assert re.search(r"impalad-2\s+\d+\s+stopped", out), out
    rc, out = _cli(run, "start", "impalad-2")
    assert rc == 0, out
    rc, out = _cli(run, "status")
    assert re.search(r"impalad-2\s+\d+\s+running", out), out


@pytest.mark.parametrize("daemon", ["statestored", "catalogd"])
def test_status_shows_roles_of_the_ha_pairs(run: Path, daemon: str) -> None:
    """status shows one active and one standby of each HA pair."""
    rc, out = _cli(run, "status")
    assert rc == 0
    roles = re.findall(daemon + r"-\d\s+\d+\s+running\s+(\w+)", out)
    assert sorted(roles) == ["active", "standby"], out


def test_ddl_on_one_coordinator_is_visible_on_all(run: Path) -> None:
    """A table created through the balancer is at once queryable on every coordinator."""
    _shell("create table default.seen_everywhere (x int)")
    _shell("insert into default.seen_everywhere values (1), (2)")
    coordinators = set()
    for _ in range(3):
        out = _shell("select count(*) from default.seen_everywhere")
        assert "| 2        |" in out, out
        coordinators.add(_coordinator(out))
    assert len(coordinators) == 3
