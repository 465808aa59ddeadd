"""Who may see the UI's pages: anyone on a server without auth; with auth, a session
whose API key is valid and has the read scope (else the login page)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request

from skyrun.schemas.api_keys import ApiKeyScope


class LoginRequired(Exception):
    """The request has no usable session; answered with a redirect to the login page."""

    def __init__(self, next_path: str, message: str = "") -> None:
        super().__init__(message)
        self.next_path = next_path
        self.message = message

    def location(self) -> str:
        url = f"/login?next={quote(self.next_path, safe='/')}"
        return f"{url}&error={quote(self.message)}" if self.message else url


async def require_viewer(request: Request) -> None:
    """A dependency of every page: raises LoginRequired unless the request may read."""
    auth = getattr(request.app.state, "api_key_auth", None)
    if auth is None:
        return
    session = auth.sessions.read(request) if auth.sessions is not None else None
    key = await auth.verify(session.api_key) if session is not None else None
    path = request.url.path
    if request.url.query:
        path = f"{path}?{request.url.query}"
    if key is None:
        raise LoginRequired(path, "your session has ended; sign in again" if session else "")
    if ApiKeyScope.READ.value not in key.scopes:
        raise LoginRequired(path, f"API key {key.name!r} has no read scope")
    request.state.ui_session = session
    request.state.ui_key = key


def safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (never `//evil` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
