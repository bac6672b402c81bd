"""Reading MIT keytab files (format 0x0502) without shelling out to ``klist -k``.

Used to say, when authentication fails, which principals a daemon's keytab
really holds, and by ``impala-lb kerberos-check`` to find the operator's usual
mistakes (a missing load-balancer principal, a kvno bumped by a re-randomised key).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path


class KeytabError(ValueError):
    """The file is not a keytab this reader understands."""


@dataclasses.dataclass(frozen=True)
class KeytabEntry:
    """One key: whose, which version, which encryption type."""

    principal: str  # "impala/lb.example.test@EXAMPLE.TEST"
    kvno: int
    enctype: int
    timestamp: int


def read_keytab(path: Path | str) -> list[KeytabEntry]:
    """Every live entry of the keytab at ``path``, in file order."""
    data = Path(path).read_bytes()
    if len(data) < 2 or data[0] != 0x05 or data[1] not in (0x01, 0x02):
        raise KeytabError(f"{path}: not a keytab (bad version bytes)")
    if data[1] != 0x02:
        raise KeytabError(f"{path}: keytab version 0x0501 is not supported")
    entries: list[KeytabEntry] = []
    pos = 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0:  # a hole left by a deleted entry
            pos += -size
            continue
        if size == 0 or pos + size > len(data):
            break
        entries.append(_entry(data[pos : pos + size], path))
        pos += size
    return entries


def _entry(rec: bytes, path: Path | str) -> KeytabEntry:
    try:
        (ncomp,) = struct.unpack_from(">H", rec, 0)
        pos = 2
        realm, pos = _counted(rec, pos)
        comps = []
        for _ in range(ncomp):
            comp, pos = _counted(rec, pos)
            comps.append(comp)
        _name_type, timestamp, vno8 = struct.unpack_from(">iIB", rec, pos)
        pos += 9
        enctype, keylen = struct.unpack_from(">HH", rec, pos)
        pos += 4 + keylen
        kvno = vno8
        if len(rec) - pos >= 4:
            (vno32,) = struct.unpack_from(">I", rec, pos)
            if vno32:
                kvno = vno32
    except struct.error:
        raise KeytabError(f"{path}: truncated keytab entry") from None
    return KeytabEntry("/".join(comps) + "@" + realm, kvno, enctype, timestamp)


def _counted(rec: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">H", rec, pos)
    pos += 2
    if pos + n > len(rec):
        raise struct.error("counted string past the end")
    return rec[pos : pos + n].decode("utf-8", "replace"), pos + n


def principals(entries: list[KeytabEntry]) -> dict[str, int]:
    """Principal -> highest kvno held."""
    out: dict[str, int] = {}
    for e in entries:
        out[e.principal] = max(out.get(e.principal, 0), e.kvno)
    return out
