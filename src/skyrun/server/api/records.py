"""Batches of task runs and log lines, read and recorded record by record.

One bad record never costs the others: a record that is invalid, or whose
flow run does not exist, is refused on its own (named in the answer by its
kind, position and reason) and every other record is recorded. Only a body
that is not a batch at all (not JSON, not an object with `task_runs` and
`logs` lists) is refused whole, with the usual 422.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from skyrun.schemas.core import (
    Batch,
    BatchResult,
    LogBatch,
    LogCreate,
    RefusedRecord,
    TaskRunRecord,
)
from skyrun.schemas.limits import JSONValue
from skyrun.server.api.deps import parse_json_body, require_json
from skyrun.server.db import flow_runs, logs, task_runs


@dataclass
class Records:
    """A request's valid records, each with its position in the request, and those refused."""

    task_runs: list[tuple[int, TaskRunRecord]] = field(default_factory=list)
    logs: list[tuple[int, LogCreate]] = field(default_factory=list)
    refused: list[RefusedRecord] = field(default_factory=list)


# A batch's shape, records unchecked: JSON values only (a NaN or 1e400 token, not JSON
# at all, refuses the whole body as everywhere else in the API).
class _BatchShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_runs: list[JSONValue] = Field(default_factory=list)
    logs: list[JSONValue] = Field(default_factory=list)


class _LogsShape(RootModel[list[JSONValue]]):
    pass


M = TypeVar("M", bound=BaseModel)


async def read_batch(request: Request) -> Records:
    """The records of a `POST /batch` body (a 422 if it is not a batch)."""
    require_json(request)
    body = await request.body()
    try:
        # Nearly every batch is valid throughout: one pass in pydantic's JSON mode.
        batch = Batch.model_validate_json(body)
    except ValidationError:
        shape = await parse_json_body(request, _BatchShape)
        records = Records()
        records.task_runs = _valid(TaskRunRecord, "task_run", shape.task_runs, records.refused)
        records.logs = _valid(LogCreate, "log", shape.logs, records.refused)
        return records
    return Records(task_runs=list(enumerate(batch.task_runs)), logs=list(enumerate(batch.logs)))


async def read_logs(request: Request) -> Records:
    """The records of a `POST /logs` body, a list of log lines (a 422 if it is not a list)."""
    require_json(request)
    body = await request.body()
    try:
        lines = LogBatch.model_validate_json(body).root
    except ValidationError:
        items = (await parse_json_body(request, _LogsShape)).root
        records = Records()
        records.logs = _valid(LogCreate, "log", items, records.refused)
        return records
    return Records(logs=list(enumerate(lines)))


def _valid(
    model: type[M], kind: Literal["task_run", "log"], items: list[Any], refused: list[RefusedRecord]
) -> list[tuple[int, M]]:
    valid = []
    for index, item in enumerate(items):
        try:
            valid.append((index, model.model_validate(item)))
        except ValidationError as exc:
            refused.append(RefusedRecord(kind=kind, index=index, reason=_describe(exc)))
    return valid


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(problems)


async def record(session: AsyncSession, records: Records) -> BatchResult:
    """Record every valid record whose flow run exists; refuse the rest."""
    run_ids = {run.flow_run_id for _, run in records.task_runs}
    run_ids |= {line.flow_run_id for _, line in records.logs if line.flow_run_id is not None}
    known = await flow_runs.existing_flow_run_ids(session, run_ids)
    refused = list(records.refused)
    runs = []
    for index, run in records.task_runs:
        if run.flow_run_id in known:
            runs.append(run)
        else:
            refused.append(_unknown_run("task_run", index, run.flow_run_id))
    lines = []
    for index, line in records.logs:
        if line.flow_run_id is None or line.flow_run_id in known:
            lines.append(line)
        else:
            refused.append(_unknown_run("log", index, line.flow_run_id))
    recorded = await task_runs.upsert_task_runs(session, runs)
    logged = await logs.create_logs(session, lines)
    refused.sort(key=lambda r: (r.kind != "task_run", r.index))
    return BatchResult(task_runs=recorded, logs=logged, refused=refused)


def _unknown_run(kind: Literal["task_run", "log"], index: int, run_id: uuid.UUID) -> RefusedRecord:
    return RefusedRecord(kind=kind, index=index, reason=f"flow run {run_id} does not exist")
