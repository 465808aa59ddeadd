"""Flow-run heartbeats: the process running a flow says it is alive; silent runs crash.

A worker can be alive while the infrastructure of its run is gone (a Cloud Run
container vanished, a machine lost power), and a worker can itself be gone
while its run goes on: so liveness is the run's own. The engine heartbeats
every SKYRUN_FLOW_RUN_HEARTBEAT_INTERVAL seconds while the run is RUNNING;
housekeeping makes CRASHED a RUNNING run silent for longer than
SKYRUN_FLOW_RUN_HEARTBEAT_TIMEOUT.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.orchestration import Decision
from skyrun.schemas.states import State, StateCreate, StateType, utcnow
from skyrun.server.db import states as state_cols
from skyrun.server.db.flow_runs import set_flow_run_state
from skyrun.server.db.models import FlowRun
from skyrun.server.errors import NotFound


async def heartbeat_flow_run(
    session: AsyncSession, run_id: uuid.UUID, now: datetime | None = None
) -> State:
    """Record that the run's process is alive; returns the run's current state.

    One UPDATE ... RETURNING: a heartbeat comes every few seconds from every
    running flow, and it leaves `updated` alone (nothing about the run changed).
    """
    statement = (
        sa.update(FlowRun)
        .where(FlowRun.id == run_id)
        .values(last_heartbeat=now or utcnow(), updated=FlowRun.updated)
        .returning(FlowRun)
        .execution_options(synchronize_session=False)
    )
    run = await session.scalar(statement)
    state = state_cols.current_state(run) if run is not None else None
    if state is None:  # every existing run has a state
        raise NotFound.of("flow run", run_id)
    return state


def _silent_since(cutoff: datetime) -> Any:
    # A run that never heartbeat is judged by when it became RUNNING; a run that
    # became RUNNING again (a retry) is not judged by an older episode's heartbeats.
    return sa.and_(
        FlowRun.state_type == StateType.RUNNING.value,
        FlowRun.state_timestamp < cutoff,
        sa.or_(FlowRun.last_heartbeat.is_(None), FlowRun.last_heartbeat < cutoff),
    )


async def crash_silent_runs(session: AsyncSession, timeout: float, now: datetime) -> int:
    """RUNNING runs with no heartbeat for `timeout` seconds become CRASHED; returns how many.

    Whether or not their worker is alive: the process that ran them is gone or cut off.
    """
    cutoff = now - timedelta(seconds=timeout)
    candidates = list(await session.scalars(sa.select(FlowRun.id).where(_silent_since(cutoff))))
    crashed = 0
    for run_id in candidates:
        # Checked again under the run's lock: it may have heartbeat or ended since.
        locked = sa.select(FlowRun.id).where(FlowRun.id == run_id, _silent_since(cutoff))
        if await session.scalar(locked.with_for_update()) is None:
            continue
        response = await set_flow_run_state(
            session,
            run_id,
            StateCreate(
                type=StateType.CRASHED,
                message=(
                    f"no heartbeat from the process running it for {timeout:g}s "
                    "(SKYRUN_FLOW_RUN_HEARTBEAT_TIMEOUT): its infrastructure stopped "
                    "or lost contact with the server"
                ),
            ),
            now=now,
        )
        if response.decision == Decision.ACCEPT:
            crashed += 1
    return crashed
