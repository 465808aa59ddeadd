"""Bearer API-key authentication and scopes for the API, when enabled."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from skyrun.schemas.api_keys import ApiKey, ApiKeyScope, highest_scope
from skyrun.server.db import api_keys
from skyrun.server.db.engine import Database
from skyrun.server.sessions import SessionCookies, csrf_ok

OPEN_PATHS = frozenset({"/api/health", "/api/docs", "/api/openapi.json", "/api/version"})
# How long a verified key is trusted without a lookup. A key revoked through this
# server is forgotten at once; another replica notices within this time.
CACHE_SECONDS = 5.0
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST routes that only read (a filter too large for a query string).
_READ_ONLY_POST_SUFFIXES = ("/filter",)


# The values of a query flag that do not turn it on (as the routes parse booleans);
# any other value of `include_secrets` needs the `secrets` scope, so nothing slips through.
_FALSE_FLAGS = frozenset({"", "0", "false", "f", "no", "n", "off"})


def required_scope(method: str, path: str, include_secrets: Iterable[str] = ()) -> ApiKeyScope:
    """The scope a request needs: admin for API keys, secrets to read a block's secrets,
    read to read, write for the rest.

    Args:
        method: The HTTP method.
        path: The URL path.
        include_secrets: The request's `include_secrets` query values (all of them: a
            repeated parameter must not hide a true one).
    """
    if path == "/api/api_keys" or path.startswith("/api/api_keys/"):
        return ApiKeyScope.ADMIN
    if path.startswith("/api/blocks/") and any(
        value.strip().lower() not in _FALSE_FLAGS for value in include_secrets
    ):
        return ApiKeyScope.SECRETS
    if method in _READ_METHODS or (method == "POST" and path.endswith(_READ_ONLY_POST_SUFFIXES)):
        return ApiKeyScope.READ
    return ApiKeyScope.WRITE


class ApiKeyAuth:
    """Checks `Authorization: Bearer <key>` and its scope on every /api request but the open ones.

    A request without the header may carry the UI's session cookie instead
    (server/sessions.py): its key is checked the same way, and a request that could
    change something must also carry the session's CSRF token.

    Verified keys are remembered for CACHE_SECONDS so a busy worker does not cost
    a key lookup per request.
    """

    def __init__(self, database: Database, sessions: SessionCookies | None = None) -> None:
        self.database = database
        self.sessions = sessions
        self._verified: dict[str, tuple[float, ApiKey]] = {}

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/api") or path in OPEN_PATHS:
            return await call_next(request)
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if not header and self.sessions is not None:
            session = self.sessions.read(request)
            if session is not None:
                if not csrf_ok(request, request.method, session):
                    return _error(
                        403,
                        "this request came with the UI's session cookie but without its "
                        "CSRF token: send the page's token in X-CSRF-Token (reload the page)",
                    )
                scheme, presented = "bearer", session.api_key
        if scheme.lower() != "bearer" or not presented:
            return _error(
                401,
                "this server requires an API key: send 'Authorization: Bearer <key>' "
                "(set SKYRUN_API_KEY)",
            )
        key = await self.verify(presented.strip())
        if key is None:
            return _error(
                401,
                "the API key is invalid or revoked; an admin creates one with "
                "'skyrun api-key create NAME'",
            )
        needed = required_scope(
            request.method, path, request.query_params.getlist("include_secrets")
        )
        if needed.value not in key.scopes:
            return _error(
                403,
                f"API key {key.name!r} has scope {highest_scope(key.scopes)!r}; "
                f"{request.method} {path} needs {needed.value!r} "
                f"(create a key with 'skyrun api-key create NAME --scope {needed.value}')",
            )
        return await call_next(request)

    async def verify(self, presented: str) -> ApiKey | None:
        """The key `presented` is, if it is valid and not revoked (cached for CACHE_SECONDS)."""
        now = time.monotonic()
        cached = self._verified.get(presented)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.database.session() as session, session.begin():
            key = await api_keys.verify_api_key(session, presented)
        if key is None:
            self._verified.pop(presented, None)
            return None
        self._verified[presented] = (now + CACHE_SECONDS, key)
        return key

    def forget(self, key_id: uuid.UUID) -> None:
        """Stop trusting a key now (it was just revoked)."""
        for presented, (_, key) in list(self._verified.items()):
            if key.id == key_id:
                del self._verified[presented]


def _error(status_code: int, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)
