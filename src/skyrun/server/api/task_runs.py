"""Task runs, logs and the SDK's batched flush: /api/task_runs, /api/logs, /api/batch."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from skyrun.schemas.core import Batch, BatchResult, Log, LogBatch, Page, TaskRun
from skyrun.server.api import records
from skyrun.server.api.deps import MAX_ROW_ID, ApiRoute, Offset, body_schema, transaction
from skyrun.server.db import flow_runs, idempotency, logs, task_runs

router = APIRouter(tags=["task runs and logs"], route_class=ApiRoute)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Makes the request take effect once: a repeat with the same key "
        "(after a lost reply) records nothing again and gets the first answer. "
        "1-128 letters, digits and . _ : -; a new key for each new request.",
    ),
]


@router.post("/batch", response_model=BatchResult, openapi_extra=body_schema(Batch))
async def record_batch(
    request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> BatchResult:
    """Record the task runs and log lines the SDK buffered, in one transaction.

    Every record is recorded except those the answer lists as refused (an
    invalid record, or one whose flow run does not exist).
    """
    return await _record_once(request, "batch", idempotency_key, await records.read_batch(request))


@router.post(
    "/logs", response_model=BatchResult, status_code=201, openapi_extra=body_schema(LogBatch)
)
async def create_logs(
    request: Request, idempotency_key: IdempotencyKeyHeader = None
) -> BatchResult:
    """Record log lines; as with `/batch`, each line is recorded or refused on its own."""
    return await _record_once(request, "logs", idempotency_key, await records.read_logs(request))


async def _record_once(
    request: Request, scope: str, key: str | None, parsed: records.Records
) -> BatchResult:
    async with transaction(request) as session:
        if key is None:
            return await records.record(session, parsed)
        request_fingerprint = idempotency.fingerprint(await request.body())
        replayed = await idempotency.take(session, scope, key, request_fingerprint)
        if replayed is not None:
            return BatchResult.model_validate(replayed)
        result = await records.record(session, parsed)
        await idempotency.store(
            session, scope, key, request_fingerprint, result.model_dump(mode="json")
        )
    return result


@router.get("/task_runs", response_model=Page[TaskRun])
async def list_task_runs(
    request: Request,
    flow_run_id: uuid.UUID | None = None,
    limit: int = Query(200, ge=1, le=1000),
    offset: Offset = 0,
) -> Page[TaskRun]:
    async with transaction(request) as session:
        items, count = await task_runs.list_task_runs(session, flow_run_id, limit, offset)
    return Page[TaskRun](items=items, count=count, limit=limit, offset=offset)


@router.get("/task_runs/counts")
async def count_task_runs(request: Request, flow_run_id: uuid.UUID) -> dict[str, int]:
    """How many of a flow run's task runs are in each state type, e.g. {"COMPLETED": 9}."""
    async with transaction(request) as session:
        await flow_runs.read_flow_run_row(session, flow_run_id)  # 404 when there is none
        return await task_runs.count_task_runs_by_state(session, flow_run_id)


@router.get("/task_runs/{task_run_id}", response_model=TaskRun)
async def read_task_run(request: Request, task_run_id: uuid.UUID) -> TaskRun:
    async with transaction(request) as session:
        return await task_runs.read_task_run(session, task_run_id)


@router.get("/logs", response_model=list[Log])
async def read_logs(
    request: Request,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)] = None,
    min_level: int = Query(0, ge=0, le=100),
    limit: int = Query(200, ge=1, le=1000),
) -> list[Log]:
    async with transaction(request) as session:
        return await logs.read_logs(
            session,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            after_id=after_id,
            min_level=min_level,
            limit=limit,
        )
