"""Work pools, queues, workers and claiming: /api/work_pools."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.states import StateType, utcnow
from skyrun.schemas.work_pools import (
    ClaimedRun,
    ClaimRequest,
    ClaimResponse,
    Worker,
    WorkerHeartbeat,
    WorkPool,
    WorkPoolCreate,
    WorkPoolSaved,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)
from skyrun.server.api.deps import ApiRoute, transaction
from skyrun.server.db import claims, deployments, flow_runs, work_pools
from skyrun.server.db.models import WorkPool as WorkPoolRow
from skyrun.server.notify import RunNotifier

router = APIRouter(prefix="/work_pools", tags=["work pools"], route_class=ApiRoute)
_DB_RECHECK_SECONDS = 0.5
# Ten years ahead: far enough for any preview, near enough for date arithmetic.
MAX_PREVIEW_HOURS = 10 * 366 * 24


def _saved(pool: WorkPool, template_stored: bool) -> WorkPoolSaved:
    """The pool with warnings about the base job template this request stored, if any."""
    warnings: list[str] = []
    if template_stored:
        # Imported here, not at the top: it brings jsonschema, which the embedded
        # mode, running flows with no work pool, should not load.
        from skyrun.jobs.templates import unused_variable_warnings

        warnings = unused_variable_warnings(pool.base_job_template)
    return WorkPoolSaved(**pool.model_dump(), warnings=warnings)


@router.post("", response_model=WorkPoolSaved, status_code=201)
async def create_work_pool(request: Request, body: WorkPoolCreate) -> WorkPoolSaved:
    """Create a work pool; `warnings` lists variables its template declares but never uses."""
    async with transaction(request) as session:
        pool = await work_pools.create_work_pool(session, body)
        return _saved(await work_pools.pool_schema(session, pool), template_stored=True)


@router.get("", response_model=list[WorkPool])
async def list_work_pools(request: Request) -> list[WorkPool]:
    async with transaction(request) as session:
        return await work_pools.list_work_pools(session)


@router.get("/{name}", response_model=WorkPool)
async def read_work_pool(request: Request, name: str) -> WorkPool:
    async with transaction(request) as session:
        pool = await work_pools.read_work_pool_row(session, name)
        return await work_pools.pool_schema(session, pool)


@router.patch("/{name}", response_model=WorkPoolSaved)
async def update_work_pool(request: Request, name: str, body: WorkPoolUpdate) -> WorkPoolSaved:
    """Change a work pool; `warnings` is about the base job template, when one is sent."""
    async with transaction(request) as session:
        pool = await work_pools.update_work_pool(session, name, body)
        result = await work_pools.pool_schema(session, pool)
    _notifier(request).changed()
    return _saved(result, template_stored=body.base_job_template is not None)


@router.delete("/{name}", status_code=204)
async def delete_work_pool(request: Request, name: str) -> Response:
    async with transaction(request) as session:
        await work_pools.delete_work_pool(session, name)
    return Response(status_code=204)


@router.post("/{name}/queues", response_model=WorkQueue, status_code=201)
async def create_work_queue(request: Request, name: str, body: WorkQueueCreate) -> WorkQueue:
    async with transaction(request) as session:
        return await work_pools.create_work_queue(session, name, body)


@router.get("/{name}/queues", response_model=list[WorkQueue])
async def list_work_queues(request: Request, name: str) -> list[WorkQueue]:
    async with transaction(request) as session:
        return await work_pools.list_work_queues(session, name)


@router.patch("/{name}/queues/{queue}", response_model=WorkQueue)
async def update_work_queue(
    request: Request, name: str, queue: str, body: WorkQueueUpdate
) -> WorkQueue:
    async with transaction(request) as session:
        result = await work_pools.update_work_queue(session, name, queue, body)
    _notifier(request).changed()
    return result


@router.delete("/{name}/queues/{queue}", status_code=204)
async def delete_work_queue(request: Request, name: str, queue: str) -> Response:
    async with transaction(request) as session:
        await work_pools.delete_work_queue(session, name, queue)
    return Response(status_code=204)


@router.post("/{name}/workers/heartbeat", response_model=Worker)
async def worker_heartbeat(request: Request, name: str, body: WorkerHeartbeat) -> Worker:
    async with transaction(request) as session:
        pool = await work_pools.read_work_pool_row(session, name)
        return Worker.model_validate(await work_pools.heartbeat(session, pool, body))


@router.get("/{name}/workers", response_model=list[Worker])
async def list_workers(request: Request, name: str) -> list[Worker]:
    async with transaction(request) as session:
        return [Worker.model_validate(w) for w in await work_pools.list_workers(session, name)]


@router.delete("/{name}/workers/{worker_name}", status_code=204)
async def delete_worker(request: Request, name: str, worker_name: str) -> Response:
    async with transaction(request) as session:
        await work_pools.delete_worker(session, name, worker_name)
    return Response(status_code=204)


@router.post("/{name}/claim", response_model=ClaimResponse)
async def claim(request: Request, name: str, body: ClaimRequest) -> ClaimResponse:
    """Claim due runs for a worker; waits up to `wait_seconds` for one to become due.

    Each call also counts as the worker's heartbeat, once, when it arrives: a
    request still waiting says nothing about whether its worker is alive.
    """
    settings = request.app.state.settings
    lease = body.lease_seconds or settings.claim_lease_seconds
    deadline = time.monotonic() + body.wait_seconds
    notifier = _notifier(request)
    worker_id: uuid.UUID | None = None
    while True:
        async with transaction(request) as session:
            pool = await work_pools.read_work_pool_row(session, name)
            if worker_id is None:
                worker = await work_pools.heartbeat(
                    session,
                    pool,
                    WorkerHeartbeat(
                        name=body.worker_name,
                        heartbeat_interval=settings.worker_heartbeat_interval,
                    ),
                )
                worker_id = worker.id
            elif not await work_pools.worker_is_online(session, worker_id):
                # Marked OFFLINE while this request waited (its worker went silent):
                # runs claimed now would only wait for the lease to run out.
                return ClaimResponse(worker_id=worker_id, runs=[], pool_paused=pool.is_paused)
            claimed = await claims.claim_runs(
                session,
                pool,
                worker_id=worker_id,
                queue_names=body.work_queue_names,
                limit=body.limit,
                lease_seconds=lease,
                now=utcnow(),
            )
            if claimed or time.monotonic() >= deadline or await request.is_disconnected():
                return ClaimResponse(
                    worker_id=worker_id,
                    runs=[await _claimed(session, run_id, pool, worker_id) for run_id in claimed],
                    pool_paused=pool.is_paused,
                )
        remaining = deadline - time.monotonic()
        await notifier.wait(min(remaining, _DB_RECHECK_SECONDS))
        await asyncio.sleep(0)


async def _claimed(
    session: AsyncSession, run_id: uuid.UUID, pool: WorkPoolRow, worker_id: uuid.UUID
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


@router.get("/{name}/scheduled_runs", response_model=list[FlowRun])
async def preview_scheduled_runs(
    request: Request,
    name: str,
    hours: float = Query(24.0, gt=0, le=MAX_PREVIEW_HOURS, allow_inf_nan=False),
    limit: int = Query(50, ge=1, le=1000),
) -> list[FlowRun]:
    """Runs of this pool that are scheduled within the next `hours`."""
    until: datetime = utcnow() + timedelta(hours=hours)
    async with transaction(request) as session:
        await work_pools.read_work_pool_row(session, name)
        items, _ = await flow_runs.filter_flow_runs(
            session,
            FlowRunFilter(
                work_pool_name=name,
                state_type=[StateType.SCHEDULED],
                expected_start_before=until,
                sort="expected_start_time_asc",
                limit=limit,
            ),
        )
    return items


def _notifier(request: Request) -> RunNotifier:
    notifier: RunNotifier = request.app.state.notifier
    return notifier
