"""Bookkeeping shared by the worker's threads: free slots (`--limit`) and launched runs."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

# Claim at most this many runs per poll when the worker has no --limit.
UNLIMITED_BATCH = 10


class Slots:
    """How many more runs this worker may take on (`--limit`); None means no limit.

    A slot is taken when a run is claimed and given back when its thread ends,
    whatever the outcome: always call `release` in a `finally`.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the worker's limit must be 1 or more")
        self.limit = limit
        self._in_use = 0
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._changed:
            return self._in_use

    def free(self) -> int:
        with self._changed:
            return self._free()

    def _free(self) -> int:
        if self.limit is None:
            return UNLIMITED_BATCH
        return self.limit - self._in_use

    def wait_for_free(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for a free slot; return how many are free."""
        with self._changed:
            self._changed.wait_for(lambda: self._free() > 0, timeout)
            return self._free()

    def take(self) -> None:
        with self._changed:
            self._in_use += 1

    def release(self) -> None:
        with self._changed:
            if self._in_use <= 0:
                raise RuntimeError("released a worker slot that was not taken")
            self._in_use -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every slot is back; return whether that happened in time."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_use == 0, timeout)


@dataclass
class LaunchedRun:
    """A run this worker claimed: its infrastructure once started, and whether to cancel it."""

    infrastructure_id: str | None = None
    cancel_requested: bool = False


class RunTracker:
    """The runs this worker handles now, shared by run threads and the cancel watcher."""

    def __init__(self) -> None:
        self._runs: dict[uuid.UUID, LaunchedRun] = {}
        self._lock = threading.Lock()

    def add(self, flow_run_id: uuid.UUID) -> LaunchedRun:
        """Track a run being launched; the entry returned is what `remove` takes back."""
        with self._lock:
            entry = self._runs[flow_run_id] = LaunchedRun()
            return entry

    def remove(self, flow_run_id: uuid.UUID, entry: LaunchedRun | None = None) -> None:
        """Stop tracking the run; given `entry`, only if the run is still that launch.

        A retried run can be claimed again by this worker while the thread of its
        first attempt is finishing: that thread must not drop the new attempt.
        """
        with self._lock:
            if entry is None or self._runs.get(flow_run_id) is entry:
                self._runs.pop(flow_run_id, None)

    def __contains__(self, flow_run_id: object) -> bool:
        with self._lock:
            return flow_run_id in self._runs

    def started(self, flow_run_id: uuid.UUID, infrastructure_id: str) -> bool:
        """Record the run's infrastructure; False if it was cancelled meanwhile (kill it)."""
        with self._lock:
            run = self._runs.setdefault(flow_run_id, LaunchedRun())
            run.infrastructure_id = infrastructure_id
            return not run.cancel_requested

    def request_cancel(self, flow_run_id: uuid.UUID) -> tuple[bool, str | None]:
        """Mark a run cancelled; returns (first request?, its infrastructure id if started)."""
        with self._lock:
            run = self._runs.get(flow_run_id)
            if run is None:
                return False, None
            first = not run.cancel_requested
            run.cancel_requested = True
            return first, run.infrastructure_id

    def cancel_requested(self, flow_run_id: uuid.UUID) -> bool:
        with self._lock:
            run = self._runs.get(flow_run_id)
            return run is not None and run.cancel_requested

    def run_ids(self) -> list[uuid.UUID]:
        """Every run this worker holds now, oldest first (its heartbeats keep their leases)."""
        with self._lock:
            return list(self._runs)

    def infrastructure_ids(self) -> dict[uuid.UUID, str]:
        with self._lock:
            return {
                run_id: run.infrastructure_id
                for run_id, run in self._runs.items()
                if run.infrastructure_id is not None
            }
