"""Bad input never gets a 500: every documented operation, fed malformed requests.

The operations come from the app's own OpenAPI document, so a new route is
covered as soon as it exists.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import httpx
import pytest

PATH_VALUES = [str(uuid.uuid4()), "not-a-uuid", "x" * 300, "%00", "0", "-1", "a b"]
BODIES: list[Any] = [
    None,
    {},
    [],
    "text",
    12,
    {"name": None},
    {"name": 5, "type": [], "state": "RUNNING"},
    {"name": "", "flow_id": "nope", "parameters": "x"},
    {"state": {"type": "NOT_A_STATE"}, "force": "maybe"},
    {"task_runs": [{"id": str(uuid.uuid4())}], "logs": [{"level": "high"}]},
    {"limit": -1, "offset": "x", "sort": "sideways"},
    {"base_job_template": {"job_configuration": {"a": "{{ nope }}"}}, "name": "p", "type": "t"},
    {"flow_name": "f", "name": "d", "entrypoint": "no-colon"},
    {"worker_name": "w", "wait_seconds": 1000},
]
QUERIES = [{}, {"limit": "-5"}, {"limit": "abc", "offset": "-1"}, {"flow_run_id": "zzz"}]


def _operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_operation_answers_500_to_bad_input(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/api/openapi.json")).json()
    operations = _operations(schema)
    assert len(operations) > 30
    failures = []
    for (method, path), value in itertools.product(operations, PATH_VALUES):
        url = _fill(path, value)
        bodies = BODIES if method in {"POST", "PUT", "PATCH"} else [None]
        queries = QUERIES if method in {"GET", "DELETE"} else QUERIES[:2]
        for body, query in itertools.product(bodies, queries):
            kwargs: dict[str, Any] = {"params": query}
            if body is not None:
                kwargs["json"] = body
            response = await api.request(method, url, **kwargs)
            if response.status_code >= 500:
                failures.append(f"{method} {url} {body!r} {query} -> {response.status_code}")
    assert failures == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_validation_errors_name_the_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/flow_runs", json={"flow_id": "nope"})
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert ("body", "flow_id") in fields

    # A batch refuses an invalid record on its own (the rest is recorded), naming the field.
    response = await api.post("/api/batch", json={"task_runs": [{"id": "x"}]})
    assert response.status_code == 200
    [refused] = response.json()["refused"]
    assert (refused["kind"], refused["index"]) == ("task_run", 0)
    assert refused["reason"].startswith("id: ")


FAR_TIMES = ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59"]


@pytest.mark.parametrize("far", FAR_TIMES)
async def test_a_time_past_the_calendar_is_a_422_naming_the_range(
    api: httpx.AsyncClient, far: str
) -> None:
    # Before the bound these reached the database layer and overflowed there: a 500.
    flow = (await api.post("/api/flows", json={"name": "far-times"})).json()
    requests = [
        (
            "/api/flow_runs",
            {"flow_id": flow["id"], "state": {"type": "SCHEDULED", "scheduled_time": far}},
        ),
        ("/api/flow_runs/filter", {"expected_start_after": far}),
        ("/api/batch", {"logs": [{"name": "n", "level": 20, "message": "m", "timestamp": far}]}),
    ]
    for url, body in requests:
        response = await api.post(url, json=body)
        text = response.text
        assert response.status_code in (200, 422), (url, response.status_code, text)
        assert "out of range: give one between 0001-01-02 and 9998-12-31" in text, (url, text)
    page = (await api.post("/api/flow_runs/filter", json={})).json()
    assert page["items"] == []
