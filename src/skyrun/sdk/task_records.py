"""A task run as the recorder buffers it, and the JSON it is sent as."""

from __future__ import annotations

import uuid
from typing import Any


class TaskRecord:
    """One task run's fields, and the states not yet sent."""

    __slots__ = (
        "end_time",
        "flow_run_id",
        "id",
        "name",
        "new_states",
        "run_count",
        "running_since",
        "start_time",
        "tags",
        "task_key",
        "total_run_time",
    )

    def __init__(
        self,
        task_run_id: uuid.UUID,
        flow_run_id: uuid.UUID,
        name: str,
        task_key: str,
        tags: list[str],
    ) -> None:
        self.id = str(task_run_id)
        self.flow_run_id = str(flow_run_id)
        self.name = name
        self.task_key = task_key
        self.tags = tags
        self.run_count = 0
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.running_since: float | None = None
        self.total_run_time = 0.0
        self.new_states: list[tuple[str, str, float, str | None]] = []

    def take(self) -> Taken:
        """What to send for this run now: its fields and the states not yet taken."""
        states, self.new_states = self.new_states, []
        return (
            self,
            self.run_count,
            self.start_time,
            self.end_time,
            self.total_run_time,
            states,
        )


# A task run as taken from the buffer: the record and its fields at that moment,
# with its new states. Small; the JSON-ready payload is built per request.
Taken = tuple[
    TaskRecord, int, float | None, float | None, float, list[tuple[str, str, float, str | None]]
]


def payload(taken: Taken) -> dict[str, Any]:
    # Times go as Unix seconds (the API accepts them for datetimes) and state
    # ids are left to the server: both keep the per-task cost down.
    record, run_count, start_time, end_time, total_run_time, states = taken
    return {
        "id": record.id,
        "flow_run_id": record.flow_run_id,
        "name": record.name,
        "task_key": record.task_key,
        "tags": record.tags,
        "run_count": run_count,
        "start_time": start_time,
        "end_time": end_time,
        "total_run_time": total_run_time,
        "states": [
            {"type": state_type, "name": name, "timestamp": ts, "message": message}
            for state_type, name, ts, message in states
        ],
    }
