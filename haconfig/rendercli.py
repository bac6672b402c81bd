"""``impala-lb render``: a cluster description (or a live Impala) -> haproxy.cfg.

    impala-lb render [--check] [-o FILE] cluster.toml
    impala-lb render [--check] [-o FILE] --from-impala http://<coordinator>:25000 [cluster.toml]
    impala-lb render [--check] --keepalived BALANCER cluster.toml   (haconfig.pair)
    impala-lb render --same-as lb1.cfg lb2.cfg    (a pair runs one config)

With ``--from-impala`` the coordinator list comes from that impalad's
``/backends?json`` (coordinators only, not quiescing); anything else (frontends,
TLS, Kerberos, stats) comes from the description when one is given, or from
the defaults documented in ``docs/cluster-toml.md``.

``--check`` validates the rendered file before it is written: with our own
checker (``haconfig.check``) always, and with ``haproxy -c`` when HAProxy is
installed. A warning from either counts as a failure: nothing is written then.

Exit status: 0 written, 1 the check failed, 2 bad arguments or description,
3 discovery failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from haconfig.discover import DiscoveryError, fetch_coordinators
from haconfig.layouts import (
    ClusterDescription,
    DescriptionError,
    check_description,
    description_from_mapping,
    layout,
    load_description,
)
from haconfig.pair import PairError, render_keepalived, same_config
from haconfig.render import render
from haconfig.validate import VALID, check, haproxy_binary

__all__ = ["haproxy_lint", "main", "own_lint"]

HAPROXY_TIMEOUT_S = 30.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="impala-lb render",
        description="Render haproxy.cfg for an Impala cluster (runs in HAProxy and impala-lb).",
    )
    p.add_argument("description", nargs="?", help="cluster description (TOML)")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument(
        "--check", action="store_true", help="validate first (haconfig.check, and haproxy -c)"
    )
    p.add_argument(
        "--from-impala",
        metavar="URL",
        help="read the coordinators from this impalad's /backends?json",
    )
    p.add_argument(
        "--keepalived",
        metavar="BALANCER",
        help="render keepalived.conf for this balancer of [lb_pair] instead (haconfig.pair)",
    )
    p.add_argument(
        "--same-as",
        metavar="CFG",
        nargs=2,
        help="check that the two balancers of a pair run the same config (exit 1 if not)",
    )
    p.add_argument("--hs2-port", type=int, default=21050, help="with --from-impala (21050)")
    p.add_argument("--hs2-http-port", type=int, default=28000, help="with --from-impala (28000)")
    return p


def haproxy_lint(path: str) -> list[str]:
    """Problems ``haproxy -c`` reports for ``path`` (alerts and warnings); ``[]`` if clean.

    Raises ``FileNotFoundError`` when HAProxy is not installed."""
    exe = haproxy_binary()
    if exe is None:
        raise FileNotFoundError("haproxy")
    proc = subprocess.run(
        [exe, "-c", "-f", path],
        capture_output=True,
        text=True,
        timeout=HAPROXY_TIMEOUT_S,
        check=False,
    )
    output = proc.stdout + proc.stderr
    problems = [
        line.strip()
        for line in output.splitlines()
        if "[ALERT]" in line or "[WARNING]" in line or "[NOTICE]" in line
    ]
    if proc.returncode != 0 or "Warnings were found" in output:
        return problems or [f"haproxy -c exited {proc.returncode}: {output.strip()}"]
    return []


def _check_pair_configs(paths: Sequence[str]) -> int:
    """``render --same-as A B``: the two balancers of a pair must run one config."""
    texts = []
    for path in paths:
        try:
            texts.append((path, Path(path).read_text(encoding="utf-8")))
        except OSError as e:
            print(f"impala-lb render: cannot read {path}: {e.strerror}", file=sys.stderr)
            return 2
    difference = same_config(texts[0], texts[1])
    if difference:
        print(f"impala-lb render: the pair's configs differ: {difference}", file=sys.stderr)
        return 1
    return 0


def keepalived_lint(text: str) -> list[str]:
    """What keepalived's own config test (``keepalived -t -f``) says of ``text``; a
    missing keepalived is a problem too (``--check`` must check)."""
    exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.path.exists(exe):
        return ["keepalived is not installed (apt-get install keepalived): cannot check"]
    fd, tmp = tempfile.mkstemp(prefix=".keepalived-", suffix=".conf")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        proc = subprocess.run(
            [exe, "-t", "-f", tmp], capture_output=True, text=True, timeout=30, check=False
        )
    finally:
        os.unlink(tmp)
    if proc.returncode == 0:
        return []
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return [f"keepalived: {line}" for line in lines] or [f"keepalived -t exited {proc.returncode}"]


def own_lint(path: str) -> list[str]:
    """Problems our own checker (``haconfig.check``) reports for ``path``; ``[]`` if clean."""
    result = check(path)
    problems = [m.format(result.pid) for m in result.messages]
    if result.code != VALID:
        problems += list(result.stdout) or [f"exit status {result.code}"]
    return problems


def _description(args: argparse.Namespace) -> ClusterDescription:
    discover = bool(args.from_impala)
    if args.description:
        desc = load_description(args.description, complete=not discover)
        source = args.description
    elif discover:
        source = "<defaults>"
        desc = description_from_mapping({}, source=source, complete=False)
    else:
        raise DescriptionError("give a cluster description file, or --from-impala URL")
    if discover:
        coords = fetch_coordinators(
            args.from_impala, hs2_port=args.hs2_port, hs2_http_port=args.hs2_http_port
        )
        desc = replace(desc, coordinators=coords)
        check_description(desc, source)
    return desc


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run ``impala-lb render`` with ``argv`` (without the ``render`` word)."""
    out = stdout or sys.stdout
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return int(e.code or 0)
    if args.same_as:
        return _check_pair_configs(args.same_as)
    try:
        desc = _description(args)
        if args.keepalived:
            if desc.lb_pair is None:
                raise DescriptionError(f"{args.description}: --keepalived needs an [lb_pair]")
            text = render_keepalived(
                desc.lb_pair, args.keepalived, source=args.description or "<defaults>"
            )
        else:
            text = render(layout(desc))
    except (DescriptionError, PairError) as e:
        print(f"impala-lb render: {e}", file=sys.stderr)
        return 2
    except DiscoveryError as e:
        print(f"impala-lb render: discovery failed: {e}", file=sys.stderr)
        return 3
    if args.check:
        problems = keepalived_lint(text) if args.keepalived else _check_text(text, args.output)
        if problems:
            for line in problems:
                print(f"impala-lb render: check: {line}", file=sys.stderr)
            print(
                "impala-lb render: the rendered file did not pass; nothing written", file=sys.stderr
            )
            return 1
    if args.output:
        try:
            _write_atomically(Path(args.output), text)
        except OSError as e:
            print(f"impala-lb render: cannot write {args.output}: {e.strerror}", file=sys.stderr)
            return 2
    else:
        out.write(text)
    return 0


def _check_text(text: str, near: str | None) -> list[str]:
    """Write ``text`` to a temporary file (beside the output, so relative paths hold) and
    run both checkers on it."""
    folder = str(Path(near).resolve().parent) if near else None
    fd, tmp = tempfile.mkstemp(prefix=".render-", suffix=".cfg", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        problems = [f"haconfig: {p}" for p in own_lint(tmp)]
        try:
            problems += [f"haproxy: {p}" for p in haproxy_lint(tmp)]
        except FileNotFoundError:
            print(
                "impala-lb render: haproxy not installed; ran our own check only", file=sys.stderr
            )
        return problems
    finally:
        os.unlink(tmp)


def _write_atomically(path: Path, text: str) -> None:
    """A reader (a reloading balancer) sees the old file or the new one, never half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.resolve().parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


if __name__ == "__main__":
    raise SystemExit(main())
