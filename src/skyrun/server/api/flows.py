"""Flows: /api/flows."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request

from skyrun.schemas.core import Flow, FlowCreate, Page
from skyrun.server.api.deps import ApiRoute, Offset, transaction
from skyrun.server.db import flows

router = APIRouter(prefix="/flows", tags=["flows"], route_class=ApiRoute)


@router.post("", response_model=Flow)
async def create_flow(request: Request, body: FlowCreate) -> Flow:
    async with transaction(request) as session:
        return Flow.model_validate(await flows.get_or_create_flow(session, body))


@router.get("", response_model=Page[Flow])
async def list_flows(
    request: Request, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0
) -> Page[Flow]:
    async with transaction(request) as session:
        rows, count = await flows.list_flows(session, limit, offset)
    return Page[Flow](
        items=[Flow.model_validate(r) for r in rows], count=count, limit=limit, offset=offset
    )


@router.get("/name/{name}", response_model=Flow)
async def read_flow_by_name(request: Request, name: str) -> Flow:
    async with transaction(request) as session:
        return Flow.model_validate(await flows.read_flow_by_name(session, name))


@router.get("/{flow_id}", response_model=Flow)
async def read_flow(request: Request, flow_id: uuid.UUID) -> Flow:
    async with transaction(request) as session:
        return Flow.model_validate(await flows.read_flow(session, flow_id))
