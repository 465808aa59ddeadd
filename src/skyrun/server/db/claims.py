"""Claiming due runs for a worker (the compare-and-set SCHEDULED -> PENDING) and its leases.

A claim holds the pool's claim lock (PostgreSQL: an advisory lock; SQLite: its
single writer) while it counts active runs and takes runs up to the pool's and
queues' concurrency limits, so concurrent claims never exceed them. A
deployment's runs may sit in several pools (it moved, or a run was sent to
another queue), so a deployment's limit is held under a lock of its own: the
claim locks the rows of the limited deployments it may take runs of, in id
order, before counting their active runs. PostgreSQL also selects candidates
FOR UPDATE SKIP LOCKED. Either way each run moves through the orchestration
rules, which refuse a second PENDING.

Each claimed run gets a lease: its worker's heartbeats extend the leases of
the runs it is still launching, and a run whose lease ran out goes back to
SCHEDULED whatever its worker's status (a claim whose reply was lost, a worker
that hangs), or CRASHED once its leases have run out too often.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import AWAITING_RETRY, StateCreate, StateType
from skyrun.server.db import dialect, flow_runs
from skyrun.server.db.models import Deployment, FlowRun, FlowRunState, WorkPool, WorkQueue

ACTIVE_TYPES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)
# The SCHEDULED sub-state of a run whose lease ran out: counting them says how
# often its claims were lost.
RESCHEDULED = "Rescheduled"


async def _active_counts(session: AsyncSession, queue_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        sa.select(FlowRun.work_queue_id, sa.func.count())
        .where(FlowRun.work_queue_id.in_(queue_ids), FlowRun.state_type.in_(ACTIVE_TYPES))
        .group_by(FlowRun.work_queue_id)
    )
    return {queue_id: int(count) for queue_id, count in rows.all() if queue_id is not None}


async def _deployment_room(
    session: AsyncSession, queue_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, int]:
    """How many more runs each limited deployment with a due run in these queues may start.

    Locks those deployments' rows until the transaction ends (FOR NO KEY UPDATE,
    so creating their runs, which only shares the key, does not wait), in id
    order so that claims on different pools cannot deadlock; the count that
    follows sees every claim that held the lock before. SQLite's single writer
    serialises claims already.
    """
    due = sa.select(FlowRun.deployment_id).where(
        *_claimable(queue_ids), FlowRun.expected_start_time <= now
    )
    limited = (
        sa.select(Deployment.id, Deployment.concurrency_limit)
        .where(Deployment.concurrency_limit.is_not(None), Deployment.id.in_(due))
        .order_by(Deployment.id)
        .with_for_update(key_share=True, of=Deployment)
    )
    limits = {
        deployment_id: limit
        for deployment_id, limit in (await session.execute(limited)).all()
        if limit is not None
    }
    if not limits:
        return {}
    rows = await session.execute(
        sa.select(FlowRun.deployment_id, sa.func.count())
        .where(FlowRun.deployment_id.in_(limits), FlowRun.state_type.in_(ACTIVE_TYPES))
        .group_by(FlowRun.deployment_id)
    )
    active = {deployment_id: int(count) for deployment_id, count in rows.all()}
    return {d: limit - active.get(d, 0) for d, limit in limits.items()}


def _claimable(queue_ids: list[uuid.UUID]) -> list[sa.ColumnElement[bool]]:
    return [
        FlowRun.work_queue_id.in_(queue_ids),
        FlowRun.state_type == StateType.SCHEDULED.value,
        # AwaitingRetry belongs to the process that failed the attempt: it
        # retries in place, so no worker may launch the run a second time.
        sa.or_(FlowRun.state_name.is_(None), FlowRun.state_name != AWAITING_RETRY),
    ]


async def _open_queues(
    session: AsyncSession, pool: WorkPool, queue_names: list[str]
) -> list[WorkQueue]:
    query = sa.select(WorkQueue).where(
        WorkQueue.work_pool_id == pool.id, WorkQueue.is_paused.is_(False)
    )
    if queue_names:
        query = query.where(WorkQueue.name.in_(queue_names))
    return list(await session.scalars(query.order_by(WorkQueue.priority, WorkQueue.name)))


async def runs_of_claim(
    session: AsyncSession, worker_id: uuid.UUID, claim_key: str
) -> list[uuid.UUID]:
    """The runs a claim with this key took for this worker and that are still PENDING for it."""
    rows = await session.scalars(
        sa.select(FlowRun.id)
        .where(
            FlowRun.worker_id == worker_id,
            FlowRun.claim_key == claim_key,
            FlowRun.state_type == StateType.PENDING.value,
        )
        .order_by(FlowRun.expected_start_time, FlowRun.id)
    )
    return list(rows)


async def claim_runs(
    session: AsyncSession,
    pool: WorkPool,
    *,
    worker_id: uuid.UUID,
    queue_names: list[str],
    limit: int,
    lease_seconds: float,
    now: datetime,
    claim_key: str | None = None,
) -> list[uuid.UUID]:
    """Move up to `limit` due runs of the pool to PENDING for this worker.

    Honours pool and queue pauses and the pool's, queues' and deployments'
    concurrency limits; higher-priority queues (lower number) first, then the
    earliest scheduled. A run held back by a limit stays SCHEDULED for a later
    claim. A claim that
    repeats `claim_key` (its reply was lost) gets the runs the first one took,
    with their leases renewed, and takes no more.
    """
    lease_expires = now + timedelta(seconds=lease_seconds)
    await dialect.lock_pool_for_claims(session, pool.id)
    if claim_key is not None:
        # Looked up under the lock, so a first request still at work (its client
        # gave up on it and retried) has committed what it took. Should it take
        # runs later, in its wait, nobody launches them: their lease runs out.
        again = await runs_of_claim(session, worker_id, claim_key)
        if again:
            await extend_leases(session, worker_id, again, lease_expires)
            return again
    # Read again under the lock: a claim that committed meanwhile, or a pause.
    await session.refresh(pool)
    if pool.is_paused or limit <= 0:
        return []
    queues = await _open_queues(session, pool, queue_names)
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
    deployment_room = await _deployment_room(session, eligible, now)
    # Runs of a full deployment are left out of the query: however many are due,
    # they must not crowd the others out of the candidates.
    full = [d for d, room_left in deployment_room.items() if room_left <= 0]
    candidates = (
        sa.select(FlowRun.id, FlowRun.work_queue_id, FlowRun.deployment_id)
        .where(*_claimable(eligible), FlowRun.expected_start_time <= now)
        .order_by(FlowRun.expected_start_time, FlowRun.id)
        .limit(limit * 4 + 10)
    )
    if full:
        candidates = candidates.where(
            sa.or_(FlowRun.deployment_id.is_(None), FlowRun.deployment_id.not_in(full))
        )
    if dialect.supports_skip_locked(session):
        candidates = candidates.with_for_update(skip_locked=True, of=FlowRun)
    rows = sorted(
        (
            (run_id, queue_id, deployment_id)
            for run_id, queue_id, deployment_id in (await session.execute(candidates)).all()
            if queue_id is not None
        ),
        key=lambda r: priority[r[1]],
    )
    claimed: list[uuid.UUID] = []
    for run_id, queue_id, deployment_id in rows:
        if len(claimed) >= limit:
            break
        if room[queue_id] <= 0:
            continue
        if deployment_id is not None and deployment_room.get(deployment_id, 1) <= 0:
            continue
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            StateCreate(type=StateType.PENDING),
            now=now,
            extra={"worker_id": worker_id, "lease_expires": lease_expires, "claim_key": claim_key},
        )
        if response.decision == Decision.ACCEPT:
            claimed.append(run_id)
            room[queue_id] -= 1
            if deployment_id in deployment_room:
                deployment_room[deployment_id] -= 1
    return claimed


async def next_due_time(
    session: AsyncSession, pool: WorkPool, queue_names: list[str], now: datetime
) -> datetime | None:
    """When the pool's next run now scheduled in the future becomes due (None: none is)."""
    if pool.is_paused:
        return None
    queue_ids = [q.id for q in await _open_queues(session, pool, queue_names)]
    if not queue_ids:
        return None
    due: datetime | None = await session.scalar(
        sa.select(sa.func.min(FlowRun.expected_start_time)).where(
            *_claimable(queue_ids), FlowRun.expected_start_time > now
        )
    )
    return due


async def extend_leases(
    session: AsyncSession, worker_id: uuid.UUID, run_ids: list[uuid.UUID], until: datetime
) -> int:
    """Leases of this worker's runs that are still PENDING last until `until`; returns how many."""
    if not run_ids:
        return 0
    result = await session.execute(
        sa.update(FlowRun)
        .where(
            FlowRun.id.in_(run_ids),
            FlowRun.worker_id == worker_id,
            FlowRun.state_type == StateType.PENDING.value,
        )
        .values(lease_expires=until)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _times_rescheduled(session: AsyncSession, run_id: uuid.UUID) -> int:
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(FlowRunState)
        .where(FlowRunState.flow_run_id == run_id, FlowRunState.name == RESCHEDULED)
    )
    return int(count or 0)


def _lease_ran_out(run: FlowRun, now: datetime) -> bool:
    return (
        run.state_type == StateType.PENDING.value
        and run.lease_expires is not None
        and run.lease_expires < now
    )


async def recover_expired_leases(
    session: AsyncSession, now: datetime, max_expiries: int
) -> tuple[int, int]:
    """PENDING runs whose lease ran out go back to SCHEDULED, whatever their worker's status.

    A run whose lease has now run out `max_expiries` times is CRASHED instead:
    its workers keep losing it while launching it (a run that crashes them, or
    a network that loses every claim's reply), and retrying forever would hide
    that. Returns (rescheduled, crashed).
    """
    query = sa.select(FlowRun.id).where(
        FlowRun.state_type == StateType.PENDING.value,
        FlowRun.lease_expires.is_not(None),
        FlowRun.lease_expires < now,
    )
    rescheduled = crashed = 0
    for run_id in list(await session.scalars(query)):
        expiries = await _times_rescheduled(session, run_id) + 1
        if expiries >= max_expiries:
            proposed = StateCreate(
                type=StateType.CRASHED,
                message=f"its claim's lease ran out {expiries} times: the workers that "
                "claimed it never started it",
            )
        else:
            proposed = StateCreate(
                type=StateType.SCHEDULED,
                name=RESCHEDULED,
                message="its worker did not start it before its lease ran out; rescheduled",
                scheduled_time=now,
            )
        response = await flow_runs.set_flow_run_state(
            session,
            run_id,
            proposed,
            now=now,
            extra={"worker_id": None, "lease_expires": None, "claim_key": None},
            # Its process may have started it (RUNNING) or its worker renewed the lease
            # since the query: then it is not abandoned.
            expect=lambda run: _lease_ran_out(run, now),
        )
        if response.decision == Decision.ACCEPT:
            if proposed.type == StateType.CRASHED:
                crashed += 1
            else:
                rescheduled += 1
    return rescheduled, crashed
