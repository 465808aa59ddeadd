"""Deployments: a flow's entrypoint, parameters, schedules and where it runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyrun.schemas.states import StateCreate, UTCTimestamp


class DeploymentScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: dict[str, Any] = Field(
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
    flow_name: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    entrypoint: str = Field(min_length=1, max_length=1000)
    path: str | None = None
    description: str | None = None
    version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_openapi_schema: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    pull_steps: list[dict[str, Any]] = Field(default_factory=list)
    schedules: list[DeploymentScheduleCreate] = Field(default_factory=list)
    paused: bool = False

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
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    version: str | None = None
    parameters: dict[str, Any] | None = None
    tags: list[str] | None = None
    job_variables: dict[str, Any] | None = None
    schedules: list[DeploymentScheduleCreate] | None = None
    paused: bool | None = None


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
    created: datetime
    updated: datetime


class DeploymentRunCreate(BaseModel):
    """A run of a deployment: parameters merge over the deployment's defaults."""

    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    name: str | None = None
    scheduled_time: UTCTimestamp | None = None
    state: StateCreate | None = None
    idempotency_key: str | None = None
    work_queue_name: str | None = None
