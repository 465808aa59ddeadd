"""The dashboard and the flow-run pages in Chromium, against one real server (and, for
Retry, a real process worker): live updates without reloads, bulk cancel and cancel,
live logs with their filters, the task-run timeline at 1,000 task runs, XSS payloads."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import WAIT_MS, screenshot
from processes import SKYRUN, ServerProcess, clean_env, stop, wait_for

SERVER_ENV = {
    "SKYRUN_WORKER_HEARTBEAT_INTERVAL": "1",
    "SKYRUN_HOUSEKEEPING_INTERVAL": "1",
    "SKYRUN_SCHEDULER_INTERVAL": "60",
}
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_LINK = "[click me](javascript:window.__xss=1)"
# Fails its first run and succeeds when run again: what Retry is for.
FLAKY_FLOW = """
from pathlib import Path

from skyrun import flow


@flow
def flaky(marker: str):
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("first attempt fails")
    return "second attempt works"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("runs-ui"), **SERVER_ENV)
    yield process
    process.stop()


@pytest.fixture
def base(server: ServerProcess) -> str:
    return server.api_url.removesuffix("/api")


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:1000]}"
    return response.json()


def new_flow(api: httpx.Client, name: str | None = None) -> str:
    return ok(api.post("flows", json={"name": name or f"flow-{uuid.uuid4().hex[:6]}"}))["id"]


def new_run(api: httpx.Client, flow_id: str, **fields: Any) -> dict[str, Any]:
    return ok(api.post("flow_runs", json={"flow_id": flow_id, **fields}), 201)


def move(api: httpx.Client, run_id: str, state_type: str, **state: Any) -> dict[str, Any]:
    body = {"state": {"type": state_type, **state}}
    return ok(api.post(f"flow_runs/{run_id}/set_state", json=body))


def state_of(api: httpx.Client, run_id: str) -> str:
    return ok(api.get(f"flow_runs/{run_id}"))["state"]["type"]


def now() -> str:
    return datetime.now(UTC).isoformat()


def badge(page: Any, run_id: str) -> Any:
    return page.locator(f'tr[data-run-id="{run_id}"] .badge')


def test_dashboard_and_list_update_live(page: Any, api: httpx.Client, base: str) -> None:
    flow_id = new_flow(api, "dash-etl")
    done = new_run(api, flow_id, name="dash-done")
    move(api, done["id"], "RUNNING")
    move(api, done["id"], "COMPLETED")
    broken = new_run(api, flow_id, name="dash-broken")
    move(api, broken["id"], "RUNNING")
    move(api, broken["id"], "FAILED", message="ValueError: no such city")
    ok(api.post("work_pools", json={"name": "dash-pool", "type": "process"}), 201)
    ok(api.post("work_pools/dash-pool/workers/heartbeat", json={"name": "dash-worker"}))

    page.goto(base + "/")
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.get_by_text("ValueError: no such city")).to_be_visible()
    later = new_run(api, flow_id, name="dash-live")
    move(api, later["id"], "RUNNING")
    move(api, later["id"], "CRASHED", message="the worker's machine went away")
    # The dashboard's failures list picks the crash up without a reload.
    expect(page.get_by_text("the worker's machine went away")).to_be_visible(timeout=WAIT_MS)
    screenshot(page, "dashboard")

    watched = new_run(api, flow_id, name="list-live")
    page.goto(base + "/runs")
    expect(badge(page, watched["id"])).to_have_text("Pending")
    move(api, watched["id"], "RUNNING")
    expect(badge(page, watched["id"])).to_have_text("Running", timeout=WAIT_MS)
    appeared = new_run(api, flow_id, name="list-new-run")
    expect(page.locator(f'tr[data-run-id="{appeared["id"]}"]')).to_be_visible(timeout=WAIT_MS)
    screenshot(page, "runs-list")
    assert page.console_errors == []


def test_bulk_cancel_keeps_the_selection_across_live_refreshes(
    page: Any, api: httpx.Client, base: str
) -> None:
    flow_id = new_flow(api)
    running = new_run(api, flow_id, name="bulk-running")
    move(api, running["id"], "RUNNING")
    scheduled = new_run(
        api, flow_id, name="bulk-scheduled", state={"type": "SCHEDULED", "scheduled_time": now()}
    )
    bystander = new_run(api, flow_id, name="bulk-bystander")
    page.goto(base + "/runs")
    page.locator(f"#select-{running['id']}").check()
    page.locator(f"#select-{scheduled['id']}").check()
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    # A change elsewhere refreshes the table; the ticks survive it.
    move(api, bystander["id"], "RUNNING")
    expect(badge(page, bystander["id"])).to_have_text("Running", timeout=WAIT_MS)
    expect(page.locator(f"#select-{running['id']}")).to_be_checked()
    expect(page.locator(f"#select-{scheduled['id']}")).to_be_checked()
    expect(page.locator(f"#select-{bystander['id']}")).not_to_be_checked()

    page.locator("#cancel-selected").click()
    expect(page.locator("#flash")).to_have_text("Cancelling 2 flow runs.")
    assert page.dialogs == ["Cancel 2 flow runs?"]
    # A running run is asked to stop (CANCELLING); a scheduled one is cancelled outright.
    assert state_of(api, running["id"]) == "CANCELLING"
    assert state_of(api, scheduled["id"]) == "CANCELLED"
    assert state_of(api, bystander["id"]) == "RUNNING"
    expect(badge(page, running["id"])).to_have_text("Cancelling")
    expect(badge(page, scheduled["id"])).to_have_text("Cancelled")
    expect(page.locator(f"#select-{scheduled['id']}")).to_have_count(0)


def test_cancel_from_the_run_page_and_live_logs(page: Any, api: httpx.Client, base: str) -> None:
    flow_id = new_flow(api, "logs-etl")
    run = new_run(api, flow_id, name="cancel-me", parameters={"city": "Oslo"})
    move(api, run["id"], "RUNNING")
    ok(api.post("logs", json=[log(run["id"], 20, "starting up")]), 201)
    page.goto(f"{base}/runs/{run['id']}")
    screenshot(page, "run-overview")
    # The tabs answer the arrow keys.
    page.get_by_role("tab", name="Overview").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Task runs")).to_be_focused()
    expect(page.get_by_role("tab", name="Task runs")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-tasks")).to_be_visible()
    expect(page.locator("#panel-overview")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Artifacts")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Logs").click()
    expect(page).to_have_url(f"{base}/runs/{run['id']}#logs")
    lines = page.locator("#log-lines .log-line")
    expect(lines).to_have_count(1)
    ok(
        api.post("logs", json=[log(run["id"], 40, "disk is full"), log(run["id"], 20, "retrying")]),
        201,
    )
    expect(page.get_by_text("disk is full")).to_be_visible(timeout=WAIT_MS)
    expect(lines).to_have_count(3)
    page.select_option("#log-level", "40")
    expect(page.get_by_text("retrying")).to_be_hidden()
    expect(page.get_by_text("disk is full")).to_be_visible()
    page.select_option("#log-level", "0")
    page.fill("#log-search", "START")
    expect(page.get_by_text("starting up")).to_be_visible()
    expect(page.get_by_text("disk is full")).to_be_hidden()
    page.fill("#log-search", "")
    screenshot(page, "run-logs")
    with page.expect_download() as download:
        page.locator("#log-download").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[1].endswith("disk is full")

    # The run changes state: the header follows, the Logs tab stays selected.
    page.locator("#cancel-run").click()
    expect(page.locator("#flash")).to_have_text("Cancelling the run.")
    expect(page.locator("#run-state .badge")).to_have_text("Cancelling", timeout=WAIT_MS)
    # Being cancelled, it offers no second cancel.
    expect(page.locator("#cancel-run")).to_have_count(0)
    assert state_of(api, run["id"]) == "CANCELLING"
    move(api, run["id"], "CANCELLED", message="stopped by the worker")
    expect(page.locator("#run-state")).to_contain_text("stopped by the worker", timeout=WAIT_MS)
    expect(page.locator("#cancel-run")).to_have_count(0)
    expect(page.get_by_role("tab", name="Logs")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-logs")).to_be_visible()
    page.reload()
    expect(page.get_by_role("tab", name="Logs")).to_have_attribute("aria-selected", "true")
    assert page.console_errors == []


def log(run_id: str, level: int, message: str) -> dict[str, Any]:
    return {
        "flow_run_id": run_id,
        "name": "etl",
        "level": level,
        "message": message,
        "timestamp": now(),
    }


def test_a_thousand_task_runs_on_the_timeline_and_artifacts(
    page: Any, api: httpx.Client, base: str
) -> None:
    flow_id = new_flow(api, "big-flow")
    run = new_run(api, flow_id, name="big-run")
    move(api, run["id"], "RUNNING")
    start = datetime.now(UTC) - timedelta(minutes=10)
    task_runs = [
        {
            "id": str(uuid.uuid4()),
            "flow_run_id": run["id"],
            "name": f"transform-partition-{n:04d}-with-a-long-descriptive-name",
            "task_key": "transform",
            "start_time": (start + timedelta(seconds=n * 0.3)).isoformat(),
            "end_time": (start + timedelta(seconds=n * 0.3 + 5 + n % 17)).isoformat(),
            "states": [
                {"type": "FAILED" if n % 97 == 0 else "COMPLETED", "name": "x", "timestamp": now()}
            ],
        }
        for n in range(1000)
    ]
    ok(api.post("batch", json={"task_runs": task_runs, "logs": []}))
    markdown = "# Weather report\n\n| city | temp |\n|---|---|\n| Oslo | 3 |\n\n**All** good."
    ok(
        api.post(
            "artifacts",
            json={"type": "markdown", "key": "report", "data": markdown, "flow_run_id": run["id"]},
        ),
        201,
    )
    table = [{"city": "Oslo", "temp": 3.5}, {"city": "Lima", "temp": 19}]
    ok(
        api.post(
            "artifacts",
            json={"type": "table", "key": "weather", "data": table, "flow_run_id": run["id"]},
        ),
        201,
    )
    ok(api.post("artifacts", json={"type": "progress", "data": 70, "flow_run_id": run["id"]}), 201)

    page.goto(f"{base}/runs/{run['id']}#tasks")
    expect(page.locator("#panel-tasks")).to_be_visible()
    expect(page.locator(".gantt-row")).to_have_count(1000)
    expect(page.locator("#task-counts")).to_contain_text("1000 task runs")
    # Rows are thin and scroll inside their box; long names are cut with their title kept.
    body_box = page.locator(".gantt-body").bounding_box()
    assert body_box is not None and body_box["height"] < 600
    name = page.locator(".gantt-name").first
    assert name.get_attribute("title") == "transform-partition-0000-with-a-long-descriptive-name"
    screenshot(page, "run-tasks")
    more = [dict(task_runs[0], id=str(uuid.uuid4()), name="late-arrival")]
    ok(api.post("batch", json={"task_runs": more, "logs": []}))
    expect(page.locator("#task-counts")).to_contain_text("1001 task runs", timeout=WAIT_MS)
    expect(page.get_by_role("tab", name="Task runs")).to_have_attribute("aria-selected", "true")

    page.get_by_role("tab", name="Artifacts").click()
    panel = page.locator("#panel-artifacts")
    expect(panel.get_by_role("heading", name="Weather report")).to_be_visible()
    expect(panel.locator(".artifact-table td").filter(has_text="Lima")).to_be_visible()
    expect(panel.locator("progress")).to_have_attribute("value", "70.0")
    screenshot(page, "run-artifacts")
    assert page.console_errors == []


def fragment_requests(page: Any) -> list[str]:
    """The `fragment=` names the page asks the server for, as it asks."""
    asked: list[str] = []

    def record(request: Any) -> None:
        if "fragment=" in request.url:
            asked.append(request.url.split("fragment=", 1)[1].split("&", 1)[0])

    page.on("request", record)
    return asked


def test_tabs_load_their_panel_when_opened_and_only_loaded_panels_refresh(
    page: Any, api: httpx.Client, base: str
) -> None:
    flow_id = new_flow(api, "lazy-flow")
    run = new_run(api, flow_id, name="lazy-run")
    move(api, run["id"], "RUNNING")
    ok(api.post("logs", json=[log(run["id"], 20, "before the page")]), 201)
    asked = fragment_requests(page)
    page.goto(f"{base}/runs/{run['id']}")
    expect(page.locator("#panel-overview pre.json").first).to_be_visible()
    # The other panels are not in the page yet.
    expect(page.locator("#panel-artifacts [data-lazy]")).to_have_count(1)
    expect(page.locator("#panel-logs .log-line")).to_have_count(0)
    # A line written while Logs is not open comes with the tab, once, with the older one.
    ok(api.post("logs", json=[log(run["id"], 30, "while on overview")]), 201)
    page.get_by_role("tab", name="Logs").click()
    lines = page.locator("#log-lines .log-line")
    expect(lines).to_have_count(2)
    expect(lines.last).to_contain_text("while on overview")
    ok(api.post("logs", json=[log(run["id"], 20, "with logs open")]), 201)
    expect(lines).to_have_count(3, timeout=WAIT_MS)

    page.get_by_role("tab", name="Artifacts").click()
    panel = page.locator("#panel-artifacts")
    expect(panel).to_contain_text("This run made no artifacts.")
    expect(panel.locator("[data-lazy]")).to_have_count(0)
    # A change shows in the loaded panel without a reload...
    ok(
        api.post(
            "artifacts",
            json={
                "type": "markdown",
                "key": "lazy-report",
                "data": "# Live",
                "flow_run_id": run["id"],
            },
        ),
        201,
    )
    expect(panel.get_by_role("heading", name="Live")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("tab", name="Artifacts")).to_have_attribute("aria-selected", "true")
    # ...and the panels never opened were never asked for, live refreshes included.
    assert "artifacts" in asked and "overview" in asked
    assert not {"tasks", "subflows"} & set(asked), asked
    assert asked.count("logs") == 1, asked
    expect(page.locator("#panel-tasks [data-lazy]")).to_have_count(1)
    assert page.console_errors == []


def test_a_link_with_tab_opens_that_tab(page: Any, api: httpx.Client, base: str) -> None:
    flow_id = new_flow(api, "tab-link-flow")
    run = new_run(api, flow_id, name="tab-link-run")
    move(api, run["id"], "RUNNING")
    ok(api.post("logs", json=[log(run["id"], 40, "opened by its link")]), 201)
    asked = fragment_requests(page)
    page.goto(f"{base}/runs/{run['id']}?tab=logs")
    expect(page.get_by_role("tab", name="Logs")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-logs")).to_be_visible()
    expect(page.locator("#panel-overview")).to_be_hidden()
    expect(page.locator("#log-lines .log-line")).to_have_count(1)
    expect(page.get_by_text("opened by its link")).to_be_visible()
    # In the page already: not fetched again; live lines still come.
    ok(api.post("logs", json=[log(run["id"], 20, "and then some")]), 201)
    expect(page.locator("#log-lines .log-line")).to_have_count(2, timeout=WAIT_MS)
    assert "logs" not in asked
    # Overview, never shown, loads when its tab opens.
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#panel-overview pre.json").first).to_be_visible()
    assert page.console_errors == []


def test_a_panel_that_fails_to_load_says_so_and_loads_when_opened_again(
    page: Any, api: httpx.Client, base: str
) -> None:
    run = new_run(api, new_flow(api, "flaky-tab-flow"), name="flaky-tab-run")
    failed: list[str] = []

    def fail_once(route: Any) -> None:
        if failed:
            route.continue_()
            return
        failed.append(route.request.url)
        route.fulfill(status=503, body="busy")

    page.route(lambda url: "fragment=artifacts" in url, fail_once)
    page.goto(f"{base}/runs/{run['id']}")
    page.get_by_role("tab", name="Artifacts").click()
    panel = page.locator("#panel-artifacts")
    expect(panel.get_by_role("alert")).to_contain_text(
        "Could not load this tab: the server answered 503"
    )
    page.get_by_role("tab", name="Overview").click()
    page.get_by_role("tab", name="Artifacts").click()
    expect(panel).to_contain_text("This run made no artifacts.")
    expect(panel.get_by_role("alert")).to_have_count(0)
    assert len(failed) == 1
    # The refused request is the only error the page logged.
    assert [e for e in page.console_errors if "503" not in e] == []


def test_xss_payloads_stay_text(page: Any, api: httpx.Client, base: str) -> None:
    flow_id = new_flow(api, f"xss-flow{XSS_SCRIPT}")
    run = new_run(
        api,
        flow_id,
        name=f"xss{XSS_IMG}",
        tags=[XSS_SCRIPT, XSS_IMG],
        parameters={"payload": XSS_SCRIPT, "img": XSS_IMG},
    )
    move(api, run["id"], "RUNNING")
    move(api, run["id"], "FAILED", message=f"failed {XSS_IMG}")
    ok(api.post("logs", json=[log(run["id"], 40, f"log {XSS_SCRIPT} {XSS_IMG}")]), 201)
    markdown = f"# Doc\n\n{XSS_SCRIPT}\n\n{XSS_LINK}\n\n{XSS_IMG}"
    ok(
        api.post(
            "artifacts", json={"type": "markdown", "data": markdown, "flow_run_id": run["id"]}
        ),
        201,
    )
    table = [{"cell": XSS_SCRIPT, XSS_IMG: "header payload"}]
    ok(api.post("artifacts", json={"type": "table", "data": table, "flow_run_id": run["id"]}), 201)

    page.goto(f"{base}/runs/{run['id']}")
    expect(page.locator("#run-header h1")).to_contain_text(f"xss{XSS_IMG}")
    expect(page.locator("#run-state")).to_contain_text(f"failed {XSS_IMG}")
    expect(page.locator(".tag").filter(has_text=XSS_SCRIPT)).to_be_visible()
    expect(page.locator("#panel-overview pre.json").first).to_contain_text('"payload": "<script>')
    page.get_by_role("tab", name="Logs").click()
    expect(page.locator("#log-lines")).to_contain_text(f"log {XSS_SCRIPT} {XSS_IMG}")
    # A line that arrives live is built as text too.
    ok(api.post("logs", json=[log(run["id"], 40, f"live {XSS_IMG}")]), 201)
    expect(page.locator("#log-lines")).to_contain_text(f"live {XSS_IMG}", timeout=WAIT_MS)
    page.get_by_role("tab", name="Artifacts").click()
    panel = page.locator("#panel-artifacts")
    expect(panel).to_contain_text(XSS_SCRIPT)
    expect(panel).to_contain_text(XSS_LINK)
    expect(panel.locator("td").filter(has_text=XSS_SCRIPT)).to_be_visible()
    expect(panel.locator("th").filter(has_text=XSS_IMG)).to_be_visible()
    assert panel.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.__xss") is None
    screenshot(page, "run-xss")

    for url in ("/runs", "/"):
        page.goto(base + url)
        expect(page.locator("main")).to_contain_text(f"xss{XSS_IMG}")
        assert page.evaluate("window.__xss") is None, url
    assert page.locator("img").count() == 0
    # Nothing was even attempted: a script the CSP blocked would be a console error.
    assert page.console_errors == []


@pytest.fixture(scope="module")
def worker(server: ServerProcess, api: httpx.Client) -> Iterator[subprocess.Popen[bytes]]:
    ok(api.post("work_pools", json={"name": "retry-pool", "type": "process"}), 201)
    log_path = server.home / "worker.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [str(SKYRUN), "worker", "start", "-p", "retry-pool", "--name", "retry-worker"],
            env=clean_env(server.home, SKYRUN_API_URL=server.api_url, **SERVER_ENV),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        yield process
        stop(process)


def test_retry_runs_a_failed_deployment_run_again_on_a_worker(
    page: Any, api: httpx.Client, base: str, server: ServerProcess, worker: Any
) -> None:
    project = server.home / "flaky-project"
    project.mkdir()
    (project / "flows.py").write_text(FLAKY_FLOW)
    deployment = ok(
        api.post(
            "deployments",
            json={
                "flow_name": "flaky",
                "name": "flaky",
                "entrypoint": "flows.py:flaky",
                "path": str(project),
                "work_pool_name": "retry-pool",
                "parameters": {"marker": str(project / "marker")},
                "pull_steps": [{"set_working_directory": {"directory": str(project)}}],
            },
        )
    )
    run = ok(api.post(f"deployments/{deployment['id']}/runs", json={}), 201)
    wait_for(lambda: state_of(api, run["id"]) == "FAILED", 60, "the first attempt to fail")
    page.goto(f"{base}/runs/{run['id']}")
    expect(page.locator("#run-state .badge")).to_have_text("Failed")
    page.locator("#retry-run").click()
    # The worker picks the run up again; the page follows it to COMPLETED without a reload.
    try:
        expect(page.locator("#run-state .badge")).to_have_text("Completed", timeout=60_000)
    except AssertionError:
        states = ok(api.get(f"flow_runs/{run['id']}/states"))
        log_text = (server.home / "worker.log").read_text(errors="replace")
        raise AssertionError(f"states: {states}\nworker log:\n{log_text[-4000:]}") from None
    finished = ok(api.get(f"flow_runs/{run['id']}"))
    assert finished["run_count"] == 2
    states = [s["type"] for s in ok(api.get(f"flow_runs/{run['id']}/states"))]
    assert states.count("RUNNING") == 2 and states[-1] == "COMPLETED"
    assert "Retried from the UI" in page.locator("#panel-overview").inner_text()
