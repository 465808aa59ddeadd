"""The scheduler: creates each deployment's upcoming runs from its schedules, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schedules import next_run_times, parse_schedule
from skyrun.schemas.deployments import DeploymentRunCreate
from skyrun.schemas.states import StateCreate, StateType, utcnow
from skyrun.server.db import dialect
from skyrun.server.db.deployments import create_deployment_run
from skyrun.server.db.engine import Database
from skyrun.server.db.models import Deployment, DeploymentSchedule, FlowRun
from skyrun.server.errors import Invalid
from skyrun.settings import Settings

logger = logging.getLogger("skyrun.server.scheduler")


def idempotency_key(schedule_id: object, when: datetime) -> str:
    return f"scheduled:{schedule_id}:{when.isoformat()}"


async def schedule_deployment_runs(
    session: AsyncSession, *, max_runs: int, horizon: timedelta, now: datetime | None = None
) -> int:
    """Create the missing runs for every active schedule; returns how many were created.

    Each run's idempotency key is (schedule, time), unique per deployment, so
    passes that overlap (or several servers) never create a run twice.
    """
    now = now or utcnow()
    rows = await session.execute(
        sa.select(DeploymentSchedule, Deployment)
        .join(Deployment, Deployment.id == DeploymentSchedule.deployment_id)
        .where(DeploymentSchedule.active.is_(True), Deployment.paused.is_(False))
    )
    created = 0
    for schedule_row, deployment in rows.all():
        schedule = parse_schedule(schedule_row.schedule)
        times = next_run_times(schedule, after=now, until=now + horizon, limit=max_runs)
        if not times:
            continue
        keys = {idempotency_key(schedule_row.id, t): t for t in times}
        existing = set(
            await session.scalars(
                sa.select(FlowRun.idempotency_key).where(
                    FlowRun.deployment_id == deployment.id, FlowRun.idempotency_key.in_(list(keys))
                )
            )
        )
        for key, when in keys.items():
            if key in existing:
                continue
            try:
                async with session.begin_nested():
                    await create_deployment_run(
                        session,
                        deployment,
                        DeploymentRunCreate(
                            idempotency_key=key,
                            state=StateCreate(type=StateType.SCHEDULED, scheduled_time=when),
                        ),
                        auto_scheduled=True,
                        now=now,
                    )
            except Invalid as exc:
                logger.warning(
                    "not scheduling deployment %s: %s (give the parameters defaults)",
                    deployment.name,
                    exc.message,
                )
                break
            created += 1
    return created


def scheduler_pass(settings: Settings) -> Callable[[Database], Awaitable[int]]:
    async def run(database: Database) -> int:
        async with database.session() as session, session.begin():
            if dialect.name(session) == "postgresql":
                # One scheduler at a time across replicas; others skip this pass.
                got = await session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(7427001)"))
                if not got:
                    return 0
            return await schedule_deployment_runs(
                session,
                max_runs=settings.scheduler_horizon_runs,
                horizon=timedelta(days=settings.scheduler_horizon_days),
            )

    return run
