"""A request repeated after a lost reply gets the first answer: state proposals (by state
id), run creations (by run id or idempotency key), artifacts (by id). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skyrun.schemas.artifacts import ArtifactCreate
from skyrun.schemas.core import FlowCreate, FlowRunCreate
from skyrun.schemas.states import StateCreate, StateType
from skyrun.server.db import artifacts, flow_runs, flows
from skyrun.server.db.engine import Database
from skyrun.server.db.models import Artifact, FlowRun, FlowRunState


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


async def new_run(api: httpx.AsyncClient, state: dict[str, Any] | None = None) -> str:
    flow = body(await api.post("/api/flows", json={"name": "etl"}))
    payload = {"flow_id": flow["id"], **({"state": state} if state else {})}
    run = body(await api.post("/api/flow_runs", json=payload), 201)
    return str(run["id"])


async def propose(api: httpx.AsyncClient, run_id: str, **state: Any) -> httpx.Response:
    return await api.post(f"/api/flow_runs/{run_id}/set_state", json={"state": state})


async def history(api: httpx.AsyncClient, run_id: str) -> list[str]:
    return [s["type"] for s in body(await api.get(f"/api/flow_runs/{run_id}/states"))]


async def test_a_repeated_proposal_gets_the_first_answer(api: httpx.AsyncClient) -> None:
    """A lost reply to RUNNING used to make its retry ABORT (RUNNING->RUNNING)."""
    run_id = await new_run(api)
    state_id = str(uuid.uuid4())
    first = body(await propose(api, run_id, type="RUNNING", id=state_id))
    assert first["decision"] == "ACCEPT" and first["state"]["id"] == state_id

    again = body(await propose(api, run_id, type="RUNNING", id=state_id))
    assert again["decision"] == "ACCEPT"
    assert again["state"] == first["state"]
    assert await history(api, run_id) == ["PENDING", "RUNNING"]

    # Another process's RUNNING (a new state id) is decided, and refused, as before.
    other = body(await propose(api, run_id, type="RUNNING", id=str(uuid.uuid4())))
    assert other["decision"] == "ABORT"

    # Even after the run moved on, the repeat is answered as the first time.
    body(await propose(api, run_id, type="COMPLETED"))
    late = body(await propose(api, run_id, type="RUNNING", id=state_id))
    assert (late["decision"], late["state"]["id"]) == ("ACCEPT", state_id)
    assert await history(api, run_id) == ["PENDING", "RUNNING", "COMPLETED"]


async def test_a_repeated_proposal_that_was_substituted_gets_the_substitute(
    api: httpx.AsyncClient,
) -> None:
    """CANCELLING a SCHEDULED run records CANCELLED; the repeat is not 'already CANCELLED'."""
    run_id = await new_run(api, {"type": "SCHEDULED"})
    state_id = str(uuid.uuid4())
    first = body(await propose(api, run_id, type="CANCELLING", id=state_id))
    assert (first["decision"], first["state"]["type"]) == ("ACCEPT", "CANCELLED")
    again = body(await propose(api, run_id, type="CANCELLING", id=state_id))
    assert (again["decision"], again["state"]) == ("ACCEPT", first["state"])


async def test_a_state_id_of_another_run_is_a_conflict(api: httpx.AsyncClient) -> None:
    run_a, run_b = await new_run(api), await new_run(api)
    state_id = str(uuid.uuid4())
    body(await propose(api, run_a, type="RUNNING", id=state_id))
    clash = await propose(api, run_b, type="RUNNING", id=state_id)
    assert clash.status_code == 409
    assert f"state {state_id} is already a state of flow run {run_a}" in clash.json()["detail"]
    assert await history(api, run_b) == ["PENDING"]

    flow_id = body(await api.get(f"/api/flow_runs/{run_a}"))["flow_id"]
    created = await api.post(
        "/api/flow_runs", json={"flow_id": flow_id, "state": {"type": "RUNNING", "id": state_id}}
    )
    assert created.status_code == 409 and state_id in created.json()["detail"]


async def test_a_repeated_artifact_is_stored_once(api: httpx.AsyncClient) -> None:
    artifact = {"id": str(uuid.uuid4()), "key": "report", "type": "markdown", "data": "# Hi"}
    first = body(await api.post("/api/artifacts", json=artifact), 201)
    again = body(await api.post("/api/artifacts", json=artifact), 201)
    assert again == first
    page = body(await api.get("/api/artifacts", params={"key": "report"}))
    assert page["count"] == 1

    other = await api.post("/api/artifacts", json={**artifact, "data": "# Other"})
    assert other.status_code == 409
    assert artifact["id"] in other.json()["detail"] and "other content" in other.json()["detail"]


async def test_a_repeated_heartbeat_and_a_repeated_filter_change_nothing(
    api: httpx.AsyncClient,
) -> None:
    run_id = await new_run(api, {"type": "RUNNING"})
    before = body(await api.get(f"/api/flow_runs/{run_id}"))
    for _ in range(2):
        state = body(await api.post(f"/api/flow_runs/{run_id}/heartbeat"))
        assert state["type"] == "RUNNING"
    after = body(await api.get(f"/api/flow_runs/{run_id}"))
    assert after == before  # `updated` too: a heartbeat changes nothing about the run
    missing = await api.post(f"/api/flow_runs/{uuid.uuid4()}/heartbeat")
    assert missing.status_code == 404


# -- the same request twice at once (PostgreSQL: SQLite has one writer at a time) ----


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite takes one writer at a time (BEGIN IMMEDIATE): no race to lose")
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _wait_until_blocked(db: Database) -> None:
    """Until another connection waits on a lock (the repeat, behind the first request)."""

    async def blocked() -> bool:
        async with db.session() as s:
            waiting = await s.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            return bool(waiting)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # a guard, not a timing assertion
    while not await blocked():
        assert loop.time() < deadline, "the repeated request never reached the lock"
        await asyncio.sleep(0.05)


async def test_a_creation_repeated_while_the_first_is_in_flight_makes_one_run(
    db: Database,
) -> None:
    async with db.session() as s, s.begin():
        flow_id = (await flows.get_or_create_flow(s, FlowCreate(name="etl"))).id
    data = FlowRunCreate(flow_id=flow_id, id=uuid.uuid4())

    async def repeat() -> uuid.UUID:
        async with db.session() as s, s.begin():
            return (await flow_runs.create_flow_run(s, data)).id

    async with db.session() as first, first.begin():
        await flow_runs.create_flow_run(first, data)
        second = asyncio.create_task(repeat())
        await _wait_until_blocked(db)  # its INSERT waits for this transaction
    assert await second == data.id
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(FlowRun)) == 1


async def test_an_artifact_repeated_while_the_first_is_in_flight_is_stored_once(
    db: Database,
) -> None:
    data = ArtifactCreate(id=uuid.uuid4(), type="markdown", data="# Hi")

    async def repeat() -> uuid.UUID:
        async with db.session() as s, s.begin():
            return (await artifacts.create_artifact(s, data)).id

    async with db.session() as first, first.begin():
        await artifacts.create_artifact(first, data)
        second = asyncio.create_task(repeat())
        await _wait_until_blocked(db)
    assert await second == data.id
    async with db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Artifact)) == 1


async def test_a_proposal_repeated_while_the_first_is_in_flight_gets_its_answer(
    db: Database,
) -> None:
    async with db.session() as s, s.begin():
        flow_id = (await flows.get_or_create_flow(s, FlowCreate(name="etl"))).id
        run_id = (await flow_runs.create_flow_run(s, FlowRunCreate(flow_id=flow_id))).id
    running = StateCreate(id=uuid.uuid4(), type=StateType.RUNNING)

    async def repeat() -> Any:
        async with db.session() as s, s.begin():
            return await flow_runs.set_flow_run_state(s, run_id, running)

    async with db.session() as first, first.begin():
        answer = await flow_runs.set_flow_run_state(first, run_id, running)
        second = asyncio.create_task(repeat())
        await _wait_until_blocked(db)  # at the run's row lock
    repeated = await second
    assert (repeated.decision, repeated.state) == (answer.decision, answer.state)
    async with db.session() as s:
        types = await s.scalars(
            sa.select(FlowRunState.type).where(FlowRunState.flow_run_id == run_id)
        )
        assert sorted(types) == ["PENDING", "RUNNING"]
