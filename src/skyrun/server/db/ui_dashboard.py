"""What the UI's dashboard reads: runs by state per hour, failures, late runs, pools, workers.

Each part is one query with a LIMIT; the fingerprint is one query of aggregates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import LATE, StateType
from skyrun.schemas.work_pools import WorkerStatus
from skyrun.server.db import dialect
from skyrun.server.db.models import Flow, FlowRun, Worker, WorkPool

LIST_LIMIT = 10
MAX_WORKERS = 25


def _hour_key(session: AsyncSession, column: Any) -> Any:
    """The UTC hour of a timestamp as text 'YYYY-MM-DDTHH', the same on both databases."""
    if dialect.name(session) == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24')
    return sa.func.strftime("%Y-%m-%dT%H", column)


def hour_key(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H")


async def runs_by_hour(
    session: AsyncSession, since: datetime, until: datetime
) -> dict[str, dict[str, int]]:
    """{hour: {state type: runs}} of runs expected to start in [since, until) (one GROUP BY)."""
    bucket = _hour_key(session, FlowRun.expected_start_time).label("hour")
    rows = await session.execute(
        sa.select(bucket, FlowRun.state_type, sa.func.count())
        .where(FlowRun.expected_start_time >= since, FlowRun.expected_start_time < until)
        .group_by(bucket, FlowRun.state_type)
    )
    result: dict[str, dict[str, int]] = {}
    for hour, state_type, count in rows.all():
        result.setdefault(str(hour), {})[state_type or "NONE"] = int(count)
    return result


@dataclass
class RunLine:
    id: uuid.UUID
    name: str
    flow_name: str
    state_type: str | None
    state_name: str | None
    state_message: str | None
    state_timestamp: datetime | None
    expected_start_time: datetime | None


_LINE_COLUMNS = (
    FlowRun.id,
    FlowRun.name,
    Flow.name.label("flow_name"),
    FlowRun.state_type,
    FlowRun.state_name,
    FlowRun.state_message,
    FlowRun.state_timestamp,
    FlowRun.expected_start_time,
)


async def _lines(session: AsyncSession, query: Any) -> list[RunLine]:
    rows = await session.execute(query.join(Flow, Flow.id == FlowRun.flow_id).limit(LIST_LIMIT))
    return [RunLine(*row) for row in rows.all()]


async def recent_failures(session: AsyncSession) -> list[RunLine]:
    """The latest FAILED or CRASHED runs, newest first."""
    failed = [StateType.FAILED.value, StateType.CRASHED.value]
    query = (
        sa.select(*_LINE_COLUMNS)
        .where(FlowRun.state_type.in_(failed))
        .order_by(FlowRun.state_timestamp.desc(), FlowRun.id)
    )
    return await _lines(session, query)


async def late_runs(session: AsyncSession) -> list[RunLine]:
    """Scheduled runs named Late, the most overdue first."""
    query = (
        sa.select(*_LINE_COLUMNS)
        .where(FlowRun.state_type == StateType.SCHEDULED.value, FlowRun.state_name == LATE)
        .order_by(FlowRun.expected_start_time, FlowRun.id)
    )
    return await _lines(session, query)


@dataclass
class PoolLine:
    name: str
    type: str
    is_paused: bool
    online_workers: int
    workers: int

    @property
    def status(self) -> str:
        if self.is_paused:
            return "paused"
        return "ready" if self.online_workers else "not_ready"


async def pools_with_workers(session: AsyncSession) -> list[PoolLine]:
    """Every work pool with its worker counts (one grouped outer join)."""
    online = sa.func.coalesce(
        sa.func.sum(sa.case((Worker.status == WorkerStatus.ONLINE.value, 1), else_=0)), 0
    )
    rows = await session.execute(
        sa.select(
            WorkPool.name,
            WorkPool.type,
            WorkPool.is_paused,
            online,
            sa.func.count(Worker.id),
        )
        .outerjoin(Worker, Worker.work_pool_id == WorkPool.id)
        .group_by(WorkPool.id, WorkPool.name, WorkPool.type, WorkPool.is_paused)
        .order_by(WorkPool.name)
        .limit(100)
    )
    return [PoolLine(name, kind, paused, int(on), int(n)) for name, kind, paused, on, n in rows]


@dataclass
class WorkerLine:
    name: str
    pool_name: str
    last_heartbeat: datetime


async def online_workers(session: AsyncSession) -> list[WorkerLine]:
    rows = await session.execute(
        sa.select(Worker.name, WorkPool.name, Worker.last_heartbeat)
        .join(WorkPool, WorkPool.id == Worker.work_pool_id)
        .where(Worker.status == WorkerStatus.ONLINE.value)
        .order_by(Worker.last_heartbeat.desc(), Worker.id)
        .limit(MAX_WORKERS)
    )
    return [WorkerLine(*row) for row in rows.all()]


async def dashboard_fingerprint(session: AsyncSession) -> tuple[Any, ...]:
    """Changes when a run, a pool or a worker's status changes (not on each heartbeat)."""
    query = sa.select(
        sa.select(sa.func.max(FlowRun.updated)).scalar_subquery(),
        sa.select(sa.func.count(FlowRun.id)).scalar_subquery(),
        sa.select(sa.func.max(WorkPool.updated)).scalar_subquery(),
        sa.select(sa.func.count(Worker.id))
        .where(Worker.status == WorkerStatus.ONLINE.value)
        .scalar_subquery(),
        sa.select(sa.func.count(Worker.id)).scalar_subquery(),
    )
    return tuple((await session.execute(query)).one())


def hours(until: datetime, count: int = 24) -> list[datetime]:
    """The `count` whole UTC hours ending with the one holding `until`, oldest first."""
    top = until.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=n) for n in range(count - 1, -1, -1)]
