"""A hostile review of the web UI: schemas and query values that broke pages (500s),
every page behind the login, no state-changing route outside /api but login and logout,
and the work-pool list in a constant number of queries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.routing import APIRoute
from starlette.routing import Route
from test_ui_deployments import html, ok
from ui_statements import selects

from skyrun.server.app import create_app
from skyrun.server.db import ui_runs, ui_work
from skyrun.server.ui.schema_form import block_types_of, missing_required, schema_fields
from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


# -- schemas a user saved that the pages could not draw ---------------------------


@pytest.mark.parametrize(
    "block_type", [pytest.param({"x": 1}, id="object"), pytest.param(["x"], id="list")]
)
async def test_a_pool_variable_whose_block_type_is_not_text_does_not_break_the_page(
    api: httpx.AsyncClient, block_type: Any
) -> None:
    # A valid JSON Schema (unknown keywords are allowed), so the API stores it.
    variables = {"type": "object", "properties": {"creds": {"block_type": block_type}}}
    ok(
        await api.post(
            "/api/work_pools",
            json={
                "name": "odd",
                "type": "process",
                "base_job_template": {"job_configuration": {}, "variables": variables},
            },
        ),
        201,
    )
    await html(api, "/work-pools/odd")
    assert 'for="field-variables-creds"' in await html(api, "/work-pools/odd?tab=variables")


def test_the_schema_form_ignores_names_and_block_types_that_are_not_text() -> None:
    schema: dict[str, Any] = {
        "properties": {"a": {"type": "string"}, "b": {"block_type": ["x"]}},
        "required": [["a"], {"x": 1}, "a"],
    }
    assert block_types_of(schema) == []
    fields = {f.name: f for f in schema_fields(schema)}
    assert fields["a"].required and fields["b"].kind != "block"
    assert missing_required(schema, {}) == ["a"]


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "object", "properties": []}, id="properties-list"),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [["a"]]},
            id="required-of-lists",
        ),
        pytest.param({"type": "object", "properties": {"a": {"type": 5}}}, id="bad-type"),
    ],
)
async def test_a_parameter_schema_that_is_not_json_schema_is_a_422_not_a_500(
    api: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    response = await api.post(
        "/api/deployments",
        json={
            "flow_name": "f",
            "name": "d",
            "entrypoint": "f.py:f",
            "parameter_openapi_schema": schema,
        },
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "parameter_openapi_schema"]
    assert "not a valid JSON Schema" in error["msg"]


async def test_a_valid_parameter_schema_is_still_saved(api: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "position": 0, "title": "N"}},
        "required": ["n"],
        "definitions": {},
    }
    saved = ok(
        await api.post(
            "/api/deployments",
            json={
                "flow_name": "f",
                "name": "d",
                "entrypoint": "f.py:f",
                "parameter_openapi_schema": schema,
                "parameters": {"n": 1},
            },
        )
    )
    assert saved["parameter_openapi_schema"] == schema


# -- query values -------------------------------------------------------------------


async def test_a_too_long_variable_to_edit_is_a_message_on_the_page(
    api: httpx.AsyncClient,
) -> None:
    page = await html(api, "/variables?edit=" + "a" * 5000)
    assert "There is no variable" in page
    assert "a" * 5000 not in page


@pytest.mark.parametrize(
    "when",
    [
        pytest.param("0001-01-01T00:00:00+14:00", id="before-time"),
        pytest.param("9999-12-31T23:59:59.999999-14:00", id="after-time"),
    ],
)
async def test_a_cursor_at_the_ends_of_time_is_a_notice_not_a_500(
    api: httpx.AsyncClient, when: str
) -> None:
    cursor = quote(f"{when}~{uuid.uuid4()}")
    for url in (
        f"/deployments?before={cursor}",
        f"/blocks?before={cursor}",
        f"/variables?before={cursor}",
        f"/artifacts?before={cursor}",
        f"/artifacts?unkeyed_before={cursor}",
    ):
        assert "That page link is not valid" in await html(api, url), url
    assert "No blocks yet" in await html(api, f"/blocks?before={cursor}&fragment=documents")
    ok(await api.post("/api/artifacts", json={"key": "k", "type": "progress", "data": 1}), 201)
    assert "That page link is not valid" in await html(api, f"/artifacts/k?before={cursor}")


# -- the work-pool list ---------------------------------------------------------------


async def test_the_work_pool_list_takes_the_same_queries_for_one_pool_or_many(
    api: httpx.AsyncClient,
) -> None:
    async def add(n: int) -> None:
        ok(await api.post("/api/work_pools", json={"name": f"p{n}", "type": "process"}), 201)
        ok(await api.post(f"/api/work_pools/p{n}/queues", json={"name": "extra"}), 201)
        ok(await api.post(f"/api/work_pools/p{n}/workers/heartbeat", json={"name": f"w{n}"}))

    await add(0)
    with selects(api) as one:
        await html(api, "/work-pools")
    for n in range(1, 8):
        await add(n)
    with selects(api) as many:
        page = await html(api, "/work-pools")
    assert "p7" in page
    assert len(many) == len(one)


async def test_a_pool_page_lists_a_bounded_number_of_workers_newest_first(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_work, "WORKERS_SHOWN", 3)
    ok(await api.post("/api/work_pools", json={"name": "many", "type": "process"}), 201)
    for n in range(5):
        ok(await api.post("/api/work_pools/many/workers/heartbeat", json={"name": f"w{n}"}))
    page = await html(api, "/work-pools/many?tab=workers")
    assert "The 3 most recently heard from of 5 workers." in page
    assert [f"w{n}" for n in (4, 3, 2)] == re.findall(r"<td>(w\d)</td>", page)
    assert "5 online of 5" in await html(api, "/work-pools/many")


# -- a run's logs ---------------------------------------------------------------------


async def test_a_huge_log_line_is_cut_on_the_page_and_in_the_feed_but_whole_in_the_download(
    api: httpx.AsyncClient,
) -> None:
    flow_id = ok(await api.post("/api/flows", json={"name": "f"}))["id"]
    run_id = ok(await api.post("/api/flow_runs", json={"flow_id": flow_id}), 201)["id"]
    line = "x" * (ui_runs.SHOWN_MESSAGE + 5000) + "THE-END"
    logs = [
        {"flow_run_id": run_id, "name": "n", "level": 20, "message": message, "timestamp": when}
        for message, when in ((line, "2026-01-01T00:00:00Z"), ("short", "2026-01-01T00:00:01Z"))
    ]
    ok(await api.post("/api/logs", json=logs), 201)
    page = await html(api, f"/runs/{run_id}?tab=logs")
    assert "THE-END" not in page and "x" * ui_runs.SHOWN_MESSAGE in page
    assert "5007 more characters: download the logs for the whole line" in page
    assert "short" in page
    download = await api.get(f"/runs/{run_id}/logs.txt")
    assert line in download.text
    database = api._transport.app.state.database  # type: ignore[attr-defined]
    async with database.read_session() as session, session.begin():
        fed = await ui_runs.logs_after(session, uuid.UUID(run_id), 0)
    assert len(fed[0].message) < ui_runs.SHOWN_MESSAGE + 200 and fed[1].message == "short"


# -- with auth on: every page behind the login, writes only through /api -----------------


def _routes(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str], Any]]:
    """(path, methods, route) of every route, into included routers (FastAPI nests them)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute | Route):
            found.append((prefix + route.path, set(route.methods or ()), route))
    return found


def _ui_get_paths(app: Any) -> list[str]:
    """Every GET route the UI adds (path parameters filled with something)."""
    paths = []
    for path, methods, route in _routes(app.routes):
        if path.startswith(("/api", "/ui/static", "/docs")) or path == "/login":
            continue
        if "GET" not in methods:
            continue
        for name in route.param_convertors:
            path = path.replace("{" + name + "}", "00000000-0000-0000-0000-000000000000")
        paths.append(path)
    return paths


async def test_with_auth_on_every_page_fragment_and_stream_asks_for_a_login(
    api_settings: Settings, api_for: ApiFor
) -> None:
    settings = api_settings.model_copy(
        update={"server_auth_enabled": True, "encryption_key": Fernet.generate_key().decode()}
    )
    app = create_app(settings, run_services=False)
    paths = _ui_get_paths(app)
    # The dashboard, the list pages, the detail pages, the log download, the stream.
    assert {"/", "/runs", "/ui/events", "/variables"} <= set(paths), paths
    assert len(paths) >= 15, paths
    async with api_for(settings) as ui:
        for path in paths:
            for query in ("", "?fragment=table", "?topic=runs"):
                response = await ui.get(path + query, headers={"Accept": "text/html"})
                assert response.status_code == 303, (path, query, response.status_code)
                assert response.headers["location"].startswith("/login?next="), path


def test_no_route_outside_the_api_changes_anything_but_login_and_logout(
    api_settings: Settings,
) -> None:
    app = create_app(api_settings, run_services=False)
    writes = {
        path
        for path, methods, _ in _routes(app.routes)
        if not path.startswith("/api") and methods - {"GET", "HEAD", "OPTIONS"}
    }
    assert writes == {"/login", "/logout"}
