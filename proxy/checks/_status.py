"""Check result codes (spec 2.3): HAProxy's names, numbers, descriptions and verdicts."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    """``srv_check_result`` in ``show servers state``."""

    UNKNOWN = 0
    NEUTRAL = 1
    FAILED = 2
    PASSED = 3
    CONDPASS = 4


class CheckStatus(enum.Enum):
    """A check's outcome as ``show stat`` ``check_status`` names it.

    The value is ``(number, description, verdict)``: the number is
    ``srv_check_status`` in ``show servers state``, the description is
    ``check_desc`` and the reason of the state-change log lines."""

    UNK = (0, "Unknown", Verdict.UNKNOWN)
    INI = (1, "Initializing", Verdict.UNKNOWN)
    CHECKED = (3, "No status change", Verdict.NEUTRAL)  # an agent reply without health word
    HANA = (4, "Health analyze", Verdict.FAILED)
    SOCKERR = (5, "Socket error", Verdict.FAILED)
    L4OK = (6, "Layer4 check passed", Verdict.PASSED)
    L4TOUT = (7, "Layer4 timeout", Verdict.FAILED)
    L4CON = (8, "Layer4 connection problem", Verdict.FAILED)
    L6OK = (9, "Layer6 check passed", Verdict.PASSED)
    L6TOUT = (10, "Layer6 timeout", Verdict.FAILED)
    L6RSP = (11, "Layer6 invalid response", Verdict.FAILED)
    L7TOUT = (12, "Layer7 timeout", Verdict.FAILED)
    L7RSP = (13, "Layer7 invalid response", Verdict.FAILED)
    L7OK = (15, "Layer7 check passed", Verdict.PASSED)
    L7OKC = (16, "Layer7 check conditionally passed", Verdict.CONDPASS)
    L7STS = (17, "Layer7 wrong status", Verdict.FAILED)

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def description(self) -> str:
        return self.value[1]

    @property
    def verdict(self) -> Verdict:
        return self.value[2]

    @property
    def passed(self) -> bool:
        return self.verdict in (Verdict.PASSED, Verdict.CONDPASS)

    @property
    def layer(self) -> int:
        """4, 6 or 7 for the layered codes, 0 otherwise: ``check_code`` is shown from L5 up."""
        return int(self.name[1]) if self.name[:1] == "L" else 0


@dataclass(frozen=True)
class CheckResult:
    """One finished check: status, optional code (HTTP status; 0 for tcp-check), the
    ``last_chk`` text (``info``) and the duration in milliseconds."""

    status: CheckStatus
    info: str = ""
    code: int | None = None
    duration_ms: int = 0

    @property
    def passed(self) -> bool:
        return self.status.passed

    def with_duration(self, ms: int) -> CheckResult:
        return CheckResult(self.status, self.info, self.code, ms)
