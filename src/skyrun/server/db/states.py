"""Reading and writing the current state columns shared by flow runs and task runs."""

from __future__ import annotations

from typing import Any

from skyrun.schemas.states import State, StateType
from skyrun.server.db.models import StateColumns
from skyrun.server.orchestration.bookkeeping import RunTimes


def current_state(run: StateColumns) -> State | None:
    if run.state_type is None or run.state_id is None or run.state_timestamp is None:
        return None
    return State(
        id=run.state_id,
        type=StateType(run.state_type),
        name=run.state_name or run.state_type.title(),
        timestamp=run.state_timestamp,
        message=run.state_message,
        scheduled_time=run.state_scheduled_time,
    )


def state_columns(state: State) -> dict[str, Any]:
    return {
        "state_id": state.id,
        "state_type": state.type.value,
        "state_name": state.name,
        "state_timestamp": state.timestamp,
        "state_message": state.message,
        "state_scheduled_time": state.scheduled_time,
    }


def run_times(run: Any) -> RunTimes:
    return RunTimes(
        start_time=run.start_time,
        end_time=run.end_time,
        run_count=run.run_count or 0,
        total_run_time=run.total_run_time or 0.0,
        expected_start_time=getattr(run, "expected_start_time", None),
    )


def apply(run: Any, state: State, times: RunTimes) -> None:
    """Write a new current state and its timing onto an ORM run."""
    for key, value in state_columns(state).items():
        setattr(run, key, value)
    run.start_time = times.start_time
    run.end_time = times.end_time
    run.run_count = times.run_count
    run.total_run_time = times.total_run_time
    if hasattr(run, "expected_start_time"):
        run.expected_start_time = times.expected_start_time
