"""``balance first``: fill servers one after the other, in id order.

The first usable server (by numeric id, config order by default) with
``served < maxconn`` wins; weights are ignored and a server without ``maxconn``
is never full, so it takes everything. When all are full, ``pick`` returns
``None`` and the connection waits in the backend queue. Meant to let idle
servers be switched off; measured in HAProxy with maxconn 2: ``a a b b c c``.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.balance._base import Algorithm
from proxy.server import Server


class First(Algorithm):
    """The first server in id order with a free slot."""

    name = "first"
    dynamic = True
    fair_backend_queue = True

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, hash_type: str = ""
    ) -> None:
        super().__init__(servers, allbackups=allbackups)
        self._order: dict[bool, list[Server]] = {False: [], True: []}
        self._rebuild()

    def _rebuild(self) -> None:
        for backup in (False, True):
            members = self.group(backup)
            self._order[backup] = sorted(members, key=lambda s: s.puid)

    def _pick(self, backup: bool, client_ip: str, avoid: Server | None) -> Server | None:
        avoided: Server | None = None
        for s in self._order[backup]:
            if not s.maxconn or s.served < s.dynamic_maxconn:
                if s is not avoid:
                    return s
                avoided = s
        return avoided

    def _up(self, s: Server) -> None:
        self._rebuild()

    def _down(self, s: Server) -> None:
        self._rebuild()
