"""Claiming due runs for a worker: the compare-and-set SCHEDULED -> PENDING.

PostgreSQL locks the candidate rows with FOR UPDATE SKIP LOCKED so concurrent
workers take different runs; SQLite transactions start with BEGIN IMMEDIATE
(see engine.py), so only one claim runs at a time. Either way each run moves
through the orchestration rules, which refuse a second PENDING.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import AWAITING_RETRY, StateCreate, StateType
from skyrun.server.db import dialect, flow_runs
from skyrun.server.db.models import FlowRun, WorkPool, WorkQueue

ACTIVE_TYPES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)


async def _active_counts(session: AsyncSession, queue_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        sa.select(FlowRun.work_queue_id, sa.func.count())
        .where(FlowRun.work_queue_id.in_(queue_ids), FlowRun.state_type.in_(ACTIVE_TYPES))
        .group_by(FlowRun.work_queue_id)
    )
    return {queue_id: int(count) for queue_id, count in rows.all() if queue_id is not None}


async def claim_runs(
    session: AsyncSession,
    pool: WorkPool,
    *,
    worker_id: uuid.UUID,
    queue_names: list[str],
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[uuid.UUID]:
    """Move up to `limit` due runs of the pool to PENDING for this worker.

    Honours pool and queue pauses and concurrency limits; higher-priority
    queues (lower number) first, then the earliest scheduled.
    """
    if pool.is_paused or limit <= 0:
        return []
    query = sa.select(WorkQueue).where(
        WorkQueue.work_pool_id == pool.id, WorkQueue.is_paused.is_(False)
    )
    if queue_names:
        query = query.where(WorkQueue.name.in_(queue_names))
    queues = list(await session.scalars(query.order_by(WorkQueue.priority, WorkQueue.name)))
    if not queues:
        return []
    all_queue_ids = list(
        await session.scalars(sa.select(WorkQueue.id).where(WorkQueue.work_pool_id == pool.id))
    )
    active = await _active_counts(session, all_queue_ids)
    if pool.concurrency_limit is not None:
        limit = min(limit, pool.concurrency_limit - sum(active.values()))
    room = {
        q.id: (q.concurrency_limit - active.get(q.id, 0))
        if q.concurrency_limit is not None
        else limit
        for q in queues
    }
    priority = {q.id: q.priority for q in queues}
    eligible = [q.id for q in queues if room[q.id] > 0]
    if limit <= 0 or not eligible:
        return []
    candidates = (
        sa.select(FlowRun.id, FlowRun.work_queue_id)
        .where(
            FlowRun.work_queue_id.in_(eligible),
            FlowRun.state_type == StateType.SCHEDULED.value,
            # AwaitingRetry belongs to the process that failed the attempt: it
            # retries in place, so no worker may launch the run a second time.
            sa.or_(FlowRun.state_name.is_(None), FlowRun.state_name != AWAITING_RETRY),
            FlowRun.expected_start_time <= now,
        )
        .order_by(FlowRun.expected_start_time, FlowRun.id)
        .limit(limit * 4 + 10)
    )
    if dialect.supports_skip_locked(session):
        candidates = candidates.with_for_update(skip_locked=True, of=FlowRun)
    rows = sorted(
        (
            (run_id, queue_id)
            for run_id, queue_id in (await session.execute(candidates)).all()
            if queue_id is not None
        ),
        key=lambda r: priority[r[1]],
    )
    claimed: list[uuid.UUID] = []
    lease_expires = now + timedelta(seconds=lease_seconds)
    for run_id, queue_id in rows:
        if len(claimed) >= limit:
            break
        if room[queue_id] <= 0:
            continue
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(type=StateType.PENDING),
            now=now,
            extra={"worker_id": worker_id, "lease_expires": lease_expires},
        )
        if response.decision == Decision.ACCEPT:
            claimed.append(run_id)
            room[queue_id] -= 1
    return claimed


async def recover_abandoned_runs(
    session: AsyncSession, offline_worker_ids: list[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    """PENDING runs whose worker went offline and whose lease ran out go back to SCHEDULED."""
    query = sa.select(FlowRun.id).where(
        FlowRun.state_type == StateType.PENDING.value,
        FlowRun.lease_expires < now,
        sa.or_(FlowRun.worker_id.in_(offline_worker_ids), FlowRun.worker_id.is_(None)),
    )
    recovered = []
    for run_id in list(await session.scalars(query)):
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(
                type=StateType.SCHEDULED,
                name="Scheduled",
                message="its worker stopped before starting it; rescheduled",
                scheduled_time=now,
            ),
            now=now,
        )
        if response.decision == Decision.ACCEPT:
            recovered.append(run_id)
    return recovered
