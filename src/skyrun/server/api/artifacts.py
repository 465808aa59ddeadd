"""Artifacts: /api/artifacts."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request

from skyrun.schemas.artifacts import Artifact, ArtifactCreate
from skyrun.schemas.core import Page
from skyrun.server.api.deps import ApiRoute, Offset, transaction
from skyrun.server.db import artifacts, flow_runs

router = APIRouter(prefix="/artifacts", tags=["artifacts"], route_class=ApiRoute)


@router.post("", response_model=Artifact, status_code=201)
async def create_artifact(request: Request, body: ArtifactCreate) -> Artifact:
    async with transaction(request) as session:
        if body.flow_run_id is not None:
            await flow_runs.ensure_flow_runs_exist(session, {body.flow_run_id})
        return await artifacts.create_artifact(session, body)


@router.get("", response_model=Page[Artifact])
async def list_artifacts(
    request: Request,
    key: str | None = None,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    latest_only: bool = False,
    limit: int = Query(50, ge=1, le=1000),
    offset: Offset = 0,
) -> Page[Artifact]:
    async with transaction(request) as session:
        items, count = await artifacts.list_artifacts(
            session,
            key=key,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            latest_only=latest_only,
            limit=limit,
            offset=offset,
        )
    return Page[Artifact](items=items, count=count, limit=limit, offset=offset)


@router.get("/latest/{key}", response_model=Artifact)
async def read_latest_artifact(request: Request, key: str) -> Artifact:
    async with transaction(request) as session:
        return await artifacts.read_latest_artifact(session, key)


@router.get("/{artifact_id}", response_model=Artifact)
async def read_artifact(request: Request, artifact_id: uuid.UUID) -> Artifact:
    async with transaction(request) as session:
        return await artifacts.read_artifact(session, artifact_id)
