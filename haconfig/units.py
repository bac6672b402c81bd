"""HAProxy's time and size values: parsing as HAProxy does, and one canonical spelling back."""

from __future__ import annotations

MAX_MS = 2147483647

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class UnitError(ValueError):
    """A value HAProxy would refuse; the message is HAProxy's wording without the prefix."""


def parse_time(text: str, keyword: str) -> int:
    """Milliseconds from ``5000``, ``5s``, ``100us``, ``1h``...; default unit ms.

    Units are case-sensitive and decimals are refused, as in HAProxy 2.6:
    ``unexpected character 'x' in 'timeout connect'``; too large a value gives
    ``timer overflow in argument '25d' to 'timeout client' (maximum value is
    2147483647 ms or ~24.8 days)``. Microseconds round up to whole ms."""
    digits = 0
    while digits < len(text) and text[digits].isdigit():
        digits += 1
    if digits == 0:
        bad = text[0] if text else ""
        raise UnitError(f"unexpected character '{bad}' in '{keyword}'")
    unit = text[digits:]
    if unit and unit not in _UNITS_MS:
        raise UnitError(f"unexpected character '{unit[0]}' in '{keyword}'")
    number = int(text[:digits])
    ms = -(-number // 1000) if unit == "us" else number * int(_UNITS_MS[unit or "ms"])
    if ms > MAX_MS:
        raise UnitError(
            f"timer overflow in argument '{text}' to '{keyword}' "
            f"(maximum value is 2147483647 ms or ~24.8 days)"
        )
    return ms


def format_time(ms: int) -> str:
    """The shortest exact spelling: ``5000`` -> ``5s``, ``1500`` -> ``1500ms``."""
    if ms == 0:
        return "0"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
