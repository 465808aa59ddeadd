"""Flow runs: /api/flow_runs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from skyrun.schemas.core import FlowRun, FlowRunCreate, FlowRunFilter, Page
from skyrun.schemas.orchestration import SetStateRequest, SetStateResponse
from skyrun.schemas.states import State
from skyrun.server.api.deps import ApiRoute, transaction
from skyrun.server.db import flow_run_heartbeats, flow_runs

router = APIRouter(prefix="/flow_runs", tags=["flow runs"], route_class=ApiRoute)


class InfrastructureUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    infrastructure_id: str = Field(min_length=1, max_length=500)


@router.post("", response_model=FlowRun, status_code=201)
async def create_flow_run(request: Request, body: FlowRunCreate) -> FlowRun:
    async with transaction(request) as session:
        run = await flow_runs.create_flow_run(session, body)
        return await flow_runs.read_flow_run(session, run.id)


@router.post("/filter", response_model=Page[FlowRun])
async def filter_flow_runs(request: Request, body: FlowRunFilter) -> Page[FlowRun]:
    async with transaction(request) as session:
        items, count = await flow_runs.filter_flow_runs(session, body)
    return Page[FlowRun](items=items, count=count, limit=body.limit, offset=body.offset)


@router.get("/{flow_run_id}", response_model=FlowRun)
async def read_flow_run(request: Request, flow_run_id: uuid.UUID) -> FlowRun:
    async with transaction(request) as session:
        return await flow_runs.read_flow_run(session, flow_run_id)


@router.post("/{flow_run_id}/set_state", response_model=SetStateResponse)
async def set_flow_run_state(
    request: Request, flow_run_id: uuid.UUID, body: SetStateRequest
) -> SetStateResponse:
    # A run made due again wakes waiting claims when this commits (server/db/work_events.py).
    async with transaction(request) as session:
        return await flow_runs.set_flow_run_state(
            session, flow_run_id, body.state, force=body.force
        )


@router.post("/{flow_run_id}/heartbeat", response_model=State)
async def heartbeat_flow_run(request: Request, flow_run_id: uuid.UUID) -> State:
    """The process running the flow is alive; the answer is the run's current state
    (so the same request tells a running flow that it is being cancelled)."""
    async with transaction(request) as session:
        return await flow_run_heartbeats.heartbeat_flow_run(session, flow_run_id)


@router.post("/{flow_run_id}/infrastructure", response_model=FlowRun)
async def set_infrastructure(
    request: Request, flow_run_id: uuid.UUID, body: InfrastructureUpdate
) -> FlowRun:
    """A worker records where it launched the run (a pid, a Cloud Run execution)."""
    async with transaction(request) as session:
        run = await flow_runs.read_flow_run_row(session, flow_run_id, lock=True)
        run.infrastructure_id = body.infrastructure_id
        await session.flush()
        return await flow_runs.read_flow_run(session, flow_run_id)


@router.get("/{flow_run_id}/states", response_model=list[State])
async def read_flow_run_states(request: Request, flow_run_id: uuid.UUID) -> list[State]:
    async with transaction(request) as session:
        return await flow_runs.read_flow_run_states(session, flow_run_id)


@router.delete("/{flow_run_id}", status_code=204)
async def delete_flow_run(request: Request, flow_run_id: uuid.UUID) -> Response:
    async with transaction(request) as session:
        await flow_runs.delete_flow_run(session, flow_run_id)
    return Response(status_code=204)
