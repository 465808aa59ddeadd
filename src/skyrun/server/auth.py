"""Bearer API-key authentication for the API, when enabled."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from skyrun.server.db import api_keys
from skyrun.server.db.engine import Database

OPEN_PATHS = frozenset({"/api/health", "/api/docs", "/api/openapi.json", "/api/version"})
_CACHE_SECONDS = 5.0


class ApiKeyAuth:
    """Checks `Authorization: Bearer <key>` on every /api request but the open ones.

    Verified keys are remembered for a few seconds so a busy worker does not
    cost a key lookup per request; a revoked key stops working within that time.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._verified: dict[str, float] = {}

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/api") or path in OPEN_PATHS:
            return await call_next(request)
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return _unauthorized(
                "this server requires an API key: send 'Authorization: Bearer <key>' (set SKYRUN_API_KEY)"
            )
        if not await self._is_valid(presented.strip()):
            return _unauthorized(
                "the API key is invalid or revoked; create one with 'skyrun api-key create NAME'"
            )
        return await call_next(request)

    async def _is_valid(self, presented: str) -> bool:
        now = time.monotonic()
        expires = self._verified.get(presented)
        if expires is not None and expires > now:
            return True
        async with self.database.session() as session, session.begin():
            key = await api_keys.verify_api_key(session, presented)
        if key is None:
            self._verified.pop(presented, None)
            return False
        self._verified[presented] = now + _CACHE_SECONDS
        return True


def _unauthorized(message: str) -> Response:
    return JSONResponse(
        {"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )
