"""The emulator's resources: jobs, executions and long-running operations, in memory.

Jobs and executions are Google's own message types (`google.cloud.run_v2`), kept by
their full resource names; an operation points at the resource it is about and is
rendered from its current state when read. With persistence on, every change is
written to one JSON file (replaced atomically), read back at start.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.cloud import run_v2
from google.protobuf import json_format

TYPE_URL = "type.googleapis.com/google.cloud.run.v2."


class ApiError(Exception):
    """An error answer in Google's shape: `{"error": {"code", "message", "status"}}`."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body Google sends for this error."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def not_found(name: str) -> ApiError:
    """404 NOT_FOUND for a resource name, worded as Google words it."""
    return ApiError(404, "NOT_FOUND", f"Resource '{name}' was not found")


def message_json(message: Any) -> dict[str, Any]:
    """A run_v2 message as Google's REST JSON: camelCase names, enum names, no defaults."""
    return json_format.MessageToDict(type(message).pb(message))


def now() -> datetime:
    """The current time, timezone-aware (what timestamps in messages take)."""
    return datetime.now(UTC)


def new_etag() -> str:
    """A fresh etag, quoted like Google's."""
    return f'"{secrets.token_hex(8)}"'


@dataclass
class Operation:
    """A long-running operation about one job or execution.

    Attributes:
        name: `projects/P/locations/R/operations/ID`.
        resource_type: "Job" or "Execution" (the metadata and response type).
        resource_name: the resource's full name.
        done: whether it finished.
        error: `{"code", "message"}` (google.rpc.Status) when it finished badly.
        snapshot: the resource as it was when deleted (it cannot be read live any more).
        reports_failure: whether a failed execution fails the operation (jobs.run's
            does; a cancel's or a delete's succeeds once done).
    """

    name: str
    resource_type: str
    resource_name: str
    done: bool = False
    error: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None
    reports_failure: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    def finish(self, error: dict[str, Any] | None = None) -> None:
        """Mark it done (with `error` if it failed) and wake its waiters."""
        self.done = True
        self.error = error
        self.finished.set()

    def record(self) -> dict[str, Any]:
        """What persistence keeps of it."""
        return {
            "name": self.name,
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
            "done": self.done,
            "error": self.error,
            "snapshot": self.snapshot,
            "reports_failure": self.reports_failure,
        }


class Store:
    """Every job, execution and operation the emulator holds.

    Args:
        state_file: where to keep them across restarts; None keeps them in memory only.
    """

    def __init__(self, state_file: Path | None = None) -> None:
        self.jobs: dict[str, run_v2.Job] = {}
        self.executions: dict[str, run_v2.Execution] = {}
        self.operations: dict[str, Operation] = {}
        self.state_file = state_file
        if state_file is not None and state_file.exists():
            self._load(state_file)

    def job(self, name: str) -> run_v2.Job:
        """The job called `name`, or 404."""
        try:
            return self.jobs[name]
        except KeyError:
            raise not_found(name) from None

    def execution(self, name: str) -> run_v2.Execution:
        """The execution called `name`, or 404."""
        try:
            return self.executions[name]
        except KeyError:
            raise not_found(name) from None

    def operation(self, name: str) -> Operation:
        """The operation called `name`, or 404."""
        try:
            return self.operations[name]
        except KeyError:
            raise not_found(name) from None

    def jobs_in(self, parent: str) -> list[run_v2.Job]:
        """The jobs of `projects/P/locations/R`, oldest first."""
        prefix = f"{parent}/jobs/"
        return [job for name, job in self.jobs.items() if name.startswith(prefix)]

    def executions_of(self, job_name: str) -> list[run_v2.Execution]:
        """A job's executions, oldest first."""
        prefix = f"{job_name}/executions/"
        return [e for name, e in self.executions.items() if name.startswith(prefix)]

    def new_operation(self, parent: str, resource_type: str, resource_name: str) -> Operation:
        """A new operation under `parent` about a resource."""
        name = f"{parent}/operations/{secrets.token_hex(12)}"
        operation = Operation(name, resource_type, resource_name)
        self.operations[name] = operation
        return operation

    def render_operation(self, operation: Operation) -> dict[str, Any]:
        """The google.longrunning.Operation JSON: metadata (and response) = the resource."""
        live = self.jobs.get(operation.resource_name) or self.executions.get(
            operation.resource_name
        )
        resource = message_json(live) if live is not None else operation.snapshot or {}
        typed = {"@type": TYPE_URL + operation.resource_type, **resource}
        body: dict[str, Any] = {"name": operation.name, "metadata": typed, "done": operation.done}
        if operation.done:
            if operation.error is not None:
                body["error"] = operation.error
            else:
                body["response"] = typed
        return body

    def save(self) -> None:
        """Write everything to the state file (no-op when in memory only)."""
        if self.state_file is None:
            return
        state = {
            "jobs": [message_json(job) for job in self.jobs.values()],
            "executions": [message_json(e) for e in self.executions.values()],
            "operations": [op.record() for op in self.operations.values()],
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)

    def _load(self, state_file: Path) -> None:
        state = json.loads(state_file.read_text())
        for data in state["jobs"]:
            job = run_v2.Job.from_json(json.dumps(data))
            self.jobs[job.name] = job
        for data in state["executions"]:
            execution = run_v2.Execution.from_json(json.dumps(data))
            self.executions[execution.name] = execution
        for record in state["operations"]:
            operation = Operation(**record)
            if operation.done:
                operation.finished.set()
            self.operations[operation.name] = operation
