"""The web UI's sessions: an API key given once at login, kept in an encrypted cookie.

The cookie holds the key and a CSRF token, encrypted and authenticated with a
Fernet key derived from the installation's encryption key (so every replica,
which must share that key, reads every replica's sessions). A request that
carries the cookie instead of an `Authorization` header is checked exactly as if
it had sent the key: its scopes, its revocation. Any request that could change
something must also send the CSRF token in `X-CSRF-Token` (the page has it; a
foreign site cannot read it), and the cookie is SameSite=Lax besides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.responses import Response

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from skyrun.server.encryption import SecretBox

COOKIE_NAME = "skyrun_session"
CSRF_HEADER = "x-csrf-token"
# A session lasts a working day; then the UI asks for the key again.
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    api_key: str
    csrf: str


class SessionCookies:
    """Makes and reads session cookies with a key derived from the SecretBox's."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            derived = hmac.new(
                self._box.key().encode("ascii"), b"skyrun ui session cookie", hashlib.sha256
            ).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        return self._fernet

    def new(self, api_key: str) -> tuple[Session, str]:
        """A session for `api_key` and its cookie value."""
        session = Session(api_key=api_key, csrf=secrets.token_urlsafe(24))
        payload = json.dumps({"k": session.api_key, "c": session.csrf}).encode()
        return session, self._cipher().encrypt(payload).decode("ascii")

    def read(self, connection: HTTPConnection) -> Session | None:
        """The request's session, or None if it has no cookie, a forged or an expired one."""
        from cryptography.fernet import InvalidToken

        value = connection.cookies.get(COOKIE_NAME)
        if not value:
            return None
        try:
            payload = json.loads(self._cipher().decrypt(value.encode("ascii"), ttl=SESSION_SECONDS))
            return Session(api_key=str(payload["k"]), csrf=str(payload["c"]))
        except (InvalidToken, ValueError, KeyError, TypeError, UnicodeEncodeError):
            return None


def csrf_ok(connection: HTTPConnection, method: str, session: Session) -> bool:
    """Whether a cookie-authenticated request may proceed: reads always, writes with the token."""
    if method in SAFE_METHODS:
        return True
    return tokens_match(connection.headers.get(CSRF_HEADER, ""), session.csrf)


def tokens_match(sent: str, expected: str) -> bool:
    """Whether a sent CSRF token is the session's, in constant time.

    Compared as bytes: `hmac.compare_digest` raises on a str that is not ASCII, and a
    header or form field can hold anything.
    """
    return bool(sent) and hmac.compare_digest(
        sent.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )


def set_cookie(response: Response, connection: HTTPConnection, value: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=connection.url.scheme == "https",
    )


def clear_cookie(response: Response, connection: HTTPConnection) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=connection.url.scheme == "https",
    )
