"""Task runs: batched upserts from the SDK, reads."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import TaskRun as TaskRunSchema
from skyrun.schemas.core import TaskRunRecord
from skyrun.server.db import states as state_cols
from skyrun.server.db.models import TaskRun, TaskRunState
from skyrun.server.errors import NotFound

_CHUNK = 500


async def upsert_task_runs(session: AsyncSession, records: list[TaskRunRecord]) -> int:
    """Record a batch of task runs: insert new ones, update known ones, append states."""
    if not records:
        return 0
    ids = [r.id for r in records]
    existing: set[uuid.UUID] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        existing.update(await session.scalars(sa.select(TaskRun.id).where(TaskRun.id.in_(chunk))))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    for record in records:
        latest = record.states[-1]
        row = {
            "id": record.id,
            "run_count": record.run_count,
            "start_time": record.start_time,
            "end_time": record.end_time,
            "total_run_time": record.total_run_time,
            **state_cols.state_columns(latest),
        }
        if record.id in existing:
            updates.append(row)
        else:
            row.update(
                flow_run_id=record.flow_run_id,
                name=record.name,
                task_key=record.task_key,
                tags=record.tags,
                created=record.states[0].timestamp,
            )
            inserts.append(row)
            existing.add(record.id)
        states.extend(
            {
                "id": s.id,
                "task_run_id": record.id,
                "type": s.type.value,
                "name": s.name,
                "timestamp": s.timestamp,
                "message": s.message,
            }
            for s in record.states
        )
    if inserts:
        await session.execute(sa.insert(TaskRun), inserts)
    if updates:
        await session.execute(sa.update(TaskRun), updates)
    if states:
        await session.execute(sa.insert(TaskRunState), states)
    return len(records)


def to_schema(run: TaskRun) -> TaskRunSchema:
    return TaskRunSchema.model_validate(
        {
            **{c.key: getattr(run, c.key) for c in TaskRun.__table__.columns},
            "state": state_cols.current_state(run),
        }
    )


async def read_task_run(session: AsyncSession, task_run_id: uuid.UUID) -> TaskRunSchema:
    run = await session.get(TaskRun, task_run_id)
    if run is None:
        raise NotFound.of("task run", task_run_id)
    return to_schema(run)


async def list_task_runs(
    session: AsyncSession, flow_run_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[TaskRunSchema], int]:
    clauses = [TaskRun.flow_run_id == flow_run_id] if flow_run_id else []
    rows = await session.scalars(
        sa.select(TaskRun)
        .where(*clauses)
        .order_by(TaskRun.created, TaskRun.id)
        .limit(limit)
        .offset(offset)
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(TaskRun).where(*clauses))
    return [to_schema(r) for r in rows], int(count or 0)
