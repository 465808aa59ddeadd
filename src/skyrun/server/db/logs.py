"""Log lines of flow runs and task runs."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import Log as LogSchema
from skyrun.schemas.core import LogCreate
from skyrun.server.db.models import Log


async def create_logs(session: AsyncSession, logs: list[LogCreate]) -> int:
    if logs:
        await session.execute(sa.insert(Log), [log.model_dump() for log in logs])
    return len(logs)


async def read_logs(
    session: AsyncSession,
    *,
    flow_run_id: uuid.UUID | None,
    task_run_id: uuid.UUID | None = None,
    after_id: int | None = None,
    min_level: int = 0,
    limit: int = 200,
) -> list[LogSchema]:
    """Log lines in the order they were written; `after_id` pages forward (for --follow)."""
    clauses = [Log.level >= min_level]
    if flow_run_id is not None:
        clauses.append(Log.flow_run_id == flow_run_id)
    if task_run_id is not None:
        clauses.append(Log.task_run_id == task_run_id)
    if after_id is not None:
        clauses.append(Log.id > after_id)
    rows = await session.scalars(sa.select(Log).where(*clauses).order_by(Log.id).limit(limit))
    return [LogSchema.model_validate(r) for r in rows]
