"""Flow runs: create, read, filter, and orchestrated state changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import FlowRun as FlowRunSchema
from skyrun.schemas.core import FlowRunCreate, FlowRunFilter
from skyrun.schemas.orchestration import Decision, SetStateResponse
from skyrun.schemas.states import State, StateCreate, StateType, utcnow
from skyrun.server.db import states as state_cols
from skyrun.server.db.models import Deployment, Flow, FlowRun, FlowRunState, WorkPool, WorkQueue
from skyrun.server.db.run_names import generate_run_name
from skyrun.server.errors import Conflict, Invalid, NotFound
from skyrun.server.orchestration.bookkeeping import RunTimes, advance_times
from skyrun.server.orchestration.rules import decide_transition


async def create_flow_run(session: AsyncSession, data: FlowRunCreate, **extra: Any) -> FlowRun:
    """Insert a flow run in its initial state (PENDING unless given).

    A client chooses the run's id, so that a request repeated after a lost reply
    is answered with the run the first one made: a run with `data.id` of the same
    flow is returned as it is (a run of another flow is a Conflict). `extra`
    carries deployment fields (deployment_id, work_queue_id, idempotency_key, ...).
    """
    if await session.get(Flow, data.flow_id) is None:
        raise NotFound.of("flow", data.flow_id)
    run_id = data.id or uuid.uuid4()
    if data.id is not None:
        existing = await session.get(FlowRun, data.id)
        if existing is not None:
            return _repeated(existing, data)
    now = utcnow()
    state = State.from_create(data.state or StateCreate(type=StateType.PENDING), now)
    if data.state is not None and data.state.id is not None:
        await _check_state_id_is_new(session, data.state.id)
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
    try:
        # A savepoint: the same request sent twice at once (a retry while the first is
        # still being handled) loses the race on the key, and is answered with the winner.
        async with session.begin_nested():
            session.add(run)
            session.add(_history_row(run_id, state))
    except IntegrityError:
        winner = await _same_request_winner(session, run_id, extra)
        if winner is None:
            raise
        return _repeated(winner, data)
    return run


def _repeated(existing: FlowRun, data: FlowRunCreate) -> FlowRun:
    """The run a repeated creation request made, if the repeat is the same request."""
    if existing.flow_id != data.flow_id:
        raise Conflict(
            f"flow run {existing.id} already exists, of another flow; "
            "create the new run with another id (or none)"
        )
    return existing


async def _same_request_winner(
    session: AsyncSession, run_id: uuid.UUID, extra: dict[str, Any]
) -> FlowRun | None:
    found = await session.get(FlowRun, run_id)
    if found is None and extra.get("idempotency_key") is not None:
        found = await session.scalar(
            sa.select(FlowRun).where(
                FlowRun.deployment_id == extra.get("deployment_id"),
                FlowRun.idempotency_key == extra["idempotency_key"],
            )
        )
    return found


async def _check_state_id_is_new(session: AsyncSession, state_id: uuid.UUID) -> None:
    recorded = await session.get(FlowRunState, state_id)
    if recorded is not None:
        raise Conflict(
            f"state {state_id} is already a state of flow run {recorded.flow_run_id}; "
            "propose the new state with another id (or none)"
        )


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
    expect: Callable[[FlowRun], bool] | None = None,
) -> SetStateResponse:
    """Propose a state; the orchestration rules decide; accepted states are recorded.

    `extra` sets more columns on the run when the state is accepted (a claim's
    worker and lease, the infrastructure id). `expect`, checked under the run's
    row lock, says whether the run is still as the caller saw it: a service that
    chose the run from a read without a lock (an expired lease, an overdue run)
    must not move a run that moved on meanwhile (the rules would let a RUNNING run
    go back to SCHEDULED, and it would run twice). When it no longer holds, the
    answer is REJECT and nothing changes.
    """
    now = now or utcnow()
    run = await read_flow_run_row(session, run_id, lock=True)
    if expect is not None and not expect(run):
        return SetStateResponse(
            decision=Decision.REJECT,
            state=state_cols.current_state(run),
            reason="the run changed since it was chosen; nothing was done",
        )
    if proposed.id is not None:
        # Looked up under the run's lock: a repeat waits for the first to commit.
        recorded = await session.get(FlowRunState, proposed.id)
        if recorded is not None:
            return _first_answer(run_id, recorded)
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


def _first_answer(run_id: uuid.UUID, recorded: FlowRunState) -> SetStateResponse:
    """The answer to a proposal whose state id is already recorded: a repeat after a
    lost reply, answered as the first time (not decided again: RUNNING twice would abort)."""
    if recorded.flow_run_id != run_id:
        raise Conflict(
            f"state {recorded.id} is already a state of flow run {recorded.flow_run_id}; "
            "propose the new state with another id (or none)"
        )
    return SetStateResponse(
        decision=Decision.ACCEPT,
        state=_state_of(recorded),
        reason="this state was already recorded (a repeated proposal)",
    )


def _state_of(row: FlowRunState) -> State:
    return State(
        id=row.id,
        type=StateType(row.type),
        name=row.name,
        timestamp=row.timestamp,
        message=row.message,
        scheduled_time=row.scheduled_time,
        data=row.data,
    )


async def read_flow_run_states(session: AsyncSession, run_id: uuid.UUID) -> list[State]:
    await read_flow_run_row(session, run_id)
    rows = await session.scalars(
        sa.select(FlowRunState)
        .where(FlowRunState.flow_run_id == run_id)
        .order_by(FlowRunState.timestamp, FlowRunState.id)
    )
    return [_state_of(r) for r in rows]


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
