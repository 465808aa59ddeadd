"""The API's own documentation: Swagger UI at /api/docs and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]

# (path, method) of the routes that the CLI, the SDK and workers depend on.
MAIN_ROUTES = [
    ("/api/health", "get"),
    ("/api/flows", "post"),
    ("/api/flow_runs", "post"),
    ("/api/flow_runs/filter", "post"),
    ("/api/flow_runs/{flow_run_id}", "get"),
    ("/api/flow_runs/{flow_run_id}/set_state", "post"),
    ("/api/task_runs", "get"),
    ("/api/batch", "post"),
    ("/api/logs", "get"),
    ("/api/artifacts", "post"),
    ("/api/variables/{name}", "put"),
    ("/api/deployments", "post"),
    ("/api/deployments/{deployment_id}/runs", "post"),
    ("/api/work_pools", "post"),
    ("/api/work_pools/{name}", "patch"),
    ("/api/work_pools/{name}/claim", "post"),
    ("/api/work_pools/{name}/workers/heartbeat", "post"),
    ("/api/api_keys", "post"),
]


def assert_docs(docs: httpx.Response, spec: httpx.Response) -> None:
    assert docs.status_code == 200, docs.text
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text
    assert "/api/openapi.json" in docs.text  # the page loads the document below

    assert spec.status_code == 200, spec.text
    document = spec.json()
    assert document["info"]["title"] == "skyrun"
    paths = document["paths"]
    missing = [(path, method) for path, method in MAIN_ROUTES if method not in paths.get(path, {})]
    assert missing == []


async def test_docs_and_openapi_document_the_main_routes(api: httpx.AsyncClient) -> None:
    assert_docs(await api.get("/api/docs"), await api.get("/api/openapi.json"))
    document = (await api.get("/api/openapi.json")).json()
    # The work-pool create answer documents its warnings (see test_work_pool_api.py).
    created = document["paths"]["/api/work_pools"]["post"]["responses"]["201"]
    schema_ref = created["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert "warnings" in schema["properties"]


async def test_docs_need_no_api_key_when_auth_is_on(
    api_settings: Settings, api_for: ApiFor
) -> None:
    async with api_for(api_settings.model_copy(update={"server_auth_enabled": True})) as authed:
        assert (await authed.get("/api/flows")).status_code == 401  # auth is really on
        assert_docs(await authed.get("/api/docs"), await authed.get("/api/openapi.json"))
