"""What the UI's deployment and work-pool pages read: pages of rows in few queries.

Each function answers one page in a fixed number of statements (joins and
IN-queries, never one per row), so a list costs the same with 10 rows or 10,000
in the table; the live probes are one small aggregate query each.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowRun as FlowRunSchema
from skyrun.schemas.core import FlowRunFilter
from skyrun.schemas.states import StateType
from skyrun.schemas.work_pools import WorkerStatus, WorkPoolStatus
from skyrun.server.db import flow_runs
from skyrun.server.db.models import (
    BlockRecord,
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    Worker,
    WorkPool,
    WorkQueue,
)

DEPLOYMENTS_PAGE = 50
RUNS_SHOWN = 10
BLOCKS_LISTED = 200
# A pool's page lists this many workers, the most recently heard from: workers are never
# deleted, and ephemeral ones (a container each) pile up in the thousands.
WORKERS_SHOWN = 200


@dataclass
class DeploymentRow:
    id: uuid.UUID
    name: str
    flow_name: str
    work_pool_name: str | None
    work_queue_name: str | None
    paused: bool
    tags: list[str]
    created: datetime
    schedules: list[dict[str, Any]] = field(default_factory=list)  # {schedule, active}


async def deployments_page(
    session: AsyncSession,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int = DEPLOYMENTS_PAGE,
) -> tuple[list[DeploymentRow], tuple[datetime, uuid.UUID] | None]:
    """Deployments newest first, from `before` (created, id); and the next page's cursor.

    Two statements whatever the page holds: the rows with their flow and pool
    names, and the schedules of those rows.
    """
    query = (
        sa.select(
            Deployment.id,
            Deployment.name,
            Flow.name.label("flow_name"),
            WorkPool.name.label("work_pool_name"),
            WorkQueue.name.label("work_queue_name"),
            Deployment.paused,
            Deployment.tags,
            Deployment.created,
        )
        .join(Flow, Flow.id == Deployment.flow_id)
        .outerjoin(WorkQueue, WorkQueue.id == Deployment.work_queue_id)
        .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
    )
    if before is not None:
        created, last_id = before
        query = query.where(
            sa.or_(
                Deployment.created < created,
                sa.and_(Deployment.created == created, Deployment.id < last_id),
            )
        )
    rows = (
        await session.execute(
            query.order_by(Deployment.created.desc(), Deployment.id.desc()).limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    items = [
        DeploymentRow(
            id=r.id,
            name=r.name,
            flow_name=r.flow_name,
            work_pool_name=r.work_pool_name,
            work_queue_name=r.work_queue_name,
            paused=r.paused,
            tags=list(r.tags or []),
            created=r.created,
        )
        for r in rows[:limit]
    ]
    if items:
        by_id = {item.id: item for item in items}
        schedules = await session.execute(
            sa.select(
                DeploymentSchedule.deployment_id,
                DeploymentSchedule.schedule,
                DeploymentSchedule.active,
            )
            .where(DeploymentSchedule.deployment_id.in_(list(by_id)))
            .order_by(DeploymentSchedule.created)
        )
        for deployment_id, schedule, active in schedules:
            by_id[deployment_id].schedules.append({"schedule": schedule, "active": active})
    cursor = (items[-1].created, items[-1].id) if more and items else None
    return items, cursor


async def deployment_runs(
    session: AsyncSession, deployment_id: uuid.UUID
) -> tuple[list[FlowRunSchema], list[FlowRunSchema]]:
    """The deployment's upcoming runs (SCHEDULED, soonest first) and its latest runs."""
    upcoming, _ = await flow_runs.filter_flow_runs(
        session,
        FlowRunFilter(
            deployment_id=deployment_id,
            state_type=[StateType.SCHEDULED],
            sort="expected_start_time_asc",
            limit=RUNS_SHOWN,
        ),
    )
    recent, _ = await flow_runs.filter_flow_runs(
        session,
        FlowRunFilter(deployment_id=deployment_id, sort="created_desc", limit=RUNS_SHOWN),
    )
    return upcoming, recent


async def deployment_fingerprint(session: AsyncSession, deployment_id: uuid.UUID) -> Any:
    """Changes when the deployment or any of its runs does (the detail page's live probe)."""
    row = (
        await session.execute(
            sa.select(
                sa.select(Deployment.updated)
                .where(Deployment.id == deployment_id)
                .scalar_subquery(),
                sa.func.count(FlowRun.id),
                sa.func.max(FlowRun.updated),
            ).where(FlowRun.deployment_id == deployment_id)
        )
    ).one()
    return [str(value) for value in row]


async def deployments_fingerprint(session: AsyncSession) -> Any:
    row = (
        await session.execute(
            sa.select(sa.func.count(Deployment.id), sa.func.max(Deployment.updated))
        )
    ).one()
    return [str(value) for value in row]


@dataclass
class PoolRow:
    name: str
    type: str
    description: str | None
    is_paused: bool
    concurrency_limit: int | None
    workers: int
    online_workers: int
    queues: int

    @property
    def status(self) -> WorkPoolStatus:
        if self.is_paused:
            return WorkPoolStatus.PAUSED
        return WorkPoolStatus.READY if self.online_workers else WorkPoolStatus.NOT_READY


async def pools_overview(session: AsyncSession) -> list[PoolRow]:
    """Every work pool with its worker counts and queue count, by name (one statement)."""
    workers = (
        sa.select(
            Worker.work_pool_id.label("pool_id"),
            sa.func.count().label("workers"),
            sa.func.sum(sa.case((Worker.status == WorkerStatus.ONLINE.value, 1), else_=0)).label(
                "online"
            ),
        )
        .group_by(Worker.work_pool_id)
        .subquery()
    )
    queues = (
        sa.select(WorkQueue.work_pool_id.label("pool_id"), sa.func.count().label("queues"))
        .group_by(WorkQueue.work_pool_id)
        .subquery()
    )
    rows = await session.execute(
        sa.select(
            WorkPool.name,
            WorkPool.type,
            WorkPool.description,
            WorkPool.is_paused,
            WorkPool.concurrency_limit,
            sa.func.coalesce(workers.c.workers, 0),
            sa.func.coalesce(workers.c.online, 0),
            sa.func.coalesce(queues.c.queues, 0),
        )
        .outerjoin(workers, workers.c.pool_id == WorkPool.id)
        .outerjoin(queues, queues.c.pool_id == WorkPool.id)
        .order_by(WorkPool.name)
    )
    return [
        PoolRow(
            name=r[0],
            type=r[1],
            description=r[2],
            is_paused=bool(r[3]),
            concurrency_limit=r[4],
            workers=int(r[5]),
            online_workers=int(r[6]),
            queues=int(r[7]),
        )
        for r in rows
    ]


async def pools_fingerprint(session: AsyncSession) -> Any:
    """Changes when a pool, or one of its workers, does (the list page's live probe)."""
    row = (
        await session.execute(
            sa.select(
                sa.select(sa.func.max(WorkPool.updated)).scalar_subquery(),
                sa.select(sa.func.count(WorkPool.id)).scalar_subquery(),
                *_worker_aggregates(None),
            )
        )
    ).one()
    return [str(value) for value in row]


def _worker_aggregates(pool_id: Any) -> list[Any]:
    where = [] if pool_id is None else [Worker.work_pool_id == pool_id]
    online = sa.case((Worker.status == WorkerStatus.ONLINE.value, 1), else_=0)
    return [
        sa.select(
            sa.func.count(Worker.id),
        )
        .where(*where)
        .scalar_subquery(),
        sa.select(sa.func.max(Worker.last_heartbeat)).where(*where).scalar_subquery(),
        sa.select(sa.func.sum(online)).where(*where).scalar_subquery(),
    ]


async def pool_fingerprint(session: AsyncSession, pool_name: str) -> Any:
    """Changes when the pool, its queues or its workers do (the detail page's live probe)."""
    pool_id = sa.select(WorkPool.id).where(WorkPool.name == pool_name).scalar_subquery()
    queue = WorkQueue.work_pool_id == pool_id
    paused = sa.case((WorkQueue.is_paused, 1), else_=0)
    row = (
        await session.execute(
            sa.select(
                sa.select(WorkPool.updated).where(WorkPool.name == pool_name).scalar_subquery(),
                *_worker_aggregates(pool_id),
                sa.select(
                    sa.func.count(WorkQueue.id)
                    + sa.func.coalesce(sa.func.sum(WorkQueue.priority), 0) * 1000
                )
                .where(queue)
                .scalar_subquery(),
                sa.select(sa.func.sum(paused)).where(queue).scalar_subquery(),
                sa.select(sa.func.sum(sa.func.coalesce(WorkQueue.concurrency_limit, -1)))
                .where(queue)
                .scalar_subquery(),
                sa.select(sa.func.max(WorkQueue.last_polled)).where(queue).scalar_subquery(),
            )
        )
    ).one()
    return [str(value) for value in row]


async def block_names(session: AsyncSession, block_types: Sequence[str]) -> dict[str, list[str]]:
    """Names of the blocks of these types, by type (for block pickers); one statement."""
    found: dict[str, list[str]] = defaultdict(list)
    if not block_types:
        return found
    rows = await session.execute(
        sa.select(BlockRecord.block_type, BlockRecord.name)
        .where(BlockRecord.block_type.in_(list(block_types)))
        .order_by(BlockRecord.block_type, BlockRecord.name)
        .limit(BLOCKS_LISTED)
    )
    for block_type, name in rows:
        found[block_type].append(name)
    return found


@dataclass(frozen=True)
class PoolWorkers:
    """A pool's most recently heard-from workers (at most WORKERS_SHOWN) and its counts."""

    shown: list[Worker]
    total: int
    online: int


async def pool_workers(session: AsyncSession, pool_id: uuid.UUID) -> PoolWorkers:
    """The pool's workers by latest heartbeat, bounded, with how many there are (2 queries)."""
    online = sa.case((Worker.status == WorkerStatus.ONLINE.value, 1), else_=0)
    total, online_count = (
        await session.execute(
            sa.select(sa.func.count(Worker.id), sa.func.coalesce(sa.func.sum(online), 0)).where(
                Worker.work_pool_id == pool_id
            )
        )
    ).one()
    rows = await session.scalars(
        sa.select(Worker)
        .where(Worker.work_pool_id == pool_id)
        .order_by(Worker.last_heartbeat.desc(), Worker.name)
        .limit(WORKERS_SHOWN)
    )
    return PoolWorkers(shown=list(rows), total=int(total), online=int(online_count))
