"""The server enforces the rules of deployments, whoever the client: job variables against the
work pool's template, parameters against the flow's schema, schedules it can compute, types
of work pool it can fill in. (The SDK and CLI check the same with the same code, earlier.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from skyrun.jobs import types as registry

PARAMETER_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "label": {"type": "string", "default": "x"}},
    "required": ["n"],
    "additionalProperties": False,
}


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def refused(response: httpx.Response, *fragments: str) -> str:
    """The 422's message, which must hold every fragment."""
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    message = detail if isinstance(detail, str) else str(detail)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def deployment(**fields: Any) -> dict[str, Any]:
    return {
        "flow_name": "etl",
        "name": "d",
        "entrypoint": "f.py:etl",
        "work_pool_name": "pool",
        **fields,
    }


@pytest.fixture
async def pool(api: httpx.AsyncClient) -> str:
    body(await api.post("/api/work_pools", json={"name": "pool", "type": "process"}), 201)
    return "pool"


async def count_deployments(api: httpx.AsyncClient) -> int:
    return int(body(await api.get("/api/deployments"))["count"])


# -- job variables ------------------------------------------------------------------


async def test_a_deployment_with_job_variables_its_pool_refuses_is_not_saved(
    api: httpx.AsyncClient, pool: str
) -> None:
    response = await api.post(
        "/api/deployments",
        json=deployment(job_variables={"stream_output": "loudly", "region": "eu", "env": {}}),
    )
    message = refused(
        response,
        "work pool 'pool'",
        "job variable 'stream_output': 'loudly' is not of type 'boolean'",
        "unknown job variable 'region'",
    )
    assert "'env'" not in message.split("declares")[0]  # env is declared and valid
    no_pool = await api.post(
        "/api/deployments",
        json=deployment(work_pool_name=None, job_variables={"env": {"A": "1"}}),
    )
    refused(no_pool, "job_variables need a work pool")
    assert await count_deployments(api) == 0


async def test_a_run_or_an_update_with_bad_job_variables_is_refused(
    api: httpx.AsyncClient, pool: str
) -> None:
    created = body(await api.post("/api/deployments", json=deployment()))
    runs = f"/api/deployments/{created['id']}/runs"
    refused(
        await api.post(runs, json={"job_variables": {"env": {"A": 1}}}),
        "job variable 'env': 1 is not of type",
        "(at env.A)",
    )
    refused(
        await api.patch(
            f"/api/deployments/{created['id']}", json={"job_variables": {"working_dir": 3}}
        ),
        "job variable 'working_dir'",
    )
    assert body(await api.post("/api/flow_runs/filter", json={}))["count"] == 0
    # Valid ones are taken (None means "the pool's default").
    body(
        await api.post(runs, json={"job_variables": {"env": {"A": "1"}, "stream_output": None}}),
        201,
    )


# -- parameters ---------------------------------------------------------------------


async def test_parameters_are_checked_against_the_flows_schema(
    api: httpx.AsyncClient, pool: str
) -> None:
    refused(
        await api.post(
            "/api/deployments",
            json=deployment(parameter_openapi_schema=PARAMETER_SCHEMA, parameters={"n": "many"}),
        ),
        "parameter 'n': 'many' is not of type 'integer'",
    )
    # A scheduled deployment needs every required parameter: its runs get no others.
    refused(
        await api.post(
            "/api/deployments",
            json=deployment(
                parameter_openapi_schema=PARAMETER_SCHEMA,
                schedules=[{"schedule": {"interval": 60}}],
            ),
        ),
        "scheduled runs need a value for 'n'",
    )
    created = body(
        await api.post(
            "/api/deployments", json=deployment(parameter_openapi_schema=PARAMETER_SCHEMA)
        )
    )
    runs = f"/api/deployments/{created['id']}/runs"
    refused(await api.post(runs, json={}), "a run needs a value for 'n'")
    refused(await api.post(runs, json={"parameters": {"n": 1, "rows": 2}}), "'rows' was unexpected")
    body(await api.post(runs, json={"parameters": {"n": 1}}), 201)


# -- schedules ----------------------------------------------------------------------


async def test_a_schedule_the_scheduler_could_not_compute_is_refused(
    api: httpx.AsyncClient, pool: str
) -> None:
    impossible = {"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}
    refused(
        await api.post("/api/deployments", json=deployment(schedules=[{"schedule": impossible}])),
        "schedules[0]",
        "too costly to compute",
    )
    # The adversarial one from the review: every second from 1970, two billion times.
    from_1970 = {"rrule": "DTSTART:19700101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=2000000000"}
    body(await api.post("/api/deployments", json=deployment(schedules=[{"schedule": from_1970}])))
    assert (await api.get("/api/health")).status_code == 200


# -- work pool types ----------------------------------------------------------------


async def test_a_pool_of_a_type_the_server_cannot_fill_in_is_refused(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A known type whose template module is not installed here (as cloud-run's is
    # without the gcp extra).
    monkeypatch.setitem(
        registry.WORKER_TYPES, "future", ("skyrun_test_absent.worker", "Worker", "gcp")
    )
    monkeypatch.setitem(registry._TEMPLATES, "future", ("skyrun_test_absent.template", "T"))
    refused(
        await api.post("/api/work_pools", json={"name": "cr", "type": "future"}),
        "'future' worker type is not installed",
        "skyrun[gcp]",
    )
    refused(
        await api.post("/api/work_pools", json={"name": "k8s", "type": "kubernetes"}),
        "unknown worker type 'kubernetes'",
        "process",
        "base_job_template",
    )
    assert body(await api.get("/api/work_pools")) == []
    # A worker type of one's own is fine with its own template.
    template = {"job_configuration": {}, "variables": {"type": "object", "properties": {}}}
    own = await api.post(
        "/api/work_pools", json={"name": "mine", "type": "my-own", "base_job_template": template}
    )
    assert body(own, 201)["base_job_template"] == template
