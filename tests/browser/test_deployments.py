"""Deployment pages in Chromium against a real server: the list, a deployment's page,
Quick Run (straight away, or through the parameters form when a required one has no
value), Custom Run (parameters, job variables refused at the field, start time, tags),
pause/resume, runs shown live, and user text that never runs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import WAIT_MS, screenshot
from processes import ServerProcess

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
RUN_URL = re.compile(r".*/runs/[0-9a-f-]{36}$")
# How the SDK describes the guide's weather flow, fetch_weather(lat: float, lon: float).
WEATHER_SCHEMA = {
    "type": "object",
    "title": "Parameters",
    "properties": {
        "lat": {"title": "Lat", "type": "number"},
        "lon": {"title": "Lon", "type": "number"},
        "units": {"title": "Units", "enum": ["metric", "imperial"], "default": "metric"},
        "days": {"title": "Days", "type": "integer", "default": 1},
        "hourly": {"title": "Hourly", "type": "boolean", "default": False},
        "fields": {"title": "Fields", "type": "array", "items": {"type": "string"}, "default": []},
    },
    "required": ["lat", "lon"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("deployments-ui"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url + "/", timeout=30) as client:
        pool = client.post("work_pools", json={"name": "pool", "type": "process"})
        assert pool.status_code == 201, pool.text
        yield client


def site(server: ServerProcess) -> str:
    return server.api_url.removesuffix("/api")


def made(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 204), f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def deploy(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "flow_name": "fetch-weather",
        "name": f"weather-{uuid.uuid4().hex[:6]}",
        "entrypoint": "flows/weather_flow.py:fetch_weather",
        "work_pool_name": "pool",
        "parameter_openapi_schema": WEATHER_SCHEMA,
        **fields,
    }
    result: dict[str, Any] = made(api.post("deployments", json=body))
    return result


def run_of(api: httpx.Client, url: str) -> dict[str, Any]:
    result: dict[str, Any] = made(api.get(f"flow_runs/{url.rsplit('/', 1)[1]}"))
    return result


def test_quick_run_asks_for_required_parameters_first(
    page: Any, server: ServerProcess, api: httpx.Client
) -> None:
    deployment = deploy(api, parameters={"lon": -77.0}, description="The guide's flow")
    page.goto(f"{site(server)}/deployments")
    link = page.get_by_role("link", name=deployment["name"], exact=True)
    expect(page.locator("tr", has=link)).to_contain_text("fetch-weather")
    screenshot(page, "deployments-list")
    link.click()
    expect(page.locator("h1")).to_contain_text(deployment["name"])
    screenshot(page, "deployment-detail")
    page.get_by_role("button", name="Quick Run").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # labelled with the parameter's title alone (the guide's test finds the fields by it)
    expect(dialog.get_by_label("Lon", exact=True)).to_have_value("-77.0")  # the deployment's value
    expect(dialog.get_by_label("Units")).to_have_value('"metric"')
    dialog.get_by_label("Lat", exact=True).fill("38.9")
    screenshot(page, "quick-run-form")
    dialog.get_by_role("button", name="Run").click()
    page.wait_for_url(RUN_URL)
    run = run_of(api, page.url)
    assert run["deployment_id"] == deployment["id"]
    assert run["parameters"]["lat"] == 38.9 and run["parameters"]["lon"] == -77.0
    assert run["parameters"]["units"] == "metric" and run["parameters"]["hourly"] is False


def test_quick_run_without_missing_parameters_starts_at_once(
    page: Any, server: ServerProcess, api: httpx.Client
) -> None:
    deployment = deploy(api, parameters={"lat": 1.5, "lon": 2.5})
    page.goto(f"{site(server)}/deployments/{deployment['id']}")
    page.get_by_role("button", name="Quick Run").click()
    page.wait_for_url(RUN_URL)
    run = run_of(api, page.url)
    assert run["parameters"] == {"lat": 1.5, "lon": 2.5}
    assert run["state"]["type"] == "SCHEDULED"


def test_custom_run_with_errors_at_their_fields(
    page: Any, server: ServerProcess, api: httpx.Client
) -> None:
    deployment = deploy(api, tags=["guide"])
    page.goto(f"{site(server)}/deployments/{deployment['id']}")
    page.get_by_role("link", name="Custom Run").click()
    page.wait_for_url(f"**/deployments/{deployment['id']}/run")
    page.get_by_label("Lat").fill("10")
    page.get_by_label("Lon").fill("20")
    page.get_by_label("Units").select_option(label="imperial")
    page.get_by_label("Days").fill("3")
    page.get_by_label("Hourly").check()
    page.get_by_label("Fields").fill('["temperature", "wind"]')
    page.get_by_label("Tags").fill("ui, custom")
    page.get_by_label("Job variables").fill('{"no_such_variable": 1}')
    page.get_by_role("button", name="Run").click()
    error = page.locator('[data-error-for="job_variables"]')
    expect(error).to_contain_text("no_such_variable")
    page.get_by_label("Job variables").fill("{not json")
    page.get_by_role("button", name="Run").click()
    expect(error).to_contain_text("not valid JSON")

    page.get_by_label("Job variables").fill('{"env": {"MODE": "ui"}}')
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    local = page.evaluate(
        "(iso) => { const d = new Date(iso); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
        " return d.toISOString().slice(0, 19); }",
        start.isoformat(),
    )
    page.get_by_label("Start time").fill(local)
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(RUN_URL)
    run = run_of(api, page.url)
    assert run["parameters"] == {
        "lat": 10,
        "lon": 20,
        "units": "imperial",
        "days": 3,
        "hourly": True,
        "fields": ["temperature", "wind"],
    }
    assert run["job_variables"] == {"env": {"MODE": "ui"}}
    assert sorted(run["tags"]) == ["custom", "guide", "ui"]
    assert run["state"]["type"] == "SCHEDULED"
    assert datetime.fromisoformat(run["expected_start_time"]) == start

    # the detail page lists it as upcoming, and a new run shows without a reload
    page.goto(f"{site(server)}/deployments/{deployment['id']}")
    upcoming = page.locator("section", has=page.locator("#upcoming"))
    expect(upcoming.get_by_role("link", name=run["name"])).to_be_visible()
    made(
        api.post(
            f"deployments/{deployment['id']}/runs",
            json={"name": "pushed-run", "parameters": {"lat": 0, "lon": 0}},
        )
    )
    expect(page.get_by_role("link", name="pushed-run").first).to_be_visible(timeout=WAIT_MS)


def test_pause_and_resume(page: Any, server: ServerProcess, api: httpx.Client) -> None:
    deployment = deploy(api, parameters={"lat": 0, "lon": 0})
    page.goto(f"{site(server)}/deployments/{deployment['id']}")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1 .badge")).to_have_text("Paused")
    assert made(api.get(f"deployments/{deployment['id']}"))["paused"] is True
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .badge")).to_have_text("Active")
    assert made(api.get(f"deployments/{deployment['id']}"))["paused"] is False


def test_user_text_never_runs(page: Any, server: ServerProcess, api: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {"title": XSS, "description": XSS, "type": "string"},
            "y": {"title": "Y", "enum": [XSS, "b"]},
        },
        "required": ["x", "z"],
    }
    deployment = deploy(
        api,
        name=XSS,
        description=XSS + " [x](javascript:window.__xss=1)",
        tags=[XSS],
        parameters={"x": XSS},
        parameter_openapi_schema=schema,
    )
    for url in (
        "/deployments",
        f"/deployments/{deployment['id']}",
        f"/deployments/{deployment['id']}/run",
    ):
        page.goto(site(server) + url)
        expect(
            page.get_by_text("<script>window.__xss=1</script>", exact=False).first
        ).to_be_visible()
        assert page.evaluate("window.__xss") is None, url
    page.goto(f"{site(server)}/deployments/{deployment['id']}")
    page.get_by_role("button", name="Quick Run").click()
    expect(page.get_by_role("dialog").get_by_label(XSS)).to_have_value(XSS)
    assert page.evaluate("window.__xss") is None
