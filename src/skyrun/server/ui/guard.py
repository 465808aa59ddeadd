"""Who may see the UI's pages: anyone on a server without auth; with auth, a session
whose API key is valid and has the read scope (else the login page)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request

from skyrun.schemas.api_keys import ApiKeyScope

# What the login page may say when it is sent there (`/login?error=CODE`): only these,
# so a link cannot put its own words on the page.
LOGIN_MESSAGES = {
    "ended": "your session has ended; sign in again",
    "scope": "that API key has no read scope; sign in with another",
}


class LoginRequired(Exception):
    """The request has no usable session; answered with a redirect to the login page.

    Args:
        next_path: where to come back to after signing in.
        reason: a key of LOGIN_MESSAGES, or "" for none.
    """

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__(LOGIN_MESSAGES.get(reason, reason))
        self.next_path = next_path
        self.reason = reason

    def location(self) -> str:
        url = f"/login?next={quote(self.next_path, safe='/')}"
        return f"{url}&error={self.reason}" if self.reason else url


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
        raise LoginRequired(path, "ended" if session else "")
    if ApiKeyScope.READ.value not in key.scopes:
        raise LoginRequired(path, "scope")
    request.state.ui_session = session
    request.state.ui_key = key


def safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (never `//evil` or a URL).

    Control characters are refused too: a browser drops a tab or a newline from a
    URL, so `/<TAB>/evil.com` would be `//evil.com` to it.
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return "/"
    return value
