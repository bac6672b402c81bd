"""Installing impala-lb as systemd services.

The unit templates live in the repository's ``systemd/`` directory as
``<unit>.in`` (and inside the wheel, as package data of :mod:`proxy.appliance`), with
``@BINDIR@`` where the directory of the installed commands goes; only the rendered
units are units (``systemd-analyze verify`` runs on those).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

UNITS = (
    "impala-lb.service",
    "impala-lb-agent.service",
    "impalad@.service",
    "statestored@.service",
    "catalogd@.service",
)


def unit_text(unit: str) -> str:
    """The unit's template as shipped (``<unit>.in``), with its ``@BINDIR@`` placeholder."""
    return resources.files("proxy.appliance").joinpath("units", f"{unit}.in").read_text()


def render_unit(unit: str, bindir: Path) -> str:
    """The unit file with ``@BINDIR@`` replaced by ``bindir``."""
    return unit_text(unit).replace("@BINDIR@", str(bindir))


# --- impala-lb install / uninstall ------------------------------------------------------

STATE_DIR = Path("/var/lib/impala-lb")
CONFIG_DIR = Path("/etc/impala-lb")
UNIT_DIR = Path("/etc/systemd/system")
MANIFEST = STATE_DIR / "install-manifest.json"
USER = "impala-lb"


#: impala-lb-agent.service's arguments: the controller beside Debian's HAProxy
AGENT_ARGS = """\
# impala-lb-agent.service: the Impala controller beside HAProxy, one argument per line.
# HAProxy's servers ask it with: agent-check agent-addr 127.0.0.1 agent-port 25999
# agent-send "<name>\\n" (impala-lb render writes them); its admin socket must let the
# impala-lb user in (stats socket ... mode 660 level admin group impala-lb).
--listen=127.0.0.1:25999
--config=/etc/haproxy/haproxy.cfg
--stats-socket=/run/haproxy/admin.sock
"""


#: keepalived.service's drop-in: with a balancer pair (haconfig.pair, `impala-lb render
#: --keepalived`), keepalived starts after impala-lb and with it
KEEPALIVED_DROPIN = """\
# Written by impala-lb install. For the balancer pair behind one virtual IP
# (/etc/keepalived/keepalived.conf from `impala-lb render --keepalived <name>`):
# keepalived starts after impala-lb and with it, so the address is never announced by
# a balancer that does not serve yet; its vrrp_script keeps asking `impala-lb alive`.
# A keepalived that dies is started again (Debian's unit does not), so the address it
# left on the interface is dropped within seconds.
[Unit]
After=impala-lb.service
Wants=impala-lb.service

[Service]
Restart=on-failure
RestartSec=1s
"""


@dataclasses.dataclass(frozen=True)
class Planned:
    """One file ``install`` puts in place: where (without the root) and what."""

    path: Path
    content: str
    mode: int = 0o644


def planned_files(bindir: Path, port: int = 5000) -> list[Planned]:
    """Everything ``install`` writes: units, the balancer config, flagfiles, defaults."""
    from proxy.appliance.cluster import (
        common_flags,
        description,
        flagfile_text,
        plan,
        render_config,
    )

    files = [Planned(UNIT_DIR / unit, render_unit(unit, bindir)) for unit in UNITS]
    daemons = plan(STATE_DIR, port=port, bind="127.0.0.1", bins=bindir, flag_dir=CONFIG_DIR)
    desc = description(daemons, port=port, bind="127.0.0.1", run=Path("/run/impala-lb"))
    files.append(Planned(CONFIG_DIR / "impala-lb.cfg", render_config(desc)))
    common = "read by every Impala daemon (impalad@, statestored@, catalogd@) before its own"
    files.append(
        Planned(CONFIG_DIR / "common.flags", flagfile_text(common, common_flags(STATE_DIR)))
    )
    for d in daemons:
        if not d.flags:
            continue
        kind, _, instance = d.name.rpartition("-")
        title = (
            f"{d.kind} instance {instance}: read by {kind}@{instance}.service after common.flags"
        )
        files.append(Planned(CONFIG_DIR / f"{d.name}.flags", flagfile_text(title, d.flags)))
    files.append(Planned(CONFIG_DIR / "agent.args", AGENT_ARGS))
    files.append(Planned(UNIT_DIR / "keepalived.service.d" / "impala-lb.conf", KEEPALIVED_DROPIN))
    files.append(
        Planned(
            Path("/etc/default/impala-lb"),
            "# Environment for impala-lb.service.\n"
            f"CONFIG={CONFIG_DIR / 'impala-lb.cfg'}\n"
            "PIDFILE=/run/impala-lb/impala-lb.pid\n",
        )
    )
    return files


def _sha(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def _under(root: Path, path: Path) -> Path:
    return root / path.relative_to("/")


def install(root: Path, bindir: Path, *, create_user: bool, systemctl: bool, out: TextIO) -> int:
    """Put every planned file in place, idempotently.

    A file that is missing, or unchanged since we wrote it, is (re)written; one the
    operator has edited is kept, and our version goes beside it as ``<file>.dist``."""
    manifest_path = _under(root, MANIFEST)
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        manifest = {"files": {}, "created_user": False}
    written = kept = same = 0
    for f in planned_files(bindir):
        target = _under(root, f.path)
        new = f.content.encode()
        if target.exists():
            current = target.read_bytes()
            if current == new:
                manifest["files"][str(f.path)] = _sha(new)
                same += 1
                continue
            if manifest["files"].get(str(f.path)) != _sha(current):
                dist = target.with_name(target.name + ".dist")
                dist.write_bytes(new)
                print(
                    f"kept {f.path} (changed by you); the new version is in {dist.name}", file=out
                )
                kept += 1
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(new)
        tmp.chmod(f.mode)
        tmp.replace(target)
        manifest["files"][str(f.path)] = _sha(new)
        written += 1
        print(f"wrote {f.path}", file=out)
    if create_user and root == Path("/"):
        manifest["created_user"] = _ensure_user(out) or manifest.get("created_user", False)
    for d in (STATE_DIR, STATE_DIR / "warehouse"):
        _under(root, d).mkdir(parents=True, exist_ok=True)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if systemctl and root == Path("/") and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False, timeout=60)
    print(
        f"{written} written, {same} already up to date, {kept} kept as you changed them", file=out
    )
    print(
        "start with: systemctl enable --now statestored@1 statestored@2 impalad@1 impalad@2 "
        "impalad@3 impala-lb",
        file=out,
    )
    return 0


def uninstall(root: Path, *, systemctl: bool, out: TextIO) -> int:
    """Remove what ``install`` wrote, except files the operator has changed since."""
    manifest_path = _under(root, MANIFEST)
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        print("nothing to uninstall (no install manifest)", file=out)
        return 0
    for name, digest in sorted(manifest["files"].items()):
        target = _under(root, Path(name))
        if not target.exists():
            continue
        if _sha(target.read_bytes()) != digest:
            print(f"kept {name}: changed since it was installed", file=out)
            continue
        target.unlink()
        dist = target.with_name(target.name + ".dist")
        dist.unlink(missing_ok=True)
        print(f"removed {name}", file=out)
    manifest_path.unlink()
    for d in (CONFIG_DIR,):
        with contextlib.suppress(OSError):
            _under(root, d).rmdir()
    if manifest.get("created_user") and root == Path("/"):
        subprocess.run(["userdel", USER], check=False, timeout=60)
    if systemctl and root == Path("/") and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False, timeout=60)
    print(f"data in {STATE_DIR} is left in place", file=out)
    return 0


def _ensure_user(out: TextIO) -> bool:
    """Create the impala-lb system user; True when we created it."""
    if subprocess.run(["id", "-u", USER], capture_output=True, check=False).returncode == 0:
        return False
    subprocess.run(
        [
            "useradd",
            "--system",
            "--home-dir",
            str(STATE_DIR),
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ],
        check=True,
        timeout=60,
    )
    print(f"created system user {USER}", file=out)
    return True


def main(argv: list[str]) -> int:
    """``impala-lb install|uninstall [--root DIR] [--no-user] [--no-systemctl]``."""
    parser = argparse.ArgumentParser(prog="impala-lb install")
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("--root", type=Path, default=Path("/"), help="install below this root")
    parser.add_argument("--bindir", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--no-user", action="store_true", help="do not create the system user")
    parser.add_argument("--no-systemctl", action="store_true", help="skip daemon-reload")
    args = parser.parse_args(argv)
    if args.action == "install":
        return install(
            args.root,
            args.bindir,
            create_user=not args.no_user,
            systemctl=not args.no_systemctl,
            out=sys.stdout,
        )
    return uninstall(args.root, systemctl=not args.no_systemctl, out=sys.stdout)


def main_install(argv: list[str]) -> int:
    return main(["install", *argv])


def main_uninstall(argv: list[str]) -> int:
    return main(["uninstall", *argv])
