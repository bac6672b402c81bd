"""The HS2 binary port when authentication is required, with bytes in memory."""

from __future__ import annotations

from twisted.internet.testing import StringTransport

from backends.impalad import _wire, sasl
from backends.impalad.gen.TCLIService import ttypes as t
from backends.impalad.transport import HS2Protocol
from tests.impalad.test_http_and_main import make_server
from tests.impalad.thriftmsg import call


class Refusing:
    """A mechanism that refuses, as GSSAPI does for a ticket the keytab cannot decrypt."""

    def __init__(self, tell_client: bool) -> None:
        self.tell_client = tell_client

    def step(self, token: bytes) -> sasl.Step:
        raise sasl.AuthenticationError("GSSAPI: no key for impala/x", tell_client=self.tell_client)


def connect(
    mechanisms: dict[str, sasl.MechanismFactory], allow_nosasl: bool
) -> tuple[HS2Protocol, StringTransport]:
    proto = HS2Protocol(make_server(), mechanisms, allow_nosasl=allow_nosasl)
    tr = StringTransport()
    proto.makeConnection(tr)  # type: ignore[no-untyped-call]
    return proto, tr


def test_nosasl_client_is_answered_with_an_error_and_closed() -> None:
    """With NOSASL refused, an unframed call gets a TApplicationException saying why; then close."""
    proto, tr = connect({"GSSAPI": lambda: Refusing(True)}, allow_nosasl=False)
    proto.dataReceived(call("OpenSession", t.TOpenSessionReq(5)))
    assert b"requires SASL authentication (GSSAPI)" in tr.value()
    assert tr.disconnecting


def test_refusal_text_reaches_the_client_only_when_the_mechanism_says_so() -> None:
    """A GSSAPI refusal travels in the BAD message; a password refusal says only 'failed'."""
    for tell, expected in (
        (True, b"GSSAPI: no key for impala/x"),
        (False, b"Authentication failed"),
    ):
        proto, tr = connect({"GSSAPI": lambda tell=tell: Refusing(tell)}, allow_nosasl=False)  # type: ignore[misc]
        proto.dataReceived(
            _wire.sasl_message(_wire.SaslStatus.START, b"GSSAPI")
            + _wire.sasl_message(_wire.SaslStatus.OK, b"token")
        )
        assert tr.value() == _wire.sasl_message(_wire.SaslStatus.BAD, expected)
        assert tr.disconnecting
