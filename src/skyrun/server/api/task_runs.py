"""Task runs, logs and the SDK's batched flush: /api/task_runs, /api/logs, /api/batch."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from skyrun.schemas.core import Batch, Log, LogCreate, Page, TaskRun
from skyrun.server.api.deps import (
    MAX_ROW_ID,
    ApiRoute,
    Offset,
    body_schema,
    parse_json_body,
    transaction,
)
from skyrun.server.db import flow_runs, logs, task_runs

router = APIRouter(tags=["task runs and logs"], route_class=ApiRoute)


@router.post("/batch", openapi_extra=body_schema(Batch))
async def record_batch(request: Request) -> dict[str, int]:
    """Record task runs and log lines the SDK buffered, in one transaction."""
    body = await parse_json_body(request, Batch)
    run_ids = {r.flow_run_id for r in body.task_runs}
    run_ids |= {log.flow_run_id for log in body.logs if log.flow_run_id is not None}
    async with transaction(request) as session:
        await flow_runs.ensure_flow_runs_exist(session, run_ids)
        recorded = await task_runs.upsert_task_runs(session, body.task_runs)
        logged = await logs.create_logs(session, body.logs)
    return {"task_runs": recorded, "logs": logged}


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


@router.post("/logs", status_code=201)
async def create_logs(request: Request, body: list[LogCreate]) -> dict[str, int]:
    run_ids = {log.flow_run_id for log in body if log.flow_run_id is not None}
    async with transaction(request) as session:
        await flow_runs.ensure_flow_runs_exist(session, run_ids)
        return {"logs": await logs.create_logs(session, body)}


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
