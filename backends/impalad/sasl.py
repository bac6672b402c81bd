"""Server-side SASL mechanisms for the HS2 port.

A mechanism is a small state machine: it gets the client's tokens and answers
with a challenge, or with completion and the authenticated user, or refuses.
PLAIN is here; GSSAPI (issue 8) plugs in as another :class:`Mechanism`
registered in :data:`MechanismFactory` form, without touching the transport.

Impala never negotiates a SASL security layer, so after negotiation frames
are plain; a mechanism that negotiates layers must offer "none" only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Protocol


class AuthenticationError(Exception):
    """The client's credentials were refused; the message is for the server log.

    With ``tell_client`` the message also goes back to the client (GSSAPI's explanation
    names principals, which is what a Kerberos user needs to see); otherwise the client
    only learns that authentication failed, as with a bad password."""

    def __init__(self, message: str, *, tell_client: bool = False) -> None:
        super().__init__(message)
        self.tell_client = tell_client


@dataclasses.dataclass(frozen=True)
class Step:
    """A mechanism's answer to one client token."""

    challenge: bytes = b""
    complete: bool = False
    user: str | None = None  # set when complete


class Mechanism(Protocol):
    """One authentication exchange on one connection."""

    def step(self, token: bytes) -> Step:
        """Consume the client's next token; raise :class:`AuthenticationError` to refuse."""
        ...


# (user, password) -> accepted?
PasswordChecker = Callable[[str, str], bool]
MechanismFactory = Callable[[], Mechanism]


def accept_any(user: str, password: str) -> bool:
    """The default password checker: every user/password is accepted (Impala without LDAP)."""
    return True


class PlainMechanism:
    """RFC 4616 PLAIN: one token ``authzid NUL authcid NUL password``."""

    def __init__(self, check: PasswordChecker = accept_any) -> None:
        self._check = check

    def step(self, token: bytes) -> Step:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise AuthenticationError("malformed PLAIN response")
        authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
        if not authcid:
            raise AuthenticationError("PLAIN response without a user name")
        if not self._check(authcid, password):
            raise AuthenticationError(f"bad password for user {authcid!r}")
        # Impala uses the authenticated name; an authzid naming someone else is refused
        # (delegation goes through impala.doas.user instead).
        if authzid and authzid != authcid:
            raise AuthenticationError(f"user {authcid!r} may not act as {authzid!r}")
        return Step(complete=True, user=authcid)


def default_mechanisms(check: PasswordChecker = accept_any) -> Mapping[str, MechanismFactory]:
    """The mechanisms offered by default: PLAIN."""
    return {"PLAIN": lambda: PlainMechanism(check)}
