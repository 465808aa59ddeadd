"""Deployments and runs created from them: /api/deployments."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request, Response

from skyrun.schemas.core import FlowRun, Page
from skyrun.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentRunCreate,
    DeploymentUpdate,
)
from skyrun.server.api.deps import ApiRoute, Offset, transaction
from skyrun.server.db import deployments, flow_runs

router = APIRouter(prefix="/deployments", tags=["deployments"], route_class=ApiRoute)


@router.post("", response_model=Deployment)
async def upsert_deployment(request: Request, body: DeploymentCreate) -> Deployment:
    async with transaction(request) as session:
        deployment = await deployments.upsert_deployment(session, body)
        return await deployments.to_schema(session, deployment)


@router.get("", response_model=Page[Deployment])
async def list_deployments(
    request: Request,
    flow_name: str | None = None,
    work_pool_name: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
) -> Page[Deployment]:
    async with transaction(request) as session:
        items, count = await deployments.list_deployments(
            session, flow_name=flow_name, work_pool_name=work_pool_name, limit=limit, offset=offset
        )
    return Page[Deployment](items=items, count=count, limit=limit, offset=offset)


@router.get("/name/{flow_name}/{name}", response_model=Deployment)
async def read_deployment_by_name(request: Request, flow_name: str, name: str) -> Deployment:
    async with transaction(request) as session:
        row = await deployments.read_deployment_by_name(session, flow_name, name)
        return await deployments.to_schema(session, row)


@router.get("/{deployment_id}", response_model=Deployment)
async def read_deployment(request: Request, deployment_id: uuid.UUID) -> Deployment:
    async with transaction(request) as session:
        row = await deployments.read_deployment_row(session, deployment_id)
        return await deployments.to_schema(session, row)


@router.patch("/{deployment_id}", response_model=Deployment)
async def update_deployment(
    request: Request, deployment_id: uuid.UUID, body: DeploymentUpdate
) -> Deployment:
    async with transaction(request) as session:
        row = await deployments.update_deployment(session, deployment_id, body)
        return await deployments.to_schema(session, row)


@router.delete("/{deployment_id}", status_code=204)
async def delete_deployment(request: Request, deployment_id: uuid.UUID) -> Response:
    async with transaction(request) as session:
        await deployments.delete_deployment(session, deployment_id)
    return Response(status_code=204)


@router.post("/{deployment_id}/runs", response_model=FlowRun, status_code=201)
async def create_deployment_run(
    request: Request, deployment_id: uuid.UUID, body: DeploymentRunCreate
) -> FlowRun:
    async with transaction(request) as session:
        deployment = await deployments.read_deployment_row(session, deployment_id)
        run = await deployments.create_deployment_run(session, deployment, body)
        # Waiting claims are woken by the commit itself (server/db/work_events.py).
        return await flow_runs.read_flow_run(session, run.id)
