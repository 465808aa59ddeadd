"""A limit on request bodies, enforced while they are read (ASGI middleware)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def describe_size(size: int) -> str:
    """e.g. "16 MiB", "1.5 KiB", "512 bytes"."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


class BodyLimit:
    """Answers 413 to a request whose body is larger than `max_bytes`.

    A declared Content-Length over the limit is refused before anything is read;
    otherwise the bytes are counted as they arrive, and reading stops at the
    limit: a body is never held in memory whole before it is refused.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = (
            f"the request body is larger than this server's limit of {describe_size(max_bytes)} "
            "(SKYRUN_SERVER_MAX_BODY_BYTES); send less in one request"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_bytes:
            await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException: FastAPI passes it on from its body reading
                    # (other exceptions there become a 400) to the 413 handler.
                    raise HTTPException(413, detail=self.message)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            # Raised where no route's handler turns it into the answer: in a
            # middleware that reads the body first (safe_text.SafeTextMiddleware).
            if exc.status_code != 413 or started:
                raise
            await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        for name, value in headers:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0
