"""The balancer pair behind one virtual IP: keepalived's config, from the cluster description.

Two impala-lb instances run the same haproxy.cfg; keepalived (VRRP) holds the virtual
address on one of them and moves it when that balancer's host, its keepalived, or
impala-lb itself fails. ``[lb_pair]`` in the cluster description (docs/cluster-toml.md)
names the address, the interface and the two balancers; :func:`render_keepalived`
writes one balancer's ``keepalived.conf``:

- both instances start as BACKUP with ``nopreempt``: the higher priority wins the first
  election, and a balancer that comes back does not take the address back (which would
  cut its clients a second time);
- VRRP goes unicast between the two addresses (no multicast needed on the network);
- a ``vrrp_script`` asks impala-lb whether it serves, not whether its process exists:
  ``impala-lb alive`` reads ``show stat`` on its stats socket and succeeds only when a
  frontend is OPEN (``fall 2``: two failed seconds give the address away).

State needs no sync: both balancers check the same servers the same way (health checks
and the Impala controller), so the standby already knows which coordinators are up or
draining when it takes over. What an operator changes by hand on one balancer through
the runtime API (``disable server``, ``set weight``) is not copied to the other.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class PairError(ValueError):
    """An ``[lb_pair]`` that cannot work; the message names the values."""


@dataclass(frozen=True)
class PairBalancer:
    """One impala-lb of the pair: its name, its own address on the VRRP interface, and
    its VRRP priority (the higher one holds the address after a common start)."""

    name: str
    address: str
    priority: int


@dataclass(frozen=True)
class LbPair:
    vip: str  # address/prefix, e.g. "10.250.0.100/24"
    interface: str
    balancers: tuple[PairBalancer, PairBalancer]
    virtual_router_id: int = 51
    advert_int: int = 1
    #: what ``impala-lb alive`` asks: the balancer's stats socket
    stats_socket: str = "/run/impala-lb/admin.sock"
    #: the command keepalived runs to check its balancer (``{bindir}``: where this
    #: installation's commands are; ``{socket}``: :attr:`stats_socket`)
    alive_command: str = "{bindir}/impala-lb alive --stats-socket {socket}"

    def balancer(self, name: str) -> PairBalancer:
        for b in self.balancers:
            if b.name == name:
                return b
        names = ", ".join(b.name for b in self.balancers)
        raise PairError(f"no balancer {name!r} in [lb_pair] (there are: {names})")

    def peer_of(self, name: str) -> PairBalancer:
        me = self.balancer(name)
        return next(b for b in self.balancers if b is not me)


def check_pair(pair: LbPair, server_hosts: Iterable[str], source: str) -> None:
    """Refuse a pair that cannot work, naming the values: a VIP that is not an address,
    that is a server's or a balancer's address, two balancers with one address or one
    priority, a router id or advert interval out of VRRP's range."""
    try:
        vip = ipaddress.ip_interface(pair.vip)
    except ValueError:
        raise PairError(f"{source}: 'lb_pair.vip' {pair.vip!r} is not an address/prefix") from None
    for host in server_hosts:
        if host == str(vip.ip):
            raise PairError(
                f"{source}: 'lb_pair.vip' {pair.vip} is also the address of server {host}"
            )
    a, b = pair.balancers
    for bal in pair.balancers:
        try:
            addr = ipaddress.ip_address(bal.address)
        except ValueError:
            raise PairError(
                f"{source}: balancer {bal.name!r} address {bal.address!r} is not an IP address"
            ) from None
        if addr == vip.ip:
            raise PairError(
                f"{source}: 'lb_pair.vip' {pair.vip} is also balancer {bal.name}'s address"
            )
        if addr not in vip.network:
            raise PairError(
                f"{source}: balancer {bal.name} address {bal.address} is outside the VIP's "
                f"network {vip.network}"
            )
    if a.address == b.address:
        raise PairError(f"{source}: balancers {a.name} and {b.name} share address {a.address}")
    if a.name == b.name:
        raise PairError(f"{source}: the two balancers share the name {a.name}")
    if a.priority == b.priority:
        raise PairError(
            f"{source}: balancers {a.name} and {b.name} share priority {a.priority}: "
            "give the one that should hold the address first the higher"
        )
    if not 1 <= pair.virtual_router_id <= 255:
        raise PairError(f"{source}: 'lb_pair.virtual_router_id' must be 1..255")
    if not 1 <= pair.advert_int <= 255:
        raise PairError(f"{source}: 'lb_pair.advert_int' must be 1..255 seconds")


def _significant(text: str) -> list[tuple[int, str]]:
    """(line number, line) of a config without comments, blank lines and indentation."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append((number, " ".join(line.split())))
    return out


def same_config(a: tuple[str, str], b: tuple[str, str]) -> str:
    """Empty when two balancers' configs (``(name, text)``) are the same apart from
    comments and spacing, else the first difference, naming both values."""
    (name_a, text_a), (name_b, text_b) = a, b
    lines_a, lines_b = _significant(text_a), _significant(text_b)
    for (na, la), (nb, lb) in zip(lines_a, lines_b, strict=False):
        if la != lb:
            return f"{name_a}:{na} {la!r} differs from {name_b}:{nb} {lb!r}"
    if len(lines_a) != len(lines_b):
        longer, extra = (name_a, lines_a) if len(lines_a) > len(lines_b) else (name_b, lines_b)
        n, line = extra[min(len(lines_a), len(lines_b))]
        return f"{longer}:{n} {line!r} has no counterpart in the other config"
    return ""


def render_keepalived(pair: LbPair, name: str, *, source: str = "cluster description") -> str:
    """Balancer ``name``'s keepalived.conf."""
    from haconfig.render import render_template

    me, peer = pair.balancer(name), pair.peer_of(name)
    return render_template(
        "keepalived.conf.j2",
        pair=pair,
        me=me,
        peer=peer,
        source=source,
        alive=pair.alive_command.format(
            socket=pair.stats_socket, bindir=str(Path(sys.executable).parent)
        ),
    )
