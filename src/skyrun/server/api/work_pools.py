"""Work pools, queues, workers and claiming: /api/work_pools."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Query, Request, Response

from skyrun.schemas.core import FlowRun, FlowRunFilter
from skyrun.schemas.states import StateType, utcnow
from skyrun.schemas.work_pools import (
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
from skyrun.server.api.deps import ApiRoute, database, transaction
from skyrun.server.db import flow_runs, work_pools
from skyrun.server.services import claiming
from skyrun.settings import Settings

router = APIRouter(prefix="/work_pools", tags=["work pools"], route_class=ApiRoute)
# How far ahead the scheduled-runs preview may look (the scheduler plans 100 days).
MAX_PREVIEW_HOURS = 24 * 366


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
        return await work_pools.update_work_queue(session, name, queue, body)


@router.delete("/{name}/queues/{queue}", status_code=204)
async def delete_work_queue(request: Request, name: str, queue: str) -> Response:
    async with transaction(request) as session:
        await work_pools.delete_work_queue(session, name, queue)
    return Response(status_code=204)


@router.post("/{name}/workers/heartbeat", response_model=Worker)
async def worker_heartbeat(request: Request, name: str, body: WorkerHeartbeat) -> Worker:
    """A worker is alive; the leases of the PENDING runs it names are extended."""
    return await claiming.worker_heartbeat(database(request), _settings(request), name, body)


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

    A repeat with the same `claim_key` gets the runs the first request took.
    """
    return await claiming.claim(
        database(request), _settings(request), name, body, request.is_disconnected
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


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings
