"""Work pools, their queues and workers."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.states import utcnow
from skyrun.schemas.work_pools import (
    MAX_HEARTBEAT_INTERVAL,
    WorkerHeartbeat,
    WorkerStatus,
    WorkPoolCreate,
    WorkPoolStatus,
    WorkPoolUpdate,
    WorkQueueCreate,
    WorkQueueUpdate,
)
from skyrun.schemas.work_pools import WorkPool as WorkPoolSchema
from skyrun.schemas.work_pools import WorkQueue as WorkQueueSchema
from skyrun.server.db.models import Worker, WorkPool, WorkQueue
from skyrun.server.errors import Conflict, Invalid, NotFound

DEFAULT_QUEUE = "default"


def checked_template(template: dict[str, Any], pool_type: str) -> dict[str, Any]:
    """The template to store: the type's default when empty, validated either way.

    A pool of a type skyrun does not know (a worker type of one's own) needs its
    template given; one of a type whose module is not installed here either
    (the server need not have every worker's dependencies to store its template).
    """
    # Imported here, not at the top: they bring jsonschema (~3 MiB), which the
    # embedded mode, running flows with no work pool, should not carry.
    from skyrun.jobs.render import JobTemplateError
    from skyrun.jobs.templates import validate_base_job_template
    from skyrun.jobs.types import UnknownWorkerType, WorkerTypeNotInstalled, type_job_template

    if not template:
        try:
            template = type_job_template(pool_type)
        except (UnknownWorkerType, WorkerTypeNotInstalled) as exc:
            raise Invalid(
                f"{exc}; or give the pool a base_job_template (a worker type of your own needs one)"
            ) from exc
    try:
        validate_base_job_template(template)
    except JobTemplateError as exc:
        raise Invalid(f"invalid base job template: {exc}") from exc
    return template


async def create_work_pool(session: AsyncSession, data: WorkPoolCreate) -> WorkPool:
    if await _find_pool(session, data.name) is not None:
        raise Conflict(f"a work pool named {data.name!r} already exists")
    pool = WorkPool(
        id=uuid.uuid4(),
        name=data.name,
        type=data.type,
        description=data.description,
        base_job_template=checked_template(data.base_job_template, data.type),
        concurrency_limit=data.concurrency_limit,
        is_paused=data.is_paused,
    )
    session.add(pool)
    await session.flush()
    session.add(WorkQueue(id=uuid.uuid4(), work_pool_id=pool.id, name=DEFAULT_QUEUE, priority=1))
    await session.flush()
    return pool


async def _find_pool(session: AsyncSession, name: str) -> WorkPool | None:
    return await session.scalar(sa.select(WorkPool).where(WorkPool.name == name))


async def read_work_pool_row(session: AsyncSession, name: str) -> WorkPool:
    pool = await _find_pool(session, name)
    if pool is None:
        raise NotFound.of("work pool", repr(name))
    return pool


async def pool_schema(
    session: AsyncSession, pool: WorkPool, now: datetime | None = None
) -> WorkPoolSchema:
    """The pool with its computed status: PAUSED, READY (a worker is online) or NOT_READY."""
    now = now or utcnow()
    online = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Worker)
        .where(Worker.work_pool_id == pool.id, Worker.status == WorkerStatus.ONLINE.value)
    )
    default_queue = await session.scalar(
        sa.select(WorkQueue.id).where(
            WorkQueue.work_pool_id == pool.id, WorkQueue.name == DEFAULT_QUEUE
        )
    )
    if pool.is_paused:
        status = WorkPoolStatus.PAUSED
    else:
        status = WorkPoolStatus.READY if online else WorkPoolStatus.NOT_READY
    result = WorkPoolSchema.model_validate(pool)
    result.status = status
    result.default_queue_id = default_queue
    return result


async def list_work_pools(session: AsyncSession) -> list[WorkPoolSchema]:
    pools = await session.scalars(sa.select(WorkPool).order_by(WorkPool.name))
    return [await pool_schema(session, p) for p in pools]


async def update_work_pool(session: AsyncSession, name: str, data: WorkPoolUpdate) -> WorkPool:
    pool = await read_work_pool_row(session, name)
    changes = data.model_dump(exclude_unset=True)
    if "base_job_template" in changes and changes["base_job_template"] is not None:
        changes["base_job_template"] = checked_template(changes["base_job_template"], pool.type)
    for key, value in changes.items():
        if key == "is_paused" and value is None:
            continue
        setattr(pool, key, value)
    pool.updated = utcnow()
    await session.flush()
    return pool


async def delete_work_pool(session: AsyncSession, name: str) -> None:
    pool = await read_work_pool_row(session, name)
    await session.delete(pool)


# Queues


def queue_schema(queue: WorkQueue, pool_name: str) -> WorkQueueSchema:
    result = WorkQueueSchema.model_validate(queue)
    result.work_pool_name = pool_name
    return result


async def create_work_queue(
    session: AsyncSession, pool_name: str, data: WorkQueueCreate
) -> WorkQueueSchema:
    pool = await read_work_pool_row(session, pool_name)
    if await _find_queue(session, pool.id, data.name) is not None:
        raise Conflict(f"work pool {pool_name!r} already has a queue named {data.name!r}")
    queue = WorkQueue(id=uuid.uuid4(), work_pool_id=pool.id, **data.model_dump())
    session.add(queue)
    await session.flush()
    return queue_schema(queue, pool.name)


async def _find_queue(session: AsyncSession, pool_id: uuid.UUID, name: str) -> WorkQueue | None:
    return await session.scalar(
        sa.select(WorkQueue).where(WorkQueue.work_pool_id == pool_id, WorkQueue.name == name)
    )


async def read_work_queue(session: AsyncSession, pool_name: str, queue_name: str) -> WorkQueue:
    pool = await read_work_pool_row(session, pool_name)
    queue = await _find_queue(session, pool.id, queue_name)
    if queue is None:
        raise NotFound.of(f"work queue in pool {pool_name!r}:", repr(queue_name))
    return queue


async def list_work_queues(session: AsyncSession, pool_name: str) -> list[WorkQueueSchema]:
    pool = await read_work_pool_row(session, pool_name)
    rows = await session.scalars(
        sa.select(WorkQueue)
        .where(WorkQueue.work_pool_id == pool.id)
        .order_by(WorkQueue.priority, WorkQueue.name)
    )
    return [queue_schema(q, pool.name) for q in rows]


async def update_work_queue(
    session: AsyncSession, pool_name: str, queue_name: str, data: WorkQueueUpdate
) -> WorkQueueSchema:
    queue = await read_work_queue(session, pool_name, queue_name)
    for key, value in data.model_dump(exclude_unset=True).items():
        if key in ("is_paused", "priority") and value is None:
            continue
        setattr(queue, key, value)
    await session.flush()
    return queue_schema(queue, pool_name)


async def delete_work_queue(session: AsyncSession, pool_name: str, queue_name: str) -> None:
    if queue_name == DEFAULT_QUEUE:
        raise Invalid("the default queue cannot be deleted; delete the work pool instead")
    queue = await read_work_queue(session, pool_name, queue_name)
    await session.delete(queue)


# Workers


async def heartbeat(
    session: AsyncSession, pool: WorkPool, data: WorkerHeartbeat, now: datetime | None = None
) -> Worker:
    """Record that a worker is alive (creating it on its first heartbeat)."""
    now = now or utcnow()
    worker = await session.scalar(
        sa.select(Worker).where(Worker.work_pool_id == pool.id, Worker.name == data.name)
    )
    if worker is None:
        worker = Worker(id=uuid.uuid4(), work_pool_id=pool.id, name=data.name)
        session.add(worker)
    worker.last_heartbeat = now
    worker.heartbeat_interval = data.heartbeat_interval
    worker.status = WorkerStatus.ONLINE.value
    await session.flush()
    return worker


async def worker_is_online(session: AsyncSession, worker_id: uuid.UUID) -> bool:
    status = await session.scalar(sa.select(Worker.status).where(Worker.id == worker_id))
    return status == WorkerStatus.ONLINE.value


async def list_workers(session: AsyncSession, pool_name: str) -> list[Worker]:
    pool = await read_work_pool_row(session, pool_name)
    rows = await session.scalars(
        sa.select(Worker).where(Worker.work_pool_id == pool.id).order_by(Worker.name)
    )
    return list(rows)


async def delete_worker(session: AsyncSession, pool_name: str, worker_name: str) -> None:
    pool = await read_work_pool_row(session, pool_name)
    await session.execute(
        sa.delete(Worker).where(Worker.work_pool_id == pool.id, Worker.name == worker_name)
    )


async def mark_silent_workers_offline(session: AsyncSession, missed: int, now: datetime) -> int:
    """Workers that missed `missed` heartbeats in a row go OFFLINE; returns how many."""
    workers = await session.scalars(
        sa.select(Worker).where(Worker.status == WorkerStatus.ONLINE.value)
    )
    count = 0
    for worker in workers:
        if worker.last_heartbeat + silence_allowed(worker.heartbeat_interval, missed) < now:
            worker.status = WorkerStatus.OFFLINE.value
            count += 1
    await session.flush()
    return count


def silence_allowed(heartbeat_interval: float | None, missed: int) -> timedelta:
    """How long a worker may be silent before it is OFFLINE: `missed` heartbeats.

    An interval the schema now refuses (stored before it did: 1e300, NaN, none)
    counts as the longest one allowed, so one such worker cannot make every
    housekeeping pass fail with an OverflowError.
    """
    interval = heartbeat_interval
    if interval is None or not math.isfinite(interval) or interval <= 0:
        interval = MAX_HEARTBEAT_INTERVAL
    return timedelta(seconds=min(interval, MAX_HEARTBEAT_INTERVAL) * max(missed, 1))
