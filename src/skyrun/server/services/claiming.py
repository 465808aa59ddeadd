"""Claims and worker heartbeats: the long-poll, worker liveness and leases.

The work-pool routes parse a request, call one of these and respond. A claim
counts as its worker's heartbeat once, when it arrives (a request still
waiting says nothing about whether its worker is alive); a heartbeat names the
runs the worker is still launching, whose leases it extends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import utcnow
from skyrun.schemas.work_pools import (
    ClaimedRun,
    ClaimRequest,
    ClaimResponse,
    Worker,
    WorkerHeartbeat,
)
from skyrun.server.db import claims, deployments, flow_runs, work_pools
from skyrun.server.db.engine import Database
from skyrun.server.db.models import WorkPool
from skyrun.settings import Settings

# How often a waiting claim looks at the database without being woken. With a
# LISTEN connection (PostgreSQL) every replica's changes wake it, so this is a
# safety net; without one (SQLite, whose other processes cannot wake it, or a
# lost connection) it is how runs made elsewhere are found.
RECHECK_LISTENING_SECONDS = 5.0
RECHECK_POLLING_SECONDS = 0.5


def lease_seconds(settings: Settings, heartbeat_interval: float) -> float:
    """How long a heartbeat extends a lease: the lease, and never less than the
    silence after which the worker would be OFFLINE (so a slow heartbeat keeps it)."""
    return max(
        settings.claim_lease_seconds,
        heartbeat_interval * settings.worker_offline_after_missed,
    )


async def worker_heartbeat(
    database: Database, settings: Settings, pool_name: str, body: WorkerHeartbeat
) -> Worker:
    """Record the worker as alive and extend the leases of the runs it is launching."""
    async with database.session() as session, session.begin():
        pool = await work_pools.read_work_pool_row(session, pool_name)
        now = utcnow()
        worker = await work_pools.heartbeat(session, pool, body, now)
        until = now + timedelta(seconds=lease_seconds(settings, body.heartbeat_interval))
        await claims.extend_leases(session, worker.id, body.flow_run_ids, until)
        return Worker.model_validate(worker)


async def claim(
    database: Database,
    settings: Settings,
    pool_name: str,
    body: ClaimRequest,
    disconnected: Callable[[], Awaitable[bool]],
) -> ClaimResponse:
    """Claim due runs for a worker, waiting up to `body.wait_seconds` for one.

    The wait ends early when work may have become claimable (this process's
    transactions, and on PostgreSQL every replica's, wake it), when the
    earliest scheduled run becomes due, or when the client has gone.
    """
    lease = body.lease_seconds or settings.claim_lease_seconds
    deadline = time.monotonic() + body.wait_seconds
    listening = body.wait_seconds > 0 and await database.listening()
    worker_id: uuid.UUID | None = None
    while True:
        ticket = database.notifier.ticket()
        async with database.session() as session, session.begin():
            pool = await work_pools.read_work_pool_row(session, pool_name)
            now = utcnow()
            if worker_id is None:
                beat = WorkerHeartbeat(
                    name=body.worker_name, heartbeat_interval=settings.worker_heartbeat_interval
                )
                worker_id = (await work_pools.heartbeat(session, pool, beat, now)).id
            elif await disconnected() or not await work_pools.worker_is_online(session, worker_id):
                # Its client has gone (and may be retrying with the same key), or its
                # worker was marked OFFLINE while this request waited: runs claimed
                # now would only wait for their lease to run out.
                return ClaimResponse(worker_id=worker_id, runs=[], pool_paused=pool.is_paused)
            claimed = await claims.claim_runs(
                session,
                pool,
                worker_id=worker_id,
                queue_names=body.work_queue_names,
                limit=body.limit,
                lease_seconds=lease,
                now=now,
                claim_key=body.claim_key,
            )
            remaining = deadline - time.monotonic()
            if claimed or remaining <= 0:
                return ClaimResponse(
                    worker_id=worker_id,
                    runs=[await _claimed(session, run_id, pool, worker_id) for run_id in claimed],
                    pool_paused=pool.is_paused,
                )
            due = await claims.next_due_time(session, pool, body.work_queue_names, now)
        recheck = RECHECK_LISTENING_SECONDS if listening else RECHECK_POLLING_SECONDS
        await database.notifier.wait(min(remaining, recheck, _until(due)), ticket)
        listening = await database.listening()


def _until(moment: datetime | None) -> float:
    if moment is None:
        return float("inf")
    return (moment - utcnow()).total_seconds()


async def _claimed(
    session: AsyncSession, run_id: uuid.UUID, pool: WorkPool, worker_id: uuid.UUID
) -> ClaimedRun:
    run = await flow_runs.read_flow_run(session, run_id)
    deployment = None
    if run.deployment_id is not None:
        row = await deployments.read_deployment_row(session, run.deployment_id)
        deployment = await deployments.to_schema(session, row)
    row_lease = (await flow_runs.read_flow_run_row(session, run_id)).lease_expires
    return ClaimedRun(
        flow_run=run,
        deployment=deployment,
        base_job_template=pool.base_job_template,
        work_pool_name=pool.name,
        worker_id=worker_id,
        lease_expires=row_lease or utcnow(),
    )
