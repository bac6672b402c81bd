"""``impala-lb kerberos-check``: find the Kerberos mistakes operators make behind a balancer.

Behind a TCP balancer every client asks for a ticket to ``impala/<lb-fqdn>``,
so every coordinator must hold that key, with the same key version, and the
name clients compute for the balancer must be the one in the keytabs (spec
haproxy.md 5.4, impala-client-protocol.md 3). This checks, from the files an
operator has at hand:

- each backend keytab holds ``<service>/<lb-fqdn>@REALM`` (else: "missing LB
  principal", the classic ``Server not found in Kerberos database`` /
  ``not found in keytab`` failure);
- every keytab holds the LB key with the same kvno, and the same as the KDC's
  when a ticket cache lets us ask (``kvno``): a key re-randomised by a plain
  ``ktadd`` breaks every other keytab silently;
- the LB name resolves, and its reverse lookup gives the same name: with MIT's
  default ``rdns = true`` clients would otherwise ask for the reverse name;
- each backend also holds its own ``<service>/<host>`` key (``--be_principal``).

It prints one plain sentence per finding and exits 0 when nothing is wrong, 1
otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from backends.common.keytab import KeytabError, principals, read_keytab

Resolver = Callable[[str], list[str]]
ReverseResolver = Callable[[str], str]


@dataclasses.dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def _forward(name: str) -> list[str]:
    try:
        return sorted({str(ai[4][0]) for ai in socket.getaddrinfo(name, None, socket.AF_INET)})
    except OSError:
        return []


def _reverse(ip: str) -> str:
    try:
        return socket.gethostbyaddr(ip)[0]
    except OSError:
        return ""


def kdc_kvno(principal: str) -> int | None:
    """The KDC's current kvno for ``principal`` via ``kvno`` (needs a TGT), else None."""
    if not shutil.which("kvno"):
        return None
    result = subprocess.run(["kvno", principal], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        return None
    # "impala/lb.example.test@EXAMPLE.TEST: kvno = 2"
    tail = result.stdout.strip().rpartition("kvno = ")[2]
    return int(tail) if tail.isdigit() else None


def check(
    lb_fqdn: str,
    keytabs: Sequence[tuple[str, Path]],
    *,
    realm: str | None = None,
    service: str = "impala",
    resolve: Resolver = _forward,
    reverse: ReverseResolver = _reverse,
    kvno: Callable[[str], int | None] = kdc_kvno,
) -> list[Finding]:
    """Findings for a balancer named ``lb_fqdn`` in front of ``(backend host, keytab)`` pairs."""
    findings: list[Finding] = []
    lb_fqdn = lb_fqdn.lower().rstrip(".")
    held: dict[str, dict[str, int]] = {}
    for host, path in keytabs:
        try:
            held[host] = principals(read_keytab(path))
        except (OSError, KeytabError) as e:
            findings.append(Finding(False, f"{host}: cannot read keytab {path}: {e}"))
    realms = {p.rpartition("@")[2] for keys in held.values() for p in keys}
    if realm is None:
        if len(realms) > 1:
            findings.append(Finding(False, f"the keytabs mix realms: {', '.join(sorted(realms))}"))
        realm = sorted(realms)[0] if realms else ""
    lb_principal = f"{service}/{lb_fqdn}@{realm}"

    lb_kvnos: dict[str, int] = {}
    for host, keys in held.items():
        if lb_principal in keys:
            lb_kvnos[host] = keys[lb_principal]
            findings.append(
                Finding(True, f"{host}: holds {lb_principal} (kvno {keys[lb_principal]})")
            )
        else:
            have = ", ".join(sorted(keys)) or "nothing"
            findings.append(
                Finding(
                    False,
                    f"{host}: missing LB principal {lb_principal}; clients coming through the "
                    f"balancer ask for it and will be refused. The keytab holds: {have}. Merge "
                    f"the LB key in with ktutil, or export it with 'ktadd -norandkey'.",
                )
            )
        own = f"{service}/{host.lower()}@{realm}"
        if own not in keys:
            findings.append(
                Finding(
                    False,
                    f"{host}: no {own} key for --be_principal; direct connections "
                    f"(impala-shell -b {host}) and daemon-to-daemon RPC will fail.",
                )
            )
    if len(set(lb_kvnos.values())) > 1:
        detail = ", ".join(f"{h} has kvno {v}" for h, v in sorted(lb_kvnos.items()))
        findings.append(
            Finding(
                False,
                f"the LB key differs between backends ({detail}): a key was re-randomised by a "
                f"plain 'ktadd'; tickets will fail on every backend with the older key. "
                f"Re-export one key to all with 'ktadd -norandkey'.",
            )
        )
    current = kvno(lb_principal) if lb_kvnos else None
    if current is not None:
        stale = sorted(h for h, v in lb_kvnos.items() if v != current)
        if stale:
            findings.append(
                Finding(
                    False,
                    f"the KDC's key for {lb_principal} is kvno {current}, but "
                    f"{', '.join(stale)} hold an older one: their keytabs are out of date.",
                )
            )

    addresses = resolve(lb_fqdn)
    if not addresses:
        findings.append(
            Finding(
                False, f"{lb_fqdn} does not resolve; clients cannot reach the balancer by name."
            )
        )
    for ip in addresses:
        back = reverse(ip).lower().rstrip(".")
        if back and back != lb_fqdn:
            findings.append(
                Finding(
                    False,
                    f"{lb_fqdn} resolves to {ip}, whose reverse name is {back}: clients with "
                    f"MIT's default 'rdns = true' will ask for {service}/{back}@{realm}. Fix the "
                    f"PTR record, or set 'rdns = false' on clients.",
                )
            )
    return findings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="impala-lb kerberos-check",
        description="Check that backend keytabs fit a Kerberized Impala behind this balancer.",
    )
    parser.add_argument("--lb-fqdn", required=True, help="the balancer's name clients use")
    parser.add_argument(
        "--keytab",
        action="append",
        default=[],
        metavar="HOST=PATH",
        help="a backend's fqdn and its keytab (repeat for each impalad)",
    )
    parser.add_argument("--realm", help="the realm (default: the keytabs')")
    parser.add_argument("--service", default="impala", help="the service name (default impala)")
    args = parser.parse_args(argv)
    pairs: list[tuple[str, Path]] = []
    for item in args.keytab:
        host, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--keytab takes HOST=PATH, got {item!r}")
        pairs.append((host, Path(path)))
    if not pairs:
        parser.error("give at least one --keytab HOST=PATH")
    findings = check(args.lb_fqdn, pairs, realm=args.realm, service=args.service)
    for f in findings:
        print(("ok:      " if f.ok else "PROBLEM: ") + f.text)
    bad = sum(1 for f in findings if not f.ok)
    print(f"{bad} problem(s) found." if bad else "No problems found.")
    return 1 if bad else 0
