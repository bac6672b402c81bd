"""The ``impala.auth`` cookie of hs2-http, as Impala's ``authentication-util.cc`` makes it.

After a request authenticates (SPNEGO, or Basic checked against a password file), the
response carries ``Set-Cookie: impala.auth=<signature>&u=<user>&t=<ms>&r=<random>;
HttpOnly;Max-Age=<--max_cookie_lifetime_s>[;Secure]``; the signature is HMAC-SHA256
under a key each impalad draws at start, in web-safe base64. A later request that
returns a valid cookie is that user without authenticating again, so an HTTP client
authenticates once per session instead of once per call. A cookie that does not verify
(another coordinator's key, tampered, past its lifetime) is refused: the response
deletes it (``impala.auth=;HttpOnly;Max-Age=0``) and the request falls back to its
``Authorization`` header, or to a 401 the client answers by authenticating again.
``--max_cookie_lifetime_s=0`` turns cookies off; ``--cookie_require_secure`` (default
true, as Impala) adds ``Secure``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import time
from collections.abc import Callable

COOKIE_NAME = "impala.auth"
DELETE_COOKIE = f"{COOKIE_NAME}=;HttpOnly;Max-Age=0"
#: Impala checks at most this many cookies of one ``Cookie`` header
MAX_COOKIES_TO_CHECK = 5


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class CookieSigner:
    """Makes and checks this impalad's cookies (one random key per process)."""

    def __init__(
        self,
        lifetime_s: int,
        *,
        secure: bool = True,
        key: bytes | None = None,
        now_ms: Callable[[], int] = _monotonic_ms,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.secure = secure
        self._key = key if key is not None else os.urandom(32)
        self._now_ms = now_ms

    def _sign(self, value: str) -> bytes:
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).digest()

    def make(self, user: str) -> str:
        """The ``Set-Cookie`` value for ``user``."""
        value = f"u={user}&t={self._now_ms()}&r={random.randrange(2**31)}"
        signature = base64.urlsafe_b64encode(self._sign(value)).decode("ascii")
        secure = ";Secure" if self.secure else ""
        return f"{COOKIE_NAME}={signature}&{value};HttpOnly;Max-Age={self.lifetime_s}{secure}"

    def check(self, header: str) -> tuple[str | None, str]:
        """(the user of a valid ``impala.auth`` cookie in ``header``, or None; why not)."""
        for pair in header.split(";")[:MAX_COOKIES_TO_CHECK]:
            name, sep, cookie = pair.strip().partition("=")
            if not sep or name != COOKIE_NAME:
                continue
            if len(cookie) >= 2 and cookie[0] == cookie[-1] == '"':
                cookie = cookie[1:-1]
            signature_text, sep, value = cookie.partition("&")
            if not sep:
                return None, "The cookie has an invalid format."
            try:
                raw = signature_text.encode("ascii")
                signature = base64.b64decode(raw, altchars=b"-_", validate=True)
            except (ValueError, UnicodeEncodeError):
                return None, "Unable to decode base64 signature."
            if len(signature) != hashlib.sha256().digest_size:
                return None, "Signature is an incorrect length."
            if not hmac.compare_digest(signature, self._sign(value)):
                return None, "The signature is incorrect."
            parts = value.split("&")
            if len(parts) != 3:
                return None, "The cookie value has an invalid format."
            user, stamp, rand = parts
            if not stamp.startswith("t="):
                return None, "The cookie timestamp value has an invalid format."
            try:
                created = int(stamp[2:])
            except ValueError:
                return None, "Could not parse cookie timestamp."
            if self._now_ms() - created > self.lifetime_s * 1000:
                return None, "Cookie is past its max lifetime."
            if not user.startswith("u=") or not rand.startswith("r="):
                return None, "The cookie username value has an invalid format."
            return user[2:], ""
        return None, f"Did not find expected cookie name: {COOKIE_NAME}"
