"""Every main page, as people with other screens and habits meet it: a narrow window, a
dark system theme, the keyboard alone, a screen reader's need for labels.

One server with a little of everything (a pool, a deployment and its run with a log line
and an artifact, a block, a variable); each page is checked at a laptop's width and a
phone's, in the light and the dark theme.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import screenshot
from processes import ServerProcess

# Controls a page shows that no label names (hidden inputs and the like excepted).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120))"""
# How far the page is wider than the window (tables scroll inside their own box).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    server = ServerProcess(tmp_path_factory.mktemp("usability-ui"))
    try:
        with httpx.Client(base_url=server.api_url + "/", timeout=30) as api:

            def made(response: httpx.Response) -> Any:
                assert response.status_code in (200, 201), response.text
                return response.json()

            made(
                api.post(
                    "work_pools", json={"name": "a-rather-long-pool-name", "type": "cloud-run"}
                )
            )
            made(api.post("flows", json={"name": "nightly-etl"}))
            deployment = made(
                api.post(
                    "deployments",
                    json={
                        "flow_name": "nightly-etl",
                        "name": "warehouse-load",
                        "entrypoint": "flows.py:nightly_etl",
                        "work_pool_name": "a-rather-long-pool-name",
                        "parameters": {"date": "2026-12-01"},
                    },
                )
            )
            run = made(api.post(f"deployments/{deployment['id']}/runs", json={}))
            made(
                api.post(
                    "logs",
                    json=[
                        {
                            "flow_run_id": run["id"],
                            "name": "etl",
                            "level": 20,
                            "message": "loaded 1200 rows " + "x" * 300,
                            "timestamp": "2026-12-02T10:00:00Z",
                        }
                    ],
                )
            )
            made(
                api.post(
                    "artifacts",
                    json={
                        "key": "load-report",
                        "type": "markdown",
                        "data": "# Load\n\n| table | rows |\n|---|---|\n| orders | 1200 |",
                        "flow_run_id": run["id"],
                    },
                )
            )
            made(
                api.post(
                    "blocks",
                    json={"block_type": "secret", "name": "db-password", "data": {"value": "pw"}},
                )
            )
            made(api.put("variables/region", json={"value": "europe-west1"}))
        base = server.api_url.removesuffix("/api")
        yield {
            "dashboard": f"{base}/",
            "runs": f"{base}/runs",
            "run": f"{base}/runs/{run['id']}",
            "deployments": f"{base}/deployments",
            "deployment": f"{base}/deployments/{deployment['id']}",
            "work-pools": f"{base}/work-pools",
            "work-pool": f"{base}/work-pools/a-rather-long-pool-name?tab=variables",
            "blocks": f"{base}/blocks",
            "block-create": f"{base}/blocks/new?type=gcp-credentials",
            "variables": f"{base}/variables",
            "artifacts": f"{base}/artifacts",
        }
    finally:
        server.stop()


def test_every_page_labels_its_controls_and_fits_a_narrow_window(
    site: dict[str, str], page: Any
) -> None:
    for name, url in site.items():
        page.set_viewport_size({"width": 1280, "height": 860})
        page.goto(url)
        assert page.evaluate(UNLABELLED) == [], name
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(50)  # a layout pass at the new width
        assert page.evaluate(OVERFLOW) <= 1, f"{name} is wider than a 390 px window"
        screenshot(page, f"narrow-{name}")


def test_the_dark_theme_follows_the_system(site: dict[str, str], page: Any) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.goto(site["run"])
        colours[scheme] = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.body).color]"
        )
        screenshot(page, f"{scheme}-run")
    assert colours["light"][0] != colours["dark"][0]
    assert colours["light"][1] != colours["dark"][1]


def test_the_keyboard_alone_reaches_the_content_with_a_visible_focus(
    site: dict[str, str], page: Any
) -> None:
    page.goto(site["deployments"])
    page.keyboard.press("Tab")
    skip = page.evaluate(
        "() => [document.activeElement.textContent, document.activeElement.getBoundingClientRect().left]"
    )
    assert skip[0] == "Skip to content" and skip[1] >= 0  # shown while focused
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "content"
    # The next Tab lands on the first link of the content, drawn with a focus outline.
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const el = document.activeElement; const s = getComputedStyle(el);"
        " return [el.closest('main') !== null, s.outlineStyle, parseFloat(s.outlineWidth)]; }"
    )
    assert focused[0], "focus left the content"
    assert focused[1] != "none" and focused[2] >= 2
    # A live refresh re-renders the fragment around it: the focus stays on the same link.
    before = page.evaluate("() => document.activeElement.getAttribute('href')")
    page.evaluate("() => skyrun.refresh()")
    after = page.evaluate(
        "() => [document.activeElement.getAttribute('href'),"
        " document.activeElement.closest('[data-fragment]') !== null]"
    )
    assert after == [before, True], "a live refresh threw the focus away"
    # And Enter follows it, as a click would.
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.url != site["deployments"]
