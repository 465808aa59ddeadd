"""Checking callers against one service-account key, as Google's front end would.

Given a key file, the emulator serves the OAuth token endpoint at the path of the
key's `token_uri` (a JWT-bearer grant signed by the key buys an access token) and
accepts an API call only with `Authorization: Bearer T` where T is a token it issued
and has not expired, or a self-signed JWT signed by the key (`iss` and `sub` = the
key's `client_email`) — what Google's client library sends with service-account
credentials over REST. Signatures are checked with the key's public half.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography.hazmat.primitives import serialization
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from skyrun.integrations.gcp.emulator.state import ApiError

TOKEN_LIFETIME_SECONDS = 3600
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)


class ServiceAccountAuth:
    """The token endpoint and the bearer check for one service-account key.

    Args:
        key_file: a service-account key (JSON with client_email, private_key, token_uri).
    """

    def __init__(self, key_file: Path) -> None:
        info = json.loads(key_file.read_text())
        missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
        if missing:
            raise ValueError(
                f"{key_file}: not a service-account key (missing {', '.join(missing)})"
            )
        self.client_email: str = info["client_email"]
        self.token_uri: str = info["token_uri"]
        self.token_path = urlparse(self.token_uri).path or "/token"
        private_key = serialization.load_pem_private_key(info["private_key"].encode(), None)
        self.public_key_pem = (
            private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self._tokens: dict[str, float] = {}

    def _claims(self, assertion: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(assertion, certs=self.public_key_pem)
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise ApiError(401, "UNAUTHENTICATED", f"{UNAUTHENTICATED} ({exc})") from exc
        if claims.get("iss") != self.client_email:
            raise ApiError(
                401, "UNAUTHENTICATED", f"{UNAUTHENTICATED} (iss is not {self.client_email})"
            )
        return claims

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request: (HTTP status, OAuth JSON body)."""
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"grant_type must be {JWT_BEARER_GRANT}",
            }
        try:
            claims = self._claims(form.get("assertion", ""))
        except ApiError as exc:
            return 400, {"error": "invalid_grant", "error_description": exc.message}
        # google-auth addresses its grant to Google's token URI whatever the key says.
        if claims.get("aud") not in (self.token_uri, GOOGLE_TOKEN_URI):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT audience."}
        token = f"emu.{secrets.token_urlsafe(24)}"
        self._tokens[token] = time.time() + TOKEN_LIFETIME_SECONDS
        return 200, {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "token_type": "Bearer",
        }

    def check(self, authorization: str | None) -> None:
        """Raise 401 UNAUTHENTICATED unless the header carries a credential of the key."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise ApiError(401, "UNAUTHENTICATED", f"{UNAUTHENTICATED} (no bearer credential)")
        expiry = self._tokens.get(credential)
        if expiry is not None:
            if expiry < time.time():
                raise ApiError(401, "UNAUTHENTICATED", f"{UNAUTHENTICATED} (token expired)")
            return
        claims = self._claims(credential)
        if claims.get("sub") != self.client_email:
            raise ApiError(
                401, "UNAUTHENTICATED", f"{UNAUTHENTICATED} (sub is not {self.client_email})"
            )
