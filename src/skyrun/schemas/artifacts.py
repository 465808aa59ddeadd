"""Artifacts: markdown, table, link and progress output of runs, versioned by key."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyrun.schemas.limits import MAX_NAME_LENGTH, Description, JSONValue, fullmatch

ArtifactType = Literal["markdown", "table", "link", "progress"]
KEY_PATTERN = re.compile(r"[a-z0-9-]+")


class ArtifactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID | None = Field(
        default=None,
        description="Chosen by the client: a repeat with the same id (after a lost reply) "
        "returns the artifact the first request stored.",
    )
    key: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    type: ArtifactType
    description: Description | None = None
    data: JSONValue
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None

    @field_validator("key")
    @classmethod
    def _key_is_slug(cls, key: str | None) -> str | None:
        if key is not None and not fullmatch(KEY_PATTERN, key):
            raise ValueError(
                f"artifact key {key!r} may hold only lower-case letters, digits and dashes"
            )
        return key


class Artifact(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    key: str | None
    type: str
    description: str | None
    data: Any
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    created: datetime
    is_latest: bool | None = None
