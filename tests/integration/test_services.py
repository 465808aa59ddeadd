"""Claiming, the scheduler and housekeeping, against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate, DeploymentUpdate
from skyrun.schemas.states import LATE, StateCreate, StateType
from skyrun.schemas.work_pools import WorkerHeartbeat, WorkPoolCreate, WorkQueueCreate
from skyrun.server.db import claims, deployments, flow_runs, work_pools
from skyrun.server.db.engine import Database
from skyrun.server.db.housekeeping import finish_stuck_cancellations, mark_late_runs
from skyrun.server.db.models import FlowRun, Worker
from skyrun.server.services.scheduler import schedule_deployment_runs

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _pool_and_deployment(
    db: Database, *, schedules: list[dict[str, object]] | None = None, **pool: object
) -> uuid.UUID:
    async with db.session() as s, s.begin():
        await work_pools.create_work_pool(s, WorkPoolCreate(name="pool", type="process", **pool))  # type: ignore[arg-type]
        deployment = await deployments.upsert_deployment(
            s,
            DeploymentCreate(
                flow_name="etl",
                name="nightly",
                entrypoint="flows.py:etl",
                work_pool_name="pool",
                schedules=[{"schedule": sch} for sch in (schedules or [])],  # type: ignore[misc]
            ),
        )
        return deployment.id


async def _runs(db: Database, deployment_id: uuid.UUID) -> list[FlowRun]:
    async with db.session() as s:
        rows = await s.scalars(
            sa.select(FlowRun)
            .where(FlowRun.deployment_id == deployment_id)
            .order_by(FlowRun.expected_start_time)
        )
        return list(rows)


async def _new_run(db: Database, deployment_id: uuid.UUID, when: datetime) -> uuid.UUID:
    async with db.session() as s, s.begin():
        deployment = await deployments.read_deployment_row(s, deployment_id)
        run = await deployments.create_deployment_run(
            s, deployment, DeploymentRunCreate(scheduled_time=when), now=when
        )
        return run.id


async def _state(db: Database, run_id: uuid.UUID) -> tuple[str | None, str | None]:
    async with db.session() as s:
        run = await s.get(FlowRun, run_id)
        assert run is not None
        return run.state_type, run.state_name


async def test_scheduler_is_idempotent_and_replaces_runs_when_the_deployment_changes(
    db: Database,
) -> None:
    deployment_id = await _pool_and_deployment(db, schedules=[{"interval": 3600}])
    for _ in range(2):
        async with db.session() as s, s.begin():
            await schedule_deployment_runs(s, max_runs=5, horizon=timedelta(days=1), now=NOW)
    runs = await _runs(db, deployment_id)
    assert [r.expected_start_time for r in runs] == [NOW + timedelta(hours=h) for h in range(1, 6)]
    assert all(r.auto_scheduled and r.state_type == "SCHEDULED" for r in runs)

    async with db.session() as s, s.begin():
        await deployments.update_deployment(
            s,
            deployment_id,
            DeploymentUpdate(schedules=[{"schedule": {"interval": 7200}}]),  # type: ignore[list-item]
        )
    assert await _runs(db, deployment_id) == []
    async with db.session() as s, s.begin():
        created = await schedule_deployment_runs(s, max_runs=3, horizon=timedelta(days=1), now=NOW)
    assert created == 3
    runs = await _runs(db, deployment_id)
    assert [r.expected_start_time for r in runs] == [NOW + timedelta(hours=h) for h in (2, 4, 6)]


async def test_scheduler_follows_cron_in_its_time_zone(db: Database) -> None:
    deployment_id = await _pool_and_deployment(
        db, schedules=[{"cron": "0 9 * * *", "timezone": "America/New_York"}]
    )
    start = datetime(2026, 3, 6, 0, 0, tzinfo=UTC)
    async with db.session() as s, s.begin():
        await schedule_deployment_runs(s, max_runs=4, horizon=timedelta(days=10), now=start)
    hours = [r.expected_start_time.hour for r in await _runs(db, deployment_id)]
    # 09:00 in New York is 14:00 UTC before the DST change on March 8 and 13:00 after.
    assert hours == [14, 14, 13, 13]


async def test_late_runs_are_named_late(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db)
    overdue = await _new_run(db, deployment_id, NOW - timedelta(minutes=5))
    upcoming = await _new_run(db, deployment_id, NOW + timedelta(minutes=5))
    async with db.session() as s, s.begin():
        assert await mark_late_runs(s, late_after=15, now=NOW) == 1
    assert await _state(db, overdue) == ("SCHEDULED", LATE)
    assert await _state(db, upcoming) == ("SCHEDULED", "Scheduled")


async def _claim(db: Database, worker: str, limit: int, now: datetime) -> list[uuid.UUID]:
    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        row = await work_pools.heartbeat(
            s, pool, WorkerHeartbeat(name=worker, heartbeat_interval=1)
        )
        return await claims.claim_runs(
            s, pool, worker_id=row.id, queue_names=[], limit=limit, lease_seconds=10, now=now
        )


async def test_a_claimed_run_cannot_be_claimed_again(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db)
    run_id = await _new_run(db, deployment_id, NOW)
    assert await _claim(db, "a", 5, NOW) == [run_id]
    assert await _claim(db, "b", 5, NOW) == []
    assert await _state(db, run_id) == ("PENDING", "Pending")


async def test_a_run_awaiting_an_in_process_retry_is_not_claimed(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db)
    run_id = await _new_run(db, deployment_id, NOW)
    assert await _claim(db, "a", 5, NOW) == [run_id]
    async with db.session() as s, s.begin():
        for state in (
            StateCreate(type=StateType.RUNNING),
            StateCreate(type=StateType.SCHEDULED, name="AwaitingRetry", scheduled_time=NOW),
        ):
            response = await flow_runs.set_flow_run_state(s, run_id, state, now=NOW)
            assert response.decision == "ACCEPT", response
    assert await _state(db, run_id) == ("SCHEDULED", "AwaitingRetry")
    assert await _claim(db, "b", 5, NOW + timedelta(minutes=1)) == []


async def test_concurrent_claims_take_each_run_once(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db)
    run_ids = {await _new_run(db, deployment_id, NOW) for _ in range(40)}
    results = await asyncio.gather(*(_claim(db, f"w{i}", 3, NOW) for i in range(20)))
    claimed = [run_id for batch in results for run_id in batch]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) <= run_ids


async def test_claims_honour_concurrency_limits_pauses_and_priority(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db, concurrency_limit=2)
    async with db.session() as s, s.begin():
        await work_pools.create_work_queue(
            s, "pool", WorkQueueCreate(name="low", priority=10, concurrency_limit=1)
        )
        deployment = await deployments.read_deployment_row(s, deployment_id)
        low = [
            (
                await deployments.create_deployment_run(
                    s,
                    deployment,
                    DeploymentRunCreate(
                        work_queue_name="low", scheduled_time=NOW - timedelta(minutes=minutes)
                    ),
                    now=NOW,
                )
            ).id
            for minutes in (3, 2, 1)
        ]
    urgent = await _new_run(db, deployment_id, NOW)  # default queue, priority 1

    first = await _claim(db, "w", 10, NOW)
    # The default queue goes first although its run is newer; "low" gives one slot.
    assert set(first) == {urgent, low[0]}
    assert await _claim(db, "w", 10, NOW) == []  # the pool's limit of 2 is reached

    async with db.session() as s, s.begin():
        for run_id in first:
            await flow_runs.set_flow_run_state(s, run_id, StateCreate(type=StateType.RUNNING))
            await flow_runs.set_flow_run_state(s, run_id, StateCreate(type=StateType.COMPLETED))
    assert await _claim(db, "w", 10, NOW) == [low[1]]  # the queue's limit of 1

    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        pool.is_paused = True
        await flow_runs.set_flow_run_state(s, low[1], StateCreate(type=StateType.RUNNING))
        await flow_runs.set_flow_run_state(s, low[1], StateCreate(type=StateType.COMPLETED))
    assert await _claim(db, "w", 10, NOW) == []


async def test_a_silent_worker_goes_offline_and_its_unstarted_runs_return(db: Database) -> None:
    """(Its runs return because their lease ran out: see test_claims.py for a live worker's.)"""
    deployment_id = await _pool_and_deployment(db)
    run_id = await _new_run(db, deployment_id, NOW)
    assert await _claim(db, "gone", 1, NOW) == [run_id]
    async with db.session() as s, s.begin():
        worker = await s.scalar(sa.select(Worker).where(Worker.name == "gone"))
        assert worker is not None
        worker.last_heartbeat = NOW
    later = NOW + timedelta(seconds=30)
    async with db.session() as s, s.begin():
        assert await work_pools.mark_silent_workers_offline(s, missed=3, now=later) == 1
        assert await claims.recover_expired_leases(s, later, max_expiries=3) == (1, 0)
    assert await _state(db, run_id) == ("SCHEDULED", "Rescheduled")
    async with db.session() as s:
        pool = await work_pools.read_work_pool_row(s, "pool")
        assert (await work_pools.pool_schema(s, pool)).status == "NOT_READY"
    assert await _claim(db, "alive", 1, later) == [run_id]


async def test_stuck_cancellations_are_forced_to_cancelled(db: Database) -> None:
    deployment_id = await _pool_and_deployment(db)
    run_id = await _new_run(db, deployment_id, NOW)
    async with db.session() as s, s.begin():
        for state in (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING):
            await flow_runs.set_flow_run_state(s, run_id, StateCreate(type=state), now=NOW)
    async with db.session() as s, s.begin():
        assert await finish_stuck_cancellations(s, timeout=60, now=NOW + timedelta(seconds=30)) == 0
    async with db.session() as s, s.begin():
        assert await finish_stuck_cancellations(s, timeout=60, now=NOW + timedelta(seconds=90)) == 1
    assert await _state(db, run_id) == ("CANCELLED", "Cancelled")
