"""Fault injection for tests, and a count of API calls by method (not Google's API).

Endpoints, all under `/_emulator/` and never authenticated:

* `POST /_emulator/faults` with one fault (answers 200 with the pending faults):

  - `{"method": "jobs.create", "count": 3, "status": 429}`: the next 3 calls of
    `jobs.create` answer HTTP 429 with Google's error body (status name from the
    code: 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, 500 INTERNAL, ...); nothing
    is done.
  - `{"method": "jobs.create", "count": 1, "drop": "after"}`: the call is handled
    (the job is created) and the connection is closed without a reply: a lost
    reply. `"drop": "before"` closes it without handling; `"drop": true` means
    "after", the case that tests a caller's idempotency.
  - `{"never_start": true, "count": 1}`: the next execution created (by jobs.run
    or an execution token) never starts: it stays pending, no task runs, until it
    is cancelled or deleted — a container that never starts.

  `method` is one of jobs.create, jobs.get, jobs.list, jobs.patch, jobs.delete,
  jobs.run, executions.get, executions.list, executions.cancel, executions.delete,
  operations.get, operations.wait, operations.list, or "*" for any of them.
  `count` defaults to 1. Faults for the same call apply in the order posted.
  Any fault may carry `"project": "P"`: it then meets only calls (and executions)
  under `projects/P/`, so tests sharing one emulator, a project each, cannot
  meet each other's faults.
* `GET /_emulator/faults`: the pending faults. `DELETE /_emulator/faults`: clear them.
* `GET /_emulator/calls`: `{"calls": {"jobs.create": 4, ...}}`, every API call
  received by method, faulted ones included (what a benchmark counts);
  `?project=P`: only the calls under `projects/P/`.
* `GET /_emulator/executions`: `{"executions": [{"name", "createTime", "startTime",
  "completionTime", "succeeded"}, ...]}`, every finished execution in the order they
  finished (the last 10,000), kept after its job is deleted; times are RFC 3339 UTC,
  `startTime` null for one that never started.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from skyrun.integrations.gcp.emulator.state import ApiError

METHODS = frozenset(
    {
        "jobs.create",
        "jobs.get",
        "jobs.list",
        "jobs.patch",
        "jobs.delete",
        "jobs.run",
        "executions.get",
        "executions.list",
        "executions.cancel",
        "executions.delete",
        "operations.get",
        "operations.wait",
        "operations.list",
    }
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class Fault:
    """One pending fault (see the module docstring for the JSON shape)."""

    method: str = "*"
    count: int = 1
    status: int | None = None
    drop: Literal["before", "after"] | None = None
    never_start: bool = False
    project: str | None = None

    def matches(self, project: str | None) -> bool:
        """Whether the fault applies to a call under `project`."""
        return self.project is None or self.project == project

    def error(self) -> ApiError:
        """The error answer this fault gives."""
        assert self.status is not None
        name = STATUS_NAMES.get(self.status, "UNKNOWN")
        return ApiError(self.status, name, f"Injected fault: {self.status} {name}.")


def parse_fault(body: Any) -> Fault:
    """A Fault from the JSON body of `POST /_emulator/faults`, or ValueError saying why not."""
    if not isinstance(body, dict):
        raise ValueError("a fault is a JSON object, e.g. {'method': 'jobs.create', 'status': 429}")
    unknown = set(body) - {"method", "count", "status", "drop", "never_start", "project"}
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    count = body.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    project = body.get("project")
    if project is not None and not isinstance(project, str):
        raise ValueError("project is a project id, e.g. 'my-project'")
    if body.get("never_start"):
        return Fault(method="*", count=count, never_start=True, project=project)
    method = body.get("method", "*")
    if method != "*" and method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of: {', '.join(sorted(METHODS))}")
    drop: Literal["before", "after"] | None
    match body.get("drop"):
        case True | "after":
            drop = "after"
        case "before":
            drop = "before"
        case None | False:
            drop = None
        case _:
            raise ValueError("drop is true, 'before' or 'after'")
    status = body.get("status")
    if drop is None and not (isinstance(status, int) and 400 <= status <= 599):
        raise ValueError("a fault needs a status (400-599), drop or never_start")
    status = None if drop else status
    return Fault(method=method, count=count, status=status, drop=drop, project=project)


class FaultBook:
    """Pending faults and the calls received."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.project_calls: Counter[tuple[str | None, str]] = Counter()

    def add(self, fault: Fault) -> None:
        """Queue a fault."""
        self.pending.append(fault)

    def describe(self) -> list[dict[str, Any]]:
        """The pending faults as JSON."""
        return [asdict(fault) for fault in self.pending]

    def _take(self, matches: Any) -> Fault | None:
        for fault in self.pending:
            if matches(fault):
                fault.count -= 1
                if fault.count == 0:
                    self.pending.remove(fault)
                return fault
        return None

    def on_call(self, method: str, project: str | None = None) -> Fault | None:
        """Count a call of `method` (under `project`); the status or drop fault it meets."""
        self.calls[method] += 1
        self.project_calls[project, method] += 1
        return self._take(
            lambda fault: (
                not fault.never_start and fault.method in ("*", method) and fault.matches(project)
            )
        )

    def calls_of(self, project: str | None) -> dict[str, int]:
        """The calls received by method: all of them, or only those under `project`."""
        if project is None:
            return dict(self.calls)
        return {m: n for (p, m), n in self.project_calls.items() if p == project}

    def never_start(self, project: str | None = None) -> bool:
        """Whether the execution being created (under `project`) is one that never starts."""
        return self._take(lambda f: f.never_start and f.matches(project)) is not None
