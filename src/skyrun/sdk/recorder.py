"""Buffers task-run states and log lines, and flushes them in the background.

A task run costs no API round trip: its states are appended here and sent in
one batch every `flush_interval` seconds, when a flow run ends (synchronously,
before its final state), and at interpreter exit.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from skyrun.client.errors import ServerUnreachable, SkyrunAPIError

if TYPE_CHECKING:
    from skyrun.client.client import SkyrunClient

# Task runs per request: bounds the memory a large flush takes on both sides.
BATCH_SIZE = 200


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


class Recorder:
    """The process's buffer of task runs and logs for one client."""

    def __init__(self, client: SkyrunClient, flush_interval: float) -> None:
        self.client = client
        self.flush_interval = flush_interval
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._dirty: dict[str, TaskRecord] = {}
        self._logs: list[dict[str, Any]] = []
        self._unsent: list[Taken] = []
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="skyrun-recorder", daemon=True)
        self._thread.start()
        # Runs before the embedded backend closes (registered later hooks run first).
        threading._register_atexit(self.close)  # type: ignore[attr-defined]

    def add_state(
        self, record: TaskRecord, state_type: str, name: str, message: str | None = None
    ) -> float:
        """Append a state to a task run; returns its timestamp."""
        now = time.time()
        with self._lock:
            if record.running_since is not None:
                record.total_run_time += now - record.running_since
                record.running_since = None
            if state_type == "RUNNING":
                record.run_count += 1
                record.running_since = now
                if record.start_time is None:
                    record.start_time = now
            elif state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                record.end_time = now
            record.new_states.append((state_type, name, now, message))
            self._dirty[record.id] = record
        return now

    def add_log(
        self,
        *,
        flow_run_id: uuid.UUID | None,
        task_run_id: uuid.UUID | None,
        name: str,
        level: int,
        message: str,
        timestamp: float,
    ) -> None:
        entry = {
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "task_run_id": str(task_run_id) if task_run_id else None,
            "name": name,
            "level": level,
            "message": message,
            "timestamp": timestamp,
        }
        with self._lock:
            self._logs.append(entry)

    def _take(self) -> tuple[list[Taken], list[dict[str, Any]]]:
        """Everything to send: runs kept from a failed flush first, then the new ones."""
        with self._lock:
            taken = self._unsent + [record.take() for record in self._dirty.values()]
            self._dirty = {}
            self._unsent = []
            logs, self._logs = self._logs, []
        return taken, logs

    def flush(self) -> None:
        """Send everything buffered now; keeps it for a later try if the server is away.

        Task runs go `BATCH_SIZE` per request, their JSON payloads built one
        request at a time (a 10,000-task flow is never one huge body held in
        memory on either side); log lines go with the last request, after the
        task runs they may name.
        """
        with self._flush_lock:
            taken, logs = self._take()
            if not taken and not logs:
                return
            starts = range(0, max(len(taken), 1), BATCH_SIZE)
            for start in starts:
                chunk = [payload(t) for t in taken[start : start + BATCH_SIZE]]
                last = start == starts[-1]
                body = {"task_runs": chunk, "logs": logs if last else []}
                try:
                    self.client.request("POST", "batch", json=body)
                except ServerUnreachable as exc:
                    self._put_back(taken[start:], logs)
                    print(f"skyrun: could not send run records yet ({exc})", file=sys.stderr)
                    return
                except SkyrunAPIError as exc:
                    print(f"skyrun: the API refused run records: {exc.detail}", file=sys.stderr)

    def _put_back(self, taken: list[Taken], logs: list[dict[str, Any]]) -> None:
        # What was taken owns its states (they are off the records now), so it is
        # kept whole and sent ahead of anything newer.
        with self._lock:
            self._unsent = taken + self._unsent
            self._logs = logs + self._logs

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stopped:
                break
            try:
                self.flush()
            except Exception as exc:  # never let the background thread die
                print(f"skyrun: background flush failed: {exc!r}", file=sys.stderr)

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        self.flush()
