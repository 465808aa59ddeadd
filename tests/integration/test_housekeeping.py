"""Housekeeping passes on real databases: each step on its own, whatever another one does."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from skyrun.schemas.states import LATE, utcnow
from skyrun.schemas.work_pools import WorkPoolCreate
from skyrun.server.db import deployments, work_pools
from skyrun.server.db.engine import Database
from skyrun.server.db.models import FlowRun, Worker
from skyrun.server.services import housekeeping
from skyrun.settings import Settings


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def _late_run(db: Database) -> uuid.UUID:
    async with db.session() as s, s.begin():
        pool = await work_pools.create_work_pool(s, WorkPoolCreate(name="pool", type="process"))
        deployment = await deployments.upsert_deployment(
            s,
            DeploymentCreate(
                flow_name="etl", name="d", entrypoint="f.py:etl", work_pool_name=pool.name
            ),
        )
        run = await deployments.create_deployment_run(
            s, deployment, DeploymentRunCreate(scheduled_time=utcnow() - timedelta(hours=1))
        )
        return run.id


async def _state_name(db: Database, run_id: uuid.UUID) -> str | None:
    async with db.session() as s:
        return await s.scalar(sa.select(FlowRun.state_name).where(FlowRun.id == run_id))


async def test_one_failing_step_does_not_stop_the_others(
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_id = await _late_run(db)

    async def broken(session: AsyncSession, _settings: Settings) -> None:
        await session.execute(sa.text("SELECT * FROM no_such_table"))

    steps = [housekeeping.Step("broken", broken), *housekeeping.STEPS]
    monkeypatch.setattr(housekeeping, "STEPS", steps)
    with caplog.at_level(logging.ERROR, logger="skyrun.server.housekeeping"):
        await housekeeping.housekeeping_pass(settings)(db)
    assert await _state_name(db, run_id) == LATE
    assert [r.getMessage() for r in caplog.records] == [
        "housekeeping step 'broken' failed; the other steps still run"
    ]


async def test_a_stored_heartbeat_interval_of_1e300_breaks_no_step(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that heartbeat with 1e300 before the schema refused it (now a 422)."""
    run_id = await _late_run(db)
    an_hour_ago = utcnow() - timedelta(hours=1)
    async with db.session() as s, s.begin():
        pool = await work_pools.read_work_pool_row(s, "pool")
        for name, interval in (("forever", 1e300), ("silent", 10.0)):
            s.add(
                Worker(
                    id=uuid.uuid4(),
                    work_pool_id=pool.id,
                    name=name,
                    heartbeat_interval=interval,
                    last_heartbeat=an_hour_ago,
                )
            )
    with caplog.at_level(logging.ERROR, logger="skyrun.server.housekeeping"):
        await housekeeping.housekeeping_pass(settings)(db)
    assert caplog.records == []
    assert await _state_name(db, run_id) == LATE
    async with db.session() as s:
        statuses = dict((await s.execute(sa.select(Worker.name, Worker.status))).all())
    # The silent one missed its heartbeats; the other is allowed the longest silence
    # the schema allows (an hour), times the missed heartbeats.
    assert statuses == {"forever": "ONLINE", "silent": "OFFLINE"}
