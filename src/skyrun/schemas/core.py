"""Flows, flow runs, task runs, logs: the core records of the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

from skyrun.schemas.limits import (
    MAX_LIST_OFFSET,
    MAX_NAME_LENGTH,
    Count,
    JSONObject,
    LogMessage,
    Name,
    Seconds,
    Tags,
)
from skyrun.schemas.states import MAX_STATE_NAME_LENGTH, State, StateCreate, StateType, UTCTimestamp

T = TypeVar("T")


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FlowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    tags: Tags = Field(default_factory=list)


class Flow(ORMModel):
    id: uuid.UUID
    name: str
    tags: list[str]
    created: datetime


class FlowRunCreate(BaseModel):
    """A new flow run; `state` defaults to PENDING for a run started in-process."""

    model_config = ConfigDict(extra="forbid")
    flow_id: uuid.UUID
    id: uuid.UUID | None = Field(
        default=None,
        description="Chosen by the client: a repeat with the same id and flow (after a lost "
        "reply) returns the run the first request created.",
    )
    name: Name | None = None
    parameters: JSONObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    parent_flow_run_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None
    state: StateCreate | None = None


class FlowRun(ORMModel):
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str | None = None
    name: str
    parameters: dict[str, Any]
    tags: list[str]
    parent_flow_run_id: uuid.UUID | None
    parent_task_run_id: uuid.UUID | None
    deployment_id: uuid.UUID | None = None
    deployment_name: str | None = None
    work_queue_id: uuid.UUID | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    worker_id: uuid.UUID | None = None
    infrastructure_id: str | None = None
    auto_scheduled: bool = False
    state: State | None
    expected_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    run_count: int
    total_run_time: float
    created: datetime
    updated: datetime


class FlowRunFilter(BaseModel):
    """Which flow runs to list; every field narrows the result."""

    model_config = ConfigDict(extra="forbid")
    flow_name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    flow_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    work_pool_name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    state_type: list[StateType] | None = Field(default=None, max_length=len(StateType))
    state_name: list[Annotated[str, Field(max_length=MAX_STATE_NAME_LENGTH)]] | None = Field(
        default=None, max_length=100
    )
    parent_flow_run_id: uuid.UUID | None = None
    expected_start_before: UTCTimestamp | None = None
    expected_start_after: UTCTimestamp | None = None
    sort: str = Field(default="created_desc", pattern="^(created|expected_start_time)_(asc|desc)$")
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_LIST_OFFSET)


class TaskRunRecord(BaseModel):
    """A task run as the SDK reports it in a batch: its latest fields and new states."""

    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID
    flow_run_id: uuid.UUID
    name: Name
    task_key: str = Field(min_length=1, max_length=300)
    tags: Tags = Field(default_factory=list)
    run_count: Count = 0
    start_time: UTCTimestamp | None = None
    end_time: UTCTimestamp | None = None
    total_run_time: Seconds = 0.0
    states: list[State] = Field(min_length=1, max_length=10_000)


class TaskRun(ORMModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID
    name: str
    task_key: str
    tags: list[str]
    state: State | None
    state_history: list[State] = Field(default_factory=list)
    start_time: datetime | None
    end_time: datetime | None
    run_count: int
    total_run_time: float
    created: datetime


class LogCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    name: str = Field(max_length=MAX_NAME_LENGTH)
    level: int = Field(ge=0, le=100)
    message: LogMessage
    timestamp: UTCTimestamp


class Log(ORMModel):
    id: int
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    name: str
    level: int
    message: str
    timestamp: datetime


class LogBatch(RootModel[list[LogCreate]]):
    """Log lines sent on their own (`POST /api/logs`)."""


class Batch(BaseModel):
    """What the SDK flushes in one request: task runs and log lines."""

    model_config = ConfigDict(extra="forbid")
    task_runs: list[TaskRunRecord] = Field(default_factory=list)
    logs: list[LogCreate] = Field(default_factory=list)


class RefusedRecord(BaseModel):
    """A record of a batch that was not recorded, and why.

    It never will be (its flow run does not exist, or the record is invalid),
    so a client drops it rather than send it again.
    """

    kind: Literal["task_run", "log"]
    index: int = Field(description="Its position in the request's `task_runs` or `logs` list.")
    reason: str


class BatchResult(BaseModel):
    """What a batch recorded: how many task runs and log lines, and what it refused.

    Every record not refused was recorded; a repeat of the request with the
    same `Idempotency-Key` gets this same answer and records nothing again.
    """

    task_runs: int = 0
    logs: int = 0
    refused: list[RefusedRecord] = Field(default_factory=list)


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, and how many match in all."""

    items: list[T]
    count: int
    limit: int
    offset: int
