"""Work-pool pages in Chromium against a real server: the list (live), creating a pool,
the template-variables form (region, the credentials block picker, service account),
the raw-template editor's server error shown at the field, queues, workers (live),
pause/resume, and user text that never runs."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import WAIT_MS, screenshot
from processes import ServerProcess
from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("work-pools-ui"))
    yield process
    process.stop()


def site(server: ServerProcess) -> str:
    return server.api_url.removesuffix("/api")


def made(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 204), f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def script_errors(page: Any) -> list[str]:
    """The page's script errors, not the browser's lines for answers such as the 422s the
    tests provoke on purpose."""
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_list_create_and_live_workers(page: Any, server: ServerProcess, api: httpx.Client) -> None:
    name = new_name("listed")
    made(api.post("work_pools", json={"name": name, "type": "process", "concurrency_limit": 3}))
    page.goto(f"{site(server)}/work-pools")
    row = page.locator("tr", has=page.get_by_role("link", name=name, exact=True))
    expect(row).to_contain_text("not ready")
    expect(row).to_contain_text("0 online")
    made(api.post(f"work_pools/{name}/workers/heartbeat", json={"name": "w1"}))
    expect(row).to_contain_text("1 online", timeout=WAIT_MS)  # no reload: pushed
    expect(row.locator(".badge")).to_have_text("ready")
    screenshot(page, "work-pools-list")

    page.get_by_role("link", name="New work pool").click()
    page.get_by_label("Type").select_option("cloud-run")
    expect(page.get_by_label("Base job template")).to_have_value(re.compile("api_endpoint"))
    created = new_name("made")
    page.get_by_label("Name", exact=True).fill(created)
    page.get_by_label("Description").fill("made in the browser")
    page.get_by_label("Concurrency limit").fill("2")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**/work-pools/{created}")
    pool = made(api.get(f"work_pools/{created}"))
    assert pool["type"] == "cloud-run" and pool["concurrency_limit"] == 2
    assert pool["description"] == "made in the browser"
    assert pool["base_job_template"] == CLOUD_RUN_JOB_TEMPLATE
    assert script_errors(page) == []


def test_edit_cloud_run_variables_with_the_block_picker(
    page: Any, server: ServerProcess, api: httpx.Client
) -> None:
    name = new_name("cr")
    made(api.post("work_pools", json={"name": name, "type": "cloud-run"}))
    block = new_name("creds")
    made(
        api.post(
            "blocks",
            json={"block_type": "gcp-credentials", "name": block, "data": {"project": "p"}},
        )
    )
    page.goto(f"{site(server)}/work-pools/{name}")
    page.get_by_role("tab", name="Template variables").click()
    expect(page.get_by_role("tab", name="Template variables")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.get_by_label("Region")).to_have_value("us-central1")
    page.get_by_label("Region").fill("europe-west1")
    page.get_by_label("GCP credentials").select_option(label=f"gcp-credentials/{block}")
    page.get_by_label("Service account").fill("runner@p.iam.gserviceaccount.com")
    page.get_by_label("Launch stage").select_option("BETA")
    page.get_by_label("Keep the job").check()
    screenshot(page, "work-pool-variables")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.locator("#flash")).to_have_text("Template variables saved.")
    variables = made(api.get(f"work_pools/{name}"))["base_job_template"]["variables"]
    properties = variables["properties"]
    assert properties["region"]["default"] == "europe-west1"
    assert properties["credentials"]["default"] == f"gcp-credentials/{block}"
    assert properties["service_account_name"]["default"] == "runner@p.iam.gserviceaccount.com"
    assert properties["launch_stage"]["default"] == "BETA"
    assert properties["keep_job"]["default"] is True
    assert properties["timeout"]["default"] == 3600  # untouched fields keep theirs
    assert properties["image"]["default"] is None

    # a value the schema refuses: the server's message is shown, nothing saved
    page.reload()
    expect(page.get_by_label("Region")).to_have_value("europe-west1")
    page.get_by_label("Region").fill("Not A Region")
    page.get_by_role("button", name="Save defaults").click()
    error = page.locator('#pool-variables-form [data-error-for="_form"]')
    expect(error).to_contain_text("region")
    after = made(api.get(f"work_pools/{name}"))["base_job_template"]["variables"]
    assert after["properties"]["region"]["default"] == "europe-west1"


def test_the_advanced_editor_shows_the_servers_error_next_to_it(
    page: Any, server: ServerProcess, api: httpx.Client
) -> None:
    name = new_name("raw")
    made(api.post("work_pools", json={"name": name, "type": "process"}))
    before = made(api.get(f"work_pools/{name}"))["base_job_template"]
    page.goto(f"{site(server)}/work-pools/{name}?tab=advanced")
    editor = page.get_by_label("Base job template (JSON)")
    expect(editor).to_have_value(re.compile("job_configuration"))
    editor.fill('{"job_configuration": {"command": "{{ nowhere }}"}, "variables": {}}')
    page.get_by_role("button", name="Validate and save").click()
    server_error = page.locator("#pool-template-server-error")
    expect(server_error).to_be_visible()
    expect(server_error).to_contain_text("nowhere")
    screenshot(page, "work-pool-advanced")
    editor.fill('{"job_configuration": ')
    page.get_by_role("button", name="Validate and save").click()
    expect(page.locator("#pool-template-error")).to_contain_text("not valid JSON")
    assert made(api.get(f"work_pools/{name}"))["base_job_template"] == before

    changed = copy.deepcopy(before)
    changed["variables"]["properties"]["env"]["title"] = "Environment"
    editor.fill(json.dumps(changed))
    page.get_by_role("button", name="Validate and save").click()
    expect(page.locator("#flash")).to_have_text("Base job template saved.")
    assert made(api.get(f"work_pools/{name}"))["base_job_template"] == changed


def test_queues_workers_and_pausing(page: Any, server: ServerProcess, api: httpx.Client) -> None:
    name = new_name("qw")
    made(api.post("work_pools", json={"name": name, "type": "process"}))
    page.goto(f"{site(server)}/work-pools/{name}")
    page.get_by_role("button", name="Pause pool").click()
    expect(page.locator("h1 .badge")).to_have_text("paused")
    assert made(api.get(f"work_pools/{name}"))["is_paused"] is True
    page.get_by_role("button", name="Resume pool").click()
    expect(page.locator("h1 .badge")).to_have_text("not ready")
    assert made(api.get(f"work_pools/{name}"))["is_paused"] is False

    settings = page.locator("#pool-settings-form")
    settings.get_by_label("Description").fill("nightly jobs")
    settings.get_by_label("Concurrency limit").fill("7")
    settings.get_by_role("button", name="Save settings").click()
    expect(page.locator("#flash")).to_have_text("Saved.")
    pool = made(api.get(f"work_pools/{name}"))
    assert pool["description"] == "nightly jobs" and pool["concurrency_limit"] == 7
    settings.get_by_label("Concurrency limit").fill("")
    settings.get_by_role("button", name="Save settings").click()
    expect(page.locator("#flash")).to_have_text("Saved.")
    page.wait_for_function("document.querySelector('#flash').textContent === 'Saved.'")
    assert made(api.get(f"work_pools/{name}"))["concurrency_limit"] is None

    page.get_by_role("tab", name="Queues").click()
    form = page.locator("#queue-create-form")
    form.get_by_label("Name").fill("urgent")
    form.get_by_label("Priority").fill("2")
    form.get_by_role("button", name="Create queue").click()
    row = page.locator("table.queues tr", has_text="urgent")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Pause urgent").click()
    expect(row).to_contain_text("paused")
    queues = {q["name"]: q for q in made(api.get(f"work_pools/{name}/queues"))}
    assert queues["urgent"]["is_paused"] is True and queues["urgent"]["priority"] == 2
    edit = page.locator("#queue-edit-form")
    edit.get_by_label("Queue").select_option("urgent")
    edit.get_by_label("Priority").fill("9")
    edit.get_by_label("Concurrency limit").fill("4")
    edit.get_by_role("button", name="Save queue").click()
    expect(page.locator("#flash")).to_have_text("Queue saved.")
    expect(row).to_contain_text("9")
    queues = {q["name"]: q for q in made(api.get(f"work_pools/{name}/queues"))}
    assert queues["urgent"]["priority"] == 9 and queues["urgent"]["concurrency_limit"] == 4
    form.get_by_label("Name").fill("bad name!")
    form.get_by_role("button", name="Create queue").click()
    expect(form.locator('[data-error-for="name"]')).to_contain_text("letters, digits")

    page.get_by_role("tab", name="Workers").click()
    expect(page.get_by_text("No worker has polled this pool yet")).to_be_visible()
    made(api.post(f"work_pools/{name}/workers/heartbeat", json={"name": "live-worker"}))
    row = page.locator("table.workers tr", has_text="live-worker")
    expect(row).to_contain_text("online", timeout=WAIT_MS)  # pushed, no reload
    screenshot(page, "work-pool-workers")
    assert script_errors(page) == []


def test_user_text_never_runs(page: Any, server: ServerProcess, api: httpx.Client) -> None:
    name = new_name("xss")
    template = copy.deepcopy(CLOUD_RUN_JOB_TEMPLATE)
    template["variables"]["properties"]["region"].update(title=XSS, description=XSS)
    made(
        api.post(
            "work_pools",
            json={
                "name": name,
                "type": "cloud-run",
                "description": XSS,
                "base_job_template": template,
            },
        )
    )
    made(api.post(f"work_pools/{name}/queues", json={"name": "q", "description": XSS}))
    made(api.post(f"work_pools/{name}/workers/heartbeat", json={"name": XSS}))
    for tab in ("overview", "variables", "queues", "workers"):
        page.goto(f"{site(server)}/work-pools/{name}?tab={tab}")
        expect(
            page.get_by_text("<script>window.__xss=1</script>", exact=False).first
        ).to_be_visible()
        assert page.evaluate("window.__xss") is None, tab
    page.goto(f"{site(server)}/work-pools")
    expect(page.get_by_text("<script>window.__xss=1</script>", exact=False).first).to_be_visible()
    assert page.evaluate("window.__xss") is None
