"""The runs housekeeping moves along: overdue ones named Late, stuck cancellations ended.

(Worker liveness lives with the workers, work_pools.py; expired leases with the
claims, claims.py.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import LATE, StateCreate, StateType
from skyrun.server.db import flow_runs
from skyrun.server.db.models import FlowRun


async def mark_late_runs(session: AsyncSession, late_after: float, now: datetime) -> int:
    """SCHEDULED runs overdue by more than `late_after` seconds are renamed Late."""
    overdue_before = now - timedelta(seconds=late_after)
    rows = await session.execute(
        sa.select(FlowRun.id, FlowRun.state_scheduled_time).where(
            FlowRun.state_type == StateType.SCHEDULED.value,
            FlowRun.state_name != LATE,
            FlowRun.expected_start_time < overdue_before,
        )
    )
    count = 0
    for run_id, scheduled_time in rows.all():
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(type=StateType.SCHEDULED, name=LATE, scheduled_time=scheduled_time),
            now=now,
            extra={"worker_id": None},
            # Claimed (PENDING) or renamed since the query: a claimed run must not be
            # handed back to SCHEDULED.
            expect=lambda run: (
                run.state_type == StateType.SCHEDULED.value
                and run.state_name != LATE
                and run.expected_start_time is not None
                and run.expected_start_time < overdue_before
            ),
        )
        count += response.decision == Decision.ACCEPT
    return count


async def finish_stuck_cancellations(session: AsyncSession, timeout: float, now: datetime) -> int:
    """CANCELLING runs nobody finished within `timeout` seconds are forced to CANCELLED."""
    stuck_before = now - timedelta(seconds=timeout)
    rows = await session.scalars(
        sa.select(FlowRun.id).where(
            FlowRun.state_type == StateType.CANCELLING.value,
            FlowRun.state_timestamp < stuck_before,
        )
    )
    count = 0
    for run_id in list(rows):
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(
                type=StateType.CANCELLED,
                message=f"forced: still cancelling after {timeout:g}s (its worker did not confirm)",
            ),
            now=now,
            force=True,
            # Forced past the rules, so checked here: a run that ended meanwhile
            # (its worker did confirm) keeps its own final state.
            expect=lambda run: (
                run.state_type == StateType.CANCELLING.value
                and run.state_timestamp is not None
                and run.state_timestamp < stuck_before
            ),
        )
        count += response.decision == Decision.ACCEPT
    return count
