"""The work-pool pages: the list with status and workers, the create form, and a pool's
tabs: the template-variables form generated from its schema (block picker included),
the raw-template editor the server validates, queues and workers; user text inert."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from test_ui_deployments import XSS, control, counting_statements, html, label_for, ok

from skyrun.integrations.gcp.job_template import CLOUD_RUN_JOB_TEMPLATE
from skyrun.jobs.process_template import PROCESS_JOB_TEMPLATE
from skyrun.server.ui import events
from skyrun.settings import Settings


async def make_pool(api: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(
        await api.post("/api/work_pools", json={"name": name, "type": "process", **fields}), 201
    )
    return result


async def heartbeat(api: httpx.AsyncClient, pool: str, worker: str) -> None:
    ok(await api.post(f"/api/work_pools/{pool}/workers/heartbeat", json={"name": worker}))


def row_of(page: str, name: str) -> str:
    start = page.index(f">{name}</a>")
    return page[start : page.index("</tr>", start)]


async def test_the_list_shows_type_status_concurrency_and_workers(api: httpx.AsyncClient) -> None:
    await make_pool(api, "ready-pool", concurrency_limit=4)
    await make_pool(api, "idle-pool")
    await make_pool(api, "paused-pool", is_paused=True)
    await heartbeat(api, "ready-pool", "w1")
    await heartbeat(api, "ready-pool", "w2")
    with counting_statements(api) as statements:
        page = await html(api, "/work-pools")
    assert len(statements) == 1, statements  # one statement whatever the number of pools
    ready = row_of(page, "ready-pool")
    assert "status-ready" in ready and ">ready<" in ready
    assert "<td>4</td>" in ready and "2 online" in ready
    assert ">not ready<" in row_of(page, "idle-pool")
    assert "no limit" in row_of(page, "idle-pool")
    assert ">paused<" in row_of(page, "paused-pool")
    assert 'data-live-topic="work-pools"' in page


async def test_the_create_form_starts_from_the_types_default_template(
    api: httpx.AsyncClient,
) -> None:
    page = await html(api, "/work-pools/new?type=cloud-run")
    select = page[page.index('id="pool-type"') : page.index("</select>")]
    assert '<option value="cloud-run" selected>' in select
    assert '<option value="process"' in select
    start = page.index('id="pool-template"')
    editor = page[start : page.index("</textarea>", start)]
    assert "&#34;api_endpoint&#34;" in editor  # cloud-run's default, as JSON text
    assert 'data-default-template="process"' in page
    for label in ("Type", "Name", "Description", "Concurrency limit", "Base job template"):
        assert control(page, label_for(page, label))
    unknown = await html(api, "/work-pools/new?type=<nope>")
    assert '<option value="process" selected>' in unknown


async def test_the_variables_tab_is_a_form_of_the_templates_schema(api: httpx.AsyncClient) -> None:
    await make_pool(api, "cr", type="cloud-run")
    for name in ("main", "backup"):
        ok(
            await api.post(
                "/api/blocks",
                json={"block_type": "gcp-credentials", "name": name, "data": {"project": "p"}},
            ),
            201,
        )
    with counting_statements(api) as statements:
        page = await html(api, "/work-pools/cr?tab=variables")
    assert len(statements) <= 8, statements  # a fixed few, whatever the pool holds
    assert 'aria-selected="true"' in page[page.index('id="tab-variables"') - 40 :][:200]
    expected = {
        "Region": ('type="text"', 'value="us-central1"', "data-schema-kind"),
        "GCP credentials": ("<select", 'data-schema-kind="block"', "data-nullable"),
        "Service account": ('type="text"', "data-nullable"),
        "Timeout (seconds)": ('type="number"', 'step="1"', 'min="1"', 'value="3600"'),
        "Keep the job": ('type="checkbox"',),
        "Launch stage": ("<select", 'data-schema-kind="enum"'),
        "Environment variables": ("<textarea", 'data-schema-kind="json"'),
        "Command": ("<textarea", "data-nullable"),
        "GPU count": ('type="number"', "data-nullable"),
    }
    for label, fragments in expected.items():
        tag = control(page, label_for(page, label))
        for fragment in fragments:
            assert fragment in tag, (label, fragment, tag)
    picker = page[
        page.index('data-schema-kind="block"') : page.index(
            "</select>", page.index('data-schema-kind="block"')
        )
    ]
    assert '<option value="null" selected>(no block)</option>' in picker
    assert (
        '<option value="&#34;gcp-credentials/backup&#34;">gcp-credentials/backup</option>' in picker
    )
    assert "gcp-credentials/main" in picker
    assert 'href="/blocks/new?type=gcp-credentials"' in page
    assert '<option value="&#34;GA&#34;" selected>GA</option>' in page
    assert "The Google Cloud region the jobs run in" in page
    assert "Default: <code>&#34;us-central1&#34;</code>" in page


async def test_a_chosen_block_is_shown_selected(api: httpx.AsyncClient) -> None:
    template = copy.deepcopy(CLOUD_RUN_JOB_TEMPLATE)
    template["variables"]["properties"]["credentials"]["default"] = "gcp-credentials/gone"
    await make_pool(api, "cr2", type="cloud-run", base_job_template=template)
    page = await html(api, "/work-pools/cr2?tab=variables")
    assert (
        '<option value="&#34;gcp-credentials/gone&#34;" selected>gcp-credentials/gone</option>'
        in page
    )


async def test_the_advanced_tab_edits_the_whole_template_and_bad_ones_are_refused(
    api: httpx.AsyncClient,
) -> None:
    await make_pool(api, "raw")
    page = await html(api, "/work-pools/raw?tab=advanced")
    editor = control(page, label_for(page, "Base job template (JSON)"))
    assert "<textarea" in editor
    assert 'data-error-for="base_job_template"' in page and 'data-error-for="_form"' in page
    before = ok(await api.get("/api/work_pools/raw"))["base_job_template"]
    assert before == PROCESS_JOB_TEMPLATE
    broken = {"job_configuration": {"command": "{{ undeclared }}"}, "variables": {}}
    refused = await api.patch("/api/work_pools/raw", json={"base_job_template": broken})
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert "invalid base job template" in error["msg"] and "undeclared" in error["msg"]
    not_json = await api.patch(
        "/api/work_pools/raw",
        content=b'{"base_job_template": {"job_configuration": ',
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert "invalid JSON" in not_json.json()["detail"][0]["msg"]
    assert ok(await api.get("/api/work_pools/raw"))["base_job_template"] == before


async def test_queues_and_workers_tabs(api: httpx.AsyncClient) -> None:
    await make_pool(api, "q")
    ok(
        await api.post(
            "/api/work_pools/q/queues",
            json={"name": "urgent", "priority": 2, "concurrency_limit": 5, "is_paused": True},
        ),
        201,
    )
    page = await html(api, "/work-pools/q?tab=queues")
    assert re.search(r"<td>urgent</td>\s*<td>2</td>\s*<td>5</td>", page)
    assert 'data-action="/api/work_pools/q/queues/urgent"' in page
    assert '{"is_paused": false}' in page.replace("&#34;", '"')
    for label in ("Name", "Priority", "Queue"):
        assert control(page, label_for(page, label))
    fragment = await html(api, "/work-pools/q?fragment=queues")
    assert "urgent" in fragment and "<html" not in fragment
    await heartbeat(api, "q", "worker-one")
    workers = await html(api, "/work-pools/q?tab=workers")
    assert "worker-one" in workers and "status-online" in workers
    assert 'data-live-topic="work-pool:q"' in workers
    assert "worker-one" in await html(api, "/work-pools/q?fragment=workers")


async def test_unknown_pools_and_tabs_do_not_fail(api: httpx.AsyncClient) -> None:
    await make_pool(api, "p")
    assert "Not found" in await html(api, "/work-pools/nope", status=404)
    page = await html(api, "/work-pools/p?tab=<script>")
    assert 'id="panel-overview"' in page


async def test_user_text_is_escaped(api: httpx.AsyncClient) -> None:
    template = copy.deepcopy(PROCESS_JOB_TEMPLATE)
    variables = template["variables"]["properties"]
    first = next(iter(variables))
    variables[first].update(title=XSS, description=XSS)
    await make_pool(api, "x", description=XSS, base_job_template=template)
    ok(await api.post("/api/work_pools/x/queues", json={"name": "q1", "description": XSS}), 201)
    await heartbeat(api, "x", XSS)
    for url in (
        "/work-pools",
        "/work-pools/x",
        "/work-pools/x?tab=variables",
        "/work-pools/x?tab=advanced",
        "/work-pools/x?tab=queues",
        "/work-pools/x?tab=workers",
    ):
        page = await html(api, url)
        assert "<script>window.__xss" not in page, url
        assert "<img src=x" not in page, url
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page or "\\u003c" in page, url


async def test_the_live_probes_move_when_what_the_pages_show_changes(
    api: httpx.AsyncClient,
) -> None:
    database = api._transport.app.state.database  # type: ignore[attr-defined]

    async def probe(topic: str, argument: str = "") -> Any:
        async with database.session() as session, session.begin():
            return await events.PROBES[topic](session, argument)

    await make_pool(api, "live")
    pool_before, list_before = await probe("work-pool", "live"), await probe("work-pools")
    assert await probe("work-pool", "live") == pool_before  # stable while nothing changes
    await heartbeat(api, "live", "w")
    assert await probe("work-pool", "live") != pool_before
    assert await probe("work-pools") != list_before
    queued = await probe("work-pool", "live")
    ok(await api.patch("/api/work_pools/live/queues/default", json={"is_paused": True}))
    assert await probe("work-pool", "live") != queued
    assert await probe("work-pool", "no-such-pool") is not None  # answers, does not fail

    deployment = ok(
        await api.post(
            "/api/deployments",
            json={"flow_name": "f", "name": "d", "entrypoint": "f.py:f", "work_pool_name": "live"},
        )
    )
    before, listed = await probe("deployment", deployment["id"]), await probe("deployments")
    ok(await api.post(f"/api/deployments/{deployment['id']}/runs", json={}), 201)
    assert await probe("deployment", deployment["id"]) != before
    paused = await probe("deployment", deployment["id"])
    ok(await api.patch(f"/api/deployments/{deployment['id']}", json={"paused": True}))
    assert await probe("deployment", deployment["id"]) != paused
    assert await probe("deployments") != listed
    assert await probe("deployment", "not-a-uuid") is None


async def test_with_auth_on_the_pages_ask_for_a_login(
    api_settings: Settings,
    api_for: Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with api_for(api_settings.model_copy(update={"server_auth_enabled": True})) as authed:
        for url in (
            "/deployments",
            f"/deployments/{uuid.uuid4()}",
            f"/deployments/{uuid.uuid4()}/run",
            "/work-pools",
            "/work-pools/new",
            "/work-pools/p?tab=workers",
        ):
            response = await authed.get(url, headers={"Accept": "text/html"})
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/login?next="), url
