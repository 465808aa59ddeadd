"""A worker reporting on infrastructure that exited must not touch a later attempt of its run
(a finished run retried from the UI and claimed again before the first exit was seen)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from skyrun.schemas.core import FlowRun
from skyrun.schemas.states import State, StateType
from skyrun.workers.runs import is_later_attempt
from skyrun.workers.slots import RunTracker

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
RUN_ID = uuid.uuid4()


def run(state_type: StateType, run_count: int, state_id: uuid.UUID | None = None) -> FlowRun:
    fields: dict[str, Any] = {
        "id": RUN_ID,
        "flow_id": uuid.uuid4(),
        "name": "r",
        "parameters": {},
        "tags": [],
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "expected_start_time": NOW,
        "start_time": None,
        "end_time": None,
        "run_count": run_count,
        "total_run_time": 0.0,
        "created": NOW,
        "updated": NOW,
        "state": State(id=state_id or uuid.uuid4(), type=state_type, name=state_type.title()),
    }
    return FlowRun.model_validate(fields)


def test_the_same_attempt_is_not_a_later_one() -> None:
    claimed = run(StateType.PENDING, 0)
    same_pending = run(StateType.PENDING, 0, state_id=claimed.state.id if claimed.state else None)
    assert not is_later_attempt(claimed, same_pending)
    assert not is_later_attempt(claimed, run(StateType.RUNNING, 1))
    assert not is_later_attempt(claimed, run(StateType.FAILED, 1))


def test_a_new_claim_or_a_new_start_is_a_later_attempt() -> None:
    claimed = run(StateType.PENDING, 0)
    assert is_later_attempt(claimed, run(StateType.PENDING, 1))
    assert is_later_attempt(claimed, run(StateType.RUNNING, 2))
    assert is_later_attempt(run(StateType.PENDING, 1), run(StateType.COMPLETED, 3))


def test_the_first_attempts_thread_does_not_drop_the_retried_attempt() -> None:
    tracker = RunTracker()
    first = tracker.add(RUN_ID)
    tracker.started(RUN_ID, "pid:1")
    # Retried and claimed again by this worker before the first thread ended.
    tracker.add(RUN_ID)
    tracker.started(RUN_ID, "pid:2")
    tracker.remove(RUN_ID, first)
    assert RUN_ID in tracker and tracker.infrastructure_ids() == {RUN_ID: "pid:2"}
    tracker.remove(RUN_ID)
    assert RUN_ID not in tracker
