"""``impala-lb cluster up --lb-pair``: the local cluster behind two balancers and one
virtual IP, each balancer with its own keepalived (haconfig.pair).

The address has to move between two network stacks, and each balancer must reach the
cluster, so with ``--lb-pair`` (as root, where the kernel allows network namespaces) the
whole cluster runs in namespaces on one bridge, on ``<subnet>.0/24`` (``--pair-net``,
default 10.250.0), which exists only inside them: the machine's own namespace gets no
address and no route.

=============  =================  ================================================
namespace      addresses          runs
=============  =================  ================================================
ilb-cluster    .11-.19, .21-.22,  the impalads, the statestored and catalogd pairs
               .31-.32
ilb-lb1        .2                 impala-lb-1 and keepalived-1 (priority 100)
ilb-lb2        .3                 impala-lb-2 and keepalived-2 (priority 90)
ilb-client     .50                clients: ``ip netns exec ilb-client impala-shell
                                  -i <subnet>.100:5000``
(virtual IP)   .100               on the balancer keepalived elected
=============  =================  ================================================

Both balancers run the config rendered from one cluster description (their stats
sockets aside: ``admin.sock`` and ``admin-2.sock``, since they share the run
directory); its ``[lb_pair]`` renders both keepalived.conf files, each checked with
``keepalived -t`` before it is written. ``cluster status`` names the balancer holding
the address, ``cluster kill impala-lb-1`` (or ``keepalived-1``) moves it, and
``cluster stop`` removes the namespaces.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

from proxy.appliance import netns
from proxy.appliance.daemon import Daemon

PREFIX = "ilb-"
CLUSTER_NS = PREFIX + "cluster"
CLIENT_NS = PREFIX + "client"
#: (balancer, namespace suffix, address octet, VRRP priority)
BALANCERS = (("impala-lb-1", "lb1", 2, 100), ("impala-lb-2", "lb2", 3, 90))
VIP_OCTET = 100
CLIENT_OCTET = 50
#: every address the cluster's daemons may take: impalads .11-.19 (``cluster add``
#: included), statestoreds .21-.22, catalogds .31-.32
CLUSTER_OCTETS = (*range(11, 20), 21, 22, 31, 32)
AGENT_ADDRESS = "127.0.0.1"  # each balancer's own Impala controller, on its loopback


class PairSetupError(RuntimeError):
    """The pair cannot be set up here; the message says why."""


def namespaces() -> list[str]:
    """Every namespace a pair makes (the bridge's first)."""
    return [PREFIX + "br", CLUSTER_NS, *(PREFIX + b[1] for b in BALANCERS), CLIENT_NS]


def keepalived_path() -> str:
    found = shutil.which("keepalived") or "/usr/sbin/keepalived"
    return found if os.path.exists(found) else ""


def unavailable() -> str:
    """Empty when a pair can be made here, else why not."""
    if not shutil.which("ip"):
        return "iproute2's 'ip' is not installed (apt-get install iproute2)"
    why = netns.available()
    if why:
        return why
    if not keepalived_path():
        return "keepalived is not installed (apt-get install keepalived)"
    taken = [ns for ns in namespaces() if netns.exists(ns)]
    if taken:
        return (
            f"network namespace(s) {', '.join(taken)} exist already: another --lb-pair "
            "cluster runs ('impala-lb cluster --dir <its run directory> stop' removes them)"
        )
    return ""


def socket_path(run: Path, index: int) -> Path:
    """Balancer ``index``'s stats socket; the first is the cluster's ``admin.sock``, so
    the commands that ask "the balancer" see impala-lb-1."""
    return run / ("admin.sock" if index == 0 else f"admin-{index + 1}.sock")


def config_path(run: Path, index: int) -> Path:
    return run / ("haproxy.cfg" if index == 0 else f"haproxy-{index + 1}.cfg")


def vip(subnet: str) -> str:
    return f"{subnet}.{VIP_OCTET}"


def arrange(daemons: list[Daemon], run: Path, subnet: str) -> list[Daemon]:
    """``cluster up``'s plan (made on ``subnet``, the balancer bound to every address)
    turned into the pair's: the Impala daemons in ``ilb-cluster``, the one balancer
    replaced by two, each with a keepalived, in their own namespaces."""
    out: list[Daemon] = []
    lb: Daemon | None = None
    for d in daemons:
        if d.kind == "impala-lb":
            lb = d
            continue
        d.netns = CLUSTER_NS
        out.append(d)
    if lb is None:
        raise PairSetupError("the plan has no balancer to pair")
    exe = keepalived_path()
    for i, (name, suffix, octet, _) in enumerate(BALANCERS):
        argv = [
            lb.argv[0],
            "-f",
            str(config_path(run, i)),
            "-p",
            str(run / f"{name}.pid"),
            f"--impala-agent={AGENT_ADDRESS}:25999",
        ]
        out.append(
            Daemon(name, "impala-lb", f"{subnet}.{octet}", argv, None, netns=PREFIX + suffix)
        )
    for i, (_, suffix, octet, _) in enumerate(BALANCERS):
        name = f"keepalived-{i + 1}"
        argv = [
            exe,
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "-f",
            str(run / f"{name}.conf"),
            f"--pid={run / name}.pid",
            f"--vrrp_pid={run / name}.vrrp.pid",
        ]
        out.append(
            Daemon(name, "keepalived", f"{subnet}.{octet}", argv, None, netns=PREFIX + suffix)
        )
    return out


def write_configs(run: Path, desc: dict[str, Any], subnet: str) -> None:
    """Each balancer's haproxy.cfg and keepalived.conf, from ``desc`` (the cluster
    description) with an ``[lb_pair]``; keepalived's own test passes on each first."""
    from haconfig.layouts import description_from_mapping, layout
    from haconfig.pair import render_keepalived
    from haconfig.render import render
    from haconfig.rendercli import keepalived_lint

    desc = copy.deepcopy(desc)
    desc["lb_pair"] = {
        "vip": f"{vip(subnet)}/24",
        "interface": "eth0",
        "balancer": [
            {"name": name, "address": f"{subnet}.{octet}", "priority": priority}
            for name, _, octet, priority in BALANCERS
        ],
    }
    desc.setdefault("impala_agent", {})["address"] = AGENT_ADDRESS
    for i, (name, _, _, _) in enumerate(BALANCERS):
        mine = copy.deepcopy(desc)
        sock = str(socket_path(run, i))
        mine["stats"]["socket"] = sock
        mine["lb_pair"]["stats_socket"] = sock
        parsed = description_from_mapping(mine, source="cluster up --lb-pair")
        assert parsed.lb_pair is not None
        conf = render_keepalived(parsed.lb_pair, name, source="cluster up --lb-pair")
        problems = keepalived_lint(conf)
        if problems:
            raise PairSetupError(f"{name}'s keepalived.conf: " + "; ".join(problems))
        config_path(run, i).write_text(render(layout(parsed)))
        (run / f"keepalived-{i + 1}.conf").write_text(conf)


def build_network(subnet: str) -> list[str]:
    """Make the namespaces and the bridge; what was made, for the state (and
    :func:`netns.remove`). Nothing is left behind when a step fails."""
    net = netns.Net(PREFIX, subnet)
    try:
        net.host("cluster", *CLUSTER_OCTETS)
        for _, suffix, octet, _ in BALANCERS:
            net.host(suffix, octet)
        net.host("client", CLIENT_OCTET)
    except BaseException:
        net.close()
        raise
    return list(net.namespaces)


def record(made: list[str], subnet: str) -> dict[str, Any]:
    """What ``state.json`` keeps of the pair."""
    return {
        "namespaces": made,
        "vip": vip(subnet),
        "client_netns": CLIENT_NS,
        "balancers": {name: PREFIX + suffix for name, suffix, _, _ in BALANCERS},
    }


def holders(pair: dict[str, Any]) -> list[str]:
    """The balancers whose namespace holds the virtual IP right now."""
    address = f"{pair['vip']}/24"
    return [name for name, ns in pair["balancers"].items() if netns.has_address(ns, address)]


def holder_line(pair: dict[str, Any]) -> str:
    held = holders(pair)
    if len(held) == 1:
        where = f"held by {held[0]} ({pair['balancers'][held[0]]})"
    elif not held:
        where = "held by no balancer (an election is under way, or both are down)"
    else:
        where = f"held by {' and '.join(held)} (both: a keepalived died hard; see README)"
    return f"virtual IP {pair['vip']}: {where}"


def teardown(pair: dict[str, Any] | None) -> None:
    """Remove the pair's namespaces (after its processes stopped)."""
    if pair:
        netns.remove(reversed(pair.get("namespaces", [])))
