"""Installing impala-lb as systemd services.

The unit files live in the repository's ``systemd/`` directory (and inside the
wheel, as package data of :mod:`proxy.appliance`), with ``@BINDIR@`` where the
directory of the installed commands goes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

UNITS = (
    "impala-lb.service",
    "impalad@.service",
    "statestored@.service",
    "catalogd@.service",
)


def unit_text(unit: str) -> str:
    """The unit file as shipped, with its ``@BINDIR@`` placeholder."""
    return resources.files("proxy.appliance").joinpath("units", unit).read_text()


def render_unit(unit: str, bindir: Path) -> str:
    """The unit file with ``@BINDIR@`` replaced by ``bindir``."""
    return unit_text(unit).replace("@BINDIR@", str(bindir))
