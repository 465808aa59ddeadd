"""What the UI's artifacts pages read: the latest version per key, unkeyed ones, a key's history.

Each page is one query: the latest per key by a window over the key (with how many
versions it has), the flow run's name joined in, keyset-paged newest first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.server.db.models import Artifact, FlowRun
from skyrun.server.db.ui_keyset import Cursor, before, page_of


@dataclass(frozen=True)
class ArtifactRow:
    """An artifact as the UI lists it."""

    id: uuid.UUID
    key: str | None
    type: str
    description: str | None
    data: Any
    flow_run_id: uuid.UUID | None
    flow_run_name: str | None
    task_run_id: uuid.UUID | None
    created: datetime
    versions: int = 1


_COLUMNS = (
    Artifact.id,
    Artifact.key,
    Artifact.type,
    Artifact.description,
    Artifact.data,
    Artifact.flow_run_id,
    FlowRun.name.label("flow_run_name"),
    Artifact.task_run_id,
    Artifact.created,
)


def _row(row: Any) -> ArtifactRow:
    return ArtifactRow(**row._mapping)


async def latest_per_key(
    session: AsyncSession, cursor: Cursor | None, limit: int
) -> tuple[list[ArtifactRow], Cursor | None]:
    """The newest version of each key, newest first, with its number of versions."""
    ranked = (
        sa.select(
            Artifact.id,
            sa.func.row_number()
            .over(partition_by=Artifact.key, order_by=(Artifact.created.desc(), Artifact.id.desc()))
            .label("rank"),
            sa.func.count().over(partition_by=Artifact.key).label("versions"),
        )
        .where(Artifact.key.is_not(None))
        .subquery()
    )
    query = (
        sa.select(*_COLUMNS, ranked.c.versions)
        .join(ranked, ranked.c.id == Artifact.id)
        .outerjoin(FlowRun, FlowRun.id == Artifact.flow_run_id)
        .where(ranked.c.rank == 1, *before(Artifact.created, Artifact.id, cursor))
        .order_by(Artifact.created.desc(), Artifact.id.desc())
        .limit(limit + 1)
    )
    rows, next_cursor = page_of(list(await session.execute(query)), limit)
    return [_row(row) for row in rows], next_cursor


async def unkeyed(
    session: AsyncSession, cursor: Cursor | None, limit: int
) -> tuple[list[ArtifactRow], Cursor | None]:
    """Artifacts without a key, newest first."""
    query = (
        sa.select(*_COLUMNS)
        .outerjoin(FlowRun, FlowRun.id == Artifact.flow_run_id)
        .where(Artifact.key.is_(None), *before(Artifact.created, Artifact.id, cursor))
        .order_by(Artifact.created.desc(), Artifact.id.desc())
        .limit(limit + 1)
    )
    rows, next_cursor = page_of(list(await session.execute(query)), limit)
    return [_row(row) for row in rows], next_cursor


async def history(
    session: AsyncSession, key: str, cursor: Cursor | None, limit: int
) -> tuple[list[ArtifactRow], Cursor | None]:
    """Every version of `key`, newest first."""
    query = (
        sa.select(*_COLUMNS)
        .outerjoin(FlowRun, FlowRun.id == Artifact.flow_run_id)
        .where(Artifact.key == key, *before(Artifact.created, Artifact.id, cursor))
        .order_by(Artifact.created.desc(), Artifact.id.desc())
        .limit(limit + 1)
    )
    rows, next_cursor = page_of(list(await session.execute(query)), limit)
    return [_row(row) for row in rows], next_cursor


async def one(session: AsyncSession, artifact_id: uuid.UUID) -> ArtifactRow | None:
    """One artifact with its flow run's name, or None."""
    query = (
        sa.select(*_COLUMNS)
        .outerjoin(FlowRun, FlowRun.id == Artifact.flow_run_id)
        .where(Artifact.id == artifact_id)
    )
    row = (await session.execute(query)).first()
    return _row(row) if row is not None else None


async def artifacts_fingerprint(session: AsyncSession) -> Any:
    """What changes when an artifact is stored (a live page's probe)."""
    row = (await session.execute(sa.select(sa.func.count(), sa.func.max(Artifact.created)))).one()
    return [row[0], str(row[1])]
