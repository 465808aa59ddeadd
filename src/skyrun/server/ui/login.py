"""The login page: an API key given once, kept in the session cookie (server/sessions.py)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from skyrun.schemas.api_keys import ApiKeyScope
from skyrun.server.sessions import clear_cookie, set_cookie, tokens_match
from skyrun.server.ui.guard import LOGIN_MESSAGES, safe_next
from skyrun.server.ui.render import page

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


@router.get("/login")
async def login_page(request: Request, next: str = "/", error: str = "") -> Response:
    if getattr(request.app.state, "api_key_auth", None) is None:
        return RedirectResponse(safe_next(next), status_code=303)
    # `error` names one of our messages: a link cannot make the page say what it likes.
    message = LOGIN_MESSAGES.get(error, "")
    return page(request, "login.html", next_path=safe_next(next), error=message)


def _cross_site(request: Request) -> bool:
    """A form posted from another site (browsers say so in Sec-Fetch-Site; proxies keep it)."""
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


@router.post("/login")
async def login(request: Request) -> Response:
    auth = getattr(request.app.state, "api_key_auth", None)
    if _cross_site(request):
        # Login CSRF: another site signing this browser in with a key of its choosing.
        return Response("sign in from this server's own login page", 403)
    form = await _form(request)
    next_path = safe_next(form.get("next"))
    if auth is None or auth.sessions is None:
        return RedirectResponse(next_path, status_code=303)
    presented = form.get("api_key", "").strip()
    key = await auth.verify(presented) if presented else None
    error = ""
    if not presented:
        error = "enter an API key (an admin makes one with 'skyrun api-key create NAME')"
    elif key is None:
        error = "that API key is invalid or revoked"
    elif ApiKeyScope.READ.value not in key.scopes:
        error = f"API key {key.name!r} has no read scope"
    if error:
        return page(request, "login.html", status_code=401, next_path=next_path, error=error)
    _, cookie = auth.sessions.new(presented)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, cookie)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth = getattr(request.app.state, "api_key_auth", None)
    response = RedirectResponse("/login" if auth is not None else "/", status_code=303)
    if auth is None or auth.sessions is None:
        return response
    session = auth.sessions.read(request)
    form = await _form(request)
    # The form sends the token as a field (a plain form cannot set a header).
    if session is not None and not tokens_match(form.get("csrf_token", ""), session.csrf):
        return Response("the logout form's CSRF token is missing or wrong; reload the page", 403)
    clear_cookie(response, request)
    return response
