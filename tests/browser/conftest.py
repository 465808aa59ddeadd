"""Browser tests: Debian's headless Chromium driven by Playwright, against real servers.

Chromium is /usr/bin/chromium (apt-get install chromium; never `playwright
install`). Without it the tests skip, except under CI, where they must run.
Screenshots of the pages go to tests/browser/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("SKYRUN_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
# How long a page may take to show what a test waits for: a guard, not a timing test.
WAIT_MS = 20_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# Module-scoped: sync Playwright holds an event loop while it is open, and an xdist
# worker runs async tests of other modules after a browser module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and a page in it; console errors are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    tab.console_errors = []
    tab.on(
        "console",
        lambda message: (
            tab.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    tab.dialogs = []

    def accept(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        dialog.accept()

    tab.on("dialog", accept)
    yield tab
    context.close()


@pytest.fixture(scope="module")
def api(server: Any) -> Iterator[httpx.Client]:
    """An HTTP client of the module's `server` fixture's API (to seed and check data)."""
    with httpx.Client(base_url=server.api_url + "/", timeout=30) as client:
        yield client


def screenshot(page: Any, name: str) -> Path:
    """Save the page (whole) as tests/browser/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
