"""SASL GSSAPI (RFC 4752) on the HS2 port, as Impala's Kerberos mode speaks it.

Plugs into :mod:`backends.impalad.sasl` as one more mechanism. The exchange
(spec kerberos-in-tests.md 4): the client's AP-REQ is accepted in one step
(an AP-REP goes back when it asked for mutual authentication), the client's
empty token follows, then the server offers security layers and the client
picks one. Impala never wraps traffic after authentication, so only "no
security layer" is offered (spec impala-client-protocol.md 2.4).

The acceptor takes any key in the keytab: ``impala/<lb-fqdn>`` for clients that
came through the balancer, ``impala/<own-fqdn>`` for direct ones (``-b``
naming either works). A refusal names the principal the client asked for and
the ones the keytab holds, because that is the operator's first question.

hs2-http speaks the same Kerberos as ``Authorization: Negotiate`` (SPNEGO, RFC
4559): :class:`NegotiateAcceptor` accepts one token per request and hands back the
mutual-authentication token for the ``WWW-Authenticate`` answer.

The authenticated user is the client's full principal (``alice@EXAMPLE.TEST``), as
Impala's connected user is; :func:`short_name` gives the part before ``/`` or ``@``
(what Impala's authorization would use).
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import gssapi
from gssapi.raw.misc import GSSError

from backends.common.keytab import KeytabError, principals, read_keytab
from backends.impalad.sasl import AuthenticationError, Mechanism, MechanismFactory, Step

LAYER_NONE = 0x01
MAX_BUFFER = 0xFFFFFF


def expand_host(principal: str, hostname: str | None = None) -> str:
    """Impala's ``_HOST`` substitution: ``impala/_HOST@R`` -> ``impala/<fqdn>@R``."""
    if "_HOST" not in principal:
        return principal
    host = (hostname or socket.getfqdn()).lower()
    return principal.replace("_HOST", host)


def short_name(principal: str) -> str:
    """``alice@EXAMPLE.TEST`` -> ``alice``; ``impala/host@R`` -> ``impala``."""
    return principal.split("/", 1)[0].split("@", 1)[0]


def check_keytab(keytab: Path, principal: str) -> None:
    """Refuse a keytab that cannot be read or does not hold ``principal`` (start-up check).

    A principal without ``@REALM`` matches any realm's entry of that name."""
    try:
        held = principals(read_keytab(keytab))
    except (OSError, KeytabError) as e:
        raise AuthenticationError(f"cannot read keytab {keytab}: {e}") from None
    bare = "@" not in principal
    for name in held:
        if name == principal or (bare and name.rpartition("@")[0] == principal):
            return
    raise AuthenticationError(
        f"keytab {keytab} has no key for {principal}; it holds {keytab_summary(keytab)}"
    )


def keytab_summary(keytab: Path) -> str:
    """``impala/lb.example.test@R (kvno 1), ...`` or why the keytab could not be read."""
    try:
        held = principals(read_keytab(keytab))
    except (OSError, KeytabError) as e:
        return f"unreadable keytab {keytab}: {e}"
    if not held:
        return f"an empty keytab {keytab}"
    return ", ".join(f"{p} (kvno {v})" for p, v in sorted(held.items()))


class GssapiMechanism:
    """One GSSAPI exchange on one connection."""

    def __init__(self, creds: gssapi.Credentials, keytab: Path) -> None:
        self._ctx = gssapi.SecurityContext(creds=creds, usage="accept")
        self._keytab = keytab
        self._state = "AUTH"

    def step(self, token: bytes) -> Step:
        try:
            if self._state == "AUTH":
                out = self._ctx.step(token)
                if not self._ctx.complete:
                    return Step(challenge=out or b"")
                if out:
                    self._state = "WAIT_EMPTY"
                    return Step(challenge=out)
                return self._offer()
            if self._state == "WAIT_EMPTY":
                return self._offer()
            if self._state == "LAYER":
                return self._choose(token)
        except GSSError as e:
            raise AuthenticationError(self._explain(e), tell_client=True) from None
        raise AuthenticationError(f"unexpected SASL token in state {self._state}", tell_client=True)

    def _offer(self) -> Step:
        self._state = "LAYER"
        offer = struct.pack(">I", (LAYER_NONE << 24) | MAX_BUFFER)
        return Step(challenge=self._ctx.wrap(offer, False).message)

    def _choose(self, token: bytes) -> Step:
        reply = self._ctx.unwrap(token).message
        if len(reply) < 4 or reply[0] != LAYER_NONE:
            raise AuthenticationError(
                "GSSAPI: the client must choose 'no security layer'", tell_client=True
            )
        user = str(self._ctx.initiator_name)
        authzid = reply[4:].decode("utf-8", "replace")
        if authzid and authzid != user:
            raise AuthenticationError(f"GSSAPI: {user} may not act as {authzid}", tell_client=True)
        self._state = "DONE"
        return Step(complete=True, user=user)

    def _explain(self, error: GSSError) -> str:
        text = " ".join(str(error).split())
        return f"GSSAPI: {text}; the keytab holds {keytab_summary(self._keytab)}"


def acceptor_credentials(keytab: Path) -> gssapi.Credentials:
    """Accepting credentials for every key of ``keytab`` (start-up; errors are clear)."""
    try:
        return gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{keytab}"})
    except GSSError as e:
        text = " ".join(str(e).split())
        raise AuthenticationError(f"cannot use keytab {keytab}: {text}") from None


class NegotiateAcceptor:
    """SPNEGO / Kerberos for HTTP (``Authorization: Negotiate <base64>``), one step per request."""

    def __init__(self, creds: gssapi.Credentials, keytab: Path) -> None:
        self._creds = creds
        self._keytab = keytab

    def accept(self, token: bytes) -> tuple[str, bytes]:
        """The authenticated principal and the token to send back (empty: none)."""
        ctx = gssapi.SecurityContext(creds=self._creds, usage="accept")
        try:
            out = ctx.step(token)
        except GSSError as e:
            text = " ".join(str(e).split())
            raise AuthenticationError(
                f"GSSAPI: {text}; the keytab holds {keytab_summary(self._keytab)}",
                tell_client=True,
            ) from None
        if not ctx.complete:
            raise AuthenticationError(
                "SPNEGO needs more than one round trip; not supported", tell_client=True
            )
        return str(ctx.initiator_name), out or b""


def gssapi_mechanism(keytab: Path) -> MechanismFactory:
    """A factory of GSSAPI exchanges accepting with any key of ``keytab``.

    The credentials are acquired once, here, so a missing or unreadable keytab
    is a start-up error rather than a per-connection one."""
    creds = acceptor_credentials(keytab)

    def factory() -> Mechanism:
        return GssapiMechanism(creds, keytab)

    return factory
