"""Bad input found by an adversarial pass: each is a 422 (or 413) naming what is wrong.

Every case here answered 500, or was stored wrongly, before the bounds in
schemas/limits.py, the strict JSON decoding in server/api/deps.py and the body
limit in server/body_limit.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from skyrun.schemas.limits import MAX_LOG_MESSAGE_LENGTH
from skyrun.server.db.engine import Database
from skyrun.server.db.models import Flow
from skyrun.server.http_errors import is_data_error
from skyrun.settings import Settings

JSON = {"content-type": "application/json"}


def raw(value: Any) -> bytes:
    """`value` as Python's json writes it: NaN and Infinity included, as clients may send."""
    return json.dumps(value).encode()


def assert_422(response: httpx.Response, *words: str) -> list[dict[str, Any]]:
    """A 422 in the one documented shape, whose messages hold each of `words`."""
    assert response.status_code == 422, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert set(error) == {"loc", "msg", "type"}, error
    text = " ".join(error["msg"] for error in detail)
    for word in words:
        assert word in text, (word, text)
    return detail


@pytest.fixture
async def pool(api: httpx.AsyncClient) -> str:
    response = await api.post("/api/work_pools", json={"name": "pool", "type": "process"})
    assert response.status_code == 201, response.text
    return "pool"


@pytest.fixture
async def flow_id(api: httpx.AsyncClient) -> str:
    response = await api.post("/api/flows", json={"name": "f"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("path", "params", "word"),
    [
        ("/api/flows", {"offset": 2**63}, "2147483647"),
        ("/api/flows", {"offset": 2**31}, "2147483647"),
        ("/api/task_runs", {"offset": 2**63}, "2147483647"),
        ("/api/variables", {"offset": 2**64}, "2147483647"),
        ("/api/artifacts", {"offset": 2**63}, "2147483647"),
        ("/api/deployments", {"offset": 2**63}, "2147483647"),
        ("/api/logs", {"after_id": 2**63}, "9223372036854775807"),
        ("/api/logs", {"min_level": 2**63}, "100"),
        ("/api/logs", {"min_level": 101}, "100"),
    ],
)
async def test_list_numbers_past_what_the_database_compares_are_422(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], word: str
) -> None:
    assert_422(await api.get(path, params=params), word)


@pytest.mark.parametrize("hours", ["1e300", "nan", "inf", "-inf", "-7e16", "0"])
async def test_preview_hours_are_finite_and_bounded(
    api: httpx.AsyncClient, pool: str, hours: str
) -> None:
    assert_422(await api.get(f"/api/work_pools/{pool}/scheduled_runs", params={"hours": hours}))
    ok = await api.get(f"/api/work_pools/{pool}/scheduled_runs", params={"hours": "48"})
    assert ok.status_code == 200, ok.text


async def test_a_claim_with_absurd_seconds_is_422(api: httpx.AsyncClient, pool: str) -> None:
    claim = f"/api/work_pools/{pool}/claim"
    assert_422(await api.post(claim, json={"worker_name": "w", "lease_seconds": 1e300}))
    assert_422(
        await api.post(claim, content=b'{"worker_name": "w", "wait_seconds": NaN}', headers=JSON),
        "NaN",
    )
    heartbeat = f"/api/work_pools/{pool}/workers/heartbeat"
    assert_422(await api.post(heartbeat, json={"name": "w", "heartbeat_interval": 1e300}))


async def test_queue_priorities_and_limits_fit_the_column(
    api: httpx.AsyncClient, pool: str
) -> None:
    queues = f"/api/work_pools/{pool}/queues"
    assert_422(await api.post(queues, json={"name": "q", "priority": 32_000_000_000_000_000_000}))
    assert_422(await api.post(queues, json={"name": "q", "concurrency_limit": 2**31}))
    assert (await api.post(queues, json={"name": "q", "priority": 2})).status_code == 201
    assert_422(await api.patch(f"{queues}/q", json={"priority": 2**63}))


async def test_null_for_a_field_that_cannot_be_empty_is_422(
    api: httpx.AsyncClient, pool: str
) -> None:
    assert_422(await api.patch(f"/api/work_pools/{pool}", json={"base_job_template": None}))
    assert (await api.get(f"/api/work_pools/{pool}")).json()["base_job_template"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_refused_not_stored_as_null(
    api: httpx.AsyncClient, flow_id: str, literal: str
) -> None:
    body = f'{{"flow_id": "{flow_id}", "parameters": {{"x": {literal}}}}}'.encode()
    assert_422(await api.post("/api/flow_runs", content=body, headers=JSON), "not a JSON number")
    variable = f'{{"value": [1, {literal}]}}'.encode()
    assert_422(await api.put("/api/variables/v", content=variable, headers=JSON))
    # The batch endpoint decodes in pydantic-core's JSON mode; a record holding a
    # number that is not JSON refuses the whole body (a record that is only invalid
    # would be refused on its own: tests/integration/test_api.py).
    record = {
        "id": str(uuid.uuid4()),
        "flow_run_id": str(uuid.uuid4()),
        "name": "t",
        "task_key": "t",
        "total_run_time": float(literal.replace("1e400", "inf")),
        "states": [{"type": "COMPLETED", "name": "Completed", "data": {"x": float("nan")}}],
    }
    detail = assert_422(
        await api.post("/api/batch", content=raw({"task_runs": [record]}), headers=JSON)
    )
    assert [tuple(error["loc"]) for error in detail] == [("body", "task_runs", 0)]
    assert "not a JSON number" in detail[0]["msg"]
    assert (await api.post("/api/flow_runs/filter", json={})).json()["count"] == 0


async def test_deeply_nested_json_is_422(api: httpx.AsyncClient, flow_id: str) -> None:
    for depth in (300, 100_000):
        nested = "[" * depth + "]" * depth
        body = f'{{"flow_id": "{flow_id}", "parameters": {{"x": {nested}}}}}'.encode()
        assert_422(await api.post("/api/flow_runs", content=body, headers=JSON), "nested")
        batch = f'{{"logs": [], "task_runs": {nested}}}'.encode()
        assert_422(await api.post("/api/batch", content=batch, headers=JSON))


async def test_a_body_that_is_not_utf8_is_422(api: httpx.AsyncClient) -> None:
    bad = (
        b'{"logs": [{"name": "\xff\xfe", "level": 20, "message": "m", "timestamp": "2030-01-01"}]}'
    )
    assert_422(await api.post("/api/batch", content=bad, headers=JSON))
    assert_422(await api.post("/api/flows", content=b'{"name": "\xff"}', headers=JSON), "UTF-8")


# (NUL and lone surrogates become U+FFFD before any check: tests/integration/test_safe_text.py.)
@pytest.mark.parametrize("name", ["ends-in-a-newline\n", "clear\x1b[2J", "bell\x07", "c1\x9b2J"])
async def test_names_with_control_characters_are_422(api: httpx.AsyncClient, name: str) -> None:
    body = json.dumps({"name": name}).encode()  # ensure_ascii: the surrogate travels escaped
    assert_422(await api.post("/api/flows", content=body, headers=JSON))
    pool = json.dumps({"name": name, "type": "process"}).encode()
    assert_422(await api.post("/api/work_pools", content=pool, headers=JSON))
    tags = json.dumps({"name": "fine", "tags": [name]}).encode()
    assert_422(await api.post("/api/flows", content=tags, headers=JSON))
    assert (await api.get("/api/flows")).json()["count"] == 0


async def test_patterned_names_must_match_whole(api: httpx.AsyncClient) -> None:
    # `$` also matches before a final newline: the patterns must match all of a name.
    pool = await api.post("/api/work_pools", json={"name": "pool\n", "type": "process"})
    assert_422(pool)
    artifact = await api.post(
        "/api/artifacts", json={"key": "report\n", "type": "markdown", "data": "x"}
    )
    assert_422(artifact, "lower-case")
    assert_422(await api.put("/api/variables/region%0A", json={"value": 1}), "lower-case")


async def test_field_lengths_are_bounded_and_named(api: httpx.AsyncClient, flow_id: str) -> None:
    assert_422(await api.post("/api/flows", json={"name": "x" * 201}), "200")
    assert_422(await api.post("/api/flows", json={"name": "f", "tags": ["t"] * 101}), "100")
    assert_422(await api.post("/api/flows", json={"name": "f", "tags": ["t" * 201]}), "200")
    line = {
        "name": "l",
        "level": 20,
        "message": "m" * (MAX_LOG_MESSAGE_LENGTH + 1),
        "timestamp": "2030-01-01T00:00:00Z",
    }
    # A log line is refused on its own (the batch's other lines would be recorded).
    answer = await api.post("/api/logs", json=[line])
    assert answer.status_code == 201, answer.text
    [refused] = answer.json()["refused"]
    assert str(MAX_LOG_MESSAGE_LENGTH) in refused["reason"]
    assert_422(
        await api.post(
            "/api/artifacts", json={"type": "markdown", "data": "x", "description": "d" * 10_001}
        ),
        "10000",
    )
    state = {"state": {"type": "RUNNING", "name": "n" * 51}}
    assert_422(await api.post("/api/flow_runs", json={"flow_id": flow_id, **state}), "50")
    assert (await api.get("/api/logs")).json() == []


@pytest.fixture
async def small_limit_api(api_settings: Settings, api_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with api_for(api_settings.model_copy(update={"server_max_body_bytes": 65536})) as api:
        yield api


async def test_a_body_over_the_limit_is_413_naming_it(small_limit_api: httpx.AsyncClient) -> None:
    line = {"name": "l", "level": 20, "message": "m" * 70_000, "timestamp": "2030-01-01"}
    response = await small_limit_api.post("/api/logs", json=[line])
    assert response.status_code == 413, response.text
    assert "64 KiB" in response.json()["detail"]
    assert "SKYRUN_SERVER_MAX_BODY_BYTES" in response.json()["detail"]
    assert (await small_limit_api.get("/api/logs")).json() == []


async def test_the_limit_holds_while_reading_a_body_of_unknown_length(
    small_limit_api: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        # Chunked, with no Content-Length: only counting what arrives can stop it.
        nonlocal sent
        yield b'[{"name": "l", "level": 20, "timestamp": "2030-01-01", "message": "'
        for _ in range(1000):
            sent += 1
            yield b"m" * 4096
        yield b'"}]'

    response = await small_limit_api.post("/api/logs", content=chunks(), headers=JSON)
    assert response.status_code == 413, response.text
    assert "64 KiB" in response.json()["detail"]
    # Reading stopped at the limit: the rest of the 4 MiB was never pulled.
    assert sent < 100


async def test_a_url_without_api_says_so(api: httpx.AsyncClient) -> None:
    response = await api.post("/flow_runs/filter", json={})
    assert response.status_code == 404
    assert "SKYRUN_API_URL probably lacks /api" in response.json()["detail"]
    assert "http://test/api" in response.json()["detail"]
    unknown = await api.get("/api/no-such-thing")
    assert unknown.status_code == 404
    assert "lacks /api" not in unknown.json()["detail"]


async def test_deployment_fields_fit_their_columns(api: httpx.AsyncClient) -> None:
    base = {"flow_name": "f", "name": "d", "entrypoint": "flows.py:f"}
    for field, value, word in [
        ("version", "v" * 201, "200"),
        ("path", "p" * 1001, "1000"),
        ("description", "d" * 10_001, "10000"),
        ("name", "d\n", "control characters"),
        ("tags", ["t" * 201], "200"),
    ]:
        assert_422(await api.post("/api/deployments", json={**base, field: value}), word)
    created = await api.post("/api/deployments", json=base)
    assert created.status_code == 200, created.text
    runs = f"/api/deployments/{created.json()['id']}/runs"
    assert_422(await api.post(runs, json={"idempotency_key": "k" * 201}), "200")
    assert_422(await api.post(runs, json={"name": "n" * 201}), "200")
    patch = await api.patch(f"/api/deployments/{created.json()['id']}", json={"version": "v" * 201})
    assert_422(patch, "200")


async def test_a_value_the_database_refuses_is_known_as_bad_data(database_url: str) -> None:
    # The net under the schemas' bounds: what PostgreSQL refuses as data (SQLSTATE 22)
    # is a 422, not a 500. SQLite does not enforce VARCHAR lengths.
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite stores a VARCHAR of any length")
    database = Database(database_url)
    try:
        with pytest.raises(DBAPIError) as raised:
            async with database.session() as session, session.begin():
                session.add(Flow(name="x" * 300))
                await session.flush()
        assert is_data_error(raised.value)
    finally:
        await database.dispose()


async def test_every_json_body_is_decoded_strictly(api: httpx.AsyncClient) -> None:
    # A router that forgot route_class=ApiRoute would take NaN (and store null) again.
    schema = (await api.get("/api/openapi.json")).json()
    checked = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content or path in ("/api/batch", "/api/logs"):
                continue  # these decode in pydantic-core's JSON mode (checked below)
            url = re.sub(r"\{[^}]+\}", "x", path)
            response = await api.request(method, url, content=b'{"nan": NaN}', headers=JSON)
            assert_422(response, "NaN is not a JSON number")
            checked.append(url)
    assert len(checked) > 15
    logs = await api.post("/api/logs", content=b'[{"nan": NaN}]', headers=JSON)
    assert_422(logs, "NaN is not a JSON number")
    batch = await api.post("/api/batch", content=b'{"logs": [{"nan": NaN}]}', headers=JSON)
    assert_422(batch, "NaN is not a JSON number")


async def test_a_batch_or_logs_sent_as_text_is_refused(api: httpx.AsyncClient) -> None:
    # JSON sent as text/plain is what a page on another site can make a browser send to
    # a server without auth, with no CORS check first: the routes that read their raw
    # body refuse it, as FastAPI's parsing refuses it for every other route.
    logs = (
        '[{"name": "x", "level": 20, "message": "injected", "timestamp": "2026-01-01T00:00:00Z"}]'
    )
    for path, body in (("/api/logs", logs), ("/api/batch", '{"task_runs": [], "logs": []}')):
        response = await api.post(path, content=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 415, response.text
        assert "application/json" in response.json()["detail"]
    sent = await api.post("/api/batch", content='{"task_runs": [], "logs": []}', headers=JSON)
    assert sent.status_code == 200, sent.text
    assert (
        await api.post(
            "/api/flows", content='{"name": "f"}', headers={"Content-Type": "text/plain"}
        )
    ).status_code == 422
