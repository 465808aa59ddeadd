"""Late runs, silent workers, abandoned claims, stuck cancellations, silent flow runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import LATE, StateCreate, StateType, utcnow
from skyrun.schemas.work_pools import WorkerStatus
from skyrun.server.db import flow_runs
from skyrun.server.db.claims import recover_abandoned_runs
from skyrun.server.db.engine import Database
from skyrun.server.db.flow_run_heartbeats import crash_silent_runs
from skyrun.server.db.models import FlowRun, Worker
from skyrun.server.db.work_pools import mark_silent_workers_offline
from skyrun.settings import Settings


async def mark_late_runs(session: AsyncSession, late_after: float, now: datetime) -> int:
    """SCHEDULED runs overdue by more than `late_after` seconds are renamed Late."""
    rows = await session.scalars(
        sa.select(FlowRun).where(
            FlowRun.state_type == StateType.SCHEDULED.value,
            FlowRun.state_name != LATE,
            FlowRun.expected_start_time < now - timedelta(seconds=late_after),
        )
    )
    count = 0
    for run in rows:
        await flow_runs.set_flow_run_state(
            session,
            run.id,
            StateCreate(
                type=StateType.SCHEDULED, name=LATE, scheduled_time=run.state_scheduled_time
            ),
            now=now,
            extra={"worker_id": None},
        )
        count += 1
    return count


async def check_workers(session: AsyncSession, missed: int, now: datetime) -> tuple[int, int]:
    """Mark silent workers OFFLINE and return their unstarted runs to SCHEDULED."""
    offline = await mark_silent_workers_offline(session, missed, now)
    offline_ids = list(
        await session.scalars(
            sa.select(Worker.id).where(Worker.status == WorkerStatus.OFFLINE.value)
        )
    )
    recovered = await recover_abandoned_runs(session, offline_ids, now)
    return offline, len(recovered)


async def finish_stuck_cancellations(session: AsyncSession, timeout: float, now: datetime) -> int:
    """CANCELLING runs nobody finished within `timeout` seconds are forced to CANCELLED."""
    rows = await session.scalars(
        sa.select(FlowRun.id).where(
            FlowRun.state_type == StateType.CANCELLING.value,
            FlowRun.state_timestamp < now - timedelta(seconds=timeout),
        )
    )
    count = 0
    for run_id in list(rows):
        await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(
                type=StateType.CANCELLED,
                message=f"forced: still cancelling after {timeout:g}s (its worker did not confirm)",
            ),
            now=now,
            force=True,
        )
        count += 1
    return count


def housekeeping_pass(settings: Settings) -> Callable[[Database], Awaitable[None]]:
    async def run(database: Database) -> None:
        now = utcnow()
        async with database.session() as session, session.begin():
            await mark_late_runs(session, settings.late_after_seconds, now)
        async with database.session() as session, session.begin():
            await check_workers(session, settings.worker_offline_after_missed, now)
        async with database.session() as session, session.begin():
            await finish_stuck_cancellations(session, settings.cancelling_timeout_seconds, now)
        async with database.session() as session, session.begin():
            await crash_silent_runs(session, settings.flow_run_heartbeat_timeout, now)

    return run
