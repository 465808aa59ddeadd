"""Work pools, work queues and workers."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyrun.schemas.limits import (
    MAX_INT32,
    MAX_TAGS,
    Description,
    JSONObject,
    Name,
    PositiveSeconds,
    fullmatch,
)

# The longest a worker may go between heartbeats, and a claim's lease may last;
# larger ones overflow housekeeping's dates.
MAX_HEARTBEAT_INTERVAL = 3600.0
MAX_LEASE_SECONDS = 86_400.0
# The most runs one heartbeat may name (a worker holds at most a few hundred).
MAX_HEARTBEAT_RUNS = 1000
Limit = Annotated[int, Field(ge=0, le=MAX_INT32)]
Priority = Annotated[int, Field(ge=1, le=MAX_INT32)]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _check_name(value: str, what: str) -> str:
    if not fullmatch(NAME_RE, value):
        raise ValueError(
            f"{what} name {value!r} must start with a letter or digit and hold only "
            "letters, digits, '.', '_' and '-'"
        )
    return value


class WorkPoolStatus(enum.StrEnum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkerStatus(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class WorkPoolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    type: Annotated[str, Field(min_length=1, max_length=50)]
    description: Description | None = None
    base_job_template: JSONObject = Field(default_factory=dict)
    concurrency_limit: Limit | None = None
    is_paused: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "work pool")


class WorkPoolUpdate(BaseModel):
    """What to change; a field left out stays as it is (a null concurrency_limit removes it)."""

    model_config = ConfigDict(extra="forbid")
    description: Description | None = None
    base_job_template: JSONObject | None = None
    concurrency_limit: Limit | None = None
    is_paused: bool | None = None

    @field_validator("base_job_template")
    @classmethod
    def _not_null(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        # Called only for a value that was sent: leaving the field out keeps the template.
        if value is None:
            raise ValueError(
                "a work pool's base_job_template cannot be null: leave it out to keep the "
                "current one, or send {} for none"
            )
        return value


class WorkPool(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    type: str
    description: str | None
    base_job_template: dict[str, Any]
    concurrency_limit: int | None
    is_paused: bool
    status: WorkPoolStatus = WorkPoolStatus.NOT_READY
    default_queue_id: uuid.UUID | None = None
    created: datetime
    updated: datetime


class WorkPoolSaved(WorkPool):
    """A work pool as a create or update left it, with what the request should know.

    `warnings` are about the request just made, such as a base job template that
    declares variables its job_configuration never uses; they are not stored, and
    reading the pool again does not repeat them.
    """

    warnings: list[str] = Field(default_factory=list)


class WorkQueueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: Description | None = None
    priority: Priority = 1
    concurrency_limit: Limit | None = None
    is_paused: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "work queue")


class WorkQueueUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Description | None = None
    priority: Priority | None = None
    concurrency_limit: Limit | None = None
    is_paused: bool | None = None


class WorkQueue(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    work_pool_id: uuid.UUID
    work_pool_name: str | None = None
    name: str
    description: str | None
    priority: int
    concurrency_limit: int | None
    is_paused: bool
    last_polled: datetime | None


class WorkerHeartbeat(BaseModel):
    """A worker says it is alive, and which of its claimed runs it is still launching."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    heartbeat_interval: float = Field(
        default=10.0, gt=0, le=MAX_HEARTBEAT_INTERVAL, allow_inf_nan=False
    )
    flow_run_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_HEARTBEAT_RUNS,
        description="The runs this worker claimed and is launching or watching: the leases "
        "of those still PENDING are extended (a run nobody vouches for goes back to "
        "SCHEDULED when its lease runs out).",
    )


class Worker(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    work_pool_id: uuid.UUID
    name: str
    status: WorkerStatus
    heartbeat_interval: float
    last_heartbeat: datetime


class ClaimRequest(BaseModel):
    """A worker asks for due runs; the server waits up to `wait_seconds` for one.

    `claim_key` makes the claim safe to retry: a worker generates one per poll
    and sends it again when it retries that poll, and a repeat gets the runs the
    first claim took (if its reply was lost) instead of more.
    """

    model_config = ConfigDict(extra="forbid")
    worker_name: Name
    work_queue_names: list[Name] = Field(default_factory=list, max_length=MAX_TAGS)
    limit: int = Field(default=1, ge=0, le=100)
    wait_seconds: float = Field(default=0.0, ge=0, le=60, allow_inf_nan=False)
    lease_seconds: PositiveSeconds | None = Field(default=None, le=MAX_LEASE_SECONDS)
    claim_key: str | None = Field(default=None, min_length=1, max_length=200)


class ClaimedRun(BaseModel):
    """A run now PENDING for this worker, with what it needs to launch it."""

    flow_run: Any  # FlowRun; typed loosely to avoid an import cycle in schemas
    deployment: Any | None = None
    base_job_template: dict[str, Any]
    work_pool_name: str
    worker_id: uuid.UUID
    lease_expires: datetime


class ClaimResponse(BaseModel):
    worker_id: uuid.UUID
    runs: list[ClaimedRun]
    pool_paused: bool = False
