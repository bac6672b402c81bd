"""Choosing a backend for an accepted connection: ``use_backend`` rules, then ``default_backend``.

Only layer-4 fetches are evaluated (spec 1.11): in TCP mode with no
``tcp-request inspect-delay`` the buffer is empty when HAProxy decides, so content
fetches never match; we compile them to "never matches" as HAProxy behaves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import NamedTuple

from haconfig.model import Acl, AclTerm, Condition, Proxy


class ConnInfo(NamedTuple):
    """The layer-4 facts a rule can test (a tuple: made once per connection, cheaply)."""

    src: str
    src_port: int
    dst: str
    dst_port: int


Matcher = Callable[[ConnInfo], bool]


class RoutingError(ValueError):
    """A rule that cannot be compiled (the parser should have refused it)."""


def _never(_: ConnInfo) -> bool:
    return False


def _always(_: ConnInfo) -> bool:
    return True


def _ip_matcher(patterns: Sequence[str], attr: str) -> Matcher:
    nets = []
    for p in patterns:
        try:
            nets.append(ipaddress.ip_network(p, strict=False))
        except ValueError as e:
            raise RoutingError(f"'{p}' is not a valid IPv4 or IPv6 address") from e

    def match(c: ConnInfo) -> bool:
        try:
            ip = ipaddress.ip_address(getattr(c, attr))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in nets)

    return match


def _int_matcher(patterns: Sequence[str], attr: str) -> Matcher:
    ranges: list[tuple[int, int]] = []
    for p in patterns:
        lo, sep, hi = p.partition(":")
        try:
            if sep:
                ranges.append((int(lo) if lo else 0, int(hi) if hi else 1 << 31))
            else:
                ranges.append((int(p), int(p)))
        except ValueError as e:
            raise RoutingError(f"'{p}' is not a valid integer or range") from e

    def match(c: ConnInfo) -> bool:
        v: int = getattr(c, attr)
        return any(lo <= v <= hi for lo, hi in ranges)

    return match


def compile_acl(acl: Acl) -> Matcher:
    """One ``acl`` line as a predicate on a connection."""
    crit = acl.criterion
    if crit == "always_true":
        return _always
    if crit == "always_false":
        return _never
    if crit in ("src", "dst"):
        return _ip_matcher(acl.patterns, crit)
    if crit in ("src_port", "dst_port"):
        return _int_matcher(acl.patterns, crit)
    # Content and HTTP fetches see an empty buffer at accept time in TCP mode (spec 1.11).
    return _never


def _compile_term(term: AclTerm, named: dict[str, Matcher]) -> Matcher:
    if term.anonymous is not None:
        m = compile_acl(term.anonymous)
    elif term.name in named:
        m = named[term.name]
    elif term.name == "TRUE":
        m = _always
    elif term.name == "FALSE":
        m = _never
    else:
        raise RoutingError(f"no such ACL : '{term.name}'")
    if term.negated:
        inner = m

        def m(c: ConnInfo) -> bool:
            return not inner(c)

    return m


def _any_of(matchers: tuple[Matcher, ...]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]
    return lambda c: any(m(c) for m in matchers)


def compile_condition(cond: Condition | None, acls: Sequence[Acl]) -> Matcher:
    """An ``if|unless`` condition as a predicate; ``None`` always matches."""
    if cond is None:
        return _always
    by_name: dict[str, list[Matcher]] = {}
    for acl in acls:
        by_name.setdefault(acl.name, []).append(compile_acl(acl))
    named: dict[str, Matcher] = {}
    for name, ms in by_name.items():
        # Several lines with the same name are ORed.
        named[name] = _any_of(tuple(ms))
    alts = [tuple(_compile_term(t, named) for t in alt) for alt in cond.alternatives]

    def match(c: ConnInfo) -> bool:
        return any(all(t(c) for t in alt) for alt in alts)

    if cond.unless:
        return lambda c: not match(c)
    return match


class Router:
    """The ``use_backend`` rules and ``default_backend`` of one frontend."""

    def __init__(self, frontend: Proxy) -> None:
        self.rules = [
            (compile_condition(r.condition, frontend.acls), r.backend)
            for r in frontend.use_backends
        ]
        self.default = frontend.default_backend
        # A listen section is its own backend when nothing else applies.
        if self.default is None and frontend.kind.has_backend:
            self.default = frontend.name

    def choose(self, conn: ConnInfo) -> str | None:
        """The name of the backend for ``conn``, or ``None`` to close it."""
        for match, backend in self.rules:
            if match(conn):
                return backend
        return self.default
