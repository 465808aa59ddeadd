"""The UI's sign-in with auth on: the login page, the session cookie, CSRF on writes, revoked
and read-less keys, open redirects, forged cookies, logout."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from skyrun.server import auth as auth_module
from skyrun.server.db.models import ApiKey
from skyrun.server.encryption import SecretBox
from skyrun.server.sessions import COOKIE_NAME, SessionCookies
from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def auth_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(
        update={"server_auth_enabled": True, "encryption_key": Fernet.generate_key().decode()}
    )


@pytest.fixture
async def ui(auth_settings: Settings, api_for: ApiFor) -> AsyncIterator[httpx.AsyncClient]:
    """The UI of an app that requires API keys (the test's database)."""
    async with api_for(auth_settings) as client:
        yield client


async def new_key(api: httpx.AsyncClient, name: str, scope: str = "write") -> str:
    """A key made on the same database through an app without auth."""
    response = await api.post("/api/api_keys", json={"name": name, "scope": scope})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def sign_in(ui: httpx.AsyncClient, key: str, next_path: str = "/variables") -> httpx.Response:
    return await ui.post("/login", data={"api_key": key, "next": next_path})


def cookie_attributes(response: httpx.Response) -> dict[str, Any]:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed[COOKIE_NAME]
    return {
        "value": morsel.value,
        "httponly": bool(morsel["httponly"]),
        "samesite": morsel["samesite"],
        "path": morsel["path"],
        "secure": bool(morsel["secure"]),
        "max-age": morsel["max-age"],
    }


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert match, html[:500]
    return match.group(1)


async def test_pages_redirect_to_login_and_back(ui: httpx.AsyncClient) -> None:
    response = await ui.get("/variables?before=x")
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=")
    assert unquote(location.removeprefix("/login?next=")) == "/variables?before=x"
    for path in ("/blocks", "/blocks/secret/x", "/artifacts", "/ui/events?topic=variables"):
        assert (await ui.get(path)).status_code == 303, path
    assert (await ui.get("/api/variables")).status_code == 401
    login = await ui.get(location)
    assert login.status_code == 200
    assert '<input type="hidden" name="next" value="/variables?before=x">' in login.text
    assert '<label for="api_key">' in login.text and 'type="password"' in login.text


async def test_a_wrong_or_missing_key_shows_an_error_and_sets_no_cookie(
    ui: httpx.AsyncClient,
) -> None:
    wrong = await sign_in(ui, "sk_nothing_like_a_key")
    assert wrong.status_code == 401
    assert "that API key is invalid or revoked" in wrong.text
    assert "set-cookie" not in wrong.headers
    empty = await sign_in(ui, "   ")
    assert empty.status_code == 401 and "enter an API key" in empty.text
    assert not ui.cookies


async def test_a_right_key_sets_a_strict_cookie_that_reads_the_api(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    key = await new_key(api, "viewer", "read")
    response = await sign_in(ui, key, "/variables")
    assert response.status_code == 303 and response.headers["location"] == "/variables"
    cookie = cookie_attributes(response)
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http here; see the https test
    assert key not in cookie["value"]  # encrypted, not the key
    assert (await ui.get("/variables")).status_code == 200
    assert (await ui.get("/api/variables")).status_code == 200
    assert (await ui.get("/ui/static/app.js")).status_code == 200


async def test_over_https_the_cookie_is_secure(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    key = await new_key(api, "viewer", "read")
    response = await ui.post("https://test/login", data={"api_key": key, "next": "/"})
    assert response.status_code == 303
    assert cookie_attributes(response)["secure"]


async def test_writes_with_the_cookie_need_the_csrf_token(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    await sign_in(ui, await new_key(api, "writer"))
    token = csrf_of((await ui.get("/variables")).text)
    assert token
    missing = await ui.put("/api/variables/v", json={"value": 1})
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    wrong = await ui.put("/api/variables/v", json={"value": 1}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    # A token that is not ASCII is refused like any wrong one (it used to be a 500).
    odd = await ui.put(
        "/api/variables/v", json={"value": 1}, headers={"X-CSRF-Token": "é".encode("latin-1")}
    )
    assert odd.status_code == 403, odd.text
    # Read-only POSTs need it too: the token guards every unsafe method.
    assert (await ui.post("/api/flow_runs/filter", json={})).status_code == 403
    right = await ui.put("/api/variables/v", json={"value": 1}, headers={"X-CSRF-Token": token})
    assert right.status_code == 200, right.text
    assert (await api.get("/api/variables/v")).json()["value"] == 1
    # The cookie does not lift the key's own scope.
    assert (await ui.get("/api/api_keys", headers={"X-CSRF-Token": token})).status_code == 403


async def test_a_session_of_a_key_revoked_through_this_server_ends_at_once(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    admin = await new_key(api, "admin", "admin")
    await sign_in(ui, await new_key(api, "doomed"))
    assert (await ui.get("/variables")).status_code == 200  # now cached as valid
    revoked = await ui.delete("/api/api_keys/doomed", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 200, revoked.text
    page = await ui.get("/variables")
    assert page.status_code == 303
    assert page.headers["location"].endswith("&error=ended")
    assert "your session has ended" in (await ui.get(page.headers["location"])).text
    assert (await ui.get("/api/variables")).status_code == 401


async def test_a_key_revoked_elsewhere_is_refused_once_the_cache_expires(
    api: httpx.AsyncClient, ui: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(ui, await new_key(api, "elsewhere"))
    assert (await ui.get("/variables")).status_code == 200
    # Revoked by another replica: straight in the shared database.
    database = ui._transport.app.state.database  # type: ignore[attr-defined]
    async with database.session() as session, session.begin():
        await session.execute(
            sa.update(ApiKey).where(ApiKey.name == "elsewhere").values(revoked=True)
        )
    now = auth_module.time.monotonic()
    monkeypatch.setattr(auth_module.time, "monotonic", lambda: now + auth_module.CACHE_SECONDS + 1)
    assert (await ui.get("/variables")).status_code == 303
    assert (await ui.get("/api/variables")).status_code == 401


async def test_a_key_without_read_scope_cannot_sign_in(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    key = await new_key(api, "odd")
    database = ui._transport.app.state.database  # type: ignore[attr-defined]
    async with database.session() as session, session.begin():
        await session.execute(sa.update(ApiKey).where(ApiKey.name == "odd").values(scopes="write"))
    response = await sign_in(ui, key)
    assert response.status_code == 401
    assert "API key &#39;odd&#39; has no read scope" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "https://evil.com/x",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "/\n/evil.com",
        "javascript:alert(1)",
        "evil.com",
        "",
    ],
)
async def test_next_never_leaves_the_site(
    api: httpx.AsyncClient, ui: httpx.AsyncClient, target: str
) -> None:
    key = await new_key(api, "viewer", "read")
    response = await sign_in(ui, key, target)
    assert response.status_code == 303
    location = response.headers["location"]
    # What a browser makes of it (it drops tabs and newlines, reads '\' as '/').
    browser_sees = re.sub(r"[\t\n\r]", "", unquote(location)).replace("\\", "/")
    assert browser_sees.startswith("/") and not browser_sees.startswith("//"), location
    shown = await ui.get("/login", params={"next": target})
    assert 'name="next" value="/"' in shown.text


async def test_forged_or_garbled_cookies_are_ignored(
    ui: httpx.AsyncClient, auth_settings: Settings
) -> None:
    other_box = SecretBox(
        auth_settings.model_copy(update={"encryption_key": Fernet.generate_key().decode()})
    )
    _, foreign = SessionCookies(other_box).new("sk_whatever_secret")
    values = [b"garbage", b"gAAAAA" + b"A" * 100, foreign.encode(), "é".encode("latin-1"), b""]
    for value in values:
        cookie = {"Cookie": COOKIE_NAME.encode() + b"=" + value}
        page = await ui.get("/variables", headers=cookie)
        assert page.status_code == 303, value
        assert "error=" not in page.headers["location"]
        assert (await ui.get("/api/variables", headers=cookie)).status_code == 401, value


async def test_logout_needs_the_csrf_token_and_clears_the_cookie(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    await sign_in(ui, await new_key(api, "viewer", "read"))
    html = (await ui.get("/variables")).text
    token = csrf_of(html)
    assert f'<input type="hidden" name="csrf_token" value="{token}">' in html
    assert (await ui.post("/logout")).status_code == 403
    assert (await ui.post("/logout", data={"csrf_token": "wrong"})).status_code == 403
    assert (await ui.post("/logout", data={"csrf_token": "é"})).status_code == 403
    assert (await ui.get("/variables")).status_code == 200  # still signed in
    out = await ui.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    cleared = cookie_attributes(out)
    assert cleared["value"] == "" and cleared["max-age"] == "0" and cleared["httponly"]
    assert (await ui.get("/variables")).status_code == 303


async def test_the_login_page_shows_only_its_own_messages(ui: httpx.AsyncClient) -> None:
    """`error` in the URL names a message; free text from a link is never shown."""
    forged = await ui.get("/login?error=Your+key+expired%2C+mail+it+to+evil%40example.com")
    assert forged.status_code == 200
    assert "evil@example.com" not in forged.text
    assert "your session has ended" in (await ui.get("/login?error=ended")).text


async def test_a_sign_in_posted_from_another_site_is_refused(
    api: httpx.AsyncClient, ui: httpx.AsyncClient
) -> None:
    key = await new_key(api, "lured", "read")
    foreign = await ui.post(
        "/login", data={"api_key": key, "next": "/"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert foreign.status_code == 403
    assert "set-cookie" not in foreign.headers
    own = await ui.post(
        "/login", data={"api_key": key, "next": "/"}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert own.status_code == 303 and "set-cookie" in own.headers


async def test_an_open_event_stream_ends_soon_after_its_key_is_revoked(
    api: httpx.AsyncClient, ui: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from skyrun.server.ui import events

    monkeypatch.setattr(events, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(events, "RECHECK_KEY_SECONDS", 0.1)
    monkeypatch.setattr(events, "STREAM_SECONDS", 60.0)
    admin = await new_key(api, "admin", "admin")
    await sign_in(ui, await new_key(api, "watcher", "read"))
    stream = asyncio.create_task(ui.get("/ui/events?topic=variables"))
    await asyncio.sleep(0.5)
    assert not stream.done()  # the stream is open while the key is good
    revoked = await ui.delete("/api/api_keys/watcher", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 200, revoked.text
    # It ends by itself (a guard of 10 s against the 60 s it would otherwise run).
    done = await asyncio.wait_for(stream, 10)
    assert done.status_code == 200
