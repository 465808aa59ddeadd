"""Flow runs: create, read, filter, and orchestrated state changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowRun as FlowRunSchema
from skyrun.schemas.core import FlowRunCreate, FlowRunFilter
from skyrun.schemas.orchestration import Decision, SetStateResponse
from skyrun.schemas.states import State, StateCreate, StateType, utcnow
from skyrun.server.db import states as state_cols
from skyrun.server.db.models import Deployment, Flow, FlowRun, FlowRunState, WorkPool, WorkQueue
from skyrun.server.errors import Conflict, Invalid, NotFound
from skyrun.server.orchestration.bookkeeping import RunTimes, advance_times
from skyrun.server.orchestration.rules import decide_transition

_ADJECTIVES = [
    "amber",
    "brisk",
    "calm",
    "deft",
    "eager",
    "fair",
    "glad",
    "keen",
    "lucid",
    "merry",
    "noble",
    "plucky",
    "quiet",
    "rapid",
    "sunny",
    "tidy",
    "vivid",
    "witty",
    "zesty",
    "bold",
]
_NOUNS = [
    "badger",
    "comet",
    "dolphin",
    "falcon",
    "gecko",
    "heron",
    "ibis",
    "jaguar",
    "koala",
    "lynx",
    "marten",
    "newt",
    "otter",
    "puffin",
    "quail",
    "raven",
    "stork",
    "tapir",
    "wren",
]


def generate_run_name(run_id: uuid.UUID) -> str:
    """A memorable name derived from the id (stable, no global random state)."""
    n = run_id.int
    return f"{_ADJECTIVES[n % len(_ADJECTIVES)]}-{_NOUNS[(n >> 8) % len(_NOUNS)]}-{(n >> 16) % 1000:03d}"


async def create_flow_run(session: AsyncSession, data: FlowRunCreate, **extra: Any) -> FlowRun:
    """Insert a flow run in its initial state (PENDING unless given).

    `extra` carries deployment fields (deployment_id, work_queue_id, ...).
    """
    if await session.get(Flow, data.flow_id) is None:
        raise NotFound.of("flow", data.flow_id)
    run_id = data.id or uuid.uuid4()
    if data.id is not None and await session.get(FlowRun, data.id) is not None:
        raise Conflict(f"flow run {data.id} already exists")
    now = utcnow()
    state = State.from_create(data.state or StateCreate(type=StateType.PENDING), now)
    times = advance_times(RunTimes(), None, state)
    run = FlowRun(
        id=run_id,
        flow_id=data.flow_id,
        name=data.name or generate_run_name(run_id),
        parameters=data.parameters,
        tags=data.tags,
        parent_flow_run_id=data.parent_flow_run_id,
        parent_task_run_id=data.parent_task_run_id,
        created=now,
        updated=now,
        **extra,
    )
    state_cols.apply(run, state, times)
    if run.expected_start_time is None:
        run.expected_start_time = state.scheduled_time or now
    session.add(run)
    session.add(_history_row(run_id, state))
    await session.flush()
    return run


def _history_row(run_id: uuid.UUID, state: State) -> FlowRunState:
    return FlowRunState(
        id=state.id,
        flow_run_id=run_id,
        type=state.type.value,
        name=state.name,
        timestamp=state.timestamp,
        message=state.message,
        scheduled_time=state.scheduled_time,
        data=state.data,
    )


async def read_flow_run_row(
    session: AsyncSession, run_id: uuid.UUID, *, lock: bool = False
) -> FlowRun:
    query = sa.select(FlowRun).where(FlowRun.id == run_id)
    if lock:
        query = query.with_for_update()
    run = await session.scalar(query)
    if run is None:
        raise NotFound.of("flow run", run_id)
    return run


_DETAIL_COLUMNS = (
    Flow.name.label("flow_name"),
    Deployment.name.label("deployment_name"),
    WorkQueue.name.label("work_queue_name"),
    WorkPool.name.label("work_pool_name"),
)


def _detail_query() -> Any:
    return (
        sa.select(FlowRun, *_DETAIL_COLUMNS)
        .join(Flow, Flow.id == FlowRun.flow_id)
        .outerjoin(Deployment, Deployment.id == FlowRun.deployment_id)
        .outerjoin(WorkQueue, WorkQueue.id == FlowRun.work_queue_id)
        .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
    )


def to_schema(row: Any) -> FlowRunSchema:
    run: FlowRun = row[0]
    result = FlowRunSchema.model_validate(
        {
            **{c.key: getattr(run, c.key) for c in FlowRun.__table__.columns},
            "state": state_cols.current_state(run),
            "flow_name": row.flow_name,
            "deployment_name": row.deployment_name,
            "work_queue_name": row.work_queue_name,
            "work_pool_name": row.work_pool_name,
        }
    )
    return result


async def read_flow_run(session: AsyncSession, run_id: uuid.UUID) -> FlowRunSchema:
    row = (await session.execute(_detail_query().where(FlowRun.id == run_id))).first()
    if row is None:
        raise NotFound.of("flow run", run_id)
    return to_schema(row)


def _filter_clauses(f: FlowRunFilter) -> list[Any]:
    clauses: list[Any] = []
    if f.flow_name is not None:
        clauses.append(Flow.name == f.flow_name)
    if f.flow_id is not None:
        clauses.append(FlowRun.flow_id == f.flow_id)
    if f.deployment_id is not None:
        clauses.append(FlowRun.deployment_id == f.deployment_id)
    if f.work_pool_name is not None:
        clauses.append(WorkPool.name == f.work_pool_name)
    if f.state_type:
        clauses.append(FlowRun.state_type.in_([t.value for t in f.state_type]))
    if f.state_name:
        clauses.append(FlowRun.state_name.in_(f.state_name))
    if f.parent_flow_run_id is not None:
        clauses.append(FlowRun.parent_flow_run_id == f.parent_flow_run_id)
    if f.expected_start_before is not None:
        clauses.append(FlowRun.expected_start_time <= f.expected_start_before)
    if f.expected_start_after is not None:
        clauses.append(FlowRun.expected_start_time >= f.expected_start_after)
    return clauses


async def filter_flow_runs(
    session: AsyncSession, f: FlowRunFilter
) -> tuple[list[FlowRunSchema], int]:
    """One page of flow runs matching `f`, and the total count."""
    clauses = _filter_clauses(f)
    column, direction = f.sort.rsplit("_", 1)
    order_col = FlowRun.created if column == "created" else FlowRun.expected_start_time
    order = order_col.asc() if direction == "asc" else order_col.desc()
    query = (
        _detail_query().where(*clauses).order_by(order, FlowRun.id).limit(f.limit).offset(f.offset)
    )
    rows = (await session.execute(query)).all()
    items = [to_schema(r) for r in rows]
    count_query = (
        sa.select(sa.func.count())
        .select_from(FlowRun)
        .join(Flow, Flow.id == FlowRun.flow_id)
        .outerjoin(WorkQueue, WorkQueue.id == FlowRun.work_queue_id)
        .outerjoin(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
        .where(*clauses)
    )
    count = int(await session.scalar(count_query) or 0)
    return items, count


async def set_flow_run_state(
    session: AsyncSession,
    run_id: uuid.UUID,
    proposed: StateCreate,
    *,
    force: bool = False,
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> SetStateResponse:
    """Propose a state; the orchestration rules decide; accepted states are recorded.

    `extra` sets more columns on the run when the state is accepted (a claim's
    worker and lease, the infrastructure id).
    """
    now = now or utcnow()
    run = await read_flow_run_row(session, run_id, lock=True)
    current = state_cols.current_state(run)
    new_state = State.from_create(proposed, now)
    if current is not None and new_state.timestamp < current.timestamp:
        new_state = new_state.model_copy(update={"timestamp": now})
    outcome = decide_transition(current, new_state, now=now, force=force)
    if outcome.decision != Decision.ACCEPT or outcome.state is None:
        return SetStateResponse(
            decision=outcome.decision,
            state=current,
            reason=outcome.reason,
            delay_seconds=outcome.delay_seconds,
        )
    accepted = outcome.state
    times = advance_times(state_cols.run_times(run), current, accepted)
    state_cols.apply(run, accepted, times)
    for key, value in (extra or {}).items():
        setattr(run, key, value)
    if accepted.type in (StateType.SCHEDULED,) and extra is None:
        run.worker_id = None
        run.lease_expires = None
    run.updated = now
    session.add(_history_row(run.id, accepted))
    await session.flush()
    return SetStateResponse(decision=Decision.ACCEPT, state=accepted, reason=outcome.reason)


async def read_flow_run_states(session: AsyncSession, run_id: uuid.UUID) -> list[State]:
    await read_flow_run_row(session, run_id)
    rows = await session.scalars(
        sa.select(FlowRunState)
        .where(FlowRunState.flow_run_id == run_id)
        .order_by(FlowRunState.timestamp, FlowRunState.id)
    )
    return [
        State(
            id=r.id,
            type=StateType(r.type),
            name=r.name,
            timestamp=r.timestamp,
            message=r.message,
            scheduled_time=r.scheduled_time,
            data=r.data,
        )
        for r in rows
    ]


async def delete_flow_run(session: AsyncSession, run_id: uuid.UUID) -> None:
    run = await read_flow_run_row(session, run_id)
    await session.delete(run)


async def existing_flow_run_ids(session: AsyncSession, run_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `run_ids` are flow runs."""
    if not run_ids:
        return set()
    return set(await session.scalars(sa.select(FlowRun.id).where(FlowRun.id.in_(run_ids))))


async def ensure_flow_runs_exist(session: AsyncSession, run_ids: set[uuid.UUID]) -> None:
    missing = run_ids - await existing_flow_run_ids(session, run_ids)
    if missing:
        raise Invalid(f"unknown flow run id(s): {', '.join(sorted(str(m) for m in missing))}")
