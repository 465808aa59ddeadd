"""A batch takes effect once: a repeat with the same Idempotency-Key replays the first answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skyrun.schemas.states import utcnow
from skyrun.server.db import idempotency
from skyrun.server.db.engine import Database
from skyrun.server.db.models import IdempotencyKey


async def _running_flow_run(api: httpx.AsyncClient) -> str:
    flow = (await api.post("/api/flows", json={"name": "etl"})).json()
    run = await api.post(
        "/api/flow_runs", json={"flow_id": flow["id"], "state": {"type": "RUNNING"}}
    )
    run_id: str = run.json()["id"]
    return run_id


def _batch(flow_run_id: str, *messages: str) -> dict[str, Any]:
    task_run = {
        "id": str(uuid.uuid4()),
        "flow_run_id": flow_run_id,
        "name": "step-0",
        "task_key": "step",
        "states": [{"type": "PENDING", "name": "Pending", "timestamp": 1_800_000_000.0}],
    }
    lines = [
        {"flow_run_id": flow_run_id, "name": "t", "level": 20, "message": m, "timestamp": 1.0}
        for m in messages
    ]
    return {"task_runs": [task_run], "logs": lines}


async def _messages(api: httpx.AsyncClient, flow_run_id: str) -> list[str]:
    logs = (await api.get("/api/logs", params={"flow_run_id": flow_run_id})).json()
    return [line["message"] for line in logs]


async def test_a_repeated_batch_replays_its_answer_and_records_nothing_again(
    api: httpx.AsyncClient,
) -> None:
    run_id = await _running_flow_run(api)
    batch = _batch(run_id, "one", "two")
    batch["logs"].append({**batch["logs"][0], "flow_run_id": str(uuid.uuid4())})  # refused
    headers = {"Idempotency-Key": "k-1"}
    first = await api.post("/api/batch", json=batch, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["logs"] == 2 and len(first.json()["refused"]) == 1
    repeat = await api.post("/api/batch", json=batch, headers=headers)
    assert (repeat.status_code, repeat.json()) == (200, first.json())
    assert await _messages(api, run_id) == ["one", "two"]

    # Without a key (or with a new one) the same lines are a new request.
    assert (await api.post("/api/batch", json=batch, headers={"Idempotency-Key": "k-2"})).json()[
        "logs"
    ] == 2
    assert await _messages(api, run_id) == ["one", "two", "one", "two"]


async def test_repeated_log_lines_are_recorded_once(api: httpx.AsyncClient) -> None:
    run_id = await _running_flow_run(api)
    lines = _batch(run_id, "a", "b")["logs"]
    headers = {"Idempotency-Key": "logs-1"}
    answers = [await api.post("/api/logs", json=lines, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert answers[0].json() == answers[2].json() == {"task_runs": 0, "logs": 2, "refused": []}
    assert await _messages(api, run_id) == ["a", "b"]
    # A key is a key within its kind of request: the same one on /batch is another request.
    batch = _batch(run_id, "c")
    assert (await api.post("/api/batch", json=batch, headers=headers)).json()["logs"] == 1


async def test_concurrent_repeats_record_once(api: httpx.AsyncClient) -> None:
    run_id = await _running_flow_run(api)
    batch = _batch(run_id, *(f"line {i}" for i in range(50)))
    headers = {"Idempotency-Key": "same-key"}
    answers = await asyncio.gather(
        *(api.post("/api/batch", json=batch, headers=headers) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert await _messages(api, run_id) == [f"line {i}" for i in range(50)]


async def test_a_key_used_for_another_request_is_refused(api: httpx.AsyncClient) -> None:
    run_id = await _running_flow_run(api)
    headers = {"Idempotency-Key": "reused"}
    assert (await api.post("/api/batch", json=_batch(run_id, "a"), headers=headers)).is_success
    other = await api.post("/api/batch", json=_batch(run_id, "b"), headers=headers)
    assert other.status_code == 422
    [error] = other.json()["detail"]
    assert "'reused' was used before for a different request" in error["msg"]
    assert await _messages(api, run_id) == ["a"]


@pytest.mark.parametrize("key", [b"", b"x" * 129, b"has space", "ünï".encode()])
async def test_a_malformed_key_is_422_naming_the_header(api: httpx.AsyncClient, key: bytes) -> None:
    response = await api.post("/api/batch", json={"logs": []}, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert ["header", "Idempotency-Key"] in [e["loc"] for e in response.json()["detail"]]


async def test_expired_keys_are_swept(api: httpx.AsyncClient, database_url: str) -> None:
    run_id = await _running_flow_run(api)
    batch = _batch(run_id, "a")
    for key in ("old", "new"):
        await api.post("/api/batch", json=batch, headers={"Idempotency-Key": key})
    database = Database(database_url)
    try:
        async with database.session() as session, session.begin():
            await session.execute(
                sa.update(IdempotencyKey)
                .where(IdempotencyKey.key == idempotency.scoped("batch", "old"))
                .values(created=utcnow() - timedelta(days=2))
            )
        async with database.session() as session, session.begin():
            swept = await idempotency.delete_expired_keys(session, 86400, utcnow())
            left = list(await session.scalars(sa.select(IdempotencyKey.key)))
    finally:
        await database.dispose()
    assert (swept, left) == (1, [idempotency.scoped("batch", "new")])
    # A swept key is forgotten: the same request is recorded again.
    await api.post("/api/batch", json=batch, headers={"Idempotency-Key": "old"})
    await api.post("/api/batch", json=batch, headers={"Idempotency-Key": "new"})
    assert await _messages(api, run_id) == ["a", "a", "a"]
