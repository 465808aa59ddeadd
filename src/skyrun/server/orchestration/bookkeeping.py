"""What an accepted transition changes on a run besides its state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from skyrun.schemas.states import TERMINAL_TYPES, State, StateType


@dataclass
class RunTimes:
    """The timing fields of a run that transitions update."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 0
    total_run_time: float = 0.0
    expected_start_time: datetime | None = None


def advance_times(times: RunTimes, current: State | None, new: State) -> RunTimes:
    """Return the run's timing after moving from `current` to `new`.

    A run's `run_count` grows each time it enters RUNNING; `total_run_time`
    adds each stretch spent RUNNING; `start_time` is the first RUNNING and
    `end_time` the first terminal state (cleared if a run is forced back).
    """
    result = RunTimes(**vars(times))
    if new.type == StateType.SCHEDULED and new.scheduled_time is not None:
        result.expected_start_time = new.scheduled_time
    if current is not None and current.type == StateType.RUNNING and new.type != StateType.RUNNING:
        result.total_run_time += max(0.0, (new.timestamp - current.timestamp).total_seconds())
    if new.type == StateType.RUNNING:
        result.run_count += 1
        if result.start_time is None:
            result.start_time = new.timestamp
    if new.type in TERMINAL_TYPES:
        result.end_time = new.timestamp
    elif result.end_time is not None:
        result.end_time = None
    return result
