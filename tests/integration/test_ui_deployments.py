"""The deployment pages: the list (keyset pages, constant queries), a deployment's page
(schedules, parameters, upcoming and recent runs, Quick Run), the Custom Run form
generated from the parameter schema, and everything a user typed rendered inert."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skyrun.schemas.states import utcnow
from skyrun.server.ui.pages import deployments as deployments_page

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'

SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parameters",
    "properties": {
        "lat": {"title": "Lat", "type": "number"},
        "count": {"title": "Count", "type": "integer", "minimum": 1, "default": 3},
        "city": {"title": "City", "type": "string", "description": "Where it is"},
        "verbose": {"title": "Verbose", "type": "boolean", "default": False},
        "unit": {"title": "Unit", "enum": ["C", "F"], "default": "C"},
        "color": {"$ref": "#/$defs/Color"},
        "hours": {"title": "Hours", "type": "array", "items": {"type": "integer"}},
        "options": {"title": "Options", "type": "object", "default": {}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note", "default": None},
    },
    "required": ["lat", "city"],
    "$defs": {"Color": {"title": "Color", "enum": ["red", "blue"], "type": "string"}},
    "additionalProperties": False,
}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if "json" in response.headers.get("content-type", "") else response


async def make_pool(api: httpx.AsyncClient, name: str = "pool") -> None:
    ok(await api.post("/api/work_pools", json={"name": name, "type": "process"}), 201)


async def make_deployment(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "flow_name": "weather",
        "name": f"d-{uuid.uuid4().hex[:6]}",
        "entrypoint": "flows/weather.py:weather",
        **fields,
    }
    result: dict[str, Any] = ok(await api.post("/api/deployments", json=body))
    return result


async def html(api: httpx.AsyncClient, url: str, status: int = 200) -> str:
    response = await api.get(url, headers={"Accept": "text/html"})
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    assert "text/html" in response.headers["content-type"]
    return response.text


@contextmanager
def counting_statements(api: httpx.AsyncClient) -> Iterator[list[str]]:
    engine = api._transport.app.state.database.engine.sync_engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def label_for(page: str, text: str) -> str:
    """The id a <label> with this text points at (fails when there is no such label)."""
    match = re.search(rf'<label for="([^"]+)">{re.escape(text)}[ <]', page)
    assert match, f"no label {text!r}"
    return match.group(1)


def control(page: str, input_id: str) -> str:
    """The opening tag of the control with this id."""
    match = re.search(rf'<(input|select|textarea)\b[^>]*\bid="{re.escape(input_id)}"[^>]*>', page)
    assert match, f"no control #{input_id}"
    return match.group(0)


async def test_the_list_shows_flow_pool_schedules_paused_and_tags(api: httpx.AsyncClient) -> None:
    await make_pool(api)
    await make_deployment(
        api,
        name="nightly",
        work_pool_name="pool",
        tags=["etl", "prod"],
        schedules=[{"schedule": {"cron": "0 9 * * *", "timezone": "Europe/Paris"}}],
        paused=True,
    )
    await make_deployment(api, name="adhoc")
    page = await html(api, "/deployments")
    assert "nightly" in page and "adhoc" in page
    assert 'href="/work-pools/pool"' in page
    assert "cron 0 9 * * * (Europe/Paris)" in page
    assert "Paused" in page and "Active" in page
    assert '<span class="tag">etl</span>' in page
    assert 'data-live-topic="deployments"' in page


async def test_the_list_pages_by_keyset_with_the_same_queries_per_page(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deployments_page, "PAGE_SIZE", 3)
    names = [f"dep-{n:02d}" for n in range(8)]
    for name in names:
        await make_deployment(
            api, name=name, schedules=[{"schedule": {"interval": 3600}, "active": False}]
        )
    seen: list[str] = []
    counts = []
    url: str | None = "/deployments"
    for _ in range(5):
        if url is None:
            break
        with counting_statements(api) as statements:
            page = await html(api, url)
        counts.append(len(statements))
        seen += re.findall(r">(dep-\d\d)</a>", page)
        found = re.search(r'href="(/deployments\?before=[^"]+)" rel="next"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == list(reversed(names))  # newest first, each once
    assert len(counts) == 3
    assert len(set(counts)) == 1, counts  # the same statements whatever the rows
    assert counts[0] <= 3, counts


async def test_a_bad_cursor_or_id_gives_a_message_not_an_error(api: httpx.AsyncClient) -> None:
    await make_deployment(api, name="only")
    page = await html(api, "/deployments?before=not-a-cursor")
    assert "That page link is not valid" in page and "only" in page
    page = await html(api, "/deployments?before=2026-01-01T00:00:00~nope")
    assert "That page link is not valid" in page
    missing = await html(api, "/deployments/not-a-uuid", status=404)
    assert "not a deployment id" in missing
    gone = await html(api, f"/deployments/{uuid.uuid4()}", status=404)
    assert "not found" in gone
    assert (await api.get(f"/deployments/{uuid.uuid4()}/run")).status_code == 404


async def test_the_detail_page_shows_what_the_deployment_is(api: httpx.AsyncClient) -> None:
    await make_pool(api)
    deployment = await make_deployment(
        api,
        name="report",
        description="Daily report",
        work_pool_name="pool",
        job_variables={"env": {"A": "1"}},
        parameters={"lat": 38.9, "city": "DC"},
        parameter_openapi_schema=SCHEMA,
        schedules=[{"schedule": {"interval": 600}}],
    )
    page = await html(api, f"/deployments/{deployment['id']}")
    assert "Daily report" in page
    assert "flows/weather.py:weather" in page
    assert "every 600s" in page
    assert "&#34;A&#34;: &#34;1&#34;" in page  # job variables as JSON text
    assert "<code>38.9</code>" in page
    served = await make_deployment(api, name="no-schema", parameters={"when": "today"})
    values = await html(api, f"/deployments/{served['id']}")
    assert "&#34;when&#34;: &#34;today&#34;" in values  # values without a schema still shown
    assert f'data-live-topic="deployment:{deployment["id"]}"' in page
    # all required parameters have values: Quick Run runs at once
    assert f'data-action="/api/deployments/{deployment["id"]}/runs"' in page
    assert "quick-run-dialog" not in page
    assert f'href="/deployments/{deployment["id"]}/run"' in page


async def test_upcoming_runs_are_scheduled_ones_soonest_first_and_recent_runs_link(
    api: httpx.AsyncClient,
) -> None:
    deployment = await make_deployment(api, name="later")
    now = utcnow()
    runs = {}
    for name, hours in (("in-3h", 3), ("in-1h", 1), ("in-2h", 2)):
        when = (now + timedelta(hours=hours)).isoformat()
        run = ok(
            await api.post(
                f"/api/deployments/{deployment['id']}/runs",
                json={"name": name, "scheduled_time": when},
            ),
            201,
        )
        runs[name] = run["id"]
    page = await html(api, f"/deployments/{deployment['id']}")
    upcoming = page[page.index('id="upcoming"') : page.index('id="recent"')]
    assert re.findall(r">(in-\dh)</a>", upcoming) == ["in-1h", "in-2h", "in-3h"]
    recent = page[page.index('id="recent"') :]
    assert f'href="/runs/{runs["in-2h"]}"' in recent
    fragment = await html(api, f"/deployments/{deployment['id']}?fragment=runs")
    assert "<html" not in fragment and "in-1h" in fragment


async def test_quick_run_opens_a_form_when_a_required_parameter_has_no_value(
    api: httpx.AsyncClient,
) -> None:
    deployment = await make_deployment(
        api, parameters={"city": "Paris"}, parameter_openapi_schema=SCHEMA
    )
    page = await html(api, f"/deployments/{deployment['id']}")
    assert 'data-open-dialog="quick-run-dialog"' in page
    assert "The flow needs lat" in page
    # pre-filled with the deployment's values, labelled by the parameter titles
    assert 'value="Paris"' in control(page, label_for(page, "City"))
    assert control(page, label_for(page, "Lat"))
    assert '<label for="field-parameters-lat">Lat</label>' in page  # the title alone
    assert 'aria-required="true"' in control(page, "field-parameters-lat")


async def test_every_schema_type_renders_a_labelled_control(api: httpx.AsyncClient) -> None:
    deployment = await make_deployment(
        api, parameters={"hours": [1, 2], "unit": "F"}, parameter_openapi_schema=SCHEMA
    )
    page = await html(api, f"/deployments/{deployment['id']}/run")
    expected = {
        "Lat": ('type="number"', 'step="any"', 'data-schema-kind="number"'),
        "Count": ('type="number"', 'step="1"', 'min="1"', 'value="3"'),
        "City": ('type="text"', 'aria-describedby="field-parameters-city-hint"'),
        "Verbose": ('type="checkbox"',),
        "Unit": ("<select", 'data-schema-kind="enum"'),
        "Color": ("<select", 'data-schema-kind="enum"'),  # an enum behind a $ref
        "Hours": ("<textarea", 'data-schema-kind="json"'),
        "Options": ("<textarea", 'data-schema-kind="json"'),
        "Note": ('type="text"', "data-nullable"),
    }
    for label, fragments in expected.items():
        tag = control(page, label_for(page, label))
        for fragment in fragments:
            assert fragment in tag, (label, fragment, tag)
    assert "Where it is" in page  # descriptions
    assert page.count('class="required"') == 2  # lat and city
    assert '<option value="&#34;F&#34;" selected>F</option>' in page
    assert '<option value="&#34;red&#34;">red</option>' in page
    assert "[\n  1,\n  2\n]" in page  # the array as JSON in its textarea
    assert "Default: <code>3</code>" in page
    for name in ("parameters.lat", "parameters", "job_variables", "tags", "scheduled_time"):
        assert f'data-error-for="{name}"' in page
    assert control(page, label_for(page, "Start time")).count('type="datetime-local"') == 1
    assert 'data-type="json"' in control(page, label_for(page, "Job variables"))
    assert 'data-type="list"' in control(page, label_for(page, "Tags"))


async def test_a_run_with_bad_parameters_or_job_variables_names_them_in_loc(
    api: httpx.AsyncClient,
) -> None:
    await make_pool(api)
    deployment = await make_deployment(api, work_pool_name="pool", parameter_openapi_schema=SCHEMA)
    url = f"/api/deployments/{deployment['id']}/runs"
    missing = await api.post(url, json={"parameters": {"city": "x"}})
    assert missing.status_code == 422
    [error] = missing.json()["detail"]
    assert error["loc"] == ["body", "parameters"] and "'lat'" in error["msg"]
    bad = await api.post(
        url, json={"parameters": {"lat": 1, "city": "x"}, "job_variables": {"nope": 1}}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "job_variables"]


async def test_user_text_is_escaped_everywhere(api: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "x": {"title": XSS, "description": XSS, "type": "string", "default": XSS},
            "e": {"title": "E", "enum": [XSS, "b"]},
        },
        "required": ["x", "y"],
    }
    deployment = await make_deployment(
        api,
        name=XSS,
        description=XSS,
        tags=[XSS],
        parameters={"x": XSS},
        parameter_openapi_schema=schema,
    )
    for url in (
        "/deployments",
        f"/deployments/{deployment['id']}",
        f"/deployments/{deployment['id']}/run",
    ):
        page = await html(api, url)
        assert "<script>window.__xss" not in page, url
        assert "<img src=x" not in page, url
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page, url
