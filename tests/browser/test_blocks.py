"""Blocks, variables and artifacts in a real browser against a real server: a gcp-credentials
block from a pasted key and from an uploaded key file, the server's 422 next to the field,
secrets never on the page, variables created and edited, artifacts rendered, XSS inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from cloud_run_emulator import service_account_key
from conftest import WAIT_MS, screenshot
from processes import ServerProcess

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
JS_LINK = "[click me](javascript:window.__xss=1)"
TOKEN_URI = "https://oauth2.googleapis.com/token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ui-blocks"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def base(server: ServerProcess) -> str:
    return server.api_url.removesuffix("/api")


def assert_inert(page: Any) -> None:
    """No payload ran, and none was even tried: the CSP had nothing to refuse (the payloads
    are text, not markup the policy happened to stop)."""
    assert page.evaluate("window.__xss") is None
    refused = [text for text in page.console_errors if "Content Security Policy" in text]
    assert not refused, refused


def stored_key(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"blocks/gcp-credentials/{name}", params={"include_secrets": "true"})
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()["data"]["service_account_info"]
    return info


def test_create_a_gcp_block_by_pasting_the_key(
    page: Any, base: str, api: httpx.Client, tmp_path: Path
) -> None:
    info = service_account_key(tmp_path / "key.json", TOKEN_URI)
    page.goto(f"{base}/blocks")
    expect(page.get_by_role("heading", name="GCP Credentials gcp-credentials")).to_be_visible()
    screenshot(page, "blocks-catalogue")
    page.get_by_role("link", name="Create GCP Credentials").click()
    page.wait_for_url("**/blocks/new?type=gcp-credentials")
    page.get_by_label("Name").fill("pasted")
    page.get_by_label("Project").fill("skyrun-test")
    page.get_by_label("Service Account Info").fill(json.dumps(info, indent=2))
    screenshot(page, "block-create")
    page.get_by_role("button", name="Create block").click()
    page.wait_for_url("**/blocks/gcp-credentials/pasted")

    assert stored_key(api, "pasted")["private_key"] == info["private_key"]
    expect(page.get_by_role("heading", name="pasted gcp-credentials")).to_be_visible()
    expect(page.locator(".masked")).to_have_text("********")
    html = page.content()
    pem_line = info["private_key"].splitlines()[1]
    assert pem_line not in html and info["client_email"] not in html
    screenshot(page, "block-detail")

    # Saving with the mask left in place keeps the key; the project changes.
    page.locator("#field-project").fill("other-project")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("dl.facts")).to_contain_text("other-project")
    assert stored_key(api, "pasted")["private_key"] == info["private_key"]
    assert pem_line not in page.content()

    # From the key to a key file: the stored key is removed, the path set.
    page.get_by_label("Remove the stored Service Account Info").check()
    page.locator("#field-service_account_file").fill("/keys/runner.json")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("dl.facts")).to_contain_text("/keys/runner.json")
    data = api.get("blocks/gcp-credentials/pasted").json()["data"]
    assert data.get("service_account_info") is None
    assert data["service_account_file"] == "/keys/runner.json"


def test_create_a_gcp_block_by_uploading_the_key_file(
    page: Any, base: str, api: httpx.Client, tmp_path: Path
) -> None:
    info = service_account_key(tmp_path / "uploaded-key.json", TOKEN_URI)
    page.goto(f"{base}/blocks/new?type=gcp-credentials")
    page.get_by_label("Name").fill("uploaded")
    page.get_by_label("Or read it from a JSON file").set_input_files(tmp_path / "uploaded-key.json")
    expect(page.locator("#field-service_account_info")).to_have_value(
        (tmp_path / "uploaded-key.json").read_text()
    )
    expect(page.locator("#flash")).to_contain_text("Read uploaded-key.json")
    page.get_by_role("button", name="Create block").click()
    page.wait_for_url("**/blocks/gcp-credentials/uploaded")
    assert stored_key(api, "uploaded") == info
    assert info["private_key"].splitlines()[1] not in page.content()


def test_a_key_missing_private_key_shows_the_servers_error_at_the_field(
    page: Any, base: str, tmp_path: Path
) -> None:
    info = service_account_key(tmp_path / "key.json", TOKEN_URI)
    del info["private_key"]
    page.goto(f"{base}/blocks/new?type=gcp-credentials")
    page.get_by_label("Name").fill("broken")
    page.get_by_label("Service Account Info").fill(json.dumps(info))
    page.get_by_role("button", name="Create block").click()
    error = page.locator('[data-error-for="data.service_account_info"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("is missing the field 'private_key'")
    assert page.url.endswith("/blocks/new?type=gcp-credentials")

    # Text that is not JSON: the server's parse error, at the field too.
    page.get_by_label("Service Account Info").fill("{not json")
    page.get_by_role("button", name="Create block").click()
    expect(error).to_contain_text("is not valid JSON")
    # A bad name: at the name.
    page.get_by_label("Service Account Info").fill("")
    page.get_by_label("Name").fill("Bad Name")
    page.get_by_role("button", name="Create block").click()
    expect(page.locator('[data-error-for="name"]')).to_contain_text("lower-case")


def test_a_secret_block_hides_its_value_and_can_be_deleted(
    page: Any, base: str, api: httpx.Client
) -> None:
    page.goto(f"{base}/blocks/new?type=secret")
    page.get_by_label("Name").fill("token")
    page.get_by_label("Value").fill("hunter2-very-secret")
    page.get_by_role("button", name="Create block").click()
    page.wait_for_url("**/blocks/secret/token")
    assert "hunter2-very-secret" not in page.content()
    expect(page.get_by_label("Value")).to_have_value("********")
    page.get_by_role("button", name="Delete block").click()
    page.wait_for_url(f"{base}/blocks")
    assert page.dialogs and "Delete the block secret/token" in page.dialogs[0]
    assert api.get("blocks/secret/token").status_code == 404


def test_variables_are_created_edited_and_live(page: Any, base: str, api: httpx.Client) -> None:
    page.goto(f"{base}/variables")
    page.get_by_label("Name").fill("limits")
    page.get_by_label("Value", exact=True).fill(json.dumps({"cpu": 2, "note": SCRIPT}))
    page.get_by_label("Tags").fill(f"gcp, {IMG}")
    page.get_by_role("button", name="Create variable").click()
    row = page.locator("#variable-limits")
    expect(row).to_contain_text('"cpu": 2')
    expect(row).to_contain_text(SCRIPT)  # shown as text
    expect(row.locator(".tag").nth(1)).to_have_text(IMG)
    stored = api.get("variables/limits").json()
    assert (stored["value"], stored["tags"]) == ({"cpu": 2, "note": SCRIPT}, ["gcp", IMG])
    assert_inert(page)

    # Invalid JSON is refused at the field; "Text" stores it as a string.
    page.get_by_label("Name").fill("greeting")
    page.get_by_label("Value", exact=True).fill("hello {world")
    page.get_by_role("button", name="Create variable").click()
    expect(page.locator('[data-error-for="value"]')).to_contain_text("not valid JSON")
    page.get_by_label("Text (stored as a string)").check()
    page.get_by_role("button", name="Create variable").click()
    expect(page.locator("#variable-greeting")).to_contain_text('"hello {world"')
    assert api.get("variables/greeting").json()["value"] == "hello {world"

    # Edit: the form comes filled; the value changes.
    page.locator("#variable-limits").get_by_role("link", name="Edit").click()
    page.wait_for_url("**/variables?edit=limits")
    expect(page.get_by_label("Value", exact=True)).to_contain_text('"cpu": 2')
    page.get_by_label("Value", exact=True).fill("[1, 2, 3]")
    page.get_by_role("button", name="Save limits").click()
    page.wait_for_url(f"{base}/variables")
    assert api.get("variables/limits").json()["value"] == [1, 2, 3]

    # A change through the API shows without a reload.
    assert api.put("variables/from-api", json={"value": 7}).status_code == 200
    expect(page.locator("#variable-from-api")).to_contain_text("7", timeout=WAIT_MS)
    screenshot(page, "variables")
    assert_inert(page)


def test_artifacts_render_markdown_and_tables_inertly(
    page: Any, base: str, api: httpx.Client
) -> None:
    markdown = f"# Weather report\n\n{SCRIPT}\n\n{IMG}\n\n{JS_LINK}\n\n**Sunny** in Oslo"
    for version in ("# First draft", markdown):
        created = api.post(
            "artifacts",
            json={
                "key": "weather",
                "type": "markdown",
                "data": version,
                "description": f"desc {SCRIPT}",
            },
        )
        assert created.status_code == 201, created.text
    table = [{"city": "Oslo", "temp": 3}, {"city": SCRIPT, "temp": IMG}]
    assert (
        api.post("artifacts", json={"key": "temps", "type": "table", "data": table}).status_code
        == 201
    )
    assert (
        api.post(
            "artifacts", json={"type": "progress", "data": 40, "description": "unkeyed one"}
        ).status_code
        == 201
    )

    page.goto(f"{base}/artifacts")
    expect(page.get_by_role("link", name="weather")).to_be_visible()
    expect(page.get_by_text("unkeyed one")).to_be_visible()
    expect(page.locator("body")).to_contain_text(f"desc {SCRIPT}")
    screenshot(page, "artifacts")
    assert_inert(page)

    page.get_by_role("link", name="weather").click()
    page.wait_for_url("**/artifacts/weather")
    expect(page.get_by_role("heading", name="Weather report")).to_be_visible()
    body = page.locator(".artifact-body")
    expect(body).to_contain_text(SCRIPT)
    expect(body).to_contain_text(IMG)
    expect(body.locator("strong")).to_have_text("Sunny")
    assert body.locator("a[href^='javascript']").count() == 0
    expect(page.locator(".versions tbody tr")).to_have_count(2)
    screenshot(page, "artifact-detail")
    assert_inert(page)
    page.get_by_role("link", name="view").click()
    expect(page.get_by_role("heading", name="First draft")).to_be_visible()

    page.goto(f"{base}/artifacts/temps")
    cells = page.locator(".artifact-body td")
    expect(cells.nth(0)).to_have_text("Oslo")
    expect(cells.nth(2)).to_have_text(SCRIPT)
    expect(cells.nth(3)).to_have_text(IMG)
    assert_inert(page)


def test_user_text_in_a_block_is_inert(page: Any, base: str, api: httpx.Client) -> None:
    created = api.post(
        "blocks",
        json={"block_type": "gcp-credentials", "name": "xss", "data": {"project": SCRIPT + IMG}},
    )
    assert created.status_code == 201, created.text
    page.goto(f"{base}/blocks/gcp-credentials/xss")
    expect(page.locator("dl.facts")).to_contain_text(SCRIPT + IMG)
    expect(page.locator("#field-project")).to_have_value(SCRIPT + IMG)
    assert_inert(page)
    page.goto(f"{base}/blocks")
    expect(page.get_by_role("link", name="xss")).to_be_visible()
    assert_inert(page)
