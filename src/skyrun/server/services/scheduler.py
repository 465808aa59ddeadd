"""The scheduler: creates each deployment's upcoming runs from its schedules, idempotently.

Occurrences are computed in a worker thread, never on the event loop (a rule
can take up to the schedules' CPU budget, see schedules.py), and a schedule
that cannot be computed is logged once and skipped until it is replaced; the
other schedules are still served. On PostgreSQL a pass takes the scheduler's
leader lock, so one replica schedules at a time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schedules import next_run_times, parse_schedule
from skyrun.schemas.deployments import DeploymentRunCreate
from skyrun.schemas.states import StateCreate, StateType, utcnow
from skyrun.server.db import dialect, schedules
from skyrun.server.db.deployments import create_deployment_run
from skyrun.server.db.engine import Database
from skyrun.server.errors import Invalid
from skyrun.settings import Settings

logger = logging.getLogger("skyrun.server.scheduler")


def idempotency_key(schedule_id: object, when: datetime) -> str:
    return f"scheduled:{schedule_id}:{when.isoformat()}"


def _upcoming(
    stored: list[tuple[uuid.UUID, dict[str, Any]]], now: datetime, horizon: timedelta, limit: int
) -> dict[uuid.UUID, list[datetime] | Exception]:
    """Each schedule's run times in (now, now + horizon], or why they cannot be computed."""
    result: dict[uuid.UUID, list[datetime] | Exception] = {}
    for schedule_id, data in stored:
        try:
            schedule = parse_schedule(data)
            result[schedule_id] = next_run_times(
                schedule, after=now, until=now + horizon, limit=limit
            )
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            result[schedule_id] = exc
    return result


async def schedule_deployment_runs(
    session: AsyncSession,
    *,
    max_runs: int,
    horizon: timedelta,
    now: datetime | None = None,
    unschedulable: set[uuid.UUID] | None = None,
) -> int:
    """Create the missing runs for every active schedule; returns how many were created.

    Each run's idempotency key is (schedule, time), unique per deployment, so
    passes that overlap (or several servers) never create a run twice.
    `unschedulable` collects the schedules that could not be computed (and
    skips those already in it).
    """
    now = now or utcnow()
    skip = unschedulable if unschedulable is not None else set()
    active = [(s, d) for s, d in await schedules.active_schedules(session) if s.id not in skip]
    stored = [(schedule.id, schedule.schedule) for schedule, _ in active]
    planned = await asyncio.to_thread(_upcoming, stored, now, horizon, max_runs)
    created = 0
    for schedule, deployment in active:
        times = planned[schedule.id]
        if isinstance(times, Exception):
            skip.add(schedule.id)
            logger.warning(
                "not scheduling deployment %s: its schedule %s cannot be computed (%s); "
                "replace the schedule",
                deployment.name,
                schedule.id,
                times,
            )
            continue
        keys = {idempotency_key(schedule.id, t): t for t in times}
        if not keys:
            continue
        existing = await schedules.existing_run_keys(session, deployment.id, list(keys))
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
    # Schedules that could not be computed: skipped (and not logged again) until
    # replaced, which gives them new ids. Kept for the life of the server.
    unschedulable: set[uuid.UUID] = set()

    async def run(database: Database) -> int:
        async with database.session() as session, session.begin():
            if not await dialect.try_leader_lock(session, "scheduler"):
                return 0
            return await schedule_deployment_runs(
                session,
                max_runs=settings.scheduler_horizon_runs,
                horizon=timedelta(days=settings.scheduler_horizon_days),
                unschedulable=unschedulable,
            )

    return run
