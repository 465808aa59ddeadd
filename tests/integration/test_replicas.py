"""Several servers on one database: waiting claims woken by NOTIFY, leader locks for the services.

Each "replica" is an app or a `Database` of its own on the test's database
(its own engine and connections, as a second server process would have).
Where a claim must be woken, the periodic re-checks are switched off, so only
a notification (or the due time) can end its wait before its deadline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import LATE, utcnow
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.server.db import deployments, dialect, work_pools
from skyrun.server.db.engine import Database
from skyrun.server.db.models import FlowRun, FlowRunState
from skyrun.server.services import claiming, housekeeping
from skyrun.server.services.scheduler import scheduler_pass
from skyrun.settings import Settings

ApiFor = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]
WAIT = 60.0  # a claim's wait, the longest allowed: far longer than any wake-up should take
WOKEN_WITHIN = WAIT / 2  # a guard: a claim nothing woke returns only at its deadline


def body(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


@pytest.fixture
def no_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting claims look at the database again only when woken (or at a due time)."""
    monkeypatch.setattr(claiming, "RECHECK_LISTENING_SECONDS", 1000.0)
    monkeypatch.setattr(claiming, "RECHECK_POLLING_SECONDS", 1000.0)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first, second = Database(database_url), Database(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def deployment_on_pool(api: httpx.AsyncClient, **pool: Any) -> str:
    body(await api.post("/api/work_pools", json={"name": "pool", "type": "process", **pool}), 201)
    deployment = body(
        await api.post(
            "/api/deployments",
            json={
                "flow_name": "etl",
                "name": "d",
                "entrypoint": "f.py:etl",
                "work_pool_name": "pool",
            },
        )
    )
    return str(deployment["id"])


async def waiting_claim(api: httpx.AsyncClient) -> asyncio.Task[Any]:
    """A claim that has registered its worker and is now waiting for a run."""
    task = asyncio.create_task(
        api.post("/api/work_pools/pool/claim", json={"worker_name": "waiter", "wait_seconds": WAIT})
    )
    deadline = time.monotonic() + 20
    while True:
        workers = body(await api.get("/api/work_pools/pool/workers"))
        if any(worker["name"] == "waiter" for worker in workers):
            break
        assert time.monotonic() < deadline, "the claim never registered its worker"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # past its first look at the database
    assert not task.done(), task.result().text
    return task


async def claimed_ids(task: asyncio.Task[Any]) -> list[str]:
    """The runs a woken claim returns; fails if nothing woke it (it would sleep to its deadline)."""
    try:
        response = await asyncio.wait_for(task, WOKEN_WITHIN)
    except TimeoutError:
        raise AssertionError(f"the waiting claim was not woken within {WOKEN_WITHIN:g}s") from None
    return [item["flow_run"]["id"] for item in body(response)["runs"]]


# -- waking waiting claims ----------------------------------------------------------


async def test_a_claim_waiting_on_one_replica_is_woken_by_a_run_made_on_another(
    api_settings: Settings, api_for: ApiFor, no_rechecks: None
) -> None:
    if not api_settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("SQLite processes cannot notify each other: their claims re-check instead")
    async with api_for(api_settings) as first, api_for(api_settings) as second:
        deployment_id = await deployment_on_pool(second)
        task = await waiting_claim(first)
        run = body(await second.post(f"/api/deployments/{deployment_id}/runs", json={}), 201)
        assert await claimed_ids(task) == [run["id"]]


async def test_resuming_a_pool_wakes_its_waiting_claims(
    api: httpx.AsyncClient, no_rechecks: None
) -> None:
    deployment_id = await deployment_on_pool(api, is_paused=True)
    run = body(await api.post(f"/api/deployments/{deployment_id}/runs", json={}), 201)
    task = await waiting_claim(api)
    body(await api.patch("/api/work_pools/pool", json={"is_paused": False}))
    assert await claimed_ids(task) == [run["id"]]


async def test_a_waiting_claim_wakes_when_a_scheduled_run_becomes_due(
    api: httpx.AsyncClient, no_rechecks: None
) -> None:
    deployment_id = await deployment_on_pool(api)
    due = utcnow() + timedelta(seconds=3)
    run = body(
        await api.post(
            f"/api/deployments/{deployment_id}/runs", json={"scheduled_time": due.isoformat()}
        ),
        201,
    )
    task = await waiting_claim(api)
    assert await claimed_ids(task) == [run["id"]]


# -- leader locks -------------------------------------------------------------------


async def _late_runs(db: Database, count: int) -> list[uuid.UUID]:
    async with db.session() as s, s.begin():
        await work_pools.create_work_pool(s, WorkPoolCreate(name="pool", type="process"))
        deployment = await deployments.upsert_deployment(
            s,
            DeploymentCreate(
                flow_name="etl", name="d", entrypoint="f.py:etl", work_pool_name="pool"
            ),
        )
        overdue = utcnow() - timedelta(minutes=10)
        runs = [
            await deployments.create_deployment_run(
                s, deployment, DeploymentRunCreate(scheduled_time=overdue)
            )
            for _ in range(count)
        ]
        return [run.id for run in runs]


async def _late_states(db: Database) -> dict[uuid.UUID, int]:
    async with db.session() as s:
        rows = await s.execute(
            sa.select(FlowRunState.flow_run_id, sa.func.count())
            .where(FlowRunState.name == LATE)
            .group_by(FlowRunState.flow_run_id)
        )
        return {run_id: int(count) for run_id, count in rows.all()}


LATE_STEP = next(step for step in housekeeping.STEPS if step.name == "late runs")


async def test_a_housekeeping_step_is_skipped_while_another_replica_leads(
    replicas: tuple[Database, Database], settings: Settings
) -> None:
    leader, follower = replicas
    if leader.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: its replicas need no leader")
    (run_id,) = await _late_runs(leader, 1)
    async with leader.session() as s, s.begin():
        assert await dialect.try_leader_lock(s, "housekeeping")
        assert not await housekeeping.run_step(follower, settings, LATE_STEP)
        assert await _late_states(follower) == {}
    assert await housekeeping.run_step(follower, settings, LATE_STEP)
    assert await _late_states(follower) == {run_id: 1}


async def test_two_replicas_mark_each_late_run_once(
    replicas: tuple[Database, Database], settings: Settings
) -> None:
    first, second = replicas
    run_ids = await _late_runs(first, 20)
    passes = [housekeeping.housekeeping_pass(settings) for _ in range(2)]
    for _ in range(3):
        await asyncio.gather(passes[0](first), passes[1](second))
    assert await _late_states(first) == {run_id: 1 for run_id in run_ids}


async def test_two_replicas_schedule_each_run_once(
    replicas: tuple[Database, Database], settings: Settings
) -> None:
    first, second = replicas
    async with first.session() as s, s.begin():
        await work_pools.create_work_pool(s, WorkPoolCreate(name="pool", type="process"))
        await deployments.upsert_deployment(
            s,
            DeploymentCreate.model_validate(
                {
                    "flow_name": "etl",
                    "name": "d",
                    "entrypoint": "f.py:etl",
                    "work_pool_name": "pool",
                    "schedules": [{"schedule": {"interval": 60}}],
                }
            ),
        )
    passes = [scheduler_pass(settings) for _ in range(2)]
    for _ in range(3):
        created = await asyncio.gather(passes[0](first), passes[1](second))
        assert all(isinstance(n, int) for n in created)
    async with first.session() as s:
        keys = list(await s.scalars(sa.select(FlowRun.idempotency_key)))
    assert len(keys) == settings.scheduler_horizon_runs
    assert len(set(keys)) == len(keys)
