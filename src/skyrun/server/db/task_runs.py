"""Task runs: batched upserts from the SDK, reads."""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import TaskRun as TaskRunSchema
from skyrun.schemas.core import TaskRunRecord
from skyrun.schemas.states import State
from skyrun.server.db import states as state_cols
from skyrun.server.db.models import TaskRun
from skyrun.server.errors import NotFound

_CHUNK = 200
_TABLE = cast(sa.Table, TaskRun.__table__)


def _history_entry(state: State) -> dict[str, Any]:
    return {
        "id": str(state.id),
        "type": state.type.value,
        "name": state.name,
        "timestamp": state.timestamp.isoformat(),
        "message": state.message,
    }


def _state_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    # Not the id: the SDK leaves state ids to the server, so a re-sent state
    # arrives with a new one. The same type, name and moment is the same state.
    return entry["type"], entry["name"], entry["timestamp"]


def _append_new(history: list[dict[str, Any]], entries: list[dict[str, Any]]) -> bool:
    """Append the entries not in `history` yet; True if any was."""
    known = {_state_key(entry) for entry in history}
    new = [entry for entry in entries if _state_key(entry) not in known]
    history.extend(new)
    return bool(new)


async def upsert_task_runs(session: AsyncSession, records: list[TaskRunRecord]) -> int:
    """Record a batch of task runs: insert new ones, update known ones, append states.

    Written with Core statements (not the ORM unit of work): a batch holds
    thousands of rows and this is on the path of every task run. Taken
    `_CHUNK` records at a time, so that a large batch's rows and statement
    parameters never all exist at once: memory that the process, an embedded
    one above all, would otherwise keep after the batch. A task run seen again
    in a later chunk is found in the table, as it would be in a later batch.
    """
    for start in range(0, len(records), _CHUNK):
        await _upsert_chunk(session, records[start : start + _CHUNK])
    return len(records)


async def _upsert_chunk(session: AsyncSession, records: list[TaskRunRecord]) -> None:
    ids = list({r.id for r in records})
    rows = await session.execute(
        sa.select(TaskRun.id, TaskRun.state_history).where(TaskRun.id.in_(ids))
    )
    history = {row_id: list(h or []) for row_id, h in rows.all()}
    inserts: dict[uuid.UUID, dict[str, Any]] = {}
    updates: dict[uuid.UUID, dict[str, Any]] = {}
    for record in records:
        entries = [_history_entry(s) for s in record.states]
        row = {
            "run_count": record.run_count,
            "start_time": record.start_time,
            "end_time": record.end_time,
            "total_run_time": record.total_run_time,
            **state_cols.state_columns(record.states[-1]),
        }
        if record.id in inserts:
            inserts[record.id].update(row)
            _append_new(inserts[record.id]["state_history"], entries)
        elif record.id in history:
            # A batch the SDK re-sends (after a lost response) changes nothing.
            if _append_new(history[record.id], entries):
                updates[record.id] = {
                    **row,
                    "b_id": record.id,
                    "state_history": history[record.id],
                }
        else:
            inserts[record.id] = {
                **row,
                "id": record.id,
                "flow_run_id": record.flow_run_id,
                "name": record.name,
                "task_key": record.task_key,
                "tags": record.tags,
                "state_history": entries,
                "created": record.states[0].timestamp,
            }
    if inserts:
        await session.execute(_TABLE.insert(), list(inserts.values()))
    if updates:
        columns: dict[str, Any] = {
            key: sa.bindparam(key) for key in next(iter(updates.values())) if key != "b_id"
        }
        statement = _TABLE.update().where(_TABLE.c.id == sa.bindparam("b_id")).values(columns)
        await session.execute(statement, list(updates.values()))


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


async def count_task_runs_by_state(session: AsyncSession, flow_run_id: uuid.UUID) -> dict[str, int]:
    """How many of a flow run's task runs are in each state type (one GROUP BY)."""
    rows = await session.execute(
        sa.select(TaskRun.state_type, sa.func.count())
        .where(TaskRun.flow_run_id == flow_run_id)
        .group_by(TaskRun.state_type)
    )
    return {state_type or "UNKNOWN": int(count) for state_type, count in rows.all()}
