"""Deployments: a flow's entrypoint, parameters, schedules and where it runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyrun.schemas.limits import (
    MAX_NAME_LENGTH,
    Description,
    JSONObject,
    Name,
    Tags,
)
from skyrun.schemas.states import StateCreate, UTCTimestamp
from skyrun.schemas.work_pools import Limit

# Columns of 200 and 1000 characters.
Version = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
FilePath = Annotated[str, Field(max_length=1000)]


class DeploymentScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: JSONObject = Field(
        description="{'cron': '0 9 * * *', 'timezone': ...} | {'interval': 3600, 'anchor_date': ...}"
        " | {'rrule': 'FREQ=...'}"
    )
    active: bool = True


class DeploymentSchedule(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    schedule: dict[str, Any]
    active: bool


class DeploymentCreate(BaseModel):
    """Create or replace (by flow name + deployment name) a deployment."""

    model_config = ConfigDict(extra="forbid")
    flow_name: Name
    name: Name
    entrypoint: str = Field(min_length=1, max_length=1000)
    path: FilePath | None = None
    description: Description | None = None
    version: Version | None = None
    parameters: JSONObject = Field(default_factory=dict)
    parameter_openapi_schema: JSONObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    work_pool_name: Name | None = None
    work_queue_name: Name | None = None
    job_variables: JSONObject = Field(default_factory=dict)
    pull_steps: list[JSONObject] = Field(default_factory=list, max_length=100)
    schedules: list[DeploymentScheduleCreate] = Field(default_factory=list, max_length=100)
    paused: bool = False
    concurrency_limit: Limit | None = Field(
        default=None,
        description="At most this many of its runs active (PENDING, RUNNING or CANCELLING) "
        "at once; null: no limit; 0: none may start. Runs beyond it stay SCHEDULED and are "
        "claimed, earliest first, as others finish. Needs a work_pool_name.",
    )

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        path, sep, func = value.rpartition(":")
        if not sep or not path or not func.isidentifier():
            raise ValueError(
                f"entrypoint {value!r} must look like 'path/to/file.py:function' or "
                "'package.module:function'"
            )
        return value


class DeploymentUpdate(BaseModel):
    """What to change; a field left out stays as it is (a null concurrency_limit removes it)."""

    model_config = ConfigDict(extra="forbid")
    description: Description | None = None
    version: Version | None = None
    parameters: JSONObject | None = None
    tags: Tags | None = None
    job_variables: JSONObject | None = None
    schedules: list[DeploymentScheduleCreate] | None = Field(default=None, max_length=100)
    paused: bool | None = None
    concurrency_limit: Limit | None = None


class Deployment(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    name: str
    entrypoint: str
    path: str | None
    description: str | None
    version: str | None
    parameters: dict[str, Any]
    parameter_openapi_schema: dict[str, Any]
    tags: list[str]
    work_pool_name: str | None
    work_queue_name: str | None
    work_queue_id: uuid.UUID | None
    job_variables: dict[str, Any]
    pull_steps: list[dict[str, Any]]
    schedules: list[DeploymentSchedule]
    paused: bool
    concurrency_limit: int | None = None
    created: datetime
    updated: datetime


class DeploymentRunCreate(BaseModel):
    """A run of a deployment: parameters merge over the deployment's defaults."""

    model_config = ConfigDict(extra="forbid")
    parameters: JSONObject = Field(default_factory=dict)
    job_variables: JSONObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    name: Name | None = None
    scheduled_time: UTCTimestamp | None = None
    state: StateCreate | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    work_queue_name: Name | None = None
