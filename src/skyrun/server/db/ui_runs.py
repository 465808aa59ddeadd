"""What the UI's flow-run pages read: a keyset page of runs, a run's parts, live fingerprints.

Each list is one query with LIMIT (joins for names, never a query per row); the
fingerprints are one small query each, polled by the live-event stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import Log as LogSchema
from skyrun.server.db import dialect
from skyrun.server.db.engine import Database
from skyrun.server.db.models import (
    Artifact,
    Deployment,
    Flow,
    FlowRun,
    Log,
    TaskRun,
    WorkPool,
    WorkQueue,
)

PAGE_SIZE = 50
# The timeline draws this many task runs a page (the counts and its scale cover them all).
TIMELINE_PAGE = 1000
MAX_TIMELINE_OFFSET = 10_000_000
MAX_SUBFLOWS = 200
MAX_ARTIFACTS = 100
# The logs tab opens on the newest lines; the download has every one.
LOG_TAIL = 500
FEED_BATCH = 500
# A log line may be a megabyte (limits.MAX_LOG_MESSAGE_LENGTH): the page shows the start
# of a longer one, so 500 such lines stay a page, not half a gigabyte; the download has all.
SHOWN_MESSAGE = 10_000


def _cut_note(length: int) -> str:
    return f" … [{length - SHOWN_MESSAGE} more characters: download the logs for the whole line]"


@dataclass(frozen=True)
class RunFilter:
    """The flow-run list's filters, as the page parsed them from its query."""

    state_types: Sequence[str] = ()
    flow_name: str | None = None
    deployment_name: str | None = None
    work_pool_name: str | None = None
    tag: str | None = None
    start_after: datetime | None = None
    start_before: datetime | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a keyset page starts: the runs created before (created, id)."""

    created: datetime
    id: uuid.UUID


@dataclass
class RunRow:
    """One line of the flow-run list."""

    id: uuid.UUID
    name: str
    flow_name: str
    deployment_id: uuid.UUID | None
    deployment_name: str | None
    work_pool_name: str | None
    state_type: str | None
    state_name: str | None
    state_timestamp: datetime | None
    tags: list[str]
    expected_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    total_run_time: float
    created: datetime

    def run_seconds(self, now: datetime) -> float | None:
        """Time spent running so far (the current stretch included), None if never started."""
        return run_seconds(self, now)


def run_seconds(run: Any, now: datetime) -> float | None:
    """A run's time in RUNNING: what it has recorded, plus the stretch it is in now.

    `total_run_time` only grows when a run leaves RUNNING, so a running run would
    show 0s; `run` is a list row or a FlowRun schema (with `state`).
    """
    if run.start_time is None:
        return None
    state = getattr(run, "state", None)
    state_type = state.type.value if state is not None else getattr(run, "state_type", None)
    since = state.timestamp if state is not None else getattr(run, "state_timestamp", None)
    total = float(run.total_run_time or 0.0)
    if state_type == "RUNNING" and since is not None:
        total += max((now - since).total_seconds(), 0.0)
    return total


@dataclass
class RunPage:
    rows: list[RunRow]
    next_cursor: Cursor | None


def _has_tag(session: AsyncSession, tag: str) -> sa.ColumnElement[bool]:
    """Runs whose JSON list of tags holds `tag`, on either database."""
    if dialect.name(session) == "postgresql":
        return FlowRun.tags.op("@>")(sa.func.jsonb_build_array(tag))
    values = sa.func.json_each(FlowRun.tags).table_valued("value")
    return sa.exists().select_from(values).where(values.c.value == tag)


def _clauses(session: AsyncSession, f: RunFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if f.state_types:
        clauses.append(FlowRun.state_type.in_(list(f.state_types)))
    if f.flow_name:
        clauses.append(Flow.name == f.flow_name)
    if f.deployment_name:
        clauses.append(Deployment.name == f.deployment_name)
    if f.work_pool_name:
        clauses.append(WorkPool.name == f.work_pool_name)
    if f.tag:
        clauses.append(_has_tag(session, f.tag))
    if f.start_after is not None:
        clauses.append(FlowRun.expected_start_time >= f.start_after)
    if f.start_before is not None:
        clauses.append(FlowRun.expected_start_time <= f.start_before)
    return clauses


_ROW_COLUMNS = (
    FlowRun.id,
    FlowRun.name,
    Flow.name.label("flow_name"),
    FlowRun.deployment_id,
    Deployment.name.label("deployment_name"),
    WorkPool.name.label("work_pool_name"),
    FlowRun.state_type,
    FlowRun.state_name,
    FlowRun.state_timestamp,
    FlowRun.tags,
    FlowRun.expected_start_time,
    FlowRun.start_time,
    FlowRun.end_time,
    FlowRun.total_run_time,
    FlowRun.created,
)


def _joined(query: Any) -> Any:
    return (
        query.join(Flow, Flow.id == FlowRun.flow_id)
        .outerjoin(Deployment, Deployment.id == FlowRun.deployment_id)
        .outerjoin(WorkQueue, WorkQueue.id == FlowRun.work_queue_id)
        .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
    )


def _row(values: Any) -> RunRow:
    return RunRow(**{name: getattr(values, name) for name in RunRow.__dataclass_fields__})


async def list_runs(
    session: AsyncSession,
    f: RunFilter,
    before: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> RunPage:
    """One page of runs, newest first, in one query; `next_cursor` when more follow."""
    query = _joined(sa.select(*_ROW_COLUMNS)).where(*_clauses(session, f))
    if before is not None:
        query = query.where(
            sa.or_(
                FlowRun.created < before.created,
                sa.and_(FlowRun.created == before.created, FlowRun.id < before.id),
            )
        )
    query = query.order_by(FlowRun.created.desc(), FlowRun.id.desc()).limit(limit + 1)
    rows = [_row(r) for r in (await session.execute(query)).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return RunPage(rows, Cursor(last.created, last.id) if last else None)


async def runs_fingerprint(session: AsyncSession) -> tuple[Any, ...]:
    """Changes whenever a run is created, changes state or is deleted."""
    row = (
        await session.execute(sa.select(sa.func.max(FlowRun.updated), sa.func.count(FlowRun.id)))
    ).one()
    return tuple(row)


# -- one run ------------------------------------------------------------------


async def run_fingerprint(session: AsyncSession, run_id: uuid.UUID) -> tuple[Any, ...]:
    """Changes when the run, one of its task runs, subflow runs or artifacts changes."""

    def scalar(query: sa.Select[Any]) -> sa.ScalarSelect[Any]:
        return query.scalar_subquery()

    query = sa.select(
        scalar(sa.select(FlowRun.updated).where(FlowRun.id == run_id)),
        scalar(sa.select(FlowRun.state_id).where(FlowRun.id == run_id)),
        scalar(sa.select(sa.func.count(TaskRun.id)).where(TaskRun.flow_run_id == run_id)),
        scalar(
            sa.select(sa.func.max(TaskRun.state_timestamp)).where(TaskRun.flow_run_id == run_id)
        ),
        scalar(sa.select(sa.func.max(FlowRun.updated)).where(FlowRun.parent_flow_run_id == run_id)),
        scalar(sa.select(sa.func.count(Artifact.id)).where(Artifact.flow_run_id == run_id)),
    )
    return tuple((await session.execute(query)).one())


# The timeline's and the Logs tab's rows are NamedTuples made while iterating the result:
# a page holds 1,000 of them, and tuples of plain values are objects the garbage
# collector stops tracking, where dataclasses (and each one's __dict__) kept it busy
# enough to add full collections (tens of ms) to every few pages.
class TaskBar(NamedTuple):
    """A task run on the timeline: what its line shows, no more (1,000 of them a page)."""

    name: str
    state_type: str | None
    state_name: str | None
    start_time: datetime | None
    end_time: datetime | None


@dataclass
class Timeline:
    """One page of a run's task runs, their counts by state, and the span of them all."""

    bars: list[TaskBar]
    offset: int
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    first_start: datetime | None = None
    last_end: datetime | None = None
    running_since: datetime | None = None


async def task_timeline(
    session: AsyncSession, run_id: uuid.UUID, offset: int = 0, limit: int = TIMELINE_PAGE
) -> Timeline:
    """The run's task runs in start order, `limit` from `offset`, and counts by state.

    Two queries whatever the number of task runs: the page, and per state its count
    and span (the first start, the last end, the first start of one with no end).
    """
    rows = await session.execute(
        sa.select(
            TaskRun.name,
            TaskRun.state_type,
            TaskRun.state_name,
            TaskRun.start_time,
            TaskRun.end_time,
        )
        .where(TaskRun.flow_run_id == run_id)
        .order_by(sa.func.coalesce(TaskRun.start_time, TaskRun.created), TaskRun.id)
        .offset(offset)
        .limit(limit)
    )
    bars = [TaskBar(*row) for row in rows]
    by_state = await session.execute(
        sa.select(
            TaskRun.state_type,
            sa.func.count(),
            sa.func.min(TaskRun.start_time),
            sa.func.max(TaskRun.end_time),
            sa.func.min(sa.case((TaskRun.end_time.is_(None), TaskRun.start_time))),
        )
        .where(TaskRun.flow_run_id == run_id)
        .group_by(TaskRun.state_type)
    )
    counts: dict[str, int] = {}
    starts, ends, running = [], [], []
    for state, n, first_start, last_end, running_since in by_state.all():
        counts[state or "UNKNOWN"] = int(n)
        starts += [first_start] if first_start is not None else []
        ends += [last_end] if last_end is not None else []
        running += [running_since] if running_since is not None else []
    # The scale of every page: the span of all the run's task runs, not this page's.
    return Timeline(
        bars,
        offset,
        sum(counts.values()),
        counts,
        min(starts, default=None),
        max(ends, default=None),
        min(running, default=None),
    )


async def subflow_runs(session: AsyncSession, run_id: uuid.UUID) -> list[RunRow]:
    """The runs whose parent is this run, oldest first."""
    query = (
        _joined(sa.select(*_ROW_COLUMNS))
        .where(FlowRun.parent_flow_run_id == run_id)
        .order_by(FlowRun.created, FlowRun.id)
        .limit(MAX_SUBFLOWS)
    )
    return [_row(r) for r in (await session.execute(query)).all()]


async def run_artifacts(session: AsyncSession, run_id: uuid.UUID) -> list[Artifact]:
    """The run's artifacts, oldest first (the order the run made them)."""
    rows = await session.scalars(
        sa.select(Artifact)
        .where(Artifact.flow_run_id == run_id)
        .order_by(Artifact.created, Artifact.id)
        .limit(MAX_ARTIFACTS)
    )
    return list(rows)


class LogLine(NamedTuple):
    """A line of the Logs tab."""

    id: int
    level: int
    name: str
    message: str
    timestamp: datetime


async def log_tail(
    session: AsyncSession, run_id: uuid.UUID, limit: int = LOG_TAIL
) -> list[LogLine]:
    """The run's newest `limit` log lines, oldest first.

    Newest by timestamp, which the (flow_run_id, timestamp) index serves without
    sorting a long run's lines; the page's feed then resumes after the largest id.
    """
    rows = await session.execute(
        sa.select(
            Log.id,
            Log.level,
            Log.name,
            sa.func.substr(Log.message, 1, SHOWN_MESSAGE),
            Log.timestamp,
            sa.func.length(Log.message),
        )
        .where(Log.flow_run_id == run_id)
        .order_by(Log.timestamp.desc(), Log.id.desc())
        .limit(limit)
    )
    return [
        LogLine(
            id_, level, name, message + (_cut_note(length) if length > SHOWN_MESSAGE else ""), when
        )
        for id_, level, name, message, when, length in reversed(rows.all())
    ]


async def last_log_id(session: AsyncSession, run_id: uuid.UUID) -> int:
    """The id of the run's newest log line (0 when it has none): where its live feed starts."""
    newest = await session.scalar(sa.select(sa.func.max(Log.id)).where(Log.flow_run_id == run_id))
    return int(newest or 0)


async def logs_after(
    session: AsyncSession,
    run_id: uuid.UUID,
    after_id: int,
    limit: int = FEED_BATCH,
    *,
    whole: bool = False,
) -> list[LogSchema]:
    """The run's log lines written after the line `after_id`, oldest first.

    A line longer than SHOWN_MESSAGE is cut (as the page shows it) unless `whole`.
    """
    rows = await session.scalars(
        sa.select(Log)
        .where(Log.flow_run_id == run_id, Log.id > after_id)
        .order_by(Log.id)
        .limit(limit)
    )
    lines = [LogSchema.model_validate(r) for r in rows]
    if not whole:
        for line in lines:
            if len(line.message) > SHOWN_MESSAGE:
                cut = line.message[:SHOWN_MESSAGE] + _cut_note(len(line.message))
                line.message = cut
    return lines


async def iterate_logs(
    database: Database, run_id: uuid.UUID, batch: int = 2000
) -> AsyncIterator[list[LogSchema]]:
    """Every log line of the run, in batches, each read in its own short transaction.

    A long download holds no transaction open between batches.
    """
    after = 0
    while True:
        async with database.read_session() as session, session.begin():
            lines = await logs_after(session, run_id, after, batch, whole=True)
        if not lines:
            return
        yield lines
        after = lines[-1].id
