"""A deployment's concurrency limit through the API, on real SQLite and PostgreSQL.

Setting and clearing it (create, PATCH, read), what the server refuses, and the
claim holding it: runs beyond the limit stay SCHEDULED and are claimed, earliest
first, as the deployment's active runs finish. (The limit under racing claims is
in test_claims.py.)
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from skyrun.schemas.deployments import DeploymentUpdate
from skyrun.schemas.states import StateType, utcnow
from skyrun.server.db import deployments
from skyrun.server.db.engine import Database
from skyrun.settings import Settings

DEPLOYMENT = {"flow_name": "etl", "name": "d", "entrypoint": "f.py:etl", "work_pool_name": "pool"}


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


@pytest.fixture
async def pool(api: httpx.AsyncClient) -> None:
    body(await api.post("/api/work_pools", json={"name": "pool", "type": "process"}), 201)


async def deploy(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = body(await api.post("/api/deployments", json={**DEPLOYMENT, **fields}))
    return result


async def due_runs(api: httpx.AsyncClient, deployment: dict[str, Any], count: int) -> list[str]:
    """`count` runs of the deployment, due a minute apart in the past, earliest first."""
    start = utcnow() - timedelta(hours=1)
    return [
        body(
            await api.post(
                f"/api/deployments/{deployment['id']}/runs",
                json={"scheduled_time": (start + timedelta(minutes=i)).isoformat()},
            ),
            201,
        )["id"]
        for i in range(count)
    ]


async def claim(api: httpx.AsyncClient, limit: int = 10, **fields: Any) -> list[str]:
    response = await api.post(
        "/api/work_pools/pool/claim", json={"worker_name": "w", "limit": limit, **fields}
    )
    return [item["flow_run"]["id"] for item in body(response)["runs"]]


async def set_state(api: httpx.AsyncClient, run_id: str, state: StateType) -> None:
    response = await api.post(
        f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": state.value}}
    )
    assert body(response)["decision"] == "ACCEPT", response.text


async def state_of(api: httpx.AsyncClient, run_id: str) -> str:
    state: str = body(await api.get(f"/api/flow_runs/{run_id}"))["state"]["type"]
    return state


async def test_the_limit_is_set_kept_and_cleared(api: httpx.AsyncClient, pool: None) -> None:
    deployment = await deploy(api)
    assert deployment["concurrency_limit"] is None
    url = f"/api/deployments/{deployment['id']}"
    assert (await deploy(api, concurrency_limit=2))["concurrency_limit"] == 2
    assert body(await api.patch(url, json={"concurrency_limit": 5}))["concurrency_limit"] == 5
    # A PATCH that leaves it out keeps it; an explicit null removes it.
    assert body(await api.patch(url, json={"version": "2"}))["concurrency_limit"] == 5
    assert body(await api.get(url))["concurrency_limit"] == 5
    assert body(await api.patch(url, json={"concurrency_limit": None}))["concurrency_limit"] is None
    assert body(await api.patch(url, json={"concurrency_limit": 0}))["concurrency_limit"] == 0
    # Registering it again without one replaces it with none, like every other field.
    assert (await deploy(api))["concurrency_limit"] is None


async def test_what_the_server_refuses(api: httpx.AsyncClient, pool: None) -> None:
    for bad in (-1, 2**31, "many", 1.5):
        response = await api.post("/api/deployments", json={**DEPLOYMENT, "concurrency_limit": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "concurrency_limit" in response.text
    served = {**DEPLOYMENT, "work_pool_name": None, "name": "served"}
    response = await api.post("/api/deployments", json={**served, "concurrency_limit": 1})
    assert response.status_code == 422, response.text
    assert "without a work pool" in response.text and "work_pool_name" in response.text
    deployment = body(await api.post("/api/deployments", json=served))
    response = await api.patch(
        f"/api/deployments/{deployment['id']}", json={"concurrency_limit": 1}
    )
    assert response.status_code == 422, response.text
    assert "without a work pool" in response.text
    response = await api.patch(
        f"/api/deployments/{deployment['id']}", json={"concurrency_limit": -3}
    )
    assert response.status_code == 422, response.text


async def test_runs_beyond_the_limit_wait_and_are_claimed_in_order(
    api: httpx.AsyncClient, pool: None
) -> None:
    deployment = await deploy(api, concurrency_limit=2)
    runs = await due_runs(api, deployment, 5)
    assert await claim(api) == runs[:2]
    assert await claim(api) == []
    assert [await state_of(api, r) for r in runs[2:]] == ["SCHEDULED"] * 3
    # RUNNING still counts; a finished run frees its slot for the earliest waiting run.
    await set_state(api, runs[0], StateType.RUNNING)
    assert await claim(api) == []
    await set_state(api, runs[0], StateType.COMPLETED)
    assert await claim(api) == [runs[2]]
    # CANCELLING counts too, until the run is CANCELLED.
    await set_state(api, runs[1], StateType.CANCELLING)
    assert await claim(api) == []
    await set_state(api, runs[1], StateType.CANCELLED)
    assert await claim(api) == [runs[3]]
    # Raising the limit lets the rest go at once.
    url = f"/api/deployments/{deployment['id']}"
    body(await api.patch(url, json={"concurrency_limit": None}))
    assert await claim(api) == [runs[4]]


async def test_a_limit_of_zero_holds_every_run(api: httpx.AsyncClient, pool: None) -> None:
    deployment = await deploy(api, concurrency_limit=0)
    runs = await due_runs(api, deployment, 3)
    assert await claim(api) == []
    body(await api.patch(f"/api/deployments/{deployment['id']}", json={"concurrency_limit": 1}))
    assert await claim(api) == runs[:1]


async def test_a_full_deployment_does_not_hold_back_the_others(
    api: httpx.AsyncClient, pool: None
) -> None:
    """More runs of a full deployment are due first than one claim looks at (limit * 4 + 10);
    the run of another deployment behind them is still claimed."""
    busy = await deploy(api, concurrency_limit=1)
    busy_runs = await due_runs(api, busy, 40)
    other = await deploy(api, name="other")
    [other_run] = await due_runs(api, other, 1)
    # Made later than all of busy's: the earliest-first order puts it last.
    body(
        await api.post(
            f"/api/flow_runs/{other_run}/set_state",
            json={"state": {"type": "SCHEDULED", "scheduled_time": utcnow().isoformat()}},
        )
    )
    assert await claim(api, limit=1) == busy_runs[:1]
    assert await claim(api, limit=1) == [other_run]
    assert await claim(api, limit=1) == []


async def test_a_claim_waiting_on_a_full_deployment_takes_a_run_when_a_slot_frees(
    api: httpx.AsyncClient, pool: None
) -> None:
    deployment = await deploy(api, concurrency_limit=1)
    runs = await due_runs(api, deployment, 2)
    assert await claim(api) == runs[:1]
    waiting = asyncio.create_task(claim(api, wait_seconds=30))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await set_state(api, runs[0], StateType.RUNNING)
    await set_state(api, runs[0], StateType.COMPLETED)
    assert await asyncio.wait_for(waiting, 30) == runs[1:]


async def test_changing_the_limit_wakes_waiting_claims(
    api: httpx.AsyncClient, pool: None, api_settings: Settings
) -> None:
    """A raised limit may make runs claimable: its commit wakes this process's waiting
    claims (and NOTIFYs the other replicas on PostgreSQL); other changes need not."""
    deployment_id = uuid.UUID((await deploy(api, concurrency_limit=0))["id"])
    database = Database(api_settings.resolved_database_url)
    try:

        async def update_woke(change: DeploymentUpdate) -> bool:
            ticket = database.notifier.ticket()
            async with database.session() as session, session.begin():
                await deployments.update_deployment(session, deployment_id, change)
            return ticket.is_set()

        assert await update_woke(DeploymentUpdate(concurrency_limit=1))
        assert await update_woke(DeploymentUpdate.model_validate({"concurrency_limit": None}))
        assert not await update_woke(DeploymentUpdate(description="nightly load"))
    finally:
        await database.dispose()
