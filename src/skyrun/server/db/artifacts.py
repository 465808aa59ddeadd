"""Artifacts, versioned by key: every version kept, the newest marked latest."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.artifacts import Artifact as ArtifactSchema
from skyrun.schemas.artifacts import ArtifactCreate
from skyrun.server.db.models import Artifact
from skyrun.server.errors import Conflict, NotFound


async def create_artifact(session: AsyncSession, data: ArtifactCreate) -> ArtifactSchema:
    """Store an artifact. The client chooses its id, so a request repeated after a lost
    reply returns the artifact the first one stored; the same id with other content
    is a Conflict."""
    fields = data.model_dump(exclude={"id"})
    if data.id is not None:
        existing = await session.get(Artifact, data.id)
        if existing is not None:
            return _repeated(existing, fields)
    artifact = Artifact(id=data.id or uuid.uuid4(), **fields)
    try:
        # A savepoint: the same request sent twice at once loses the race on the id.
        async with session.begin_nested():
            session.add(artifact)
    except IntegrityError:
        winner = await session.get(Artifact, artifact.id)
        if winner is None:
            raise
        return _repeated(winner, fields)
    return ArtifactSchema.model_validate(artifact)


def _repeated(existing: Artifact, fields: dict[str, Any]) -> ArtifactSchema:
    if any(getattr(existing, name) != value for name, value in fields.items()):
        raise Conflict(
            f"artifact {existing.id} already exists with other content; "
            "create the new artifact with another id (or none)"
        )
    return ArtifactSchema.model_validate(existing)


async def read_artifact(session: AsyncSession, artifact_id: uuid.UUID) -> ArtifactSchema:
    artifact = await session.get(Artifact, artifact_id)
    if artifact is None:
        raise NotFound.of("artifact", artifact_id)
    return await _with_latest_flag(session, artifact)


async def read_latest_artifact(session: AsyncSession, key: str) -> ArtifactSchema:
    artifact = await session.scalar(
        sa.select(Artifact).where(Artifact.key == key).order_by(Artifact.created.desc()).limit(1)
    )
    if artifact is None:
        raise NotFound.of("artifact with key", repr(key))
    result = ArtifactSchema.model_validate(artifact)
    result.is_latest = True
    return result


async def _with_latest_flag(session: AsyncSession, artifact: Artifact) -> ArtifactSchema:
    result = ArtifactSchema.model_validate(artifact)
    if artifact.key is not None:
        latest_id = await session.scalar(
            sa.select(Artifact.id)
            .where(Artifact.key == artifact.key)
            .order_by(Artifact.created.desc())
            .limit(1)
        )
        result.is_latest = latest_id == artifact.id
    return result


async def list_artifacts(
    session: AsyncSession,
    *,
    key: str | None,
    flow_run_id: uuid.UUID | None,
    task_run_id: uuid.UUID | None,
    latest_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[ArtifactSchema], int]:
    """Artifacts, newest first. `latest_only` keeps one per key (unkeyed ones all show)."""
    clauses = []
    if key is not None:
        clauses.append(Artifact.key == key)
    if flow_run_id is not None:
        clauses.append(Artifact.flow_run_id == flow_run_id)
    if task_run_id is not None:
        clauses.append(Artifact.task_run_id == task_run_id)
    if latest_only:
        newest = (
            sa.select(Artifact.key, sa.func.max(Artifact.created).label("created"))
            .where(Artifact.key.is_not(None))
            .group_by(Artifact.key)
            .subquery()
        )
        keyed_latest = sa.exists().where(
            newest.c.key == Artifact.key, newest.c.created == Artifact.created
        )
        clauses.append(sa.or_(Artifact.key.is_(None), keyed_latest))
    query = sa.select(Artifact).where(*clauses)
    rows = await session.scalars(
        query.order_by(Artifact.created.desc(), Artifact.id).limit(limit).offset(offset)
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(Artifact).where(*clauses))
    items = []
    for row in rows:
        items.append(await _with_latest_flag(session, row))
    return items, int(count or 0)
