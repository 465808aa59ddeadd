"""Signing in to the UI of a server with auth on: redirected to the login page, back where
we were, a write through a form (the session's CSRF token), a wrong key, signing out."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import screenshot
from processes import SKYRUN, ServerProcess, clean_env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ui-login"), SKYRUN_SERVER_AUTH_ENABLED="true")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def admin_key(server: ServerProcess) -> str:
    """The first admin key, made the way the docs say: the CLI on the server's home, no API URL."""
    created = subprocess.run(
        [str(SKYRUN), "api-key", "create", "ui-admin", "--scope", "admin", "--output", "json"],
        env=clean_env(server.home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key: str = json.loads(created.stdout)["key"]
    return key


def test_sign_in_write_and_sign_out(page: Any, server: ServerProcess, admin_key: str) -> None:
    base = server.api_url.removesuffix("/api")
    assert httpx.get(f"{server.api_url}/variables").status_code == 401

    page.goto(f"{base}/variables")
    page.wait_for_url("**/login?next=/variables")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "login")

    page.get_by_label("API key").fill("sk_wrong_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("that API key is invalid or revoked")

    page.get_by_label("API key").fill(admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/variables")
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert admin_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it

    # A write through the form: the page's script sends the session's CSRF token.
    page.get_by_label("Name").fill("signed-in")
    page.get_by_label("Value", exact=True).fill('{"ok": true}')
    page.get_by_role("button", name="Create variable").click()
    expect(page.locator("#variable-signed-in")).to_contain_text('"ok": true')
    stored = httpx.get(
        f"{server.api_url}/variables/signed-in", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert stored.json()["value"] == {"ok": True}

    # The same write from script without the token is refused.
    status = page.evaluate(
        """async () => (await fetch('/api/variables/no-token', {method: 'PUT',
            headers: {'Content-Type': 'application/json'}, body: '{"value": 1}'})).status"""
    )
    assert status == 403

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.context.cookies() == []
    page.goto(f"{base}/blocks")
    page.wait_for_url("**/login?next=/blocks")
